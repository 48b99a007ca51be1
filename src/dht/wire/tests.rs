use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::*;
use crate::dht::value::tests::vectors;
use crate::dht::value::{Content, ValueType};

/// Every captured datagram with its name.
fn wire_vectors() -> Vec<(String, Vec<u8>)> {
    vectors()["wire"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_owned(),
                hex::decode(v["hex"].as_str().unwrap()).unwrap(),
            )
        })
        .collect()
}

fn vector(name: &str) -> Message {
    let (_, bytes) = wire_vectors().into_iter().find(|(n, _)| n == name).unwrap();
    Message::decode(&bytes).unwrap()
}

fn hash(hex: &str) -> InfoHash {
    hex.parse().unwrap()
}

#[test]
fn every_vector_decodes_and_re_encodes_byte_for_byte() {
    let all = wire_vectors();
    assert_eq!(all.len(), 58);
    for (name, bytes) in all {
        let message = Message::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(hex::encode(message.encode()), hex::encode(&bytes), "{name}");
    }
}

#[test]
fn queries_decode_to_their_meaning() {
    let ping = vector("ping (real node B -> A)");
    assert_eq!(ping.tid, Tid(4284871041));
    assert_eq!(ping.network, 0);
    assert_eq!(
        ping.kind,
        MessageKind::Query {
            sender: hash("2977bfcbd258cb3ae8efb7ba455e3f5dbc1fef16"),
            query: Query::Ping
        }
    );

    let MessageKind::Query { query: Query::Find { want, .. }, .. } =
        vector("raw client -> A: find w=[2,10]").kind
    else {
        panic!("find")
    };
    assert_eq!(want, Some(Want { ipv4: true, ipv6: true }));

    let MessageKind::Query { query: Query::Listen { socket, version, token, .. }, .. } =
        vector("listen v1 (ve=1) with token and sid").kind
    else {
        panic!("listen")
    };
    assert_eq!((socket, version, token.len()), (617314749, Some(1), 32));

    let MessageKind::Query { query: Query::Put { values, created, .. }, .. } =
        vector("put with inline value, 'c' creation time and token").kind
    else {
        panic!("put")
    };
    assert_eq!(created, Some(1795537409));
    let [ValueSlot::Inline(value)] = values.as_slice() else { panic!("one inline value") };
    let Content::Clear { body, signature: None } = &value.content else { panic!("plain") };
    assert_eq!(
        (body.value_type, &body.data[..], body.user_type.as_deref()),
        (ValueType::USER_DATA, &b"small-value"[..], Some("text/plain"))
    );

    let MessageKind::Query { query: Query::Put { values, .. }, .. } =
        vector("put whose value travels in parts (values=[3110])").kind
    else {
        panic!("put")
    };
    assert_eq!(values, [ValueSlot::Size(3110)]);

    let MessageKind::Query { query: Query::Get { query: Some(query), .. }, .. } =
        vector("get with query WHERE id=<vid> (pagination step 2)").kind
    else {
        panic!("get")
    };
    assert_eq!(
        query,
        ValueQuery { select: vec![], filters: vec![Filter::Id(3507150039458278356)] }
    );

    let MessageKind::Query {
        query: Query::Update { socket, change: UpdateChange::Expired(ids), .. },
        ..
    } = vector("update query v1 with 'exp'").kind
    else {
        panic!("update")
    };
    assert_eq!((socket, ids), (1, vec![101]));
}

