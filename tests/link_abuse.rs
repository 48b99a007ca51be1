//! Hostile callers on the device link: a verified caller whose connections to the room's
//! ICE-TCP candidates carry garbage, or nothing at all. Each link is dropped when its timeout
//! fires, and 100 such attempts leave the server holding no more file descriptors than
//! before.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[path = "support/python_peer.rs"]
mod python_peer;
#[path = "support/server.rs"]
mod server;

use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime};

use common::{Rdv, prerequisite, runs};
use python_peer::{PYTHON, PythonPeer, free_udp_port};
use rdv::dht::InfoHash;
use rdv::dht::crypto::{PrivateKey, PublicKey};
use rdv::dht::driver::{DhtHandle, DriverConfig, spawn};
use rdv::dht::node::{Event, NodeConfig};
use rdv::identity::RoomIdentity;
use rdv::net::ice::candidate::{IceInfo, TcpType};
use rdv::presence::{PeerConnectionData, certificate_value, open_request, peer_key, seal};
use server::Server;

const ATTEMPTS: u64 = 100;
const WARM_UP: u64 = 10;
const WAIT: Duration = Duration::from_secs(60);

/// Open file descriptors of a process.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(Iterator::count).unwrap_or(0)
}

#[test]
fn garbage_and_silent_connections_are_dropped_and_nothing_leaks() {
    if !prerequisite("python3-opendht", runs(PYTHON, &["-c", "import opendht"])) {
        return;
    }
    let rdv = Rdv::new();
    let room = rdv.run(&["room", "create", "lobby", "--json"]).json();
    let device_id: InfoHash = room["device_id"].as_str().unwrap().parse().unwrap();
    let chain = room["certificate_chain_pem"].as_str().unwrap();
    let room_device = PublicKey::from_spki_der(
        &rdv::identity::verify_device_chain(chain).unwrap().public_keys_der()[0],
    )
    .unwrap();

    let opendht = PythonPeer::start(free_udp_port(), &[]);
    let mut server = Server::start(&rdv, &[], &opendht.address());
    server.wait_for(&["device announcement stored on the DHT"]);

    let caller = RoomIdentity::generate_blocking(SystemTime::now()).unwrap();
    let caller_key = PrivateKey::from_pem(caller.device().private_key.expose()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (dht, answers) = runtime.block_on(async {
        let node = NodeConfig::new(InfoHash::of(b"hostile caller"));
        let config =
            DriverConfig { node, port: 0, ipv6: false, bootstrap: vec![opendht.address()] };
        let (dht, _task) = spawn(config).await.unwrap();
        let mut published = dht
            .announce(caller.device_id().into(), certificate_value(&caller), true)
            .await
            .unwrap();
        wait_announced(&mut published.events).await;
        let answers = dht.listen(peer_key(caller.device_id()), None).await.unwrap();
        (dht, answers)
    });
    // A first round warms the server up (database connections, worker threads); the
    // second, of 100, must leave it holding no more descriptors than the first did.
    let mut hostile = Hostile { dht, answers, caller_key, room_device, device_id, next_id: 1 };
    hostile.round(&runtime, &mut server, WARM_UP);
    let baseline = open_fds(server.pid());
    let started = Instant::now();
    hostile.round(&runtime, &mut server, ATTEMPTS);
    eprintln!("{ATTEMPTS} links timed out {:?} after the first request", started.elapsed());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut now_open = open_fds(server.pid());
    while now_open > baseline && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        now_open = open_fds(server.pid());
    }
    assert!(now_open <= baseline, "{now_open} descriptors open, {baseline} before");
    assert_eq!(
        server.count(&["verified connection request"]),
        usize::try_from(WARM_UP + ATTEMPTS).unwrap()
    );
    assert_eq!(server.stop(), 0);
}

/// A verified caller that answers every ICE answer with a connection carrying garbage (even
/// ids) or nothing (odd ids).
struct Hostile {
    dht: DhtHandle,
    answers: rdv::dht::driver::Operation,
    caller_key: PrivateKey,
    room_device: PublicKey,
    device_id: InfoHash,
    next_id: u64,
}

impl Hostile {
    /// Sends `count` requests, connects to every answer, and waits until the server has given
    /// up on all of them; then closes the connections.
    fn round(&mut self, runtime: &tokio::runtime::Runtime, server: &mut Server, count: u64) {
        let ids = self.next_id..self.next_id + count;
        self.next_id += count;
        runtime.block_on(async {
            for id in ids.clone() {
                request(&self.dht, &self.caller_key, &self.room_device, self.device_id, id).await;
            }
        });
        let mut connections = Vec::new();
        let mut answered = std::collections::HashSet::new();
        while answered.len() < ids.clone().count() {
            let event = runtime
                .block_on(async { tokio::time::timeout(WAIT, self.answers.events.recv()).await })
                .expect("answers keep coming")
                .unwrap();
            let Event::Values { values, .. } = event else { continue };
            for value in values {
                let Ok(answer) = open_request(&self.caller_key, &value) else { continue };
                if !answer.is_answer || !ids.contains(&answer.id) || !answered.insert(answer.id) {
                    continue;
                }
                let ice = IceInfo::parse(&answer.ice_message).unwrap();
                let passive: SocketAddr = ice
                    .candidates
                    .iter()
                    .find(|c| c.tcp_type == Some(TcpType::Passive))
                    .unwrap()
                    .address;
                let mut stream = TcpStream::connect(passive).unwrap();
                if answer.id % 2 == 0 {
                    stream.write_all(b"\x00\x05hello\xff\xfe garbage that is not STUN").unwrap();
                }
                connections.push(stream);
            }
        }
        let failed = server.count(&["device link failed", "no ICE-TCP connection"]);
        server.wait_for_nth(
            &["device link failed", "no ICE-TCP connection"],
            failed + usize::try_from(count).unwrap(),
        );
    }
}
async fn request(
    dht: &DhtHandle,
    caller_key: &PrivateKey,
    room_device: &PublicKey,
    device_id: InfoHash,
    id: u64,
) {
    let data = PeerConnectionData {
        id,
        ice_msg: "hostile\npasswordpasswordpassword\nH7f000001 1 TCP 2128609535 127.0.0.1 9 typ host tcptype active\n".into(),
        is_answer: false,
        connection_type: "audioCall".into(),
    };
    let value = seal(caller_key, room_device, 1000 + id, data.into_body()).unwrap();
    let key = peer_key(device_id.to_string().parse().unwrap());
    let mut put = dht.announce(key, value, false).await.unwrap();
    wait_announced(&mut put.events).await;
}

async fn wait_announced(events: &mut tokio::sync::mpsc::Receiver<Event>) {
    tokio::time::timeout(WAIT, async {
        while let Some(event) = events.recv().await {
            if matches!(event, Event::Announced { .. }) {
                return;
            }
        }
    })
    .await
    .expect("announced in time");
}
