//! The OpenDHT 2.4.12 UDP message format (opendht-wire.md §3–5, §8): one msgpack map per
//! datagram, decoded once into typed [`Message`]s and encoded back in the exact key order
//! OpenDHT emits, so that captured packets re-encode byte for byte.

pub(crate) mod bin;
mod decode;
mod encode;
mod query;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub use bin::Tid;
pub use query::{Field, FieldValue, FieldsReply, Filter, ValueQuery};

use super::InfoHash;
use super::value::Value;

/// Agent string every OpenDHT message carries.
pub const AGENT: &str = "RNG1";

/// A decoded datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Transaction id: chosen by the requester, echoed by the replier.
    pub tid: Tid,
    /// Network id; 0 (Jami's) is not written on the wire.
    pub network: u32,
    /// What the message is.
    pub kind: MessageKind,
}

/// The kinds of message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageKind {
    /// A request from node `sender`.
    Query {
        /// The requesting node.
        sender: InfoHash,
        /// The request.
        query: Query,
    },
    /// A reply to one of our requests.
    Reply(Reply),
    /// An error reply.
    Error {
        /// The replying node, when given.
        sender: Option<InfoHash>,
        /// Error code (203, 401, 404, ...).
        code: u16,
        /// Error text.
        text: String,
    },
    /// Chunks of values announced by sizes in an earlier message with the same tid.
    ValueParts(Vec<ValuePart>),
    /// A version-0 listener notification (`"u"`, tid = listen socket id).
    LegacyNotification {
        /// The notifying node.
        sender: InfoHash,
        /// A fresh token.
        token: Vec<u8>,
        /// Ids of refreshed values.
        refreshed: Vec<u64>,
        /// Ids of expired values.
        expired: Vec<u64>,
    },
}

/// The seven OpenDHT requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// Liveness check.
    Ping,
    /// The nodes closest to `target`.
    Find {
        /// The id searched for.
        target: InfoHash,
        /// Address families wanted (default: the one the request came on).
        want: Option<Want>,
    },
    /// Values stored at `key` (and the closest nodes).
    Get {
        /// The key.
        key: InfoHash,
        /// Select and where clauses.
        query: Option<ValueQuery>,
        /// Address families wanted for the nodes.
        want: Option<Want>,
    },
    /// Store values at `key`.
    Put {
        /// The key.
        key: InfoHash,
        /// The values (inline, or sizes of values that follow as parts).
        values: Vec<ValueSlot>,
        /// Creation time, Unix seconds; absent for permanent puts.
        created: Option<i64>,
        /// Token from this node's last get/find reply.
        token: Vec<u8>,
    },
    /// Extend the life of value `value_id` at `key`.
    Refresh {
        /// The key.
        key: InfoHash,
        /// The value id.
        value_id: u64,
        /// Token.
        token: Vec<u8>,
    },
    /// Be notified of changes at `key`.
    Listen {
        /// The key.
        key: InfoHash,
        /// Token.
        token: Vec<u8>,
        /// The listener's socket id, echoed in notifications.
        socket: u32,
        /// Listener protocol version (`ve`); 1 for OpenDHT 2.x, absent for legacy listeners.
        version: Option<u32>,
        /// Which values to be told about.
        query: Option<ValueQuery>,
    },
    /// A notification to a listener (version 1).
    Update {
        /// The listen socket id.
        socket: u32,
        /// A fresh token for the listener.
        token: Vec<u8>,
        /// What changed.
        change: UpdateChange,
    },
}

/// What an `update` notification reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateChange {
    /// New or changed values at `key`.
    Values {
        /// The key.
        key: InfoHash,
        /// The values.
        values: Vec<ValueSlot>,
        /// Creation time, Unix seconds.
        created: Option<i64>,
    },
    /// Values refreshed, by id.
    Refreshed(Vec<u64>),
    /// Values expired, by id.
    Expired(Vec<u64>),
}

/// A reply. Which fields are present depends on the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The replying node.
    pub sender: InfoHash,
    /// The value id a put or refresh reply acknowledges.
    pub value_id: Option<u64>,
    /// Our address as the replier saw it (without port).
    pub reported_address: Option<IpAddr>,
    /// Closest IPv4 nodes.
    pub nodes4: Vec<NodeInfo>,
    /// Closest IPv6 nodes.
    pub nodes6: Vec<NodeInfo>,
    /// Token for later put/listen/refresh.
    pub token: Option<Vec<u8>>,
    /// Values found.
    pub values: Option<Vec<ValueSlot>>,
    /// Selected fields of the values found (a get with a select clause).
    pub fields: Option<FieldsReply>,
}

