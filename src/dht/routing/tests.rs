use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

fn node(id: InfoHash, port: u16) -> NodeInfo {
    NodeInfo { id, address: SocketAddr::from((Ipv4Addr::LOCALHOST, port)) }
}

fn random_hash(rng: &mut StdRng) -> InfoHash {
    InfoHash::ZERO.random_with_prefix(0, rng)
}

/// Every bucket holds at most 8 nodes, all within its range, and buckets are sorted.
fn check_invariants(table: &RoutingTable) {
    for (index, bucket) in table.buckets.iter().enumerate() {
        assert!(bucket.nodes.len() <= BUCKET_SIZE);
        let next = table.buckets.get(index + 1).map(|b| b.first);
        for entry in &bucket.nodes {
            assert!(entry.info.id >= bucket.first);
            assert!(next.is_none_or(|next| entry.info.id < next), "node outside its bucket");
        }
        if let Some(next) = next {
            assert!(bucket.first < next);
        }
    }
}

#[test]
fn ignores_itself_and_the_other_family() {
    let now = Instant::now();
    let own = InfoHash::of(b"me");
    let mut table = RoutingTable::new(own, false, now);
    assert_eq!(table.heard(node(own, 1), true, now), Heard::Ignored);
    let v6 =
        NodeInfo { id: InfoHash::of(b"v6"), address: SocketAddr::from((Ipv6Addr::LOCALHOST, 1)) };
    assert_eq!(table.heard(v6, true, now), Heard::Ignored);
    assert_eq!(table.heard(node(InfoHash::ZERO, 1), true, now), Heard::Ignored);
    assert!(table.is_empty());
}

#[test]
fn grows_by_splitting_its_own_bucket_and_keeps_invariants() {
    let now = Instant::now();
    let mut rng = StdRng::seed_from_u64(1);
    let own = random_hash(&mut rng);
    let mut table = RoutingTable::new(own, false, now);
    let mut inserted = Vec::new();
    for port in 0..2000 {
        let id = random_hash(&mut rng);
        table.heard(node(id, port), true, now);
        inserted.push(id);
        check_invariants(&table);
    }
    // Only our own bucket splits: about log2(2000 / 8) buckets.
    assert!((7..=12).contains(&table.bucket_count()), "{} buckets", table.bucket_count());
    // Near our own id the table knows every node it was told about.
    let mut nearest: Vec<InfoHash> = inserted.clone();
    nearest.sort_by_key(|id| id.distance(&own));
    let known: Vec<InfoHash> = table.closest(&own, 4, now).into_iter().map(|n| n.id).collect();
    assert_eq!(known, nearest[..4]);
    assert_eq!(table.good_count(now), table.len());
}

#[test]
fn closest_is_sorted_and_only_good() {
    let now = Instant::now();
    let mut rng = StdRng::seed_from_u64(2);
    let mut table = RoutingTable::new(random_hash(&mut rng), false, now);
    for port in 0..300 {
        let id = random_hash(&mut rng);
        table.heard(node(id, port), port % 3 != 0, now); // a third never replied: not good
    }
    let target = random_hash(&mut rng);
    let closest = table.closest(&target, 8, now);
    assert_eq!(closest.len(), 8);
    for pair in closest.windows(2) {
        assert!(pair[0].id.distance(&target) < pair[1].id.distance(&target));
    }
    let mut brute: Vec<&NodeEntry> =
        table.buckets.iter().flat_map(|b| &b.nodes).filter(|e| e.is_good(now)).collect();
    brute.sort_by_key(|e| e.info.id.distance(&target));
    let brute: Vec<NodeInfo> = brute.into_iter().take(8).map(|e| e.info).collect();
    assert_eq!(closest, brute);
    assert!(closest.iter().all(|n| table.get(&n.id).unwrap().last_reply.is_some()));
}

#[test]
fn full_far_bucket_caches_and_names_a_dubious_node() {
    let start = Instant::now();
    let own = InfoHash::ZERO; // own id at the bottom: the top half never splits once split off
    let mut table = RoutingTable::new(own, false, start);
    // Fill enough to split so that the upper half (ids starting with 1) is a far bucket.
    let far = |n: u8| {
        InfoHash::from_bytes([0x80 | n, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, n])
    };
    let near = |n: u8| {
        InfoHash::from_bytes([0x00, n, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    };
    for n in 0..8 {
        table.heard(node(far(n), 100 + u16::from(n)), true, start);
    }
    table.heard(node(near(1), 1), true, start);
    check_invariants(&table);
    assert!(table.bucket_count() >= 2);
    // The far bucket is full of good nodes: a newcomer is cached, nobody to ping.
    assert_eq!(table.heard(node(far(20), 200), false, start), Heard::Cached { dubious: None });
    // Eleven minutes later the far nodes went quiet: a newcomer names one to ping.
    let later = start + Duration::from_secs(11 * 60);
    assert!(matches!(
        table.heard(node(far(21), 201), false, later),
        Heard::Cached { dubious: Some(_) }
    ));
    // A node whose requests timed out makes room; the first cached candidate is offered
    // (an unconfirmed newcomer does not displace it, as in OpenDHT).
    let cached = table.failed(&far(0));
    assert_eq!(cached.map(|n| n.id), Some(far(20)));
    assert_eq!(table.heard(node(far(22), 202), true, later), Heard::Added);
    assert!(table.get(&far(0)).is_none());
    check_invariants(&table);
}

#[test]
fn stale_buckets_are_refreshed_with_targets_in_their_range() {
    let start = Instant::now();
    let mut rng = StdRng::seed_from_u64(3);
    let mut table = RoutingTable::new(random_hash(&mut rng), false, start);
    for port in 0..200 {
        table.heard(node(random_hash(&mut rng), port), true, start);
    }
    assert!(table.refresh_targets(start, &mut rng).is_empty());
    let later = start + BUCKET_REFRESH_TIME;
    let targets = table.refresh_targets(later, &mut rng);
    assert_eq!(targets.len(), table.bucket_count());
    for target in &targets {
        let index = table.bucket_index(target);
        let targets_bucket = targets.iter().filter(|t| table.bucket_index(t) == index).count();
        assert_eq!(targets_bucket, 1, "one target per bucket, each inside its own bucket");
    }
    assert!(table.refresh_targets(later, &mut rng).is_empty(), "refreshed");
}

#[test]
fn dead_nodes_are_removed() {
    let start = Instant::now();
    let mut table = RoutingTable::new(InfoHash::of(b"own"), false, start);
    let id = InfoHash::of(b"peer");
    table.heard(node(id, 1), true, start);
    table.failed(&id);
    table.remove_dead(start + Duration::from_secs(60));
    assert_eq!(table.len(), 1, "not yet");
    table.remove_dead(start + EXPIRE_TIME);
    assert!(table.is_empty());
}
