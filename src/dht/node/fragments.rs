//! Values too big for one datagram (opendht-wire.md §8). When a message carries 50 values or
//! more, or 600 bytes of values or more, its `values` become sizes and each value follows in
//! `"p"` datagrams of at most 1280 bytes. The receiver keeps a partial message per (tid,
//! source) for at most 10 s, 3 s without progress, and appends chunks only in order.
//!
//! Anyone can announce parts, so the slots come in two pools: messages we expect (a reply to
//! a request we sent, an update for one of our listens) and the others (a stranger's put),
//! where each source (an IPv4 address, an IPv6 /64) holds a few slots at most. A flood of
//! unexpected partial messages from any number of sources cannot take the slots the room's
//! own lookups need (review H3).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::rate::source_key;
use crate::dht::value::Value;
use crate::dht::wire::{Message, MessageKind, Query, Tid, UpdateChange, ValuePart, ValueSlot};

/// Inline limit on the total packed size of a message's values (`MAX_PACKET_VALUE_SIZE`).
const MAX_INLINE_BYTES: usize = 600;
/// Inline limit on the number of values.
const MAX_INLINE_VALUES: usize = 50;
/// Largest chunk of value data per part datagram (`MTU`).
pub(super) const CHUNK: usize = 1280;
/// A partial message is dropped this long after it started...
const MAX_ASSEMBLY_TIME: Duration = Duration::from_secs(10);
/// ... or this long after its last progress.
const ASSEMBLY_IDLE_TIMEOUT: Duration = Duration::from_secs(3);
/// Most partial messages kept at once, in each pool.
const MAX_PARTIALS: usize = 256;
/// Most unexpected partial messages from one source at once.
const MAX_UNEXPECTED_PER_SOURCE: usize = 4;
/// A value announced bigger than this is not accepted.
const MAX_ANNOUNCED_SIZE: u32 = 65536 + 32;

/// Splits `values` for sending: the slots for the message, and the packed values that must
/// follow as parts (empty when all fit inline).
pub(super) fn slots_for(values: &[Value]) -> (Vec<ValueSlot>, Vec<Vec<u8>>) {
    let packed: Vec<Vec<u8>> = values.iter().map(Value::encode).collect();
    let total: usize = packed.iter().map(Vec::len).sum();
    if values.len() < MAX_INLINE_VALUES && total < MAX_INLINE_BYTES {
        return (values.iter().cloned().map(ValueSlot::Inline).collect(), Vec::new());
    }
    let sizes = packed
        .iter()
        .map(|p| ValueSlot::Size(u32::try_from(p.len()).unwrap_or(u32::MAX)))
        .collect();
    (sizes, packed)
}

/// The part datagrams that follow a message with tid `tid`.
pub(super) fn parts(tid: Tid, network: u32, packed: &[Vec<u8>]) -> Vec<Message> {
    packed
        .iter()
        .enumerate()
        .flat_map(|(index, value)| {
            value.chunks(CHUNK).enumerate().map(move |(chunk, data)| Message {
                tid,
                network,
                kind: MessageKind::ValueParts(vec![ValuePart {
                    index: index as u32,
                    offset: (chunk * CHUNK) as u32,
                    data: data.to_vec(),
                }]),
            })
        })
        .collect()
}

/// The value slots of a message, mutable.
fn slots_mut(message: &mut Message) -> Option<&mut Vec<ValueSlot>> {
    match &mut message.kind {
        MessageKind::Query { query: Query::Put { values, .. }, .. }
        | MessageKind::Query {
            query: Query::Update { change: UpdateChange::Values { values, .. }, .. },
            ..
        } => Some(values),
        MessageKind::Reply(reply) => reply.values.as_mut(),
        _ => None,
    }
}

/// Whether the message waits for parts.
pub(super) fn needs_parts(message: &Message) -> bool {
    match &message.kind {
        MessageKind::Query { query: Query::Put { values, .. }, .. }
        | MessageKind::Query {
            query: Query::Update { change: UpdateChange::Values { values, .. }, .. },
            ..
        } => values.iter().any(|slot| matches!(slot, ValueSlot::Size(_))),
        MessageKind::Reply(reply) => reply
            .values
            .as_ref()
            .is_some_and(|values| values.iter().any(|slot| matches!(slot, ValueSlot::Size(_)))),
        _ => false,
    }
}

#[derive(Debug)]
struct Partial {
    /// A reply to our request or an update for our listen (else a stranger's message).
    expected: bool,
    message: Message,
    buffers: Vec<(u32, Vec<u8>)>,
    started: Instant,
    progressed: Instant,
}

