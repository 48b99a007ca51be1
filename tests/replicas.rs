//! Several replicas on one PostgreSQL database: each room is served by exactly one of them,
//! through an expiring lease. When a replica is killed (SIGKILL), another takes its rooms
//! over once their leases expire; a draining replica (SIGTERM with cluster.drain_seconds)
//! hands its empty rooms over at once. On loopback, without a DHT peer.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/server.rs"]
mod server;

use std::time::Duration;

use common::Rdv;
use postgres::Database;
use server::Server;

/// Nothing answers there: each replica's DHT node stays alone.
const NO_BOOTSTRAP: &str = "127.0.0.1:9";
/// The killed replica's leases.
const SHORT_LEASE: &str = "5";
/// The draining replica's leases: far longer than any wait below, so that a takeover can
/// only come from the drain releasing them.
const LONG_LEASE: &str = "300";

#[test]
fn rooms_move_to_another_replica_when_theirs_is_killed_or_drains() {
    let Some(database) = Database::create() else { return };
    let rdv = Rdv::new();
    let config = format!("[database]\nurl = \"{}\"\n", database.url);
    std::fs::write(rdv.path().join("rdv.toml"), config).unwrap();
    for room in ["alpha", "beta"] {
        rdv.run(&["room", "create", room]).ok();
    }

    // The first replica takes both rooms; the second, started after, takes none.
    let short = [("RDV_CLUSTER__LEASE_SECONDS", SHORT_LEASE)];
    let mut first = Server::start_with(&rdv, &[], NO_BOOTSTRAP, &short);
    first.wait_for(&["serving", "rooms=2"]);
    let long = [("RDV_CLUSTER__LEASE_SECONDS", LONG_LEASE), ("RDV_CLUSTER__DRAIN_SECONDS", "20")];
    let mut second = Server::start_with(&rdv, &[], NO_BOOTSTRAP, &long);
    second.wait_for(&["serving", "rooms=0"]);

    // Killed, the first replica cannot hand anything over: its leases expire, and the second
    // replica serves both rooms within the lease time and a sync or two.
    let pid = first.pid().to_string();
    assert!(std::process::Command::new("kill").args(["-KILL", &pid]).status().unwrap().success());
    let within = Duration::from_secs(5 + 10);
    second.wait_for_nth_within(&["room lease taken: serving it"], 2, within);
    second.wait_for_nth_within(&["room listening for calls on the DHT"], 2, within);
    drop(first);

    // A third replica waits; the second drains on SIGTERM and hands the empty rooms over at
    // once, long before its 300 s leases would expire.
    let mut third = Server::start_with(&rdv, &[], NO_BOOTSTRAP, &short);
    third.wait_for(&["serving", "rooms=0"]);
    let pid = second.pid().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    second.wait_for(&["draining", "rooms=2"]);
    second.wait_for_nth(&["draining: the empty room is handed over"], 2);
    let taken = second.count(&["room lease taken: serving it"]);
    assert_eq!(taken, 2, "each room was started once and stayed put while its lease was renewed");
    third.wait_for_nth_within(&["room lease taken: serving it"], 2, Duration::from_secs(20));
    assert_eq!(second.stop(), 0);
    assert_eq!(third.stop(), 0);
}