#[test]
fn replies_decode_to_their_meaning() {
    let MessageKind::Reply(reply) = vector("find reply with n4 + token").kind else {
        panic!("reply")
    };
    assert_eq!(reply.reported_address, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    assert_eq!(reply.token.as_ref().map(Vec::len), Some(32));
    assert_eq!(
        reply.nodes4,
        [NodeInfo {
            id: hash("a3e1ec771b08cf5d0386c4fe12ed904607d4c4d9"),
            address: SocketAddr::from((Ipv4Addr::LOCALHOST, 14222)),
        }]
    );

    let MessageKind::Reply(reply) = vector("reply with 'fileds'").kind else { panic!("reply") };
    let fields = reply.fields.unwrap();
    assert_eq!(fields.fields, [Field::Id]);
    assert_eq!(fields.rows().collect::<Vec<_>>(), [&[FieldValue::Uint(3507150039458278356)][..]]);

    let MessageKind::Reply(reply) = vector("put reply with vid").kind else { panic!("reply") };
    assert_eq!(reply.value_id, Some(13548920906448013772));

    let error = vector("A -> raw client: reply to put bad token");
    assert!(
        matches!(error.kind, MessageKind::Error { code: 401, ref text, sender: Some(_) } if text == "Put with wrong token")
    );

    let part = vector("value part #3 (offset 2560, 550 bytes)");
    let MessageKind::ValueParts(parts) = part.kind else { panic!("parts") };
    assert_eq!((parts[0].index, parts[0].offset, parts[0].data.len()), (0, 2560, 550));

    assert_eq!(vector("pong with network id 42").network, 42);
}

#[test]
fn fragmented_value_reassembles_into_a_value() {
    let data: Vec<u8> = [
        "value part #1 (offset 0, 1280 bytes)",
        "value part #2 (offset 1280)",
        "value part #3 (offset 2560, 550 bytes)",
    ]
    .into_iter()
    .flat_map(|name| match vector(name).kind {
        MessageKind::ValueParts(mut parts) => parts.remove(0).data,
        _ => panic!("parts"),
    })
    .collect();
    assert_eq!(data.len(), 3110);
    let value = Value::decode(&data).unwrap();
    assert_eq!(value.id, 3507150039458278356);
}

#[test]
fn junk_is_rejected_without_panicking() {
    let junk: [&[u8]; 12] = [
        b"",
        b"\xc0",
        b"\x90",
        b"\x81\xa1t\x01",                                        // no kind
        b"\x83\xa1a\x80\xa1q\xa4ping\xa1t\x01",                  // ping without id
        b"\x83\xa1a\x81\xa2id\xc4\x03abc\xa1q\xa4ping\xa1t\x01", // short id
        b"\x83\xa1a\x81\xa2id\xa3abc\xa1q\xa4ping\xa1t\x01",     // id as str
        b"\x84\xa1a\x80\xa1q\xa4ping\xa1t\x01\xa1y\xa1x",        // unknown type
        b"\x82\xa1r\x81\xa2id\xc4\x14aaaaaaaaaaaaaaaaaaaa\xa1t\xcf\xff\xff\xff\xff\xff\xff\xff\xff", // tid > 32 bits
        b"\x82\xa1r\x82\xa2id\xc4\x14aaaaaaaaaaaaaaaaaaaa\xa2n4\xc4\x03abc\xa1t\x01", // bad n4 length
        b"\xdf\xff\xff\xff\xff", // huge map header
        b"\x83\xa1a\x81\xa2id\xc4\x14aaaaaaaaaaaaaaaaaaaa\xa1q\xa3xyz\xa1t\x01", // unknown query
    ];
    for datagram in junk {
        assert!(Message::decode(datagram).is_err(), "{datagram:?}");
    }
    // The agent string must be a string when present.
    let mut ping = wire_vectors()[0].1.clone();
    let at = ping.windows(5).position(|w| w == b"\xa4RNG1").unwrap();
    ping.splice(at..at + 5, [0x05]);
    assert!(Message::decode(&ping).is_err());
}

#[test]
fn tids_given_as_four_bytes_are_read_big_endian() {
    let ping = b"\x83\xa1a\x81\xa2id\xc4\x14aaaaaaaaaaaaaaaaaaaa\xa1q\xa4ping\xa1t\xc4\x04\x01\x02\x03\x04";
    assert_eq!(Message::decode(ping).unwrap().tid, Tid(16909060));
}

/// The fuzz targets' property on deterministic mutations of every captured vector: decoding
/// never panics, and whatever decodes survives an encode/decode round trip.
#[test]
fn mutated_vectors_never_panic_and_round_trip() {
    let mut decoded = 0;
    for (name, bytes) in wire_vectors() {
        let step = (bytes.len() / 40).max(1);
        for position in (0..bytes.len()).step_by(step) {
            let mut mutations = vec![bytes[..position].to_vec()];
            for flip in [0x01, 0x10, 0x80, 0xff] {
                let mut flipped = bytes.clone();
                flipped[position] ^= flip;
                mutations.push(flipped);
            }
            for mutated in mutations {
                if let Ok(message) = Message::decode(&mutated) {
                    decoded += 1;
                    assert_eq!(
                        Message::decode(&message.encode()).as_ref(),
                        Ok(&message),
                        "{name} @ {position}"
                    );
                }
            }
        }
    }
    assert!(decoded > 100, "mutations that still decode exercise the round trip: {decoded}");
}
