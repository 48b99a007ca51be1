//! The routing table: Kademlia buckets of up to 8 nodes, as OpenDHT keeps them
//! (opendht-wire.md §9.2–9.3, `src/routing_table.cpp`). One table per address family.
//!
//! Buckets cover consecutive ranges of the id space, each identified by its lower bound.
//! Only the bucket holding our own id splits; a full bucket first replaces an expired node,
//! then asks for a dubious node to be pinged and keeps the newcomer as a cached candidate.
//! Time is an input: nothing here reads the clock.

use std::time::{Duration, Instant};

use super::InfoHash;
use super::wire::NodeInfo;

/// Nodes per bucket, and nodes returned by a `find` (`TARGET_NODES`).
pub const BUCKET_SIZE: usize = 8;

/// A node is good only if it replied to us within this time (`NODE_GOOD_TIME`).
const GOOD_TIME: Duration = Duration::from_secs(120 * 60);

/// ... and was heard from within this time (`NODE_EXPIRE_TIME`).
const EXPIRE_TIME: Duration = Duration::from_secs(10 * 60);

/// A bucket unchanged for this long is refreshed by a `find` in its range.
pub const BUCKET_REFRESH_TIME: Duration = Duration::from_secs(10 * 60);

/// What the table knows of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEntry {
    /// Id and address.
    pub info: NodeInfo,
    /// Last message received from it.
    pub last_heard: Instant,
    /// Last reply to one of our requests.
    pub last_reply: Option<Instant>,
    /// Our requests to it timed out.
    pub expired: bool,
}

impl NodeEntry {
    /// Replied recently and heard from recently: worth giving to others.
    pub fn is_good(&self, now: Instant) -> bool {
        !self.expired
            && self.last_reply.is_some_and(|at| now.saturating_duration_since(at) < GOOD_TIME)
            && now.saturating_duration_since(self.last_heard) < EXPIRE_TIME
    }
}

#[derive(Debug)]
struct Bucket {
    first: InfoHash,
    nodes: Vec<NodeEntry>,
    cached: Option<NodeInfo>,
    changed: Instant,
}

/// What [`RoutingTable::heard`] did with a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// Known already; its times were updated.
    Updated,
    /// Added to a bucket (maybe after a split or in place of an expired node).
    Added,
    /// The bucket is full: the node was kept as its candidate. Ping `dubious`, if any, to
    /// find out whether it can make room.
    Cached {
        /// A node of the bucket that is not good any more.
        dubious: Option<NodeInfo>,
    },
    /// Our own id, or a node of the other address family: ignored.
    Ignored,
}

/// A routing table for one address family.
#[derive(Debug)]
pub struct RoutingTable {
    own_id: InfoHash,
    ipv6: bool,
    buckets: Vec<Bucket>,
}

impl RoutingTable {
    /// An empty table: one bucket covering the whole id space.
    pub fn new(own_id: InfoHash, ipv6: bool, now: Instant) -> Self {
        let bucket =
            Bucket { first: InfoHash::ZERO, nodes: Vec::new(), cached: None, changed: now };
        Self { own_id, ipv6, buckets: vec![bucket] }
    }

    /// Records a message from `info`; `replied` when it answered one of our requests.
    pub fn heard(&mut self, info: NodeInfo, replied: bool, now: Instant) -> Heard {
        if info.id == self.own_id || info.id.is_zero() || info.address.is_ipv6() != self.ipv6 {
            return Heard::Ignored;
        }
        let index = self.bucket_index(&info.id);
        let holds_own_id = self.bucket_index(&self.own_id) == index;
        let single_bucket = self.buckets.len() == 1;
        let bucket = &mut self.buckets[index];
        if replied {
            bucket.changed = now;
        }
        if let Some(entry) = bucket.nodes.iter_mut().find(|entry| entry.info.id == info.id) {
            entry.info.address = info.address;
            entry.last_heard = now;
            if replied {
                entry.last_reply = Some(now);
                entry.expired = false;
            }
            return Heard::Updated;
        }
        let entry =
            NodeEntry { info, last_heard: now, last_reply: replied.then_some(now), expired: false };
        if bucket.nodes.len() < BUCKET_SIZE {
            bucket.nodes.push(entry);
            return Heard::Added;
        }
        if let Some(slot) = bucket.nodes.iter_mut().find(|entry| entry.expired) {
            *slot = entry;
            return Heard::Added;
        }
        let dubious = bucket.nodes.iter().find(|entry| !entry.is_good(now)).map(|entry| entry.info);
        if holds_own_id && (dubious.is_none() || single_bucket) && self.split(index) {
            return self.heard(info, replied, now);
        }
        let bucket = &mut self.buckets[index];
        if replied || bucket.cached.is_none() {
            bucket.cached = Some(info);
        }
        Heard::Cached { dubious }
    }

