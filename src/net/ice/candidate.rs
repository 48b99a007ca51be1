//! ICE candidates and the `ice_msg` string Jami puts in a connection request or answer
//! (jami-protocol.md §2.3): `ufrag\npwd\n` then one candidate per line, in the grammar
//! pjnath's `sscanf` accepts — uppercase transport, `tcptype` right after the type, no
//! `candidate:` prefix and no `raddr`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Transport of a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP (RFC 6544).
    Tcp,
}

/// Kind of a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateKind {
    /// An interface address.
    Host,
    /// Server reflexive.
    Srflx,
    /// Peer reflexive.
    Prflx,
    /// A relay (TURN).
    Relay,
}

/// RFC 6544 TCP candidate type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpType {
    /// Opens connections (port 9).
    Active,
    /// Accepts connections.
    Passive,
    /// Simultaneous open.
    So,
}

/// One candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Foundation.
    pub foundation: String,
    /// Component (1 on device links).
    pub component: u16,
    /// Transport.
    pub transport: Transport,
    /// Priority.
    pub priority: u32,
    /// Address and port.
    pub address: SocketAddr,
    /// Kind.
    pub kind: CandidateKind,
    /// TCP type (TCP candidates only).
    pub tcp_type: Option<TcpType>,
}

/// Why an `ice_msg` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad ICE info: {0}")]
pub struct IceInfoError(String);

/// The ICE part of a connection request or answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceInfo {
    /// Username fragment.
    pub ufrag: String,
    /// Password.
    pub pwd: String,
    /// Candidates (unparsable lines are skipped, as pjnath does).
    pub candidates: Vec<Candidate>,
}

/// Type preferences (RFC 8445 §5.1.2.2).
fn type_preference(kind: CandidateKind) -> u32 {
    match kind {
        CandidateKind::Host => 126,
        CandidateKind::Prflx => 110,
        CandidateKind::Srflx => 100,
        CandidateKind::Relay => 0,
    }
}

impl Candidate {
    /// A TCP host candidate with the local preferences pjnath gives them (active just
    /// above passive), so that its priorities read like a Jami peer's.
    pub fn tcp_host(address: SocketAddr, tcp_type: TcpType) -> Self {
        let local_preference = match tcp_type {
            TcpType::Active => 0xe000,
            TcpType::Passive => 0xdfff,
            TcpType::So => 0xdffe,
        };
        let address = match tcp_type {
            TcpType::Active => SocketAddr::new(address.ip(), 9),
            _ => address,
        };
        Self {
            foundation: foundation(address.ip()),
            component: 1,
            transport: Transport::Tcp,
            priority: priority(CandidateKind::Host, local_preference, 1),
            address,
            kind: CandidateKind::Host,
            tcp_type: Some(tcp_type),
        }
    }

    fn parse(line: &str) -> Option<Self> {
        let mut fields = line.split_ascii_whitespace();
        let foundation = fields.next()?.to_owned();
        let component = fields.next()?.parse().ok()?;
        let transport = match fields.next()? {
            "TCP" => Transport::Tcp,
            _ => Transport::Udp, // pjnath treats anything else as UDP
        };
        let priority = fields.next()?.parse().ok()?;
        let ip: IpAddr = fields.next()?.parse().ok()?;
        let port = fields.next()?.parse().ok()?;
        if fields.next()? != "typ" {
            return None;
        }
        let kind = match fields.next()? {
            "host" => CandidateKind::Host,
            "srflx" => CandidateKind::Srflx,
            "prflx" => CandidateKind::Prflx,
            "relay" => CandidateKind::Relay,
            _ => return None,
        };
        let tcp_type = match (transport, fields.next(), fields.next()) {
            (Transport::Tcp, Some("tcptype"), Some("active")) => Some(TcpType::Active),
            (Transport::Tcp, Some("tcptype"), Some("passive")) => Some(TcpType::Passive),
            (Transport::Tcp, Some("tcptype"), Some("so")) => Some(TcpType::So),
            (Transport::Tcp, _, _) => return None,
            (Transport::Udp, _, _) => None,
        };
        Some(Self {
            foundation,
            component,
            transport,
            priority,
            address: SocketAddr::new(ip, port),
            kind,
            tcp_type,
        })
    }
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match self.transport {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        };
        let kind = match self.kind {
            CandidateKind::Host => "host",
            CandidateKind::Srflx => "srflx",
            CandidateKind::Prflx => "prflx",
            CandidateKind::Relay => "relay",
        };
        write!(
            f,
            "{} {} {transport} {} {} {} typ {kind}",
            self.foundation,
            self.component,
            self.priority,
            self.address.ip(),
            self.address.port()
        )?;
        match self.tcp_type {
            Some(TcpType::Active) => f.write_str(" tcptype active"),
            Some(TcpType::Passive) => f.write_str(" tcptype passive"),
            Some(TcpType::So) => f.write_str(" tcptype so"),
            None => Ok(()),
        }
    }
}

