//! A re-INVITE from a real Jami client: a jamid 13.7 caller in a room puts its call on hold
//! and takes it off again. Each is a re-INVITE with a new media ICE session (jami-protocol.md
//! §6.6); the room answers it with new media for the same participant (no leave and join),
//! and afterwards both callers hear each other again. Muting the microphone reaches the room
//! as an INFO.

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
    harness.hold_and_resume(&mut server, "alice", alice_call, 0);
    assert_mix_minus(&harness, dir.path(), &CALLERS);
    assert_eq!(server.count(&["participant joined"]), 2, "a held call joined again");
    assert_eq!(server.count(&["participant left"]), 0, "a held call left the room");

    // Muting the microphone is an INFO (mute_state), not a re-INVITE.
    harness.run(&["dbus", "alice", "muteLocalMedia", alice_call, "MEDIA_TYPE_AUDIO", "true"]);
    server.wait_for(&["the caller's microphone mute changed", "muted=true"]);
    drop(playing);
    assert_eq!(server.stop(), 0);
}
