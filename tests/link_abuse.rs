//! Hostile callers on the device link: a verified caller whose connections to the room's
//! ICE-TCP candidates carry garbage, nothing at all, or pass ICE and then never start TLS.
//! Each link is dropped when its timeout fires, and 100 such attempts leave the server holding
//! no more sockets than before. Last, a caller that completes TLS and then stops answering
//! beacons has its link closed.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[path = "support/hostile_link.rs"]
mod hostile_link;
#[path = "support/python_peer.rs"]
mod python_peer;
#[path = "support/server.rs"]
mod server;

use std::io::Write as _;
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime};

use common::{Rdv, prerequisite, runs};
use hostile_link::{
    DhtCaller, TlsPeer, WAIT, answer_checks, mux_message, passive_candidate, request,
};
use python_peer::{PYTHON, PythonPeer, free_udp_port};
use rdv::dht::node::Event;
use rdv::identity::RoomIdentity;
use rdv::net::mux::Multiplexer;
use rdv::presence::{ProtocolEra, open_request};
use server::Server;

const ATTEMPTS: u64 = 102;
const WARM_UP: u64 = 9;

/// What a process's open file descriptors point to (`socket:[…]`, paths, `anon_inode:…`).
fn open_fds(pid: u32) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return Vec::new() };
    let mut targets: Vec<String> = entries
        .flatten()
        .filter_map(|entry| std::fs::read_link(entry.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .collect();
    targets.sort();
    targets
}

/// The sockets among them: what a device link holds (listeners and connections).
fn sockets(fds: &[String]) -> usize {
    fds.iter().filter(|target| target.starts_with("socket:")).count()
}

#[test]
fn hostile_links_are_dropped_at_their_timeouts_and_nothing_leaks() {
    if !prerequisite("python3-opendht", runs(PYTHON, &["-c", "import opendht"])) {
        return;
    }
    let rdv = Rdv::new();
    let room = rdv.run(&["room", "create", "lobby", "--json"]).json();
    let (room_device, device_id) = hostile_link::room_device(&room);

    // Idle links are probed after 1 s (instead of 30) so that a silent peer shows quickly.
    std::fs::write(rdv.path().join("rdv.toml"), "[link]\nbeacon_interval = 1\n").unwrap();
    let opendht = PythonPeer::start(free_udp_port(), &[]);
    let mut server = Server::start(&rdv, &[], &opendht.address());
    server.wait_for(&["device announcement stored on the DHT"]);

    let caller = RoomIdentity::generate_blocking(SystemTime::now()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let room_ids = (room_device, device_id);
    let dht_caller = DhtCaller::start(&runtime, caller.clone(), opendht.address(), room_ids);
    // A first round warms the server up (database connections, worker threads); the
    // second, of 100, must leave it holding no more descriptors than the first did.
    let mut hostile = Hostile { caller: dht_caller };
    hostile.round(&runtime, &mut server, WARM_UP);
    let baseline = open_fds(server.pid());
    let started = Instant::now();
    hostile.round(&runtime, &mut server, ATTEMPTS);
    eprintln!("{ATTEMPTS} links timed out {:?} after the first request", started.elapsed());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut now_open = open_fds(server.pid());
    while sockets(&now_open) > sockets(&baseline) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        now_open = open_fds(server.pid());
    }
    let grown: Vec<&String> = now_open.iter().filter(|fd| !baseline.contains(fd)).collect();
    eprintln!("descriptors: {} before, {} after; new: {grown:?}", baseline.len(), now_open.len());
    // Sockets (listeners, connections) must all be gone. Other descriptors may appear once,
    // like a second database connection of the pool, but not one per link.
    assert!(
        sockets(&now_open) <= sockets(&baseline) && now_open.len() <= baseline.len() + 4,
        "descriptors now {now_open:?}, before {baseline:?}"
    );
    assert_eq!(
        server.count(&["verified connection request"]),
        usize::try_from(WARM_UP + ATTEMPTS).unwrap()
    );

    // A caller that passes ICE and TLS and announces its multiplexer, then stops answering:
    // the room's beacon goes unanswered and the link is closed.
    let passive = hostile.caller.next_answer(&runtime);
    let stream = TcpStream::connect(passive).unwrap();
    let greedy = caller.clone();
    let peer = std::thread::spawn(move || silent_after_handshake(stream, &caller));
    let line = server.wait_for(&["device link closed", "stopped answering beacons"]);
    eprintln!("{line}");
    assert!(peer.join().unwrap(), "the peer completed TLS and saw the link closed");

    // A caller that asks for every channel it can think of, as today's clients open several
    // on each link: each request is answered at once, within the caps, and a msg: channel
    // carrying junk is closed while the link goes on.
    let passive = hostile.caller.next_answer(&runtime);
    let stream = TcpStream::connect(passive).unwrap();
    let long_id = room["device_long_id"].as_str().unwrap().to_owned();
    let requests = channel_requests(&long_id);
    let peer = std::thread::spawn(move || greedy_after_handshake(stream, &greedy, &requests));
    let (answers, closed) = peer.join().unwrap();
    let expected: Vec<(String, u16, u8)> = channel_requests(&long_id)
        .into_iter()
        .map(|(name, channel, accept)| (name, channel, if accept { 1 } else { 2 }))
        .collect();
    assert_eq!(answers, expected, "each request answered, within the caps");
    assert!(closed, "the msg: channel carrying junk was closed, the link went on");
    server.wait_for(&["unreadable channel closed", "kind=msg:"]);
    assert_eq!(server.stop(), 0);
}

/// The channels a greedy caller asks for, with their numbers (from 1, as dhtnet numbers them)
/// and whether the room takes them: two `msg:` to the room (a third is over the cap), none
/// to another device, no service discovery or swarm, four `sip` (a fifth is over the cap).
fn channel_requests(room_long_id: &str) -> Vec<(String, u16, bool)> {
    let ours = format!("msg:{room_long_id}");
    let names = [
        (ours.clone(), true),
        (ours.clone(), true),
        (ours, false),
        (format!("msg:{}", "0".repeat(64)), false),
        ("svcdisc://query".to_owned(), false),
        ("swarm://0123".to_owned(), false),
        ("data-transfer://x/y/profile.vcf".to_owned(), false),
        ("sip".to_owned(), true),
        ("sip".to_owned(), true),
        ("sip".to_owned(), true),
        ("sip".to_owned(), true),
        ("sip".to_owned(), false),
    ];
    names.into_iter().zip(1u16..).map(|((name, accept), channel)| (name, channel, accept)).collect()
}

/// Plays the caller: passes ICE and TLS, sends `requests` (name, channel) at once, answers
/// beacons, and collects the room's answers `(name, channel, state)`; once all are in, sends
/// junk on the first channel (a `msg:`) and waits for the room to close it. Returns the
/// answers and whether that channel was closed with the link still up.
fn greedy_after_handshake(
    stream: TcpStream,
    caller: &RoomIdentity,
    requests: &[(String, u16, bool)],
) -> (Vec<(String, u16, u8)>, bool) {
    let mut peer = TlsPeer::new(stream, caller);
    let mut mux = Multiplexer::new();
    let mut plaintext = Vec::new();
    let mut answers = Vec::new();
    let (mut handshaken, mut junk_sent, mut closed) = (false, false, false);
    while let Ok(Some(bytes)) = peer.read() {
        plaintext.extend(bytes);
        let mut outgoing: Vec<Vec<u8>> = Vec::new();
        if !handshaken && !peer.tls.is_handshaking() {
            handshaken = true;
            while let Some(message) = mux.poll_transmit() {
                outgoing.push(message);
            }
            for (name, channel, _) in requests {
                let request = rmp_serde::to_vec(&(name, channel, 0u8)).unwrap();
                outgoing.push(mux_message(0, &request));
            }
        }
        // The room's messages: channel answers, beacons, closes.
        let mut cursor = std::io::Cursor::new(plaintext.as_slice());
        let mut used = 0;
        while let Ok((channel, payload)) =
            rmp_serde::from_read::<_, (u16, serde_bytes::ByteBuf)>(&mut cursor)
        {
            used = usize::try_from(cursor.position()).unwrap();
            match channel {
                0 => answers.push(rmp_serde::from_slice::<(String, u16, u8)>(&payload).unwrap()),
                0xFFFF if payload.as_slice() == b"\x81\xa1p\xc3" => {
                    outgoing.push(mux_message(0xFFFF, b"\x81\xa1p\xc2"));
                }
                1 if payload.is_empty() && junk_sent => closed = true,
                _ => {}
            }
        }
        plaintext.drain(..used);
        if answers.len() == requests.len() && !junk_sent {
            junk_sent = true;
            outgoing.push(mux_message(1, b"\xc1 not msgpack at all"));
        }
        if !peer.write(&outgoing) || closed {
            break;
        }
    }
    (answers, closed)
}

/// A verified caller that answers every ICE answer with a connection carrying garbage, nothing,
/// or a passed ICE check and then nothing (by request id modulo 3).
struct Hostile {
    caller: DhtCaller,
}

impl Hostile {
    /// Sends `count` requests, connects to every answer, and waits until the server has given
    /// up on all of them; then closes the connections.
    fn round(&mut self, runtime: &tokio::runtime::Runtime, server: &mut Server, count: u64) {
        // Lines of earlier rounds (all seen: each round waits for its own).
        let failed = server.count(&["device link failed", "no ICE-TCP connection"]);
        let closed = server.count(&["device link closed", "TLS handshake not done"]);
        let caller = &mut self.caller;
        let ids = caller.next_id..caller.next_id + count;
        caller.next_id += count;
        runtime.block_on(async {
            for id in ids.clone() {
                let room = (&caller.room_device, caller.room_device_id);
                request(&caller.dht, &caller.key, room.0, room.1, id).await;
            }
        });
        let mut connections = Vec::new();
        let mut answered = std::collections::HashSet::new();
        while answered.len() < ids.clone().count() {
            let event = runtime
                .block_on(async { tokio::time::timeout(WAIT, caller.answers.events.recv()).await })
                .expect("answers keep coming")
                .unwrap();
            let Event::Values { values, .. } = event else { continue };
            for value in values {
                let Ok(answer) = open_request(&caller.key, &value, ProtocolEra::Legacy) else {
                    continue;
                };
                if !answer.is_answer || !ids.contains(&answer.id) || !answered.insert(answer.id) {
                    continue;
                }
                let mut stream =
                    TcpStream::connect(passive_candidate(&answer.ice_message)).unwrap();
                match answer.id % 3 {
                    0 => stream.write_all(b"\x00\x05hello\xff\xfe garbage, not STUN").unwrap(),
                    1 => {} // silence
                    _ => {
                        // Pass ICE as the controlled side, then never start TLS.
                        let stream = stream.try_clone().unwrap();
                        std::thread::spawn(move || answer_checks(stream));
                    }
                }
                connections.push(stream);
            }
        }
        let stalled = count / 3;
        server.wait_for_nth(
            &["device link failed", "no ICE-TCP connection"],
            failed + usize::try_from(count - stalled).unwrap(),
        );

        server.wait_for_nth(
            &["device link closed", "TLS handshake not done"],
            closed + usize::try_from(stalled).unwrap(),
        );
    }
}

/// Plays the caller: passes ICE, completes TLS as the server with `caller`'s chain, sends
/// the multiplexer version, then answers nothing. Returns whether TLS completed and the room
/// then closed the connection.
fn silent_after_handshake(stream: TcpStream, caller: &RoomIdentity) -> bool {
    let mut peer = TlsPeer::new(stream, caller);
    let mut mux = Multiplexer::new();
    let mut handshaken = false;
    loop {
        match peer.read() {
            Ok(Some(_)) => {}
            Ok(None) => return handshaken,
            Err(()) => return false,
        }
        let mut outgoing = Vec::new();
        if !handshaken && !peer.tls.is_handshaking() {
            handshaken = true;
            // The version announcement enables the room's beacons; then silence.
            while let Some(message) = mux.poll_transmit() {
                outgoing.push(message);
            }
        }
        if !peer.write(&outgoing) {
            return handshaken;
        }
    }
}
