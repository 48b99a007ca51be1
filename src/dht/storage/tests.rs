use std::net::Ipv4Addr;

use serde_bytes::ByteBuf;

use super::*;
use crate::dht::value::{Body, ValueType};

fn plain(id: u64, data: &[u8]) -> Value {
    Value::new(
        id,
        Content::Clear { body: Body::new(ValueType::USER_DATA, data.to_vec()), signature: None },
    )
}

/// A value with signature fields (storage does not verify signatures; the node does).
fn signed(id: u64, owner: &[u8], seq: u16, data: &[u8], signature: &[u8]) -> Value {
    let mut body = Body::new(ValueType::USER_DATA, data.to_vec());
    body.owner = Some(ByteBuf::from(owner.to_vec()));
    body.seq = Some(seq);
    Value::new(id, Content::Clear { body, signature: Some(ByteBuf::from(signature.to_vec())) })
}

fn source(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
}

fn listener(node: &str, socket: u32, query: Option<ValueQuery>, now: Instant) -> Listener {
    Listener {
        node: InfoHash::of(node.as_bytes()),
        address: SocketAddr::from((Ipv4Addr::LOCALHOST, 4222)),
        socket,
        version: Some(1),
        query,
        expires: now + LISTENER_LIFETIME,
    }
}

#[test]
fn values_live_for_their_type_lifetime() {
    let now = Instant::now();
    let key = InfoHash::of(b"k");
    let mut storage = Storage::default();
    assert_eq!(
        storage.store(key, plain(1, b"a"), Duration::ZERO, source(1), now).0,
        StoreOutcome::Stored
    );
    assert_eq!(
        storage.store(key, plain(2, b"b"), Duration::from_secs(300), source(1), now).0,
        StoreOutcome::Stored
    );
    assert_eq!(
        storage.store(key, plain(3, b"c"), Duration::from_secs(700), source(1), now).0,
        StoreOutcome::Expired
    );
    assert_eq!(storage.get(&key, None).len(), 2);
    assert_eq!(storage.next_expiry(), Some(now + Duration::from_secs(300)));

    storage.expire(now + Duration::from_secs(299));
    assert_eq!(storage.get(&key, None).len(), 2);
    storage.expire(now + Duration::from_secs(300));
    assert_eq!(storage.get(&key, None).iter().map(|v| v.id).collect::<Vec<_>>(), [1]);
    storage.expire(now + Duration::from_secs(600));
    assert_eq!(storage.value_count(), 0);
    assert_eq!(storage.total_bytes(), 0);
    assert!(!storage.has_key(&key), "empty keys are dropped");
}

#[test]
fn edits_follow_opendht_policy() {
    let now = Instant::now();
    let key = InfoHash::of(b"k");
    let mut storage = Storage::default();
    let outcome =
        |storage: &mut Storage, value| storage.store(key, value, Duration::ZERO, source(1), now).0;

    assert_eq!(outcome(&mut storage, plain(1, b"first")), StoreOutcome::Stored);
    assert_eq!(outcome(&mut storage, plain(1, b"first")), StoreOutcome::Refreshed);
    assert_eq!(
        outcome(&mut storage, plain(1, b"second")),
        StoreOutcome::EditRefused,
        "unsigned: no edit"
    );
    assert_eq!(
        outcome(&mut storage, signed(1, b"alice", 1, b"x", b"s")),
        StoreOutcome::EditRefused
    );

    assert_eq!(outcome(&mut storage, signed(2, b"alice", 1, b"v1", b"s1")), StoreOutcome::Stored);
    assert_eq!(outcome(&mut storage, signed(2, b"alice", 2, b"v2", b"s2")), StoreOutcome::Edited);
    assert_eq!(
        outcome(&mut storage, signed(2, b"alice", 1, b"v1", b"s1")),
        StoreOutcome::EditRefused,
        "lower seq"
    );
    assert_eq!(
        outcome(&mut storage, signed(2, b"alice", 2, b"v3", b"s3")),
        StoreOutcome::EditRefused,
        "same seq, other content"
    );
    assert_eq!(
        outcome(&mut storage, signed(2, b"alice", 2, b"v2", b"s2'")),
        StoreOutcome::Edited,
        "same signed content"
    );
    assert_eq!(
        outcome(&mut storage, signed(2, b"mallory", 9, b"v9", b"s9")),
        StoreOutcome::EditRefused,
        "other owner"
    );
    assert_eq!(
        outcome(&mut storage, plain(2, b"unsigned")),
        StoreOutcome::EditRefused,
        "unsigned over signed"
    );
    let stored =
        storage.get(&key, Some(&ValueQuery { select: vec![], filters: vec![Filter::Id(2)] }));
    assert_eq!(stored, [&signed(2, b"alice", 2, b"v2", b"s2'")]);
}

