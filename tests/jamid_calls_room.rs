//! A real Jami client calls a room: jamid 13.7.0, driven by ../shared/interop/jamid-harness.py
//! in a private network namespace with its own OpenDHT node, places a call to the room's Jami
//! ID, and `rdv run` (in the same namespace) verifies the caller's connection request.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[path = "support/harness.rs"]
mod harness;
#[path = "support/server.rs"]
mod server;

use std::time::Instant;

use common::Rdv;
use harness::{Harness, prerequisites};
use server::Server;

#[test]
fn jamid_calls_a_room_and_the_server_verifies_the_request() {
    if !prerequisites() {
        return;
    }
    let harness = Harness::new();
    harness.run(&["netns-up"]);
    harness.run(&["dht-start", "--port", "4222"]);
    harness.start_instance("caller");
    harness.run(&["create-account", "caller", "--dht", "127.0.0.1:4222"]);
    let caller_id = harness.run(&["id", "caller"]);
    assert_eq!(caller_id.len(), 40, "{caller_id}");

    let rdv = Rdv::new();
    let room = rdv.run(&["room", "create", "lobby", "--json"]).json();
    let room_id = room["jami_id"].as_str().unwrap().to_owned();
    let prefix = harness.exec_prefix();
    let wrapper: Vec<&str> = prefix.iter().map(String::as_str).collect();
    let mut server = Server::start(&rdv, &wrapper, "127.0.0.1:4222");
    server.wait_for(&["device announcement stored on the DHT"]);
    server.wait_for(&["device certificate stored on the DHT"]);

    let placed = Instant::now();
    let call_id = harness.run(&["call", "caller", &room_id]);
    let line = server.wait_for(&["verified connection request", "room=lobby", &caller_id]);
    let elapsed = placed.elapsed();
    eprintln!("jamid call {call_id}: verified request logged {elapsed:?} after placing the call");
    eprintln!("{line}");
    let line = server.wait_for(&["ICE-TCP link connected", "room=lobby", &caller_id]);
    eprintln!("jamid call {call_id}: {line}");

    let _ = harness.command(&["hangup", "caller", "--all"]).output();
    assert_eq!(server.stop(), 0);
}
