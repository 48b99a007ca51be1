//! Both generations of Jami in one room: Debian's jamid 13.7.0 (legacy connection protocol)
//! and today's jamid 16.0.0 (built by scripts/build-jamid; current protocol, texts over
//! `msg:`). Each hears the other and not itself; today's jamid's text reaches the room's event
//! stream and the room's chat reaches it.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "support/api.rs"]
mod api;
mod common;
#[path = "support/harness.rs"]
mod harness;
#[path = "support/server.rs"]
mod server;
#[path = "support/tones.rs"]
mod tones;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use api::Api;
use common::Rdv;
use harness::{Harness, Jamid};
use tones::{assert_mix_minus, make_tone, play};

const CALLERS: [(&str, u32); 2] = [("old", 440), ("today", 1000)];

#[test]
fn jamid_13_7_and_16_0_share_a_room() {
    if !harness::prerequisites() {
        return;
    }
    let today = Jamid::today();
    if !common::prerequisite("jamid 16.0.0 (bash scripts/build-jamid)", today.is_some()) {
        return;
    }
    let today = today.unwrap();
    let harness = Harness::with_dht();
    let dir = tempfile::tempdir().unwrap();
    let old_id = harness.add_account_as("old", &Jamid::Debian);
    let today_id = harness.add_account_as("today", &today);
    for (name, freq) in CALLERS {
        make_tone(&harness, dir.path(), name, freq);
    }
    let rdv = Rdv::new();
    rdv.run(&["room", "create", "lobby"]).ok();
    let (mut server, room_id) = harness.serve_room_created(&rdv, "lobby");
    let api = Api::new(&harness, &mut server);
    let mut events = api.events("/api/v1/rooms/lobby/events");

    harness.join(&mut server, "old", &room_id, 1);
    let line = server.wait_for(&["verified connection request", &old_id]);
    assert!(line.contains("key=legacy"), "13.7 asks at the legacy key: {line}");
    let call = harness.join(&mut server, "today", &room_id, 2);
    let line = server.wait_for(&["verified connection request", &today_id]);
    assert!(line.contains("key=current"), "16.0 asks at the current key: {line}");
    let _playing: Vec<_> =
        CALLERS.iter().map(|(name, _)| play(&harness, dir.path(), name)).collect();
    assert_mix_minus(&harness, dir.path(), &CALLERS);

    // Today's jamid writes to the room as to any contact: over its msg: channel.
    harness.run(&[
        "dbus",
        "today",
        "cm.sendTextMessage",
        &room_id,
        r#"{"text/plain":"Written in 2026"}"#,
        "0",
    ]);
    let participant = api.participant_id("lobby", &today_id);
    events.next("chat", |kind| {
        kind["text"] == "Written in 2026" && kind["participant"] == participant
    });

    // The room's chat reaches it there too.
    let mut messages = harness
        .command(&["events", "today", "--only", "incomingAccountMessage", "--seconds", "20"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500)); // the listener subscribes to D-Bus first
    api.expect(204, "POST", "/api/v1/rooms/lobby/chat", Some(r#"{"text":"Hello, both of you"}"#));
    let received = BufReader::new(messages.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find(|line| line.contains("Hello, both of you"));
    let _ = messages.kill();
    let _ = messages.wait();
    assert!(received.is_some(), "jamid 16.0 never got the room's chat");

    harness.run(&["hangup", "today", "--call", &call]);
    server.wait_for(&["participant left"]);
}
