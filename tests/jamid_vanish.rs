//! A caller that vanishes: a jamid 13.7 caller in a room is frozen (SIGSTOP: no BYE, no TLS
//! close, its sockets stay open, nothing more comes). The room notices that its media
//! stopped, ends the call and lets the participant go; the other caller's call goes on, and
//! its hangup empties the room. (A killed jamid is simpler: the kernel closes its link at
//! once, and the call ends with it.)

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[path = "support/harness.rs"]
mod harness;
#[path = "support/server.rs"]
mod server;

use std::process::Command;
use std::time::{Duration, Instant};

use common::Rdv;
use harness::{Harness, prerequisites};

/// A frozen process, killed when dropped (however the test ends).
struct Frozen(String);

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-KILL", &self.0]).status();
    }
}

/// The server's media timeout (30 s without a packet) and some slack.
const VANISH_TIMEOUT: Duration = Duration::from_secs(45);

#[test]
fn a_frozen_caller_is_removed_and_the_other_stays() {
    if !prerequisites() {
        return;
    }
    let harness = Harness::with_dht();
    for name in ["alice", "bob"] {
        harness.add_account(name);
    }
    let rdv = Rdv::new();
    let (mut server, room_id) = harness.serve_room(&rdv, "lobby");

    let mut calls = Vec::new();
    for (joined, name) in ["alice", "bob"].into_iter().enumerate() {
        let call = harness.join(&mut server, name, &room_id, joined + 1);
        calls.push(call);
    }

    let stats: serde_json::Value = serde_json::from_str(&harness.run(&["stats", "alice"])).unwrap();
    let pid = stats["alice"]["jamid"]["pid"].as_u64().unwrap().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    let _alice = Frozen(pid);
    let frozen = Instant::now();

    let vanished = server.wait_for_nth_within(&["caller vanished"], 1, VANISH_TIMEOUT);
    eprintln!("noticed {:?} after the freeze: {vanished}", frozen.elapsed());
    server.wait_for(&["participant left", "participants=1"]);
    server.wait_for(&["call ended: the caller's media stopped"]);
    assert_eq!(server.count(&["mixer stopped"]), 0, "bob is still in the room");
    // Bob's call is untouched.
    harness.run(&["wait-state", "bob", "CURRENT", "--call", &calls[1], "--timeout", "1"]);
    harness.run(&["hangup", "bob", "--call", &calls[1]]);
    server.wait_for(&["mixer stopped: the room is empty"]);
    assert_eq!(server.stop(), 0);
}
