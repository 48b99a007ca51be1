//! SDP offer/answer with Jami (jami-protocol.md §6.4), parsed and written with rtc-sdp.
//!
//! A Jami offer has one audio and possibly one video m-line, `RTP/SAVP` with an SDES
//! `a=crypto` each, session-level ICE credentials and UDP candidates for RTP and RTCP of every
//! stream, numbered globally (audio 1/2, video 3/4). The answer keeps the m-lines in order,
//! takes Opus (`opus/48000/2`) and telephone-event for audio and the first of H264 or VP8 for
//! video with the offer's payload types, mirrors the direction, and carries our own key,
//! credentials and candidates. A stream we cannot take is refused with port 0, and so is a
//! second stream of a kind (a shared screen's `m=audio` or `m=video` from today's clients).

use std::fmt::Write as _;
use std::io::Cursor;
use std::net::{IpAddr, SocketAddr};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rtc_sdp::description::media::MediaDescription;
use rtc_sdp::description::session::SessionDescription;

use crate::net::ice::candidate::{Candidate, CandidateKind, Transport, priority};

/// Length of an SDES AES_CM_128 master key and salt.
pub const KEY_SALT_LEN: usize = 30;

/// Why an offer was refused (the caller's fault; answer 488).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// Not SDP.
    #[error("unparsable SDP: {0}")]
    Syntax(String),
    /// No stream we can take (no Opus, no crypto).
    #[error("nothing acceptable in the offer")]
    NothingAcceptable,
    /// More m-lines than a call may have.
    #[error("{0} m-lines")]
    TooManyStreams(usize),
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// `m=audio`.
    Audio,
    /// `m=video`.
    Video,
}

/// RTP direction of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Both ways.
    SendRecv,
    /// The offerer only sends.
    SendOnly,
    /// The offerer only receives.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    fn parse(media: &MediaDescription) -> Self {
        [("sendonly", Self::SendOnly), ("recvonly", Self::RecvOnly), ("inactive", Self::Inactive)]
            .into_iter()
            .find(|(name, _)| media.has_attribute(name))
            .map_or(Self::SendRecv, |(_, direction)| direction)
    }

    /// The answer's direction for this offered one.
    pub fn reversed(self) -> Self {
        match self {
            Self::SendOnly => Self::RecvOnly,
            Self::RecvOnly => Self::SendOnly,
            other => other,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }
}

/// A codec chosen from the offer, with the offer's payload type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChosenCodec {
    /// Payload type.
    pub payload_type: u8,
    /// `opus`, `H264` or `VP8`, as Jami spells them.
    pub name: String,
    /// RTP clock rate.
    pub clock_rate: u32,
    /// Channels (audio).
    pub channels: Option<String>,
    /// Format parameters, verbatim.
    pub fmtp: String,
}

/// An SDES key: the suite and the 30 bytes of master key and salt.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKey {
    /// `AES_CM_128_HMAC_SHA1_80` or `AES_CM_128_HMAC_SHA1_32`.
    pub suite: String,
    /// Master key (16 bytes) then salt (14 bytes).
    pub key_salt: [u8; KEY_SALT_LEN],
}

impl std::fmt::Debug for SrtpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SrtpKey({}, <redacted>)", self.suite)
    }
}

/// One offered stream, as we understood it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedStream {
    /// Audio or video.
    pub kind: MediaKind,
    /// The chosen codec; `None` when nothing we take is offered (the stream is refused).
    pub codec: Option<ChosenCodec>,
    /// telephone-event's payload type (audio).
    pub telephone_event: Option<u8>,
    /// The caller's key; `None` refuses the stream.
    pub key: Option<SrtpKey>,
    /// The offered direction.
    pub direction: Direction,
    /// The caller's UDP candidates, components normalised to 1 (RTP) and 2 (RTCP).
    pub candidates: Vec<Candidate>,
    /// The offered port (0: the offerer disabled the stream).
    pub port: u16,
    /// Another stream of a kind already taken (today's clients add an `m=audio` for a
    /// shared screen's sound, and a second `m=video` for the screen): refused, since a
    /// participant has one audio and one video stream here.
    pub surplus: bool,
}

impl OfferedStream {
    /// Whether the stream can be taken.
    pub fn accepted(&self) -> bool {
        self.port != 0 && self.codec.is_some() && self.key.is_some() && !self.surplus
    }
}

