//! A real Jami client calls a room: jamid 13.7.0, driven by ../shared/interop/jamid-harness.py
//! in a private network namespace with its own OpenDHT node, places a call to the room's Jami
//! ID; `rdv run` (in the same namespace) verifies the request, opens the device link (ICE-TCP,
//! TLS, multiplexer), answers the INVITE on the `sip` channel, and runs media ICE and SRTP.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[path = "support/harness.rs"]
mod harness;
#[path = "support/server.rs"]
mod server;

use std::time::Instant;

use common::Rdv;
use harness::{Harness, prerequisites};

#[test]
fn jamid_calls_a_room_and_the_call_is_answered() {
    if !prerequisites() {
        return;
    }
    let harness = Harness::with_dht();
    let caller_id = harness.add_account("caller");

    let rdv = Rdv::new();
    let (mut server, room_id) = harness.serve_room(&rdv, "lobby");
    server.wait_for(&["device certificate stored on the DHT"]);

    // A call: the room verifies the request, answers over the DHT, the ICE-TCP link and TLS
    // come up with the caller's published chain, the caller opens `sip` and sends INVITE, and
    // the room answers 200 with its SDP. The call is CURRENT; media ICE completes on RTP and
    // RTCP, and the caller's SRTP decrypts with the key of its offer.
    let placed = Instant::now();
    let call_id =
        harness.run(&["call", "caller", &room_id, "--wait", "CURRENT", "--timeout", "10"]);
    let current = placed.elapsed();
    let line = server.wait_for(&["verified connection request", "room=lobby", &caller_id]);
    eprintln!("{line}");
    let steps: [&[&str]; 4] = [
        &["ICE-TCP link connected"],
        &["TLS established"],
        &["channel open", "name=sip"],
        &["call answered"],
    ];
    for step in steps {
        eprintln!("{}", server.wait_for(&[step, &["room=lobby", &caller_id]].concat()));
    }
    for component in ["component=1", "component=2"] {
        server.wait_for(&["media ICE nominated", "kind=Audio", component]);
        server.wait_for(&["first media packet received", "kind=Audio", component]);
    }
    eprintln!("jamid call {call_id}: CURRENT {current:?} after placing it");
    // Hang up once media flows (interop/README.md §5.7: an early hangup can crash jamid).
    harness.run(&["wait-state", "caller", "MEDIA", "--call", &call_id]);
    harness.run(&["hangup", "caller", "--call", &call_id]);
    server.wait_for(&["call ended by the caller", &caller_id]);

    // A second call, with video, over the cached link: no new TLS session.
    let placed = Instant::now();
    let call_id = harness.run(&[
        "call",
        "caller",
        &room_id,
        "--video",
        "--wait",
        "CURRENT",
        "--timeout",
        "10",
    ]);
    let current = placed.elapsed();
    server.wait_for(&["call answered", "Video", &caller_id]);
    server.wait_for(&["media ICE nominated", "kind=Video", "component=2"]);
    assert_eq!(server.count(&["TLS established"]), 1, "the link is reused");
    eprintln!("jamid video call {call_id} over the cached link: CURRENT {current:?}");
    harness.run(&["wait-state", "caller", "MEDIA", "--call", &call_id]);
    harness.run(&["hangup", "caller", "--call", &call_id]);
    server.wait_for_nth(&["call ended by the caller", &caller_id], 2);

    // Banned: the next request gets no answer at all (the call stays in jamid's 30 s wait);
    // it is logged and counted. Unbanned, the caller gets through again.
    rdv.run(&["room", "ban", "lobby", &caller_id]).ok();
    // A fresh device connection is needed for a new request: jamid reuses the cached link
    // otherwise, so close it from the room's side by restarting the server.
    assert_eq!(server.stop(), 0);
    let mut server = harness.start_server(&rdv);
    harness.run(&["call", "caller", &room_id]);
    let line = server.wait_for(&["refused a caller", "reason=banned", &caller_id]);
    assert!(line.contains("refused=1"), "{line}");
    assert_eq!(server.count(&["ICE-TCP link connected"]), 0, "no answer, no link");

    let _ = harness.command(&["hangup", "caller", "--all"]).output();
    assert_eq!(server.stop(), 0);
}
