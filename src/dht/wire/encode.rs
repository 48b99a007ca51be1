//! [`Message`] → datagram, with keys in the order OpenDHT emits them (opendht-wire.md §3.1).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_bytes::Bytes;

use super::bin::{Blob, WireHash};
use super::decode::{AF_INET, AF_INET6};
use super::{
    AGENT, FieldsReply, Message, MessageKind, Query, Reply, Tid, UpdateChange, ValueQuery,
    ValueSlot, Want, address_bytes, pack_nodes,
};
use crate::dht::value::encode as to_msgpack;

pub(super) fn encode(message: &Message) -> Vec<u8> {
    let tid = message.tid;
    let n = (message.network != 0).then_some(message.network);
    match &message.kind {
        MessageKind::Query { sender, query } => encode_query(WireHash(*sender), query, tid, n),
        MessageKind::Reply(reply) => {
            to_msgpack(&ReplyEnvelope { r: ReplyBody::new(reply), t: tid, y: "r", v: AGENT, n })
        }
        MessageKind::Error { sender, code, text } => to_msgpack(&ErrorEnvelope {
            e: (*code, text),
            r: sender.map(|id| IdOnly { id: WireHash(id) }),
            t: tid,
            y: "e",
            v: AGENT,
            n,
        }),
        MessageKind::ValueParts(parts) => to_msgpack(&PartsEnvelope {
            n,
            y: "p",
            t: tid,
            p: parts
                .iter()
                .map(|part| (part.index, PartBody { o: part.offset, d: Bytes::new(&part.data) }))
                .collect(),
        }),
        MessageKind::LegacyNotification { sender, token, refreshed, expired } => {
            to_msgpack(&LegacyEnvelope {
                u: UpdateListArgs {
                    id: WireHash(*sender),
                    sid: None,
                    token: Bytes::new(token),
                    re: (!refreshed.is_empty()).then_some(refreshed),
                    exp: (!expired.is_empty()).then_some(expired),
                },
                y: "r",
                v: AGENT,
                n,
                t: tid,
            })
        }
    }
}

fn encode_query(id: WireHash, query: &Query, t: Tid, n: Option<u32>) -> Vec<u8> {
    match query {
        Query::Ping => query_message(t, n, &PingArgs { id }, "ping"),
        Query::Find { target, want } => query_message(
            t,
            n,
            &FindArgs { id, target: WireHash(*target), w: want.map(families) },
            "find",
        ),
        Query::Get { key, query, want } => query_message(
            t,
            n,
            &GetArgs { id, h: WireHash(*key), q: query.as_ref(), w: want.map(families) },
            "get",
        ),
        Query::Put { key, values, created, token } => query_message(
            t,
            n,
            &PutArgs { id, h: WireHash(*key), values, c: *created, token: Bytes::new(token) },
            "put",
        ),
        Query::Refresh { key, value_id, token } => query_message(
            t,
            n,
            &RefreshArgs { id, h: WireHash(*key), vid: *value_id, token: Bytes::new(token) },
            "refresh",
        ),
        Query::Listen { key, token, socket, version, query } => query_message(
            t,
            n,
            &ListenArgs {
                id,
                ve: *version,
                h: WireHash(*key),
                token: Bytes::new(token),
                sid: *socket,
                q: query.as_ref(),
            },
            "listen",
        ),
        Query::Update { socket, token, change: UpdateChange::Values { key, values, created } } => {
            query_message(
                t,
                n,
                &UpdateValuesArgs {
                    id,
                    ve: 1,
                    h: WireHash(*key),
                    sid: *socket,
                    values,
                    c: *created,
                    token: Bytes::new(token),
                },
                "update",
            )
        }
        Query::Update { socket, token, change } => {
            let (re, exp) = match change {
                UpdateChange::Refreshed(ids) => (Some(ids), None),
                UpdateChange::Expired(ids) => (None, Some(ids)),
                UpdateChange::Values { .. } => (None, None),
            };
            let a = UpdateListArgs { id, sid: Some(*socket), token: Bytes::new(token), re, exp };
            to_msgpack(&NoticeEnvelope { a, y: "q", v: AGENT, n, q: "update", t })
        }
    }
}

fn families(want: Want) -> Vec<u64> {
    [(want.ipv4, AF_INET), (want.ipv6, AF_INET6)]
        .into_iter()
        .filter_map(|(wanted, family)| wanted.then_some(family))
        .collect()
}

/// A query datagram: `a, q, t, y, v, n`.
fn query_message(t: Tid, n: Option<u32>, a: &impl Serialize, q: &'static str) -> Vec<u8> {
    to_msgpack(&QueryEnvelope { a, q, t, y: "q", v: AGENT, n })
}

