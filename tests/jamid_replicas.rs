//! A room survives its replica: two `rdv run` replicas share one PostgreSQL database inside
//! the harness's namespace. A real jamid calls the room, served by the first replica; the
//! first replica is killed (SIGKILL) mid-call; the second takes the room's lease over once it
//! expires, publishes the room on the DHT again, and the same jamid calls the room again
//! successfully, now served by the second replica.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[path = "support/harness.rs"]
mod harness;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/server.rs"]
mod server;
#[path = "support/tones.rs"]
mod tones;

use std::time::Duration;

use common::Rdv;
use postgres::Database;
use server::Server;
use tones::{Callers, start_callers};

const CALLERS: [(&str, u32); 1] = [("alice", 440)];
/// The replicas' leases: a killed replica's room waits this long, plus a sync, for another.
const LEASE: &str = "5";

#[test]
fn a_jami_caller_reaches_the_room_again_after_its_replica_is_killed() {
    let Some(database) = Database::create() else { return };
    let Some(Callers { harness, ids: _, dir: _dir }) = start_callers(&CALLERS) else { return };
    let rdv = Rdv::new();
    let config = format!("[database]\nurl = \"{}\"\n", database.url);
    std::fs::write(rdv.path().join("rdv.toml"), config).unwrap();
    let room = rdv.run(&["room", "create", "lobby", "--json"]).json();
    let room_id = room["jami_id"].as_str().unwrap().to_owned();

    let prefix = harness.exec_prefix();
    let wrapper: Vec<&str> = prefix.iter().map(String::as_str).collect();
    let env = [("RDV_CLUSTER__LEASE_SECONDS", LEASE)];
    let mut first = Server::start_with(&rdv, &wrapper, "127.0.0.1:4222", &env);
    first.wait_for(&["serving", "rooms=1"]);
    first.wait_for(&["device announcement stored on the DHT"]);
    let mut second = Server::start_with(&rdv, &wrapper, "127.0.0.1:4222", &env);
    second.wait_for(&["serving", "rooms=0"]);

    // Alice is in the room, served by the first replica, when it is killed.
    let call = harness.join(&mut first, "alice", &room_id, 1);
    let pid = first.pid().to_string();
    assert!(std::process::Command::new("kill").args(["-KILL", &pid]).status().unwrap().success());
    drop(first);
    let _ = harness.command(&["hangup", "alice", "--call", &call]).output();
    harness.run(&["wait-state", "alice", "OVER", "--call", &call, "--timeout", "15"]);

    // The second replica takes the room over and publishes it again; alice calls again.
    let within = Duration::from_secs(5 + 15);
    second.wait_for_nth_within(&["room lease taken: serving it", "room=lobby"], 1, within);
    second.wait_for_nth_within(&["device announcement stored on the DHT"], 1, within);
    harness.join(&mut second, "alice", &room_id, 1);
    second.wait_for(&["call answered"]);
    assert_eq!(second.count(&["room lease taken: serving it"]), 1, "the room stayed put");
    assert_eq!(second.stop(), 0);
}