impl Reply {
    /// A reply from `sender` with nothing else in it.
    pub fn new(sender: InfoHash) -> Self {
        Self {
            sender,
            value_id: None,
            reported_address: None,
            nodes4: Vec::new(),
            nodes6: Vec::new(),
            token: None,
            values: None,
            fields: None,
        }
    }
}

/// A node as listed in `n4`/`n6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeInfo {
    /// Node id.
    pub id: InfoHash,
    /// UDP address.
    pub address: SocketAddr,
}

/// Address families asked for (`"w"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Want {
    /// IPv4 nodes (AF_INET = 2).
    pub ipv4: bool,
    /// IPv6 nodes (AF_INET6 = 10).
    pub ipv6: bool,
}

/// An entry of a `values` array: a value inline, or the size of one that follows in parts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum ValueSlot {
    /// Size in bytes of a value sent as [`ValuePart`]s.
    Size(u32),
    /// A whole value.
    Inline(Value),
}

/// One chunk of a fragmented value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValuePart {
    /// Position of the value in the announcing message's `values`.
    pub index: u32,
    /// Offset of this chunk in the packed value.
    pub offset: u32,
    /// The chunk.
    pub data: Vec<u8>,
}

/// A datagram that is not a valid OpenDHT message. The sender is at fault; drop it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Not msgpack, or a field of the wrong type.
    #[error("undecodable message: {0}")]
    Msgpack(String),
    /// Decodable, but not a message OpenDHT would accept.
    #[error("malformed message: {0}")]
    Malformed(&'static str),
}

impl Message {
    /// Decodes one datagram.
    pub fn decode(datagram: &[u8]) -> Result<Self, WireError> {
        decode::decode(datagram)
    }

    /// Encodes the message as OpenDHT would.
    pub fn encode(&self) -> Vec<u8> {
        encode::encode(self)
    }
}

/// Size of an IPv4 entry in `n4`: id, address, port.
const NODE4_LEN: usize = 26;
/// Size of an IPv6 entry in `n6`.
const NODE6_LEN: usize = 38;

fn pack_nodes(nodes: &[NodeInfo]) -> Vec<u8> {
    let mut packed = Vec::new();
    for node in nodes {
        packed.extend_from_slice(node.id.as_bytes());
        match node.address.ip() {
            IpAddr::V4(ip) => packed.extend_from_slice(&ip.octets()),
            IpAddr::V6(ip) => packed.extend_from_slice(&ip.octets()),
        }
        packed.extend_from_slice(&node.address.port().to_be_bytes());
    }
    packed
}

fn unpack_nodes(packed: &[u8], ipv6: bool) -> Result<Vec<NodeInfo>, WireError> {
    let entry = if ipv6 { NODE6_LEN } else { NODE4_LEN };
    if !packed.len().is_multiple_of(entry) {
        return Err(WireError::Malformed("node list length"));
    }
    Ok(packed
        .chunks_exact(entry)
        .map(|chunk| {
            let (id, rest) = chunk.split_at(20);
            let (ip, port) = rest.split_at(entry - 22);
            let ip = match <[u8; 16]>::try_from(ip) {
                Ok(v6) => IpAddr::V6(Ipv6Addr::from(v6)),
                Err(_) => IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])),
            };
            let id = InfoHash::from_bytes(id.try_into().unwrap_or([0; 20]));
            NodeInfo { id, address: SocketAddr::new(ip, u16::from_be_bytes([port[0], port[1]])) }
        })
        .collect())
}

fn address_bytes(address: IpAddr) -> Vec<u8> {
    match address {
        IpAddr::V4(ip) => ip.octets().to_vec(),
        IpAddr::V6(ip) => ip.octets().to_vec(),
    }
}

fn address_from_bytes(bytes: &[u8]) -> Result<IpAddr, WireError> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Ok(IpAddr::V4(Ipv4Addr::from(v4)));
    }
    <[u8; 16]>::try_from(bytes)
        .map(|v6| IpAddr::V6(Ipv6Addr::from(v6)))
        .map_err(|_| WireError::Malformed("reported address length"))
}

#[cfg(test)]
mod tests;