#[derive(Serialize)]
struct QueryEnvelope<A> {
    a: A,
    q: &'static str,
    t: Tid,
    y: &'static str,
    v: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<u32>,
}

/// `update` notifications of refreshed or expired values: `a, y, v, n, q, t`.
#[derive(Serialize)]
struct NoticeEnvelope<'a> {
    a: UpdateListArgs<'a>,
    y: &'static str,
    v: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<u32>,
    q: &'static str,
    t: Tid,
}

#[derive(Serialize)]
struct ReplyEnvelope<'a> {
    r: ReplyBody<'a>,
    t: Tid,
    y: &'static str,
    v: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<u32>,
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    e: (u16, &'a str),
    #[serde(skip_serializing_if = "Option::is_none")]
    r: Option<IdOnly>,
    t: Tid,
    y: &'static str,
    v: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<u32>,
}

#[derive(Serialize)]
struct PartsEnvelope<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<u32>,
    y: &'static str,
    t: Tid,
    p: BTreeMap<u32, PartBody<'a>>,
}

#[derive(Serialize)]
struct LegacyEnvelope<'a> {
    u: UpdateListArgs<'a>,
    y: &'static str,
    v: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<u32>,
    t: Tid,
}

#[derive(Serialize)]
struct PartBody<'a> {
    o: u32,
    d: &'a Bytes,
}

#[derive(Serialize)]
struct IdOnly {
    id: WireHash,
}

#[derive(Serialize)]
struct PingArgs {
    id: WireHash,
}

#[derive(Serialize)]
struct FindArgs {
    id: WireHash,
    target: WireHash,
    #[serde(skip_serializing_if = "Option::is_none")]
    w: Option<Vec<u64>>,
}

#[derive(Serialize)]
struct GetArgs<'a> {
    id: WireHash,
    h: WireHash,
    #[serde(skip_serializing_if = "Option::is_none")]
    q: Option<&'a ValueQuery>,
    #[serde(skip_serializing_if = "Option::is_none")]
    w: Option<Vec<u64>>,
}

#[derive(Serialize)]
struct PutArgs<'a> {
    id: WireHash,
    h: WireHash,
    values: &'a [ValueSlot],
    #[serde(skip_serializing_if = "Option::is_none")]
    c: Option<i64>,
    token: &'a Bytes,
}

#[derive(Serialize)]
struct RefreshArgs<'a> {
    id: WireHash,
    h: WireHash,
    vid: u64,
    token: &'a Bytes,
}

#[derive(Serialize)]
struct ListenArgs<'a> {
    id: WireHash,
    #[serde(skip_serializing_if = "Option::is_none")]
    ve: Option<u32>,
    h: WireHash,
    token: &'a Bytes,
    sid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    q: Option<&'a ValueQuery>,
}

#[derive(Serialize)]
struct UpdateValuesArgs<'a> {
    id: WireHash,
    ve: u32,
    h: WireHash,
    sid: u32,
    values: &'a [ValueSlot],
    #[serde(skip_serializing_if = "Option::is_none")]
    c: Option<i64>,
    token: &'a Bytes,
}

#[derive(Serialize)]
struct UpdateListArgs<'a> {
    id: WireHash,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<u32>,
    token: &'a Bytes,
    #[serde(skip_serializing_if = "Option::is_none")]
    re: Option<&'a Vec<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<&'a Vec<u64>>,
}

/// A reply body, in OpenDHT's order: `id, vid, sa, n4, n6, token, values, fileds`.
#[derive(Serialize)]
struct ReplyBody<'a> {
    id: WireHash,
    #[serde(skip_serializing_if = "Option::is_none")]
    vid: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sa: Option<Blob>,
    #[serde(skip_serializing_if = "Option::is_none")]
    n4: Option<Blob>,
    #[serde(skip_serializing_if = "Option::is_none")]
    n6: Option<Blob>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a Bytes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    values: Option<&'a [ValueSlot]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fileds: Option<&'a FieldsReply>,
}

impl<'a> ReplyBody<'a> {
    fn new(reply: &'a Reply) -> Self {
        let nodes =
            |nodes: &[super::NodeInfo]| (!nodes.is_empty()).then(|| Blob::from(pack_nodes(nodes)));
        Self {
            id: WireHash(reply.sender),
            vid: reply.value_id,
            sa: reply.reported_address.map(|address| Blob::from(address_bytes(address))),
            n4: nodes(&reply.nodes4),
            n6: nodes(&reply.nodes6),
            token: reply.token.as_deref().map(Bytes::new),
            values: reply.values.as_deref(),
            fileds: reply.fields.as_ref(),
        }
    }
}
