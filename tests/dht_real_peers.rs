//! Our DHT node against real OpenDHT 2.4.12 nodes (Debian's python3-opendht) on loopback.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{prerequisite, runs};
use rdv::dht::InfoHash;
use rdv::dht::driver::{DriverConfig, spawn};
use rdv::dht::node::{Event, NodeConfig};
use rdv::dht::value::{Body, Content, Value, ValueType};
use serde_json::{Value as Json, json};

const PYTHON: &str = "/usr/bin/python3";
/// Every wait is bounded; these operations take well under a second on loopback.
const WAIT: Duration = Duration::from_secs(20);

/// A python3-opendht node driven by tests/support/opendht_peer.py.
struct PythonPeer {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<Json>,
    port: u16,
}

impl PythonPeer {
    fn start(port: u16, bootstrap: &[String]) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/opendht_peer.py");
        let mut child = Command::new(PYTHON)
            .arg(script)
            .arg(port.to_string())
            .args(bootstrap)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(serde_json::from_str(&line).unwrap()).is_err() {
                    break;
                }
            }
        });
        let mut peer = Self { child, stdin, lines, port };
        let ready = peer.next(|line| line.get("ready").is_some());
        assert_eq!(ready["port"], port);
        peer
    }

    /// The next line satisfying `wanted`, within [`WAIT`]; other lines are dropped.
    fn next(&mut self, wanted: impl Fn(&Json) -> bool) -> Json {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line =
                self.lines.recv_timeout(left).expect("python3-opendht peer answered in time");
            if wanted(&line) {
                return line;
            }
        }
    }

    fn command(&mut self, command: Json) -> Json {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        self.next(|line| line.get("event").is_none())
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for PythonPeer {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"cmd": "quit"}));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
    }
}

fn plain(id: u64, data: &[u8]) -> Value {
    Value {
        id,
        content: Content::Clear {
            body: Body::new(ValueType::USER_DATA, data.to_vec()),
            signature: None,
        },
    }
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits for the first event matching `wanted` on an operation.
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
    if !prerequisite("python3-opendht", runs(PYTHON, &["-c", "import opendht"])) {
        return;
    }
    // Two real OpenDHT nodes, then ours joining through the first.
    let mut first = PythonPeer::start(free_udp_port(), &[]);
    let first_address = first.address();
    let mut second = PythonPeer::start(free_udp_port(), &[first_address.clone()]);
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

    let status = dht.status().await.unwrap();
    assert!(status.connected);
    assert!(status.good_nodes.0 >= 2, "{status:?}");
    assert_eq!(status.stats.undecodable, 0, "every OpenDHT message decoded: {status:?}");
}
