//! Active-speaker mode with real Jami clients: in a room whose policy lets the big tile follow
//! the speakers (`rdv room policy --active-speaker on`), two jamid 13.7 callers join and only
//! bob speaks (a tone in his microphone). Alice's confInfo soon shows bob as the active
//! participant, and not herself.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[path = "support/harness.rs"]
mod harness;
#[path = "support/server.rs"]
mod server;
#[path = "support/tones.rs"]
mod tones;

use std::time::{Duration, Instant};

use common::Rdv;
use tones::{Callers, play, start_callers};

const CALLERS: [(&str, u32); 2] = [("alice", 440), ("bob", 1000)];

#[test]
fn the_big_tile_follows_the_speaker() {
    let Some(Callers { harness, dir, ids }) = start_callers(&CALLERS) else { return };
    let bob_id = ids[1].as_str();
    let rdv = Rdv::new();
    rdv.run(&["room", "create", "stage"]).ok();
    rdv.run(&[
        "room",
        "policy",
        "stage",
        "--active-speaker",
        "on",
        "--layout",
        "one-big-with-small",
    ])
    .ok();
    let (mut server, room_id) = harness.serve_room_created(&rdv, "stage");

    let alice_call = harness.join(&mut server, "alice", &room_id, 1);
    harness.join(&mut server, "bob", &room_id, 2);
    let _bob_speaks = play(&harness, dir.path(), "bob");
    server.wait_for(&["the big tile follows the speaker"]);

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let entries = harness.conference_info("alice", &alice_call, 2);
        let active: Vec<&str> =
            entries.iter().filter(|e| e["active"] == "true").map(|e| e["uri"].as_str()).collect();
        if active.len() == 1 && active[0].starts_with(bob_id) {
            break;
        }
        assert!(Instant::now() < deadline, "alice's confInfo: {entries:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(server.stop(), 0);
}
