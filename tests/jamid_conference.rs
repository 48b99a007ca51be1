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

use std::process::{Child, Stdio};
use std::time::Instant;

use common::Rdv;
use harness::{Harness, prerequisites};
use server::Server;

const CALLERS: [(&str, u32); 3] = [("alice", 440), ("bob", 1000), ("carol", 1500)];

/// A tone playing in a caller's microphone until dropped.
struct Playing(Child);

impl Drop for Playing {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Records `name`'s speaker for 3 s and returns each caller tone's level, dBFS, over the
/// last 2 s.
fn heard(harness: &Harness, dir: &std::path::Path, name: &str) -> Vec<(u32, f64)> {
    let file = dir.join(format!("{name}-heard.wav"));
    let file = file.to_str().unwrap();
    harness.run(&["record", name, file, "--seconds", "3"]);
    let mut args = vec!["analyze", file, "--skip", "1"];
    let freqs: Vec<String> = CALLERS.iter().map(|(_, f)| f.to_string()).collect();
    for freq in &freqs {
        args.extend(["--freq", freq]);
    }
    let analysis: serde_json::Value = serde_json::from_str(&harness.run(&args)).unwrap();
    CALLERS
        .iter()
        .map(|(_, freq)| {
            let key = format!("{freq}.0");
            (*freq, analysis["tones_dbfs"][&key].as_f64().unwrap())
        })
        .collect()
}

/// Asserts that each of the first `n` callers hears the others' tones and not its own. A
/// jamid that just joined takes a moment (longer on a loaded machine) before it plays what it
/// receives, so each caller is recorded again until its expectations hold, 8 times at most.
fn assert_mix_minus(harness: &Harness, dir: &std::path::Path, n: usize) {
    for (name, own) in &CALLERS[..n] {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let levels = heard(harness, dir, name);
            eprintln!("{name} hears {levels:?} (recording {attempt})");
            let wrong: Vec<String> = levels[..n]
                .iter()
                .filter_map(|(freq, level)| {
                    let fine = if freq == own { *level < -50.0 } else { *level > -30.0 };
                    (!fine).then(|| format!("{freq} Hz at {level} dBFS"))
                })
                .collect();
            if wrong.is_empty() {
                break;
            }
            assert!(attempt < 8, "{name} (own tone {own} Hz) hears {wrong:?}");
        }
    }
}

#[test]
fn callers_hear_each_other_and_not_themselves() {
    if !prerequisites() {
        return;
    }
    let harness = Harness::with_dht();
    let dir = tempfile::tempdir().unwrap();
    for (name, freq) in CALLERS {
        harness.add_account(name);
        let tone = dir.path().join(format!("{name}.wav"));
        harness.run(&[
            "tone",
            tone.to_str().unwrap(),
            "--freq",
            &freq.to_string(),
            "--seconds",
            "30",
        ]);
    }

    let rdv = Rdv::new();
    let room = rdv.run(&["room", "create", "lobby", "--json"]).json();
    let room_id = room["jami_id"].as_str().unwrap().to_owned();
    let prefix = harness.exec_prefix();
    let wrapper: Vec<&str> = prefix.iter().map(String::as_str).collect();
    let mut server = Server::start(&rdv, &wrapper, "127.0.0.1:4222");
    server.wait_for(&["device announcement stored on the DHT"]);

    let mut playing = Vec::new();
    let mut calls = Vec::new();
    for (joined, (name, _)) in CALLERS.iter().enumerate() {
        let call = join(&harness, &mut server, name, &room_id, joined + 1);
        playing.push(play(&harness, dir.path(), name));
        calls.push(call);
        if joined >= 1 {
            assert_mix_minus(&harness, dir.path(), joined + 1);
        }
    }

    // The room's state is in its logs: who joined, with which codecs, and who left.
    let joined = server.wait_for(&["participant joined", "participants=3"]);
    assert!(joined.contains("codecs=opus/48000"), "{joined}");

    // Carol hangs up: Alice and Bob go on talking.
    harness.run(&["hangup", "carol", "--call", &calls[2]]);
    server.wait_for(&["participant left", "participants=2"]);
    playing.truncate(2);
    assert_mix_minus(&harness, dir.path(), 2);

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
        join(&harness, &mut server, name, &room_id, 3 + joined + 1);
    }
    assert_mix_minus(&harness, dir.path(), 2);
    assert_eq!(server.count(&["ICE-TCP link connected"]), links, "a call opened a new link");
    drop(playing);
    assert_eq!(server.stop(), 0);
}

/// `name` calls the room and waits until its call is CURRENT with media flowing and the
/// server counts `nth` joins in all; returns the call's id.
fn join(harness: &Harness, server: &mut Server, name: &str, room_id: &str, nth: usize) -> String {
    let placed = Instant::now();
    let call = harness.run(&["call", name, room_id, "--wait", "CURRENT", "--timeout", "10"]);
    eprintln!("{name}: CURRENT {:?} after placing the call", placed.elapsed());
    harness.run(&["wait-state", name, "MEDIA", "--call", &call]);
    server.wait_for_nth(&["participant joined"], nth);
    call
}

/// Plays `name`'s tone into its microphone, in a loop, until dropped.
fn play(harness: &Harness, dir: &std::path::Path, name: &str) -> Playing {
    let tone = dir.join(format!("{name}.wav"));
    let child = harness
        .command(&["play", name, tone.to_str().unwrap(), "--loop"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    Playing(child)
}
