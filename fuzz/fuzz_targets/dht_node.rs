//! A DHT node fed arbitrary datagrams from a few sources, with time moving on: it must never
//! panic, and its storage must stay within its quotas.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rdv::dht::InfoHash;
use rdv::dht::node::{Node, NodeConfig};

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    let start = Instant::now();
    let mut node = Node::new(NodeConfig::new(InfoHash::of(b"fuzzed node")), start, 1_800_000_000, 1);
    // Each chunk: one byte picks the source and how far time moves on, the rest is the datagram.
    let mut now = start;
    for chunk in input.split(|byte| *byte == 0xff) {
        let Some((&selector, datagram)) = chunk.split_first() else { continue };
        let from = SocketAddr::from(([10, 0, 0, selector % 4 + 1], 4222));
        now += Duration::from_millis(u64::from(selector) * 100);
        node.handle_datagram(from, datagram, now);
        node.handle_timeout(now);
        while node.poll_transmit().is_some() {}
        while node.poll_event().is_some() {}
        assert!(node.storage().total_bytes() <= 64 << 20);
    }
});