/// RFC 8445 priority.
pub fn priority(kind: CandidateKind, local_preference: u32, component: u32) -> u32 {
    (type_preference(kind) << 24) | ((local_preference & 0xffff) << 8) | (256 - component.min(256))
}

/// pjnath-style foundation: `H` and the IPv4 address in hex.
fn foundation(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("H{:08x}", u32::from(v4)),
        IpAddr::V6(v6) => format!(
            "H{:08x}",
            v6.octets().iter().fold(0u32, |h, b| h.rotate_left(5) ^ u32::from(*b))
        ),
    }
}

impl IceInfo {
    /// Parses an `ice_msg`. Lines that are not candidates are skipped.
    pub fn parse(text: &str) -> Result<Self, IceInfoError> {
        let mut lines = text.lines().map(str::trim);
        let ufrag = lines.next().filter(|u| !u.is_empty() && u.len() <= 256);
        let pwd = lines.next().filter(|p| !p.is_empty() && p.len() <= 256);
        let (Some(ufrag), Some(pwd)) = (ufrag, pwd) else {
            return Err(IceInfoError("no ufrag and password".into()));
        };
        let candidates = lines.filter_map(Candidate::parse).take(64).collect();
        Ok(Self { ufrag: ufrag.to_owned(), pwd: pwd.to_owned(), candidates })
    }
}

impl fmt::Display for IceInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.ufrag)?;
        writeln!(f, "{}", self.pwd)?;
        for candidate in &self.candidates {
            writeln!(f, "{candidate}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jamis_candidates_parse_and_print_back_identically() {
        let text = "kQv2\nfDxTtgh3kP9C8sPa1DGCmq\n\
                    Hc0a80164 1 TCP 2128609279 192.168.1.100 48222 typ host tcptype passive\n\
                    Hc0a80164 1 TCP 2128609535 192.168.1.100 9 typ host tcptype active\n";
        let info = IceInfo::parse(text).unwrap();
        assert_eq!(info.ufrag, "kQv2");
        assert_eq!(info.candidates.len(), 2);
        assert_eq!(info.candidates[0].tcp_type, Some(TcpType::Passive));
        assert_eq!(info.candidates[1].address.port(), 9);
        assert_eq!(info.to_string(), text);
    }

    #[test]
    fn our_host_candidates_have_pjnath_priorities() {
        let address: SocketAddr = "192.168.1.100:48222".parse().unwrap();
        let passive = Candidate::tcp_host(address, TcpType::Passive);
        assert_eq!(
            passive.to_string(),
            "Hc0a80164 1 TCP 2128609279 192.168.1.100 48222 typ host tcptype passive"
        );
        let active = Candidate::tcp_host(address, TcpType::Active);
        assert_eq!(
            active.to_string(),
            "Hc0a80164 1 TCP 2128609535 192.168.1.100 9 typ host tcptype active"
        );
    }

    #[test]
    fn junk_is_refused_or_skipped() {
        assert!(IceInfo::parse("").is_err());
        assert!(IceInfo::parse("onlyufrag").is_err());
        let info = IceInfo::parse(
            "u\np\ncandidate garbage\nH1 1 TCP 1 10.0.0.1 5 typ host\n\
                                   H1 1 UDP 1 10.0.0.1 5 typ host\n",
        )
        .unwrap();
        // A TCP candidate without its tcptype is refused (pjnath's grammar); UDP is kept.
        assert_eq!(info.candidates.len(), 1);
        assert_eq!(info.candidates[0].transport, Transport::Udp);
    }
}
