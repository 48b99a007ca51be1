//! Lobby mode with real Jami clients: in a room with `rdv room policy --lobby on`, alice (a
//! moderator) gets straight in; bob's call is answered but he waits in the lobby, neither
//! heard nor shown, hearing nothing, and holding and resuming his call changes none of it. `rdv room allow` lets him in while the server runs: then
//! both hear each other and alice's confInfo lists him.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[path = "support/harness.rs"]
mod harness;
#[path = "support/server.rs"]
mod server;
#[path = "support/tones.rs"]
mod tones;

use common::Rdv;
use tones::{Callers, assert_mix_minus, heard, play, start_callers};

const CALLERS: [(&str, u32); 2] = [("alice", 440), ("bob", 1000)];

#[test]
fn a_caller_in_the_lobby_is_not_heard_until_let_in() {
    let Some(Callers { harness, dir, ids }) = start_callers(&CALLERS) else { return };
    let rdv = Rdv::new();
    rdv.run(&["room", "create", "clinic"]).ok();
    rdv.run(&["room", "moderator", "add", "clinic", &ids[0]]).ok();
    rdv.run(&["room", "policy", "clinic", "--lobby", "on"]).ok();
    let (mut server, room_id) = harness.serve_room_created(&rdv, "clinic");

    let alice_call = harness.join(&mut server, "alice", &room_id, 1);
    let bob_call = harness.join(&mut server, "bob", &room_id, 2);
    server.wait_for(&["waiting in the lobby", &ids[1]]);
    let _playing = [play(&harness, dir.path(), "alice"), play(&harness, dir.path(), "bob")];

    // Bob is neither heard nor listed; he hears nothing.
    let in_lobby = |when: &str| {
        for _ in 0..2 {
            let levels = heard(&harness, dir.path(), "alice", &CALLERS);
            assert!(levels[1].1 < -50.0, "alice hears bob {when}: {levels:?}");
            let levels = heard(&harness, dir.path(), "bob", &CALLERS);
            assert!(levels[0].1 < -50.0, "bob hears the room {when}: {levels:?}");
        }
        let entries = harness.conference_info("alice", &alice_call, 1);
        assert!(entries.iter().all(|e| !e["uri"].starts_with(&ids[1])), "{when}: {entries:?}");
    };
    in_lobby("in the lobby");

    // Holding and resuming does not take him out of the lobby (review H2).
    harness.hold_and_resume(&mut server, "bob", &bob_call, 0);
    in_lobby("after his hold and resume");

    // Alice's side lets him in.
    rdv.run(&["room", "allow", "clinic", &ids[1]]).ok();
    server.wait_for(&["admitted from the lobby", &ids[1]]);
    assert_mix_minus(&harness, dir.path(), &CALLERS);
    harness.conference_info("alice", &alice_call, 2);
    assert_eq!(server.stop(), 0);
}