/// A parsed offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// Session-level ICE ufrag and password (media-level ones win if present).
    pub ice_ufrag: String,
    /// ICE password.
    pub ice_pwd: String,
    /// The streams, in m-line order.
    pub streams: Vec<OfferedStream>,
}

/// Parses a Jami offer.
pub fn parse_offer(text: &str) -> Result<Offer, SdpError> {
    let session = SessionDescription::unmarshal(&mut Cursor::new(text.as_bytes()))
        .map_err(|error| SdpError::Syntax(error.to_string()))?;
    if session.media_descriptions.len() > 4 {
        return Err(SdpError::TooManyStreams(session.media_descriptions.len()));
    }
    let session_attribute = |key: &str| session.attribute(key).cloned().unwrap_or_default();
    let mut ice_ufrag = session_attribute("ice-ufrag");
    let mut ice_pwd = session_attribute("ice-pwd");
    let mut streams = Vec::new();
    for (index, media) in session.media_descriptions.iter().enumerate() {
        let kind = match media.media_name.media.as_str() {
            "audio" => MediaKind::Audio,
            "video" => MediaKind::Video,
            _ => continue,
        };
        if let Some(Some(ufrag)) = media.attribute("ice-ufrag") {
            ice_ufrag = ufrag.to_owned();
        }
        if let Some(Some(pwd)) = media.attribute("ice-pwd") {
            ice_pwd = pwd.to_owned();
        }
        let codecs = media.codecs();
        let in_order = media.media_name.formats.iter().filter_map(|f| f.parse::<u8>().ok());
        let wanted: &[&str] = match kind {
            MediaKind::Audio => &["opus"],
            MediaKind::Video => &["H264", "VP8"],
        };
        let codec = in_order
            .clone()
            .filter_map(|pt| codecs.get(&pt))
            .find(|codec| wanted.contains(&codec.name.as_str()))
            .map(|codec| ChosenCodec {
                payload_type: codec.payload_type,
                name: codec.name.clone(),
                clock_rate: codec.clock_rate,
                channels: (!codec.encoding_parameters.is_empty())
                    .then(|| codec.encoding_parameters.clone()),
                fmtp: codec.fmtp.clone(),
            });
        let telephone_event = in_order
            .filter_map(|pt| codecs.get(&pt))
            .find(|codec| codec.name == "telephone-event")
            .map(|codec| codec.payload_type);
        let key = media
            .attributes
            .iter()
            .filter(|a| a.key == "crypto")
            .filter_map(|a| a.value.as_deref())
            .find_map(parse_crypto);
        let port = u16::try_from(media.media_name.port.value).unwrap_or(0);
        let candidates = media
            .attributes
            .iter()
            .filter(|a| a.key == "candidate")
            .filter_map(|a| a.value.as_deref())
            .filter_map(|line| parse_candidate(line, index))
            .take(32)
            .collect();
        streams.push(OfferedStream {
            kind,
            codec,
            telephone_event,
            key,
            direction: Direction::parse(media),
            candidates,
            port,
            surplus: false,
        });
    }
    for kind in [MediaKind::Audio, MediaKind::Video] {
        let mut taken = false;
        for stream in streams.iter_mut().filter(|s| s.kind == kind && s.accepted()) {
            stream.surplus = taken;
            taken = true;
        }
    }
    if !streams.iter().any(|s| s.kind == MediaKind::Audio && s.accepted()) {
        return Err(SdpError::NothingAcceptable);
    }
    Ok(Offer { ice_ufrag, ice_pwd, streams })
}

/// `1 AES_CM_128_HMAC_SHA1_80 inline:<base64>[|lifetime][|mki]`.
fn parse_crypto(value: &str) -> Option<SrtpKey> {
    let mut fields = value.split_ascii_whitespace();
    let _tag = fields.next()?;
    let suite = fields.next()?;
    if !matches!(suite, "AES_CM_128_HMAC_SHA1_80" | "AES_CM_128_HMAC_SHA1_32") {
        return None;
    }
    let inline = fields.next()?.strip_prefix("inline:")?;
    let encoded = inline.split('|').next()?;
    let decoded = BASE64.decode(encoded).ok()?;
    Some(SrtpKey { suite: suite.to_owned(), key_salt: decoded.try_into().ok()? })
}

