//! Our DHT node against real OpenDHT nodes on loopback, of both generations: 2.4.12 (Debian's
//! python3-opendht and dhtnode, jamid 13.7's) and 4.3.1 (today's Jami's, scripts/build-peers).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[path = "support/python_peer.rs"]
mod python_peer;

use std::time::Duration;

use common::{peers_dir, prerequisite, runs};
use python_peer::{OpenDht, PythonPeer, free_udp_port};
use rdv::dht::InfoHash;
use rdv::dht::driver::{DriverConfig, spawn};
use rdv::dht::node::{Event, NodeConfig};
use rdv::dht::value::{Body, Content, Value, ValueType};
use serde_json::json;

fn plain(id: u64, data: &[u8]) -> Value {
    Value::new(
        id,
        Content::Clear { body: Body::new(ValueType::USER_DATA, data.to_vec()), signature: None },
    )
}

/// Waits for the first event matching `wanted` on an operation.
/// Every wait is bounded; these operations take well under a second on loopback.
const WAIT: Duration = Duration::from_secs(20);

async fn wait_event(
    events: &mut tokio::sync::mpsc::Receiver<Event>,
    wanted: impl Fn(&Event) -> bool,
) -> Event {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = events.recv().await.expect("operation alive");
            if wanted(&event) {
                return event;
            }
        }
    })
    .await
    .expect("event in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_node_and_opendht_nodes_exchange_values() {
    for generation in OpenDht::available() {
        eprintln!("--- OpenDHT {generation:?}");
        exchange_values(generation).await;
    }
}

async fn exchange_values(generation: OpenDht) {
    // Two real OpenDHT nodes, then ours joining through the first.
    let mut first = PythonPeer::start_with(generation, free_udp_port(), &[]);
    let first_address = first.address();
    let mut second =
        PythonPeer::start_with(generation, free_udp_port(), std::slice::from_ref(&first_address));
    let config = DriverConfig {
        node: NodeConfig::new(InfoHash::of(&rand::random::<[u8; 20]>())),
        port: 0,
        ipv6: false,
        bootstrap: vec![first_address],
    };
    let (dht, _task) = spawn(config).await.unwrap();

    // OpenDHT -> ours: a value put by a Python node is found by our node.
    let key = InfoHash::of(b"put by python");
    let put = second.command(json!({"cmd": "put", "key": key.to_string(), "data": hex::encode(b"from opendht"), "id": 77}));
    assert_eq!(put["ok"], true, "python put: {put}");
    let mut get = dht.get(key, None).await.unwrap();
    let found = wait_event(&mut get.events, |e| matches!(e, Event::Values { .. })).await;
    let Event::Values { values, .. } = found else { unreachable!() };
    assert_eq!(values, [plain(77, b"from opendht")]);

    // Ours -> OpenDHT: a Python node listening on a key hears our put, and a get finds it.
    let key = InfoHash::of(b"put by rdv");
    let listening = first.command(json!({"cmd": "listen", "key": key.to_string()}));
    assert_eq!(listening["ok"], true);
    let mut announce = dht.announce(key, plain(99, b"from rdv"), false).await.unwrap();
    wait_event(&mut announce.events, |e| matches!(e, Event::Announced { .. })).await;
    let heard = first.next(|line| line["event"] == "value");
    assert_eq!(heard["key"], key.to_string());
    assert_eq!(heard["value"]["data"], hex::encode(b"from rdv"));
    assert_eq!(heard["value"]["id"], 99);
    let got = second.command(json!({"cmd": "get", "key": key.to_string()}));
    assert_eq!(got["values"][0]["data"], hex::encode(b"from rdv"), "{got}");

    // A big value travels in parts both ways.
    let key = InfoHash::of(b"big");
    let big: Vec<u8> = (0..4000u32).map(|i| i as u8).collect();
    let mut announce = dht.announce(key, plain(5, &big), false).await.unwrap();
    wait_event(&mut announce.events, |e| matches!(e, Event::Announced { .. })).await;
    let got = second.command(json!({"cmd": "get", "key": key.to_string()}));
    assert_eq!(got["values"][0]["data"], hex::encode(&big));

    // A device certificate at the hash of its long id, where OpenDHT ≥ 3.5 puts it: 4.3.1
    // stores it there, 2.4.12 refuses it (only its SHA-1 id is a certificate's key there).
    let chain = include_str!("data/opendht-2.4.12-chain.pem");
    let leaf = rdv::identity::verify_device_chain(chain).unwrap();
    let key = InfoHash::from(leaf.device_long_id());
    let certificate = Value::new(
        1,
        Content::Clear {
            body: Body::new(ValueType::CERTIFICATE, rdv::dht::value::certificate_data(chain)),
            signature: None,
        },
    );
    let mut announce = dht.announce(key, certificate, false).await.unwrap();
    wait_event(&mut announce.events, |e| matches!(e, Event::Announced { .. })).await;
    let got = second.command(json!({"cmd": "get", "key": key.to_string()}));
    let stored = got["values"].as_array().unwrap().len();
    match generation {
        OpenDht::V4_3 => assert_eq!(stored, 1, "4.3.1 stores it: {got}"),
        OpenDht::V2_4 => assert_eq!(stored, 0, "2.4.12 refuses it: {got}"),
    }

    let status = dht.status().await.unwrap();
    assert!(status.connected);
    assert!(status.good_nodes.0 >= 2, "{status:?}");
    assert_eq!(status.stats.undecodable, 0, "every OpenDHT message decoded: {status:?}");
}

