//! The moderator web panel in a real headless Chromium, with real Jami clients: signed in
//! with the admin token, the panel shows three jamid callers as they join (live, from the
//! event stream), and a click on Mute takes that caller's tone away from the others.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[path = "support/harness.rs"]
mod harness;
#[path = "support/panel.rs"]
mod panel;
#[path = "support/server.rs"]
mod server;
#[path = "support/tones.rs"]
mod tones;

use std::time::{Duration, Instant};

use common::Rdv;
use panel::Panel;
use tones::{Callers, assert_mix_minus, heard, play, start_callers};

const CALLERS: [(&str, u32); 3] = [("alice", 440), ("bob", 1000), ("carol", 1500)];
/// Longest wait for a mute to be heard.
const HEARD: Duration = Duration::from_secs(12);

#[test]
fn a_moderator_mutes_a_jami_caller_from_the_web_panel() {
    if !panel::prerequisites() {
        return;
    }
    let Some(Callers { harness, dir, ids }) = start_callers(&CALLERS) else { return };
    let rdv = Rdv::new();
    rdv.run(&["room", "create", "lobby"]).ok();
    let (mut server, room_id) = harness.serve_room_created(&rdv, "lobby");
    let base = format!("http://{}", server.api_address());
    let mut panel = Panel::open(&harness, &base, server::ADMIN_TOKEN, "lobby");
    panel.wait_rows(0);

    // The callers appear in the open panel as they join.
    let mut playing = Vec::new();
    for (joined, (name, _)) in CALLERS.iter().enumerate() {
        harness.join(&mut server, name, &room_id, joined + 1);
        playing.push(play(&harness, dir.path(), name));
        panel.wait_rows(joined + 1);
    }
    assert_mix_minus(&harness, dir.path(), &CALLERS);

    // Mute bob from the panel: the button turns to Unmute and carol no longer hears him.
    panel.click(&ids[1], "mute-audio");
    panel.wait_label(&ids[1], "mute-audio", "Unmute");
    server.wait_for(&["operator action", "MuteAudio"]);
    let deadline = Instant::now() + HEARD;
    loop {
        let levels = heard(&harness, dir.path(), "carol", &CALLERS);
        eprintln!("carol hears {levels:?} with bob muted from the panel");
        if levels[1].1 < -50.0 && levels[0].1 > -30.0 {
            break;
        }
        assert!(Instant::now() < deadline, "bob's tone is still heard: {levels:?}");
    }

    // Kick carol from the panel: her call ends and her row goes.
    panel.click(&ids[2], "kick");
    panel.wait_rows(2);
    drop(panel);
    drop(playing);
    assert_eq!(server.stop(), 0);
}