/// A UDP candidate of m-line `index`, its component brought back to 1 or 2 (Jami numbers
/// them globally: video's are 3 and 4).
fn parse_candidate(line: &str, index: usize) -> Option<Candidate> {
    let info = crate::net::ice::candidate::IceInfo::parse(&format!("u\np\n{line}")).ok()?;
    let mut candidate = info.candidates.into_iter().next()?;
    if candidate.transport != Transport::Udp {
        return None;
    }
    let base = u16::try_from(2 * index).ok()?;
    if candidate.component > 2 {
        candidate.component = candidate.component.checked_sub(base)?;
    }
    (1..=2).contains(&candidate.component).then_some(candidate)
}

/// Our side of one answered stream.
#[derive(Debug, Clone)]
pub struct LocalStream {
    /// Where we receive RTP and RTCP (host candidates for components 1 and 2).
    pub rtp: SocketAddr,
    /// RTCP.
    pub rtcp: SocketAddr,
    /// Our key for what we send.
    pub key: SrtpKey,
}

/// Writes the answer to `offer`: `streams[i]` is our side of offered stream `i` (`None`
/// refuses it with port 0).
pub fn write_answer(
    offer: &Offer,
    streams: &[Option<LocalStream>],
    ice_ufrag: &str,
    ice_pwd: &str,
    session_id: u64,
) -> String {
    let address =
        streams.iter().flatten().map(|s| s.rtp.ip()).next().unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let family = if address.is_ipv4() { "IP4" } else { "IP6" };
    let mut sdp = String::new();
    let _ = write!(
        sdp,
        "v=0\r\no=rdv {session_id} 0 IN {family} {address}\r\ns=rdv\r\nc=IN {family} {address}\r\nt=0 0\r\n\
         a=ice-ufrag:{ice_ufrag}\r\na=ice-pwd:{ice_pwd}\r\n"
    );
    for (index, offered) in offer.streams.iter().enumerate() {
        let kind = match offered.kind {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        };
        let local = streams.get(index).and_then(Option::as_ref);
        let (Some(local), Some(codec), true) = (local, &offered.codec, offered.accepted()) else {
            let format = offered.codec.as_ref().map_or(0, |c| c.payload_type);
            let _ = write!(sdp, "m={kind} 0 RTP/SAVP {format}\r\n");
            continue;
        };
        let mut formats = codec.payload_type.to_string();
        if let Some(event) = offered.telephone_event {
            let _ = write!(formats, " {event}");
        }
        let _ = write!(sdp, "m={kind} {} RTP/SAVP {formats}\r\n", local.rtp.port());
        let channels = codec.channels.as_deref().map(|c| format!("/{c}")).unwrap_or_default();
        let _ = write!(
            sdp,
            "a=rtpmap:{} {}/{}{channels}\r\n",
            codec.payload_type, codec.name, codec.clock_rate
        );
        if !codec.fmtp.is_empty() {
            let _ = write!(sdp, "a=fmtp:{} {}\r\n", codec.payload_type, codec.fmtp);
        }
        if let Some(event) = offered.telephone_event {
            let _ = write!(sdp, "a=rtpmap:{event} telephone-event/8000\r\na=fmtp:{event} 0-15\r\n");
        }
        let rtcp_family = if local.rtcp.is_ipv4() { "IP4" } else { "IP6" };
        let _ =
            write!(sdp, "a=rtcp:{} IN {rtcp_family} {}\r\n", local.rtcp.port(), local.rtcp.ip());
        let _ = write!(sdp, "a={}\r\n", offered.direction.reversed().name());
        let _ = write!(
            sdp,
            "a=crypto:1 {} inline:{}\r\n",
            local.key.suite,
            BASE64.encode(local.key.key_salt)
        );
        // Jami's global component numbering: stream i uses 2i+1 (RTP) and 2i+2 (RTCP).
        for (component, address) in [(1u16, local.rtp), (2, local.rtcp)] {
            let global = u16::try_from(2 * index).unwrap_or(0) + component;
            let candidate = Candidate {
                foundation: format!("H{:08x}", fold(address.ip())),
                component: global,
                transport: Transport::Udp,
                priority: priority(CandidateKind::Host, 0xffff, u32::from(component)),
                address,
                kind: CandidateKind::Host,
                tcp_type: None,
            };
            let _ = write!(sdp, "a=candidate:{candidate}\r\n");
        }
    }
    sdp
}

fn fold(ip: IpAddr) -> u32 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4),
        IpAddr::V6(v6) => v6.octets().iter().fold(0u32, |h, b| h.rotate_left(5) ^ u32::from(*b)),
    }
}

#[cfg(test)]
mod tests;
