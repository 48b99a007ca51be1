//! Datagram → [`Message`], classified as OpenDHT's `ParsedMessage::msgpack_unpack` does
//! (opendht-wire.md §3.2): unknown keys are ignored, wrongly typed known keys make the whole
//! message undecodable.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::bin::{Blob, WireHash};
use super::{
    FieldsReply, InfoHash, Message, MessageKind, Query, Reply, Tid, UpdateChange, ValuePart,
    ValueQuery, ValueSlot, Want, WireError, address_from_bytes, unpack_nodes,
};

/// Linux's AF_INET and AF_INET6, as OpenDHT writes them in `"w"`.
pub(super) const AF_INET: u64 = 2;
pub(super) const AF_INET6: u64 = 10;

#[derive(Deserialize)]
struct RawMessage {
    #[serde(default)]
    a: Option<RawArgs>,
    #[serde(default)]
    r: Option<RawArgs>,
    #[serde(default)]
    e: Option<(u16, String)>,
    #[serde(default)]
    u: Option<RawArgs>,
    #[serde(default)]
    p: Option<BTreeMap<u32, RawPart>>,
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    y: Option<String>,
    #[serde(default)]
    t: Option<Tid>,
    // Only checked to be a string, as OpenDHT does.
    #[serde(default, rename = "v")]
    _agent: Option<String>,
    #[serde(default)]
    n: Option<u32>,
}

/// The union of the keys of `"a"`, `"r"` and `"u"` maps.
#[derive(Deserialize, Default)]
#[serde(default)]
struct RawArgs {
    id: Option<WireHash>,
    target: Option<WireHash>,
    h: Option<WireHash>,
    w: Option<Vec<u64>>,
    q: Option<ValueQuery>,
    values: Option<Vec<ValueSlot>>,
    c: Option<i64>,
    token: Option<Blob>,
    vid: Option<u64>,
    ve: Option<u32>,
    sid: Option<u32>,
    re: Option<Vec<u64>>,
    exp: Option<Vec<u64>>,
    sa: Option<Blob>,
    n4: Option<Blob>,
    n6: Option<Blob>,
    fileds: Option<FieldsReply>,
}

#[derive(Deserialize)]
struct RawPart {
    o: u32,
    d: Blob,
}

pub(super) fn decode(datagram: &[u8]) -> Result<Message, WireError> {
    let raw: RawMessage =
        rmp_serde::from_slice(datagram).map_err(|error| WireError::Msgpack(error.to_string()))?;
    let tid = raw.t.ok_or(WireError::Malformed("no transaction id"))?;
    let network = raw.n.unwrap_or(0);
    let kind = if let Some((code, text)) = raw.e {
        MessageKind::Error { sender: raw.r.and_then(|r| r.id).map(|id| id.0), code, text }
    } else if let Some(body) = raw.r {
        MessageKind::Reply(reply(body)?)
    } else if let Some(parts) = raw.p {
        MessageKind::ValueParts(
            parts
                .into_iter()
                .map(|(index, part)| ValuePart { index, offset: part.o, data: part.d.into_vec() })
                .collect(),
        )
    } else if let Some(body) = raw.u {
        MessageKind::LegacyNotification {
            sender: body.id.ok_or(WireError::Malformed("notification without id"))?.0,
            token: body.token.map(Blob::into_vec).unwrap_or_default(),
            refreshed: body.re.unwrap_or_default(),
            expired: body.exp.unwrap_or_default(),
        }
    } else {
        if raw.y.as_deref().is_some_and(|y| y != "q") {
            return Err(WireError::Malformed("unknown message type"));
        }
        let args = raw.a.ok_or(WireError::Malformed("no arguments"))?;
        let name = raw.q.ok_or(WireError::Malformed("no query name"))?;
        let sender = args.id.ok_or(WireError::Malformed("query without id"))?.0;
        MessageKind::Query { sender, query: query(&name, args)? }
    };
    Ok(Message { tid, network, kind })
}

fn query(name: &str, args: RawArgs) -> Result<Query, WireError> {
    // A missing key is kept as the zero hash: OpenDHT answers such requests with error 203.
    let key = args.h.map_or(InfoHash::ZERO, |h| h.0);
    let token = args.token.map(Blob::into_vec).unwrap_or_default();
    Ok(match name {
        "ping" => Query::Ping,
        "find" => Query::Find {
            target: args.target.ok_or(WireError::Malformed("find without target"))?.0,
            want: args.w.map(want),
        },
        "get" => Query::Get { key, query: args.q, want: args.w.map(want) },
        "put" => {
            Query::Put { key, values: args.values.unwrap_or_default(), created: args.c, token }
        }
        "refresh" => Query::Refresh {
            key,
            value_id: args.vid.ok_or(WireError::Malformed("refresh without vid"))?,
            token,
        },
        "listen" => Query::Listen {
            key,
            token,
            socket: args.sid.ok_or(WireError::Malformed("listen without sid"))?,
            version: args.ve,
            query: args.q,
        },
        "update" => {
            let socket = args.sid.ok_or(WireError::Malformed("update without sid"))?;
            let change = match (args.re, args.exp) {
                (Some(refreshed), _) => UpdateChange::Refreshed(refreshed),
                (None, Some(expired)) => UpdateChange::Expired(expired),
                (None, None) => UpdateChange::Values {
                    key,
                    values: args.values.unwrap_or_default(),
                    created: args.c,
                },
            };
            Query::Update { socket, token, change }
        }
        _ => return Err(WireError::Malformed("unknown query")),
    })
}

fn reply(body: RawArgs) -> Result<Reply, WireError> {
    Ok(Reply {
        sender: body.id.ok_or(WireError::Malformed("reply without id"))?.0,
        value_id: body.vid,
        reported_address: body.sa.as_ref().map(|sa| address_from_bytes(sa)).transpose()?,
        nodes4: body.n4.as_deref().map(|n| unpack_nodes(n, false)).transpose()?.unwrap_or_default(),
        nodes6: body.n6.as_deref().map(|n| unpack_nodes(n, true)).transpose()?.unwrap_or_default(),
        token: body.token.map(Blob::into_vec),
        values: body.values,
        fields: body.fileds,
    })
}

fn want(families: Vec<u64>) -> Want {
    Want { ipv4: families.contains(&AF_INET), ipv6: families.contains(&AF_INET6) }
}
