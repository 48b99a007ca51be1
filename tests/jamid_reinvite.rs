//! A re-INVITE from a real Jami client: a jamid 13.7 caller in a room puts its call on hold
//! and takes it off again. Each is a re-INVITE with a new media ICE session (jami-protocol.md
//! §6.6); the room answers it as a new offer, and afterwards both callers hear each other
//! again. Muting the microphone reaches the room as an INFO. Muting the microphone reaches the room as an INFO.

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

const CALLERS: [(&str, u32); 2] = [("alice", 440), ("bob", 1000)];

#[test]
fn hold_and_resume_keep_the_caller_in_the_conference() {
    let Some(Callers { harness, dir, ids: _ }) = start_callers(&CALLERS) else { return };
    let rdv = Rdv::new();
    let (mut server, room_id) = harness.serve_room(&rdv, "lobby");

    let mut calls = Vec::new();
    let mut playing = Vec::new();
    for (joined, (name, _)) in CALLERS.iter().enumerate() {
        let call = harness.join(&mut server, name, &room_id, joined + 1);
        playing.push(play(&harness, dir.path(), name));
        calls.push(call);
    }
    assert_mix_minus(&harness, dir.path(), &CALLERS);

    // Hold, then resume: two re-INVITEs, each answered with new media.
    let alice_call = &calls[0];
    harness.run(&["dbus", "alice", "hold", alice_call]);
    server.wait_for_nth(&["participant joined"], 3);
    // jamid 13.7's D-Bus calls it unhold, 16.0's resume.
    let unhold = harness.command(&["dbus", "alice", "unhold", alice_call]).output().unwrap();
    if !unhold.status.success() {
        assert!(String::from_utf8_lossy(&unhold.stderr).contains("unknown method"), "{unhold:?}");
        harness.run(&["dbus", "alice", "resume", alice_call]);
    }
    server.wait_for_nth(&["participant joined"], 4);
    harness.run(&["wait-state", "alice", "CURRENT", "--call", alice_call]);
    assert_mix_minus(&harness, dir.path(), &CALLERS);
    assert_eq!(
        server.count(&["participant joined", "participants=3"]),
        0,
        "a held call was counted twice"
    );

    // Muting the microphone is an INFO (mute_state), not a re-INVITE.
    harness.run(&["dbus", "alice", "muteLocalMedia", alice_call, "MEDIA_TYPE_AUDIO", "true"]);
    server.wait_for(&["the caller's microphone mute changed", "muted=true"]);
    drop(playing);
    assert_eq!(server.stop(), 0);
}
