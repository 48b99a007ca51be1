//! Moderation from real Jami clients: three jamid 13.7 callers in a room, alice a moderator
//! of it (`rdv room moderator add`). Orders go as confOrder from jamid's own API
//! (muteStream, raiseHand, hangupParticipant); the others' confInfo, audio and call state
//! show them, and the same orders from a non-moderator change nothing. A moderator's mute
//! is a force mute: neither the participant's own unmute nor its hold and resume bring its
//! tone back. A banned account, or anyone but a moderator in a locked room, is refused even
//! over an open link, and a caller banned during its call is hung up.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[path = "support/harness.rs"]
mod harness;
#[path = "support/server.rs"]
mod server;
#[path = "support/tones.rs"]
mod tones;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::Rdv;
use harness::Harness;
use tones::{Callers, assert_mix_minus, heard, play, start_callers};

const CALLERS: [(&str, u32); 3] = [("alice", 440), ("bob", 1000), ("carol", 1500)];
/// Longest wait for an order to show in a jamid's confInfo.
const SHOWN: Duration = Duration::from_secs(10);

type Entry = BTreeMap<String, String>;

/// Waits until `name`'s confInfo entry for account `uri` satisfies `check`.
fn wait_entry(
    harness: &Harness,
    name: &str,
    call: &str,
    uri: &str,
    check: impl Fn(&Entry) -> bool,
) {
    let deadline = Instant::now() + SHOWN;
    loop {
        let entries = harness.conference_info(name, call, 1);
        if entries.iter().any(|e| e["uri"].starts_with(uri) && check(e)) {
            return;
        }
        assert!(Instant::now() < deadline, "{name}'s confInfo never showed it: {entries:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn moderators_order_and_others_cannot() {
    let Some(Callers { harness, dir, ids }) = start_callers(&CALLERS) else { return };
    let rdv = Rdv::new();
    rdv.run(&["room", "create", "lobby"]).ok();
    rdv.run(&["room", "moderator", "add", "lobby", &ids[0]]).ok();
    let (mut server, room_id) = harness.serve_room_created(&rdv, "lobby");

    let mut calls = Vec::new();
    let mut playing = Vec::new();
    for (joined, (name, _)) in CALLERS.iter().enumerate() {
        calls.push(harness.join(&mut server, name, &room_id, joined + 1));
        playing.push(play(&harness, dir.path(), name));
    }
    assert_mix_minus(&harness, dir.path(), &CALLERS);
    // Alice is shown as a moderator, bob is not.
    wait_entry(&harness, "bob", &calls[1], &ids[0], |e| e["isModerator"] == "true");
    wait_entry(&harness, "bob", &calls[1], &ids[1], |e| e["isModerator"] == "false");

    // Bob (not a moderator) tries to mute alice: refused, she is still heard.
    let alice = harness.conference_info("bob", &calls[1], 3);
    let alice = alice.iter().find(|e| e["uri"].starts_with(&ids[0])).unwrap().clone();
    harness.run(&[
        "dbus",
        "bob",
        "muteStream",
        &calls[1],
        &ids[0],
        &alice["device"],
        &alice["sinkId"],
        "true",
    ]);
    server.wait_for(&["order refused: not a moderator", &ids[1]]);
    let levels = heard(&harness, dir.path(), "carol", &CALLERS);
    assert!(levels[0].1 > -30.0, "carol no longer hears alice: {levels:?}");

    // Alice mutes bob: the others see it and no longer hear his tone.
    let bob = harness.conference_info("alice", &calls[0], 3);
    let bob = bob.iter().find(|e| e["uri"].starts_with(&ids[1])).unwrap().clone();
    harness.run(&[
        "dbus",
        "alice",
        "muteStream",
        &calls[0],
        &ids[1],
        &bob["device"],
        &bob["sinkId"],
        "true",
    ]);
    server.wait_for(&["order carried out", &ids[0], "MuteAudio"]);
    wait_entry(&harness, "carol", &calls[2], &ids[1], |e| e["audioModeratorMuted"] == "true");
    let deadline = Instant::now() + SHOWN;
    loop {
        let levels = heard(&harness, dir.path(), "carol", &CALLERS);
        eprintln!("carol hears {levels:?} with bob muted");
        if levels[1].1 < -50.0 && levels[0].1 > -30.0 {
            break;
        }
        assert!(Instant::now() < deadline, "bob's tone is still heard: {levels:?}");
    }

    // Bob mutes and unmutes himself: a moderator's mute is a force mute, his tone stays out.
    for muted in ["true", "false"] {
        harness.run(&["dbus", "bob", "muteLocalMedia", &calls[1], "MEDIA_TYPE_AUDIO", muted]);
        let state = format!("muted={muted}");
        server.wait_for(&["the caller's microphone mute changed", &state]);
    }
    let levels = heard(&harness, dir.path(), "carol", &CALLERS);
    assert!(levels[1].1 < -50.0, "bob undid a moderator's mute: {levels:?}");
    // Nor does holding and resuming the call: the re-INVITEs keep him the same participant,
    // force-muted (review H2).
    harness.hold_and_resume(&mut server, "bob", &calls[1], 0);
    wait_entry(&harness, "carol", &calls[2], &ids[1], |e| e["audioModeratorMuted"] == "true");
    let levels = heard(&harness, dir.path(), "carol", &CALLERS);
    assert!(levels[1].1 < -50.0, "bob's hold and resume undid a moderator's mute: {levels:?}");
    assert!(levels[0].1 > -30.0, "carol no longer hears alice: {levels:?}");

    // The layout: bob may not change it, alice may.
    harness.run(&["dbus", "bob", "setConferenceLayout", &calls[1], "2"]);
    server.wait_for_nth(&["order refused: not a moderator", &ids[1]], 2);
    harness.run(&["dbus", "alice", "setConferenceLayout", &calls[0], "1"]);
    server.wait_for(&["order carried out", &ids[0], "Layout(1)"]);

    // Carol raises her hand: everyone sees it.
    let carol = harness.conference_info("carol", &calls[2], 3);
    let carol = carol.iter().find(|e| e["uri"].starts_with(&ids[2])).unwrap().clone();
    harness.run(&["dbus", "carol", "raiseHand", &calls[2], &ids[2], &carol["device"], "true"]);
    wait_entry(&harness, "alice", &calls[0], &ids[2], |e| e["handRaised"] == "true");

    // Alice lowers it.
    harness.run(&["dbus", "alice", "raiseHand", &calls[0], &ids[2], &carol["device"], "false"]);
    wait_entry(&harness, "bob", &calls[1], &ids[2], |e| e["handRaised"] == "false");

    // Alice hangs up carol: carol's call ends, alice and bob stay.
    harness.run(&["dbus", "alice", "hangupParticipant", &calls[0], &ids[2], &carol["device"]]);
    server.wait_for(&["call hung up by a moderator"]);
    harness.run(&["wait-state", "carol", "OVER", "--call", &calls[2], "--timeout", "10"]);
    server.wait_for(&["participant left", "participants=2"]);

    // Banned while its link is still open, carol calls again: declined (603).
    // The CLI writes the store; the running server takes it at its next sync.
    rdv.run(&["room", "ban", "lobby", &ids[2]]).ok();
    server.wait_for_nth(&["room roles changed"], 1);
    let call = harness.run(&["call", "carol", &room_id]);
    server.wait_for(&["refused a call on an open link", &ids[2], "reason=banned"]);
    harness.run(&["wait-state", "carol", "OVER", "--call", &call, "--timeout", "10"]);
    // Unbanned, but the room is locked: refused again; unlocked, she is back.
    rdv.run(&["room", "unban", "lobby", &ids[2]]).ok();
    rdv.run(&["room", "policy", "lobby", "--lock", "on"]).ok();
    server.wait_for_nth(&["room roles changed"], 2);
    server.wait_for(&["room policy changed", "locked: true"]);
    let call = harness.run(&["call", "carol", &room_id]);
    server.wait_for(&["refused a call on an open link", &ids[2], "reason=the room is locked"]);
    harness.run(&["wait-state", "carol", "OVER", "--call", &call, "--timeout", "10"]);
    rdv.run(&["room", "policy", "lobby", "--lock", "off"]).ok();
    server.wait_for(&["room policy changed", "locked: false"]);
    let carol_call = harness.join(&mut server, "carol", &room_id, 4);

    // Banned while in the call, then holding and resuming: hung up (by the ban when the
    // server reads it, or by the 603 to the re-INVITE if that comes first).
    rdv.run(&["room", "ban", "lobby", &ids[2]]).ok();
    for method in ["hold", "unhold", "resume"] {
        let _ = harness.command(&["dbus", "carol", method, &carol_call]).output();
    }
    harness.run(&["wait-state", "carol", "OVER", "--call", &carol_call, "--timeout", "15"]);
    server.wait_for(&["participant left", "participants=2"]);
    drop(playing);
    assert_eq!(server.stop(), 0);
}