    /// Marks a node whose requests timed out; its slot may be taken by a newcomer, and the
    /// bucket's cached candidate, if any, is returned to be pinged.
    pub fn failed(&mut self, id: &InfoHash) -> Option<NodeInfo> {
        let index = self.bucket_index(id);
        let bucket = &mut self.buckets[index];
        let entry = bucket.nodes.iter_mut().find(|entry| entry.info.id == *id)?;
        entry.expired = true;
        bucket.cached.take()
    }

    /// Up to `count` good nodes closest to `target`, closest first.
    pub fn closest(&self, target: &InfoHash, count: usize, now: Instant) -> Vec<NodeInfo> {
        let mut good: Vec<&NodeEntry> =
            self.buckets.iter().flat_map(|b| &b.nodes).filter(|entry| entry.is_good(now)).collect();
        good.sort_by_key(|entry| entry.info.id.distance(target));
        good.into_iter().take(count).map(|entry| entry.info).collect()
    }

    /// The entry for `id`, if known.
    pub fn get(&self, id: &InfoHash) -> Option<&NodeEntry> {
        self.buckets[self.bucket_index(id)].nodes.iter().find(|entry| entry.info.id == *id)
    }

    /// Number of nodes known (good or not).
    pub fn len(&self) -> usize {
        self.buckets.iter().map(|bucket| bucket.nodes.len()).sum()
    }

    /// Whether no node is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of good nodes.
    pub fn good_count(&self, now: Instant) -> usize {
        self.buckets.iter().flat_map(|b| &b.nodes).filter(|entry| entry.is_good(now)).count()
    }

    /// Number of buckets.
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// For each bucket unchanged for [`BUCKET_REFRESH_TIME`], a random id in its range to
    /// `find`; the buckets count as refreshed from `now`.
    pub fn refresh_targets(&mut self, now: Instant, rng: &mut impl rand::Rng) -> Vec<InfoHash> {
        let depths: Vec<u32> = (0..self.buckets.len()).map(|index| self.depth(index)).collect();
        self.buckets
            .iter_mut()
            .zip(depths)
            .filter(|(bucket, _)| {
                now.saturating_duration_since(bucket.changed) >= BUCKET_REFRESH_TIME
            })
            .map(|(bucket, depth)| {
                bucket.changed = now;
                bucket.first.random_with_prefix(depth, rng)
            })
            .collect()
    }

    /// Drops nodes that are expired and silent for [`EXPIRE_TIME`].
    pub fn remove_dead(&mut self, now: Instant) {
        for bucket in &mut self.buckets {
            bucket.nodes.retain(|entry| {
                !(entry.expired && now.saturating_duration_since(entry.last_heard) >= EXPIRE_TIME)
            });
        }
    }

    fn bucket_index(&self, id: &InfoHash) -> usize {
        // Buckets are sorted by lower bound and the first starts at zero.
        self.buckets.partition_point(|bucket| bucket.first <= *id).saturating_sub(1)
    }

    /// Number of leading bits that all ids in the bucket share (OpenDHT's `depth`).
    fn depth(&self, index: usize) -> u32 {
        let low = |hash: &InfoHash| hash.lowest_set_bit().map_or(-1, |bit| bit as i64);
        let own = low(&self.buckets[index].first);
        let next = self.buckets.get(index + 1).map_or(-1, |bucket| low(&bucket.first));
        (own.max(next) + 1) as u32
    }

    /// Splits a bucket in two halves; false at the bottom of the id space.
    fn split(&mut self, index: usize) -> bool {
        let depth = self.depth(index);
        if depth >= 160 {
            return false;
        }
        let middle = self.buckets[index].first.with_bit(depth);
        let changed = self.buckets[index].changed;
        let upper_nodes: Vec<NodeEntry>;
        {
            let bucket = &mut self.buckets[index];
            let (lower, upper): (Vec<_>, Vec<_>) =
                bucket.nodes.drain(..).partition(|entry| entry.info.id < middle);
            bucket.nodes = lower;
            upper_nodes = upper;
        }
        let upper = Bucket { first: middle, nodes: upper_nodes, cached: None, changed };
        self.buckets.insert(index + 1, upper);
        true
    }
}

#[cfg(test)]
mod tests;