/// Messages waiting for their value parts.
#[derive(Debug, Default)]
pub(super) struct Reassembly {
    partials: HashMap<(Tid, SocketAddr), Partial>,
}

impl Reassembly {
    /// Parks a message whose values follow in parts, in the pool of `expected` messages or
    /// the other. Refused (false) when one with the same tid and source is pending, its pool
    /// is full, its source holds its share of unexpected slots, or a value is announced too
    /// big.
    pub(super) fn start(
        &mut self,
        from: SocketAddr,
        message: Message,
        expected: bool,
        now: Instant,
    ) -> bool {
        let key = (message.tid, from);
        if self.partials.contains_key(&key) {
            return false;
        }
        let pool = self.partials.values().filter(|p| p.expected == expected).count();
        let source = source_key(from.ip());
        let from_source = || {
            self.partials
                .iter()
                .filter(|((_, at), p)| !p.expected && source_key(at.ip()) == source)
                .count()
        };
        if pool >= MAX_PARTIALS || (!expected && from_source() >= MAX_UNEXPECTED_PER_SOURCE) {
            return false;
        }
        let mut message = message;
        let Some(slots) = slots_mut(&mut message) else { return false };
        let mut buffers = Vec::with_capacity(slots.len());
        for slot in slots.iter() {
            match slot {
                ValueSlot::Size(size) if *size > MAX_ANNOUNCED_SIZE => return false,
                ValueSlot::Size(size) => buffers.push((*size, Vec::new())),
                ValueSlot::Inline(_) => buffers.push((0, Vec::new())),
            }
        }
        let partial = Partial { expected, message, buffers, started: now, progressed: now };
        self.partials.insert(key, partial);
        true
    }

    /// Adds parts from `from`; returns the message once every value is complete. Values that
    /// do not decode are dropped from it.
    pub(super) fn add(
        &mut self,
        tid: Tid,
        from: SocketAddr,
        parts: Vec<ValuePart>,
        now: Instant,
    ) -> Option<Message> {
        let key = (tid, from);
        let partial = self.partials.get_mut(&key)?;
        for part in parts {
            let Some((size, buffer)) = partial.buffers.get_mut(part.index as usize) else {
                continue;
            };
            if part.offset as usize != buffer.len() || buffer.len() >= *size as usize {
                continue; // out of order, duplicate or beyond the announced size
            }
            let room = *size as usize - buffer.len();
            buffer.extend_from_slice(&part.data[..part.data.len().min(room)]);
            partial.progressed = now;
        }
        if partial.buffers.iter().any(|(size, buffer)| buffer.len() < *size as usize) {
            return None;
        }
        let mut partial = self.partials.remove(&key)?;
        let buffers = std::mem::take(&mut partial.buffers);
        let slots = slots_mut(&mut partial.message)?;
        let assembled: Vec<ValueSlot> = slots
            .drain(..)
            .zip(buffers)
            .filter_map(|(slot, (_, buffer))| match slot {
                ValueSlot::Inline(value) => Some(ValueSlot::Inline(value)),
                ValueSlot::Size(_) => Value::decode(&buffer).ok().map(ValueSlot::Inline),
            })
            .collect();
        *slots = assembled;
        Some(partial.message)
    }

    /// Drops stale partial messages.
    pub(super) fn expire(&mut self, now: Instant) {
        self.partials.retain(|_, partial| {
            now.saturating_duration_since(partial.started) < MAX_ASSEMBLY_TIME
                && now.saturating_duration_since(partial.progressed) < ASSEMBLY_IDLE_TIMEOUT
        });
    }

