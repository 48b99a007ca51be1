//! Real Jami clients in a room's conference: two, then three jamid 13.7 callers (harness,
//! private namespace) each play a tone into their microphone; each records what it hears.
//! Each hears the others' tones and not its own: the room's mix-minus, end to end through
//! ICE, TLS, SIP, media ICE, SRTP, Opus and back. A hangup leaves the others talking, the
//! last empties the room, and calling again over the open device links works.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[path = "support/harness.rs"]
mod harness;
#[path = "support/server.rs"]
mod server;
#[path = "support/tones.rs"]
mod tones;

use common::Rdv;
use tones::{Callers, assert_mix_minus, play, start_callers};

const CALLERS: [(&str, u32); 3] = [("alice", 440), ("bob", 1000), ("carol", 1500)];

#[test]
fn callers_hear_each_other_and_not_themselves() {
    let Some(Callers { harness, dir, ids }) = start_callers(&CALLERS) else { return };

    let rdv = Rdv::new();
    let (mut server, room_id) = harness.serve_room(&rdv, "lobby");

    let started = std::time::Instant::now();
    let mut playing = Vec::new();
    let mut calls = Vec::new();
    for (joined, (name, _)) in CALLERS.iter().enumerate() {
        let call = harness.join(&mut server, name, &room_id, joined + 1);
        playing.push(play(&harness, dir.path(), name));
        calls.push(call);
        if joined >= 1 {
            assert_mix_minus(&harness, dir.path(), &CALLERS[..=joined]);
        }
    }

    // Each caller's jamid shows the room's three participants (confInfo): their accounts,
    // audio-only (no picture; Jami's 10 × 10 audio-only rectangle at the origin).
    let mut uris: Vec<String> = ids.iter().map(|id| format!("{id}@ring.dht")).collect();
    uris.sort();
    for ((name, _), call) in CALLERS.iter().zip(&calls) {
        let entries = harness.conference_info(name, call, 3);
        let mut seen: Vec<String> = entries.iter().map(|e| e["uri"].clone()).collect();
        seen.sort();
        assert_eq!(seen, uris, "{name}'s confInfo");
        for entry in &entries {
            let rect = ["x", "y", "w", "h"].map(|key| entry[key].as_str());
            assert_eq!(rect, ["0", "0", "10", "10"], "{name}: {entry:?}");
            assert_eq!(entry["videoMuted"], "true", "{name}: {entry:?}");
            assert!(entry["sinkId"].ends_with("_audio_0"), "{name}: {entry:?}");
        }
    }

    // How often confInfo went out while three callers talked (voice activity, joins).
    let rounds = server.count(&["confInfo sent"]);
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "confInfo: {rounds} rounds in {seconds:.0} s ({:.2} per second, each to every participant)",
        rounds as f64 / seconds
    );

    // The room's state is in its logs: who joined, with which codecs, and who left.
    let joined = server.wait_for(&["participant joined", "participants=3"]);
    assert!(joined.contains("codecs=opus/48000"), "{joined}");

    // Carol hangs up: Alice and Bob go on talking.
    harness.run(&["hangup", "carol", "--call", &calls[2]]);
    server.wait_for(&["participant left", "participants=2"]);
    playing.truncate(2);
    assert_mix_minus(&harness, dir.path(), &CALLERS[..2]);

    // The last hangup empties the room and stops its mixer.
    for (name, call) in CALLERS.iter().map(|(name, _)| name).zip(&calls).take(2) {
        harness.run(&["hangup", name, "--call", call]);
    }
    server.wait_for(&["participant left", "participants=0"]);
    server.wait_for(&["mixer stopped: the room is empty"]);

    // Calling again goes over the device links already open (no new ICE-TCP link) and the
    // conference works as before.
    let links = server.count(&["ICE-TCP link connected"]);
    for (joined, name) in ["alice", "bob"].into_iter().enumerate() {
        harness.join(&mut server, name, &room_id, 3 + joined + 1);
    }
    assert_mix_minus(&harness, dir.path(), &CALLERS[..2]);
    assert_eq!(server.count(&["ICE-TCP link connected"]), links, "a call opened a new link");
    drop(playing);
    assert_eq!(server.stop(), 0);
}