/// A `dhtnode` process (OpenDHT's command-line node), killed on drop.
struct DhtNode(std::process::Child);

impl Drop for DhtNode {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_node_joins_through_dhtnode() {
    for generation in OpenDht::available() {
        let dhtnode = match generation {
            OpenDht::V2_4 => "dhtnode".to_owned(),
            OpenDht::V4_3 => {
                let built = peers_dir().map(|dir| dir.join("prefix/bin/dhtnode"));
                let built = built.filter(|path| path.is_file());
                if !prerequisite(
                    "OpenDHT 4.3.1's dhtnode (bash scripts/build-peers)",
                    built.is_some(),
                ) {
                    continue;
                }
                built.unwrap().display().to_string()
            }
        };
        if !prerequisite("dhtnode", runs(&dhtnode, &["--help"])) {
            continue;
        }
        eprintln!("--- {dhtnode} with OpenDHT {generation:?} peers");
        join_through_dhtnode(&dhtnode, generation).await;
    }
}

async fn join_through_dhtnode(dhtnode: &str, generation: OpenDht) {
    let port = free_udp_port();
    let child = std::process::Command::new(dhtnode)
        .args(["-s", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _dhtnode = DhtNode(child);
    // dhtnode binds 0.0.0.0:port: once it has, the port cannot be bound on loopback.
    let deadline = std::time::Instant::now() + WAIT;
    while std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        assert!(std::time::Instant::now() < deadline, "dhtnode did not bind its port");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let bootstrap = format!("127.0.0.1:{port}");
    let mut python =
        PythonPeer::start_with(generation, free_udp_port(), std::slice::from_ref(&bootstrap));
    let node = NodeConfig::new(InfoHash::of(&rand::random::<[u8; 20]>()));
    let (dht, _task) =
        spawn(DriverConfig { node, port: 0, ipv6: false, bootstrap: vec![bootstrap] })
            .await
            .unwrap();

    let key = InfoHash::of(b"through dhtnode");
    let mut announce = dht.announce(key, plain(3, b"via dhtnode"), false).await.unwrap();
    wait_event(&mut announce.events, |e| matches!(e, Event::Announced { .. })).await;
    let got = python.command(json!({"cmd": "get", "key": key.to_string()}));
    assert_eq!(got["values"][0]["data"], hex::encode(b"via dhtnode"), "{got}");

    let key = InfoHash::of(b"back through dhtnode");
    let put = python.command(
        json!({"cmd": "put", "key": key.to_string(), "data": hex::encode(b"hello"), "id": 4}),
    );
    assert_eq!(put["ok"], true);
    let mut get = dht.get(key, None).await.unwrap();
    let found = wait_event(&mut get.events, |e| matches!(e, Event::Values { .. })).await;
    assert!(matches!(found, Event::Values { values, .. } if values == [plain(4, b"hello")]));
}
