//! A deterministic simulated network of real nodes: every datagram is encoded and decoded,
//! time is virtual (no sleeping), latency is fixed, and randomness is seeded.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::dht::value::{Body, Content, ValueType};

const LATENCY: Duration = Duration::from_millis(20);
const UNIX_START: i64 = 1_800_000_000;

struct Sim {
    now: Instant,
    nodes: Vec<Node>,
    addresses: Vec<SocketAddr>,
    in_flight: BTreeMap<(Instant, u64), (usize, SocketAddr, Vec<u8>)>,
    sequence: u64,
    events: Vec<Vec<Event>>,
    delivered: u64,
}

impl Sim {
    fn new(count: usize, seed: u64) -> Self {
        let now = Instant::now();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut nodes = Vec::new();
        let mut addresses = Vec::new();
        for index in 0..count {
            let id = InfoHash::ZERO.random_with_prefix(0, &mut rng);
            nodes.push(Node::new(NodeConfig::new(id), now, UNIX_START, seed * 1000 + index as u64));
            let ip = Ipv4Addr::new(10, 0, (index / 250) as u8, (index % 250 + 1) as u8);
            addresses.push(SocketAddr::from((ip, 4222)));
        }
        Self {
            now,
            nodes,
            addresses,
            in_flight: BTreeMap::new(),
            sequence: 0,
            events: vec![Vec::new(); count],
            delivered: 0,
        }
    }

    /// Every node bootstraps from node 0.
    fn bootstrap_all(&mut self) {
        let first = self.addresses[0];
        for index in 1..self.nodes.len() {
            self.nodes[index].bootstrap(first, self.now);
        }
        self.flush();
    }

    fn flush(&mut self) {
        for index in 0..self.nodes.len() {
            while let Some(transmit) = self.nodes[index].poll_transmit() {
                if let Some(to) = self.addresses.iter().position(|a| *a == transmit.to) {
                    self.sequence += 1;
                    self.in_flight.insert(
                        (self.now + LATENCY, self.sequence),
                        (to, self.addresses[index], transmit.datagram),
                    );
                }
            }
            while let Some(event) = self.nodes[index].poll_event() {
                self.events[index].push(event);
            }
        }
    }

    fn run_for(&mut self, duration: Duration) {
        let deadline = self.now + duration;
        loop {
            let next_datagram = self.in_flight.keys().next().map(|(at, _)| *at);
            let next_timeout = self.nodes.iter().filter_map(Node::poll_timeout).min();
            let Some(next) = [next_datagram, next_timeout].into_iter().flatten().min() else {
                break;
            };
            if next > deadline {
                break;
            }
            self.now = self.now.max(next);
            if next_datagram == Some(next) {
                let (key, (to, from, datagram)) = self.in_flight.pop_first().expect("peeked");
                let _ = key;
                self.delivered += 1;
                self.nodes[to].handle_datagram(from, &datagram, self.now);
            } else {
                for node in &mut self.nodes {
                    if node.poll_timeout().is_some_and(|at| at <= self.now) {
                        node.handle_timeout(self.now);
                    }
                }
            }
            self.flush();
        }
        self.now = deadline;
    }

    fn take_events(&mut self, index: usize) -> Vec<Event> {
        std::mem::take(&mut self.events[index])
    }
}

fn plain(id: u64, data: Vec<u8>) -> Value {
    Value::new(id, Content::Clear { body: Body::new(ValueType::USER_DATA, data), signature: None })
}

