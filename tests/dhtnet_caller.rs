//! Today's Jami reaches a room: a caller made of today's connection layer (dhtnet's
//! `ConnectionManager` in `LegacyMode::Disabled`, OpenDHT 4.3.1, as daemon 16.0.0) joins a room
//! where a jamid 13.7 caller already is. It finds the room only as today's clients do
//! (certificate at the long-id key, request at the long-id `peer:` key), opens `sip`, `msg:`
//! and `svcdisc://query` (declined at once), is answered, hears and is heard, and chats both
//! ways over `msg:`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "support/api.rs"]
mod api;
mod common;
#[path = "support/dhtnet_caller.rs"]
mod dhtnet_caller;
#[path = "support/harness.rs"]
mod harness;
#[path = "support/server.rs"]
mod server;
#[path = "support/tones.rs"]
mod tones;

use std::time::Duration;

use api::Api;
use common::Rdv;
use dhtnet_caller::DhtnetCaller;
use tones::{Callers, heard, play, start_callers};

/// The jamid 13.7 caller and its tone.
const ALICE: (&str, u32) = ("alice", 1000);
/// The dhtnet caller's tone.
const TODAY_TONE: u32 = 440;
/// Longest wait for a step of the call (DHT lookups included).
const STEP: Duration = Duration::from_secs(40);

#[test]
fn a_caller_on_todays_connection_layer_joins_talks_and_chats() {
    let Some(binary) = dhtnet_caller::binary() else { return };
    let Some(Callers { harness, dir, ids }) = start_callers(&[ALICE]) else { return };
    let rdv = Rdv::new();
    rdv.run(&["room", "create", "lobby"]).ok();
    let (mut server, room_id) = harness.serve_room_created(&rdv, "lobby");
    let api = Api::new(&harness, &mut server);
    let mut events = api.events("/api/v1/rooms/lobby/events");
    harness.join(&mut server, "alice", &room_id, 1);
    let _alice_tone = play(&harness, dir.path(), "alice");

    let identity = dir.path().join("today");
    DhtnetCaller::prepare(&harness, &binary, &identity);
    let tone = TODAY_TONE.to_string();
    let listen = ALICE.1.to_string();
    let mut caller = DhtnetCaller::start(
        &harness,
        &binary,
        &[
            "--identity",
            identity.to_str().unwrap(),
            "--bootstrap",
            "127.0.0.1:4222",
            "--to",
            &room_id,
            "--say",
            "Hello from today's Jami",
            "--tone",
            &tone,
            "--listen-for",
            &listen,
            "--listen-for",
            &tone,
            "--seconds",
            "60",
        ],
    );

    // Found only where today's clients look, and reached through today's key.
    caller.next("dht_found", STEP, |event| event["devices"] == 1);
    let line = server.wait_for(&["verified connection request", "key=current"]);
    eprintln!("{line}");
    // Every channel request answered at once: msg: taken, service discovery declined.
    let msg = caller.next("channel", STEP, |event| {
        event["name"].as_str().is_some_and(|name| name.starts_with("msg:"))
    });
    assert_eq!(msg["accepted"], true, "{msg}");
    let svcdisc = caller.next("channel", STEP, |event| event["name"] == "svcdisc://query");
    assert_eq!(svcdisc["accepted"], false, "{svcdisc}");
    let answered = caller.next("answered", STEP, |_| true);
    assert_eq!(
        answered["user_agent"].as_str().unwrap().split(' ').take(3).collect::<Vec<_>>(),
        ["Jami", "Daemon", "10.0.1"]
    );
    eprintln!(
        "dhtnet caller: answered {} ms after connecting, {} ms after looking the room up",
        answered["ms"], answered["ms_since_lookup"]
    );
    server.wait_for_nth(&["participant joined"], 2);

    // Its text on msg: is its chat in the room.
    let participant = api.participant_id("lobby", &caller_account(&api, &ids));
    events.next("chat", |kind| {
        kind["text"] == "Hello from today's Jami" && kind["participant"] == participant
    });
    // The room's chat reaches it on msg:, where today's clients read texts.
    api.expect(204, "POST", "/api/v1/rooms/lobby/chat", Some(r#"{"text":"Welcome, 2026"}"#));
    let message = caller.next("message", STEP, |event| event["text"] == "Welcome, 2026");
    assert_eq!(message["type"], "text/plain", "{message}");

    // Mix-minus across the generations: each hears the other, not itself.
    caller.next("heard", STEP, |event| {
        event["hz"] == ALICE.1 && event["dbfs"].as_f64().is_some_and(|level| level > -30.0)
    });
    caller.next("heard", STEP, |event| {
        event["hz"] == TODAY_TONE && event["dbfs"].as_f64().is_some_and(|level| level < -50.0)
    });
    let callers = [ALICE, ("today", TODAY_TONE)];
    let mut attempt = 0;
    loop {
        attempt += 1;
        let levels = heard(&harness, dir.path(), "alice", &callers);
        eprintln!("alice hears {levels:?} (recording {attempt})");
        if levels[0].1 < -50.0 && levels[1].1 > -30.0 {
            break;
        }
        assert!(
            attempt < 8,
            "alice (1000 Hz) should hear only today's caller (440 Hz): {levels:?}"
        );
    }
    drop(caller);
    server.wait_for(&["participant left"]);
}

/// The account of the room's participant that is not alice.
fn caller_account(api: &Api, ids: &[String]) -> String {
    let participants = api.participants("lobby");
    let other = participants.iter().find(|p| p["account"] != ids[0].as_str());
    other.and_then(|p| p["account"].as_str()).unwrap().to_owned()
}