#[test]
fn listeners_hear_stores_refreshes_and_expiries() {
    let now = Instant::now();
    let key = InfoHash::of(b"k");
    let mut storage = Storage::default();
    storage.store(key, plain(1, b"before"), Duration::ZERO, source(1), now);

    let only_two = ValueQuery { select: vec![], filters: vec![Filter::Id(2)] };
    let initial = storage.listen(key, listener("all", 7, None, now)).unwrap();
    assert_eq!(initial.len(), 1, "a new listener gets the stored values");
    assert!(storage.listen(key, listener("two", 8, Some(only_two), now)).unwrap().is_empty());
    assert!(
        storage.listen(key, listener("all", 7, None, now)).unwrap().is_empty(),
        "renewal: no resend"
    );

    let (_, notes) = storage.store(key, plain(2, b"new"), Duration::ZERO, source(1), now);
    assert_eq!(notes.len(), 2);
    let (_, notes) = storage.store(key, plain(3, b"other"), Duration::ZERO, source(1), now);
    assert_eq!(
        notes.iter().map(|n| n.listener.socket).collect::<Vec<_>>(),
        [7],
        "filtered by query"
    );

    let notes = storage.refresh(&key, 3, now + Duration::from_secs(60)).unwrap();
    assert!(notes.iter().all(|n| n.change == Change::Refreshed(vec![3])) && notes.len() == 2);
    assert_eq!(storage.refresh(&key, 999, now), Some(Vec::new()), "unknown id: acknowledged");
    assert_eq!(storage.refresh(&InfoHash::of(b"nothing"), 1, now), None, "unknown key: 404");

    // Listeners renew (OpenDHT clients do every 20 s), then the first values expire.
    let renewed = now + Duration::from_secs(300);
    storage.listen(key, listener("all", 7, None, renewed)).unwrap();
    storage
        .listen(
            key,
            listener(
                "two",
                8,
                Some(ValueQuery { select: vec![], filters: vec![Filter::Id(2)] }),
                renewed,
            ),
        )
        .unwrap();
    let notes = storage.expire(now + Duration::from_secs(600));
    assert!(notes.iter().any(|n| n.change == Change::Expired(vec![1, 2])), "{notes:?}");
    assert_eq!(
        storage.get(&key, None).iter().map(|v| v.id).collect::<Vec<_>>(),
        [3],
        "refreshed value stays"
    );

    let lapsed = renewed + LISTENER_LIFETIME + Duration::from_secs(1);
    storage.expire(lapsed);
    let (_, notes) = storage.store(key, plain(4, b"late"), Duration::ZERO, source(1), lapsed);
    assert!(notes.is_empty(), "listeners lapse");
}

#[test]
fn quotas_bound_memory_under_a_flood() {
    let now = Instant::now();
    let limits = StorageLimits {
        total_bytes: 10_000,
        values_per_key: 50,
        bytes_per_source: 6_000,
        listeners_per_key: 2,
        listeners_total: 100,
    };
    let mut storage = Storage::new(limits);
    let honest_key = InfoHash::of(b"honest");
    storage.store(honest_key, plain(1, b"keep me"), Duration::ZERO, source(9), now);

    let flooded_key = InfoHash::of(b"k");
    let mut over_quota = 0;
    for id in 1..=20_000u64 {
        // Half the flood on one key, half spread over fresh keys.
        let key = if id % 2 == 0 { flooded_key } else { InfoHash::of(&id.to_be_bytes()) };
        let (outcome, _) =
            storage.store(key, plain(id, &[0u8; 100]), Duration::ZERO, source(1), now);
        over_quota += usize::from(outcome == StoreOutcome::OverQuota);
        assert!(storage.total_bytes() <= limits.total_bytes);
    }
    assert!(over_quota > 19_000, "the flooder hit its per-source quota");
    assert!(storage.value_count() <= 61, "{}", storage.value_count());
    assert!(storage.get(&flooded_key, None).len() <= 50);
    assert_eq!(storage.get(&honest_key, None).len(), 1, "other sources keep their values");

    for socket in 0..3 {
        let result = storage.listen(flooded_key, listener("l", socket, None, now));
        assert_eq!(result.is_err(), socket == 2, "listeners per key are capped");
    }
    // A flood of listens over fresh keys stops at the total, and keeps no empty keys.
    let accepted = (0..1000u32)
        .filter(|n| {
            storage.listen(InfoHash::of(&n.to_be_bytes()), listener("flood", *n, None, now)).is_ok()
        })
        .count();
    assert_eq!(accepted, 98, "100 in all, 2 already taken");
    let keys_before = storage.keys.len();
    storage.expire(now + LISTENER_LIFETIME);
    assert!(storage.keys.len() < keys_before, "lapsed listeners free their keys");
    assert_eq!(storage.listener_count, 0);
}

#[test]
fn a_full_store_evicts_the_biggest_sources_oldest_value() {
    let start = Instant::now();
    let limits = StorageLimits {
        total_bytes: 1_000,
        values_per_key: 100,
        bytes_per_source: 1_000,
        listeners_per_key: 1,
        listeners_total: 1,
    };
    let mut storage = Storage::new(limits);
    let key = InfoHash::of(b"k");
    for id in 1..=6u64 {
        let at = start + Duration::from_secs(id);
        storage.store(key, plain(id, &[0u8; 150]), Duration::ZERO, source(1), at);
    }
    storage.store(key, plain(100, &[0u8; 50]), Duration::ZERO, source(2), start);
    let (outcome, notes) = storage.store(
        key,
        plain(101, &[0u8; 200]),
        Duration::ZERO,
        source(2),
        start + Duration::from_secs(10),
    );
    assert_eq!(outcome, StoreOutcome::Stored);
    assert!(notes.is_empty(), "no listeners");
    let ids: Vec<u64> = storage.get(&key, None).iter().map(|v| v.id).collect();
    assert!(
        !ids.contains(&1) && ids.contains(&2) && ids.contains(&100) && ids.contains(&101),
        "{ids:?}"
    );
    assert!(storage.total_bytes() <= 1_000);
}