fn values_of(events: &[Event], operation: OperationId) -> Vec<Value> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Values { operation: op, values, .. } if *op == operation => Some(values.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn thirty_nodes_join_through_one() {
    let mut sim = Sim::new(32, 1);
    sim.bootstrap_all();
    sim.run_for(Duration::from_secs(30));
    for index in 1..sim.nodes.len() {
        assert!(sim.nodes[index].is_connected(), "node {index} is not connected");
        assert!(sim.take_events(index).contains(&Event::Connected));
        let (good, _) = sim.nodes[index].good_nodes(sim.now);
        assert!(good >= 8, "node {index} knows only {good} good nodes");
    }
}

#[test]
fn a_get_finds_what_another_node_put() {
    for seed in 2..10 {
        get_finds_put(seed);
    }
}

fn get_finds_put(seed: u64) {
    let mut sim = Sim::new(32, seed);
    sim.bootstrap_all();
    sim.run_for(Duration::from_secs(20));
    let key = InfoHash::of(b"the key");
    let put = sim.nodes[5].announce(key, plain(42, b"hello".to_vec()), false, sim.now);
    sim.flush();
    sim.run_for(Duration::from_secs(10));
    let announced = sim.take_events(5);
    assert!(
        announced.iter().any(|e| matches!(e, Event::Announced { operation, nodes, .. } if *operation == put && *nodes >= 8)),
        "{announced:?}"
    );
    let holders = sim.nodes.iter().filter(|n| !n.storage().get(&key, None).is_empty()).count();
    assert!(
        (8..=10).contains(&holders),
        "seed {seed}: stored on the closest nodes, not everywhere: {holders}"
    );

    let get = sim.nodes[20].get(key, None, sim.now);
    sim.flush();
    sim.run_for(Duration::from_secs(10));
    let events = sim.take_events(20);
    assert_eq!(values_of(&events, get), [plain(42, b"hello".to_vec())]);
    assert!(events.contains(&Event::GetDone { operation: get, key }));
}

#[test]
fn listens_fire_and_values_expire_on_time() {
    let mut sim = Sim::new(32, 3);
    sim.bootstrap_all();
    sim.run_for(Duration::from_secs(20));
    let key = InfoHash::of(b"listened");
    let listen = sim.nodes[7].listen(key, None, sim.now);
    sim.flush();
    sim.run_for(Duration::from_secs(5));

    sim.nodes[12].announce(key, plain(7, b"news".to_vec()), false, sim.now);
    let put_at = sim.now;
    sim.flush();
    sim.run_for(Duration::from_secs(5));
    assert_eq!(values_of(&sim.take_events(7), listen), [plain(7, b"news".to_vec())]);

    // A 10-minute value expires at 10 minutes, and the listener is told.
    sim.run_for(put_at + Duration::from_secs(590) - sim.now);
    assert!(!sim.take_events(7).iter().any(|e| matches!(e, Event::Expired { .. })), "too early");
    sim.run_for(Duration::from_secs(15));
    let events = sim.take_events(7);
    assert!(events.iter().any(|e| matches!(e, Event::Expired { operation, ids, .. } if *operation == listen && ids == &[7])), "{events:?}");
    let holders = sim.nodes.iter().filter(|n| !n.storage().get(&key, None).is_empty()).count();
    assert_eq!(holders, 0);
}

#[test]
fn permanent_values_outlive_their_type() {
    let mut sim = Sim::new(30, 4);
    sim.bootstrap_all();
    sim.run_for(Duration::from_secs(20));
    let key = InfoHash::of(b"permanent");
    sim.nodes[3].announce(key, plain(9, b"still here".to_vec()), true, sim.now);
    sim.flush();
    sim.run_for(Duration::from_secs(25 * 60));
    let get = sim.nodes[25].get(key, None, sim.now);
    sim.flush();
    sim.run_for(Duration::from_secs(10));
    assert_eq!(values_of(&sim.take_events(25), get), [plain(9, b"still here".to_vec())]);
}

/// Thirty joined nodes, one of which has announced a 5000-byte value (it travels in parts);
/// the network, the value's key and the value.
fn network_with_a_big_value() -> (Sim, InfoHash, Value) {
    let mut sim = Sim::new(30, 5);
    sim.bootstrap_all();
    sim.run_for(Duration::from_secs(20));
    let key = InfoHash::of(b"big");
    let big = plain(5, (0..5000u32).map(|i| i as u8).collect());
    sim.nodes[2].announce(key, big.clone(), false, sim.now);
    sim.flush();
    sim.run_for(Duration::from_secs(10));
    (sim, key, big)
}

#[test]
fn big_values_travel_in_parts() {
    let (mut sim, key, big) = network_with_a_big_value();
    let get = sim.nodes[28].get(key, None, sim.now);
    sim.flush();
    sim.run_for(Duration::from_secs(10));
    assert_eq!(values_of(&sim.take_events(28), get), [big]);
}

#[test]
fn big_values_still_arrive_while_strangers_flood_the_reassembly_slots() {
    let (mut sim, key, big) = network_with_a_big_value();
    // Review H3: partial messages from spoofed sources by the thousand, puts and replies
    // nobody asked for, each announcing a 5000-byte value that never comes.
    let partial = |tid: u32, kind: MessageKind| Message { tid: Tid(tid), network: 0, kind };
    for n in 0..3000u32 {
        let from = SocketAddr::from(([10, 7, (n >> 8) as u8, n as u8], 4222));
        let put =
            Query::Put { key, values: vec![ValueSlot::Size(5000)], created: None, token: vec![1] };
        let sender = InfoHash::of(&n.to_be_bytes());
        let put = partial(n, MessageKind::Query { sender, query: put });
        sim.nodes[28].handle_datagram(from, &put.encode(), sim.now);
        let mut reply = Reply::new(sender);
        reply.values = Some(vec![ValueSlot::Size(5000)]);
        let reply = partial(n, MessageKind::Reply(reply));
        sim.nodes[28].handle_datagram(from, &reply.encode(), sim.now);
    }
    let get = sim.nodes[28].get(key, None, sim.now);
    sim.flush();
    sim.run_for(Duration::from_secs(2));
    let found = values_of(&sim.take_events(28), get);
    assert!(found == [big], "the get found {} values, not the big one", found.len());
}

#[test]
fn junk_and_floods_are_counted_not_fatal() {
    let mut sim = Sim::new(2, 6);
    sim.bootstrap_all();
    sim.run_for(Duration::from_secs(5));
    let from: SocketAddr = "10.9.9.9:4222".parse().unwrap();
    let mut rng = StdRng::seed_from_u64(6);
    for length in 0..2000usize {
        let junk: Vec<u8> =
            (0..length % 300).map(|_| rand::RngExt::random::<u8>(&mut rng)).collect();
        sim.nodes[0].handle_datagram(from, &junk, sim.now);
    }
    // A flood of valid pings from one source: only a per-source budget is answered.
    let ping = Message {
        tid: Tid(1),
        network: 0,
        kind: MessageKind::Query { sender: InfoHash::of(b"x"), query: Query::Ping },
    }
    .encode();
    for _ in 0..5000 {
        sim.nodes[0].handle_datagram(from, &ping, sim.now);
    }
    let stats = sim.nodes[0].stats();
    assert!(stats.undecodable > 1900, "{stats:?}");
    assert!(stats.rate_limited >= 5000 - 1024, "{stats:?}");
    let replies = std::iter::from_fn(|| sim.nodes[0].poll_transmit())
        .filter(|t| t.to == from)
        .filter(|t| {
            matches!(Message::decode(&t.datagram).map(|m| m.kind), Ok(MessageKind::Reply(_)))
        })
        .count();
    assert!((1..=1024).contains(&replies), "{replies}");
    // Another network id is ignored.
    let other = Message {
        tid: Tid(2),
        network: 5,
        kind: MessageKind::Query { sender: InfoHash::of(b"y"), query: Query::Ping },
    };
    sim.nodes[1].handle_datagram(from, &other.encode(), sim.now);
    assert_eq!(sim.nodes[1].stats().wrong_network, 1);
}

#[test]
fn our_own_searches_see_what_others_stored_on_us() {
    // Two nodes: what node 1 puts is held by node 0 alone (a node does not store its own
    // puts). Node 0's get and listen must find it there, as OpenDHT's do.
    let mut sim = Sim::new(2, 11);
    sim.bootstrap_all();
    sim.run_for(Duration::from_secs(20));
    let listened = InfoHash::of(b"listened here");
    let listen = sim.nodes[0].listen(listened, None, sim.now);
    let key = InfoHash::of(b"stored here");
    sim.nodes[1].announce(key, plain(9, b"mine".to_vec()), false, sim.now);
    sim.nodes[1].announce(listened, plain(10, b"news".to_vec()), false, sim.now);
    sim.flush();
    sim.run_for(Duration::from_secs(5));
    assert_eq!(sim.nodes[1].storage().get(&key, None).len(), 0, "not on the putter");
    assert_eq!(sim.nodes[0].storage().get(&key, None).len(), 1);
    assert_eq!(values_of(&sim.take_events(0), listen), [plain(10, b"news".to_vec())]);

    let get = sim.nodes[0].get(key, None, sim.now);
    sim.flush();
    sim.run_for(Duration::from_secs(5));
    let events = sim.take_events(0);
    assert_eq!(values_of(&events, get), [plain(9, b"mine".to_vec())], "once, from our storage");
    assert!(events.contains(&Event::GetDone { operation: get, key }));
    // A listen started later gets what is already there too.
    let late = sim.nodes[0].listen(listened, None, sim.now);
    sim.flush();
    sim.run_for(Duration::from_secs(1));
    assert_eq!(values_of(&sim.take_events(0), late), [plain(10, b"news".to_vec())]);
}
