//! The admin API with real Jami clients: three jamid 13.7 callers in a room, steered over
//! HTTP as an operator or a meeting bot would. A mute through the API takes that caller's
//! tone away from the others; mute-all silences everyone; a kick ends the call; a chat
//! message arrives at each jamid as an in-call message; the room's event stream tells
//! joins, mutes and leaves in the order they happened, as do signed webhooks; and the
//! metrics count the calls.

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
use std::time::{Duration, Instant};

use api::Api;
use common::Rdv;
use tones::{Callers, assert_mix_minus, heard, play, start_callers};

const CALLERS: [(&str, u32); 3] = [("alice", 440), ("bob", 1000), ("carol", 1500)];
/// Longest wait for a change to be heard.
const HEARD: Duration = Duration::from_secs(12);

#[test]
fn the_admin_api_steers_a_room_of_real_jami_callers() {
    let Some(Callers { harness, dir, ids }) = start_callers(&CALLERS) else { return };
    let rdv = Rdv::new();
    rdv.run(&["room", "create", "lobby"]).ok();
    // A webhook receiver in the namespace; the server's rdv.toml points at it.
    let mut receiver = WebhookReceiver::start(&harness);
    let config = format!(
        "[[webhooks]]\nurl = \"http://127.0.0.1:{}/hooks\"\nsecret = \"{WEBHOOK_SECRET}\"\n\
         events = [\"joined\", \"left\", \"muted\"]\n",
        receiver.port
    );
    std::fs::write(rdv.path().join("rdv.toml"), config).unwrap();
    let (mut server, room_id) = harness.serve_room_created(&rdv, "lobby");
    let api = Api::new(&harness, &mut server);
    let mut events = api.events("/api/v1/rooms/lobby/events");
    let room = api.expect(200, "GET", "/api/v1/rooms/lobby", None);
    assert_eq!(room["jami_id"], room_id.as_str());

    let mut calls = Vec::new();
    let mut playing = Vec::new();
    for (joined, (name, _)) in CALLERS.iter().enumerate() {
        calls.push(harness.join(&mut server, name, &room_id, joined + 1));
        playing.push(play(&harness, dir.path(), name));
    }
    for id in &ids {
        events.next("joined", |kind| kind["account"] == id.as_str());
    }
    let participants = api.participants("lobby");
    assert_eq!(participants.len(), 3, "{participants:?}");
    assert!(participants.iter().all(|p| p["call_id"].as_str().is_some_and(|c| !c.is_empty())));
    assert_mix_minus(&harness, dir.path(), &CALLERS);

    // Mute bob through the API: carol no longer hears him, and still hears alice.
    let bob = api.participant_id("lobby", &ids[1]);
    api.expect(
        204,
        "POST",
        &format!("/api/v1/rooms/lobby/participants/{bob}/mute"),
        Some(r#"{"audio":true}"#),
    );
    events.next("muted", |kind| kind["participant"] == bob && kind["by_moderator"] == true);
    wait_heard(&harness, dir.path(), "carol", |levels| levels[1].1 < -50.0 && levels[0].1 > -30.0);
    let bob_state = api.participants("lobby").into_iter().find(|p| p["id"] == bob).unwrap();
    assert_eq!(bob_state["audio_moderator_muted"], true, "{bob_state}");

    // Take bob's picture off his tile: the API shows it.
    api.expect(
        204,
        "POST",
        &format!("/api/v1/rooms/lobby/participants/{bob}/mute"),
        Some(r#"{"video":true}"#),
    );
    events.next("muted", |kind| kind["participant"] == bob && kind["audio"] == false);
    let bob_state = api.participants("lobby").into_iter().find(|p| p["id"] == bob).unwrap();
    assert_eq!(bob_state["video_moderator_muted"], true, "{bob_state}");

    // Mute everyone (no one is a moderator): carol hears no one.
    api.expect(204, "POST", "/api/v1/rooms/lobby/mute-all", None);
    wait_heard(&harness, dir.path(), "carol", |levels| levels[0].1 < -50.0 && levels[1].1 < -50.0);
    // Alice unmuted again: carol hears her, bob stays muted.
    let alice = api.participant_id("lobby", &ids[0]);
    api.expect(
        204,
        "POST",
        &format!("/api/v1/rooms/lobby/participants/{alice}/mute"),
        Some(r#"{"audio":false}"#),
    );
    wait_heard(&harness, dir.path(), "carol", |levels| levels[0].1 > -30.0 && levels[1].1 < -50.0);

    // A chat message from the API reaches each jamid: 13.7 as an in-call text message, 16.0
    // (JAMID_BIN) on its msg: channel, as an account message.
    let mut messages = harness
        .command(&[
            "events",
            "alice",
            "--only",
            "incomingMessage",
            "--only",
            "incomingAccountMessage",
            "--seconds",
            "20",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500)); // the listener subscribes to D-Bus first
    api.expect(
        204,
        "POST",
        "/api/v1/rooms/lobby/chat",
        Some(r#"{"text":"The meeting ends in 5 minutes"}"#),
    );
    let stdout = messages.stdout.take().unwrap();
    let received = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|line| line.contains("The meeting ends in 5 minutes"));
    let _ = messages.kill();
    let _ = messages.wait();
    assert!(received.is_some(), "alice never got the chat message");

    // Alice writes in her call: the stream tells who wrote what (for bots).
    harness.run(&[
        "dbus",
        "alice",
        "sendTextMessage",
        &calls[0],
        r#"{"text/plain":"Can everyone hear me?"}"#,
        "false",
    ]);
    let alice_id = api.participant_id("lobby", &ids[0]);
    events.next("chat", |kind| {
        kind["text"] == "Can everyone hear me?" && kind["participant"] == alice_id
    });

    // Kick carol: her call ends, the others stay, and the stream says she left.
    let carol = api.participant_id("lobby", &ids[2]);
    api.expect(204, "POST", &format!("/api/v1/rooms/lobby/participants/{carol}/kick"), None);
    harness.run(&["wait-state", "carol", "OVER", "--call", &calls[2], "--timeout", "10"]);
    events.next("left", |kind| kind["participant"] == carol);
    assert_eq!(api.participants("lobby").len(), 2);

    // The metrics count what happened: three calls answered, each set up once, two left in.
    assert_eq!(api.metric(r#"rdv_calls_total{outcome="answered"}"#), 3.0);
    assert_eq!(api.metric("rdv_call_setup_seconds_count"), 3.0);
    assert_eq!(api.metric(r#"rdv_participants{room="lobby"}"#), 2.0);
    assert_eq!(api.metric("rdv_rooms"), 1.0);
    assert!(api.metric("rdv_mixer_cpu_seconds_total") > 0.0);
    assert!(api.metric("rdv_dht_nodes{family=\"ipv4\"}") >= 1.0);
    let setup = api.metric("rdv_call_setup_seconds_sum") / 3.0;
    eprintln!("mean call setup: {setup:.2} s (verified connection request to call answered)");

    // The webhook got the same story, signed and in order: three joins, mutes, carol left.
    let deliveries = receiver.until(|event| event["kind"]["type"] == "left");
    let kinds: Vec<&str> =
        deliveries.iter().map(|event| event["kind"]["type"].as_str().unwrap()).collect();
    assert_eq!(&kinds[..3], ["joined"; 3], "{kinds:?}");
    let joined: Vec<&str> =
        deliveries[..3].iter().map(|event| event["kind"]["account"].as_str().unwrap()).collect();
    assert_eq!(joined, ids.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(kinds[3..kinds.len() - 1].iter().all(|kind| *kind == "muted"), "{kinds:?}");
    assert_eq!(deliveries.last().unwrap()["kind"]["participant"], carol);

    // Errors are JSON with a stable code: an unknown participant, a wrong token, a bad body.
    let (status, body) = api.request("POST", "/api/v1/rooms/lobby/participants/999/kick", None);
    assert_eq!((status, body.contains("\"not_found\"")), (404, true), "{body}");
    let (status, _) = api.request_as(Some("wrong-token"), "GET", "/api/v1/rooms", None);
    assert_eq!(status, 401);
    let (status, body) =
        api.request("POST", "/api/v1/rooms/lobby/actions", Some(r#"{"action":"dance"}"#));
    assert_eq!((status, body.contains("\"bad_request\"")), (400, true), "{body}");
    drop(playing);
    assert_eq!(server.stop(), 0);
}

/// The webhooks' shared secret in this test.
const WEBHOOK_SECRET: &str = "rdv-test-webhook-secret";

/// tests/support/webhook_receiver.py, run in the namespace: every delivery it got.
struct WebhookReceiver {
    child: std::process::Child,
    port: u16,
    deliveries: std::sync::mpsc::Receiver<String>,
}

impl WebhookReceiver {
    fn start(harness: &harness::Harness) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/webhook_receiver.py");
        let prefix = harness.exec_prefix();
        let mut child = std::process::Command::new(&prefix[0])
            .args(&prefix[1..])
            .args([harness::PYTHON, script])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = lines.next().unwrap().unwrap().trim().parse().unwrap();
        let (sender, deliveries) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, port, deliveries }
    }

    /// The events delivered, each checked against its signature, up to the first that
    /// satisfies `last`.
    fn until(&mut self, last: impl Fn(&serde_json::Value) -> bool) -> Vec<serde_json::Value> {
        let mut events = Vec::new();
        loop {
            let line = self
                .deliveries
                .recv_timeout(HEARD)
                .unwrap_or_else(|_| panic!("the webhook stopped at {events:#?}"));
            let delivery: serde_json::Value = serde_json::from_str(&line).unwrap();
            let headers = &delivery["headers"];
            let body = delivery["body"].as_str().unwrap();
            let timestamp: u64 = headers["x-rdv-timestamp"].as_str().unwrap().parse().unwrap();
            let signature = headers["x-rdv-signature"].as_str().unwrap();
            assert!(
                rdv::webhooks::verify_signature(
                    WEBHOOK_SECRET,
                    timestamp,
                    body.as_bytes(),
                    signature
                ),
                "bad signature on {delivery}"
            );
            assert_eq!(delivery["path"], "/hooks");
            let event: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(headers["x-rdv-event"], event["kind"]["type"]);
            let done = last(&event);
            events.push(event);
            if done {
                return events;
            }
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Records `name` until `check` holds for the levels it hears, within [`HEARD`].
fn wait_heard(
    harness: &harness::Harness,
    dir: &std::path::Path,
    name: &str,
    check: impl Fn(&[(u32, f64)]) -> bool,
) {
    let deadline = Instant::now() + HEARD;
    loop {
        let levels = heard(harness, dir, name, &CALLERS);
        eprintln!("{name} hears {levels:?}");
        if check(&levels) {
            return;
        }
        assert!(Instant::now() < deadline, "{name} still hears {levels:?}");
    }
}