    /// When the oldest partial message times out.
    pub(super) fn next_expiry(&self) -> Option<Instant> {
        self.partials
            .values()
            .map(|p| (p.started + MAX_ASSEMBLY_TIME).min(p.progressed + ASSEMBLY_IDLE_TIMEOUT))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dht::InfoHash;
    use crate::dht::value::{Body, Content, ValueType};

    fn value(id: u64, len: usize) -> Value {
        let data = (0..len).map(|i| i as u8).collect();
        Value::new(
            id,
            Content::Clear { body: Body::new(ValueType::USER_DATA, data), signature: None },
        )
    }

    fn put(values: Vec<ValueSlot>) -> Message {
        Message {
            tid: Tid(9),
            network: 0,
            kind: MessageKind::Query {
                sender: InfoHash::of(b"s"),
                query: Query::Put {
                    key: InfoHash::of(b"k"),
                    values,
                    created: None,
                    token: vec![1],
                },
            },
        }
    }

    #[test]
    fn small_values_stay_inline_and_big_ones_travel_in_parts() {
        let (slots, packed) = slots_for(&[value(1, 10), value(2, 10)]);
        assert!(packed.is_empty() && matches!(slots[0], ValueSlot::Inline(_)));
        let (slots, packed) = slots_for(&[value(1, 3000), value(2, 10)]);
        assert_eq!(packed.len(), 2);
        assert!(matches!(slots[..], [ValueSlot::Size(_), ValueSlot::Size(_)]));
        let parts = parts(Tid(9), 0, &packed);
        assert_eq!(parts.len(), 4, "3 chunks for the big value, 1 for the small one");
    }

    #[test]
    fn parts_reassemble_in_order_only() {
        let from: SocketAddr = "127.0.0.1:4222".parse().unwrap();
        let stranger: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let now = Instant::now();
        let values = [value(1, 3000), value(2, 10)];
        let (slots, packed) = slots_for(&values);
        let mut reassembly = Reassembly::default();
        assert!(needs_parts(&put(slots.clone())));
        assert!(reassembly.start(from, put(slots.clone()), false, now));
        assert!(!reassembly.start(from, put(slots), false, now), "one slot per tid and source");
        let chunks: Vec<ValuePart> = parts(Tid(9), 0, &packed)
            .into_iter()
            .flat_map(|m| match m.kind {
                MessageKind::ValueParts(parts) => parts,
                _ => unreachable!(),
            })
            .collect();
        // Chunks 0, 1, 2 of the big value, then chunk 0 of the small one.
        let [first, second, third, small] = <[ValuePart; 4]>::try_from(chunks).unwrap();
        let mut add = |from, parts| reassembly.add(Tid(9), from, parts, now);
        assert!(add(from, vec![second.clone(), first]).is_none(), "second before first: ignored");
        assert!(add(from, vec![third.clone()]).is_none(), "third before second: ignored");
        assert!(
            add(stranger, vec![second.clone()]).is_none(),
            "parts from another source: ignored"
        );
        assert!(add(from, vec![second, third]).is_none(), "the small value is still missing");
        let message = add(from, vec![small]).expect("complete");
        let MessageKind::Query { query: Query::Put { values: slots, .. }, .. } = message.kind
        else {
            panic!()
        };
        assert_eq!(slots, values.map(ValueSlot::Inline));
    }

    #[test]
    fn stale_and_oversized_partials_are_dropped() {
        let from: SocketAddr = "127.0.0.1:4222".parse().unwrap();
        let now = Instant::now();
        let mut reassembly = Reassembly::default();
        assert!(!reassembly.start(
            from,
            put(vec![ValueSlot::Size(MAX_ANNOUNCED_SIZE + 1)]),
            true,
            now
        ));
        assert!(reassembly.start(from, put(vec![ValueSlot::Size(5000)]), true, now));
        assert_eq!(reassembly.next_expiry(), Some(now + ASSEMBLY_IDLE_TIMEOUT));
        reassembly.expire(now + ASSEMBLY_IDLE_TIMEOUT);
        assert!(reassembly.partials.is_empty());
    }

    #[test]
    fn a_flood_of_unexpected_partials_leaves_the_expected_pool_free() {
        let now = Instant::now();
        let mut reassembly = Reassembly::default();
        let big = || put(vec![ValueSlot::Size(5000)]);
        // One source holds a few slots at most, an IPv6 /64 counting as one source.
        let one: SocketAddr = "203.0.113.7:4222".parse().unwrap();
        let taken = (0..10u32)
            .filter(|n| {
                let mut message = big();
                message.tid = Tid(*n);
                reassembly.start(one, message, false, now)
            })
            .count();
        assert_eq!(taken, MAX_UNEXPECTED_PER_SOURCE);
        let taken = (0..10u16)
            .filter(|n| {
                let from = SocketAddr::new(format!("2001:db8::{n}").parse().unwrap(), 4222);
                reassembly.start(from, big(), false, now)
            })
            .count();
        assert_eq!(taken, MAX_UNEXPECTED_PER_SOURCE, "a /64 is one source");
        // Spoofed sources by the thousand fill the pool of the unexpected...
        for n in 0..2000u32 {
            let from = SocketAddr::from(([10, (n >> 16) as u8, (n >> 8) as u8, n as u8], 4222));
            reassembly.start(from, big(), false, now);
        }
        let unexpected = reassembly.partials.values().filter(|p| !p.expected).count();
        assert_eq!(unexpected, MAX_PARTIALS);
        // ... and the replies to our own requests still find room.
        let node: SocketAddr = "198.51.100.1:4222".parse().unwrap();
        for n in 0..MAX_PARTIALS as u32 {
            let mut reply = big();
            reply.tid = Tid(1000 + n);
            assert!(reassembly.start(node, reply, true, now), "expected message {n}");
        }
    }
}
