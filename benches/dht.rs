//! DHT benchmark: prints figures, asserts nothing. Run: `cargo bench --bench dht`.
//!
//! 1. The sans-IO node on one core: datagrams handled per second for a mix of requests.
//! 2. Resident memory per stored value (growth of this process over 200,000 values).
//! 3. Reference, in the same run: UDP ping round trips per second from one client with 64
//!    requests in flight, against our node (tokio driver) and against a real OpenDHT 2.4.12
//!    node (Debian's python3-opendht, rate limit off), and their ratio.

#![allow(clippy::unwrap_used)] // a measuring tool: a failed unwrap is a failed measurement

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdv::dht::InfoHash;
use rdv::dht::driver::{DriverConfig, spawn};
use rdv::dht::node::{Node, NodeConfig};
use rdv::dht::storage::{Storage, StorageLimits};
use rdv::dht::value::{Body, Content, Value, ValueType};
use rdv::dht::wire::{Message, MessageKind, Query, Tid, ValueSlot};

/// Resident memory of this process, in bytes (Linux `/proc/self/statm`, 4 KiB pages).
fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

fn value(id: u64, size: usize) -> Value {
    Value::new(
        id,
        Content::Clear { body: Body::new(ValueType::USER_DATA, vec![7; size]), signature: None },
    )
}

fn query(sender: InfoHash, tid: u32, query: Query) -> Vec<u8> {
    Message { tid: Tid(tid), network: 0, kind: MessageKind::Query { sender, query } }.encode()
}

fn sans_io_throughput() {
    let now = Instant::now();
    let config =
        NodeConfig { max_requests_per_second: u32::MAX, ..NodeConfig::new(InfoHash::of(b"bench")) };
    let mut node = Node::new(config, now, 1_800_000_000, 1);
    let keys: Vec<InfoHash> = (0..64u32).map(|i| InfoHash::of(&i.to_be_bytes())).collect();
    let mut datagrams = Vec::new();
    for i in 0..4096u32 {
        let sender = InfoHash::of(&(i % 256).to_be_bytes());
        let from = SocketAddr::from(([10, 0, (i % 256 / 250) as u8, (i % 250 + 1) as u8], 4222));
        let key = keys[i as usize % keys.len()];
        let datagram = match i % 10 {
            0..=3 => query(sender, i, Query::Ping),
            4..=5 => query(sender, i, Query::Find { target: key, want: None }),
            6..=8 => query(sender, i, Query::Get { key, query: None, want: None }),
            _ => {
                // A put needs the token this node gives `from`: ask for it once.
                node.handle_datagram(
                    from,
                    &query(sender, i, Query::Find { target: key, want: None }),
                    now,
                );
                let token = std::iter::from_fn(|| node.poll_transmit())
                    .find_map(|t| match Message::decode(&t.datagram).ok()?.kind {
                        MessageKind::Reply(reply) => reply.token,
                        _ => None,
                    })
                    .unwrap_or_default();
                query(
                    sender,
                    i,
                    Query::Put {
                        key,
                        values: vec![ValueSlot::Inline(value(u64::from(i) + 1, 64))],
                        created: None,
                        token,
                    },
                )
            }
        };
        datagrams.push((from, datagram));
    }
    let started = Instant::now();
    let mut handled = 0u64;
    while started.elapsed() < Duration::from_secs(2) {
        for (from, datagram) in &datagrams {
            node.handle_datagram(*from, datagram, now);
            while node.poll_transmit().is_some() {}
            handled += 1;
        }
    }
    let rate = handled as f64 / started.elapsed().as_secs_f64();
    println!(
        "sans-IO node, one core: {rate:.0} datagrams/s (40% ping, 20% find, 30% get, 10% put)"
    );
}

fn memory_per_value() {
    let now = Instant::now();
    let mut storage =
        Storage::new(StorageLimits { bytes_per_source: usize::MAX, ..StorageLimits::default() });
    let count = 200_000u64;
    let before = resident_bytes();
    for id in 1..=count {
        let key = InfoHash::of(&id.to_be_bytes());
        storage.store(key, value(id, 100), Duration::ZERO, "10.0.0.1".parse().unwrap(), now);
    }
    let per_value = resident_bytes().saturating_sub(before) as f64 / count as f64;
    println!(
        "memory per stored value (100-byte data, one key each): {per_value:.0} resident bytes"
    );
}

/// Ping round trips per second to `target` from one socket with `window` requests in flight.
fn ping_rate(target: SocketAddr, window: u32) -> f64 {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let sender = InfoHash::of(b"bench client");
    for tid in 0..window {
        socket.send_to(&query(sender, tid, Query::Ping), target).unwrap();
    }
    let started = Instant::now();
    let mut next_tid = window;
    let mut replies = 0u64;
    let mut buffer = [0u8; 2048];
    while started.elapsed() < Duration::from_secs(3) {
        match socket.recv_from(&mut buffer) {
            Ok(_) => {
                replies += 1;
                socket.send_to(&query(sender, next_tid, Query::Ping), target).unwrap();
                next_tid += 1;
            }
            Err(_) => {
                // Lost requests: refill the window.
                for _ in 0..window {
                    socket.send_to(&query(sender, next_tid, Query::Ping), target).unwrap();
                    next_tid += 1;
                }
            }
        }
    }
    replies as f64 / started.elapsed().as_secs_f64()
}

fn round_trips_against_opendht() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let config = NodeConfig {
        max_requests_per_second: u32::MAX,
        ..NodeConfig::new(InfoHash::of(b"bench node"))
    };
    let (dht, _task) = runtime
        .block_on(spawn(DriverConfig { node: config, port: 0, ipv6: false, bootstrap: vec![] }))
        .unwrap();
    let ours = SocketAddr::from(([127, 0, 0, 1], dht.local_addresses()[0].port()));
    let rdv_rate = ping_rate(ours, 64);

    let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/opendht_peer.py");
    let child = Command::new("/usr/bin/python3")
        .args([script, &port.to_string(), "--no-rate-limit"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        println!(
            "UDP ping round trips, 64 in flight: rdv {rdv_rate:.0}/s; OpenDHT reference unavailable"
        );
        return;
    };
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut ready,
    )
    .unwrap();
    let opendht_rate = ping_rate(SocketAddr::from(([127, 0, 0, 1], port)), 64);
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "UDP ping round trips, one client, 64 in flight: rdv {rdv_rate:.0}/s, OpenDHT 2.4.12 {opendht_rate:.0}/s \
         (ratio {:.2})",
        rdv_rate / opendht_rate
    );
}

fn main() {
    sans_io_throughput();
    memory_per_value();
    round_trips_against_opendht();
}
