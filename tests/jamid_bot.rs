//! A meeting bot in a room of real Jami clients, through the public API only: the bot joins
//! the room's audio over the admin API's WebSocket (tests/support/bot_client.py, PCM frames),
//! says a tone that both jamid callers hear, and hears both callers' tones. A second bot taps
//! one caller (`?listen=`): it hears that caller's tone alone.

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

use std::process::Stdio;
use std::time::{Duration, Instant};

use api::Api;
use common::{Rdv, prerequisite, runs};
use tones::{Callers, assert_mix_minus, heard, play, start_callers};

const CALLERS: [(&str, u32); 2] = [("alice", 440), ("bob", 1000)];
/// The bot's tone, Hz.
const BOT_TONE: u32 = 1500;
/// How long the bot talks, s.
const BOT_SECONDS: &str = "10";

#[test]
fn a_bot_over_the_api_is_heard_and_hears_the_jami_callers() {
    if !prerequisite("python3-websockets", runs(harness::PYTHON, &["-c", "import websockets"])) {
        return;
    }
    let Some(Callers { harness, dir, ids }) = start_callers(&CALLERS) else { return };
    let rdv = Rdv::new();
    rdv.run(&["room", "create", "lobby"]).ok();
    let (mut server, room_id) = harness.serve_room_created(&rdv, "lobby");
    let api = server.api_address();
    let mut playing = Vec::new();
    for (joined, (name, _)) in CALLERS.iter().enumerate() {
        harness.join(&mut server, name, &room_id, joined + 1);
        playing.push(play(&harness, dir.path(), name));
    }
    assert_mix_minus(&harness, dir.path(), &CALLERS);

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/bot_client.py");
    let url = format!("ws://{api}/api/v1/rooms/lobby/bot");
    let prefix = harness.exec_prefix();
    let (tone, listen) = (BOT_TONE.to_string(), CALLERS.map(|(_, freq)| freq.to_string()));
    let bot = std::process::Command::new(&prefix[0])
        .args(&prefix[1..])
        .args([harness::PYTHON, script, &url, server::ADMIN_TOKEN, &tone, BOT_SECONDS])
        .args(&listen)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    server.wait_for(&["bot joined"]);

    // Both callers hear the bot's tone besides each other's.
    let with_bot = [CALLERS[0], CALLERS[1], ("bot", BOT_TONE)];
    for (name, _) in CALLERS {
        let deadline = Instant::now() + Duration::from_secs(8);
        loop {
            let levels = heard(&harness, dir.path(), name, &with_bot);
            eprintln!("{name} hears {levels:?} with the bot");
            if levels[2].1 > -30.0 {
                break;
            }
            assert!(Instant::now() < deadline, "{name} does not hear the bot: {levels:?}");
        }
    }

    // The bot heard both callers.
    let output = bot.wait_with_output().unwrap();
    assert!(output.status.success(), "the bot failed: {output:?}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    eprintln!("the bot heard {report}");
    assert!(report["frames"].as_u64().unwrap() > 100, "{report}");
    for (_, freq) in CALLERS {
        let level = report["levels"][freq.to_string()].as_f64().unwrap();
        assert!(level > -30.0, "the bot does not hear {freq} Hz: {report}");
    }
    server.wait_for(&["bot left"]);

    // A bot tapping alice hears alice alone; tapping nobody in the room is refused.
    let api = Api::new(&harness, &mut server);
    let alice = api.participant_id("lobby", &ids[0]);
    let (status, body) = api.websocket_refusal("/api/v1/rooms/lobby/bot?listen=999");
    assert_eq!((status, body.contains("no participant 999")), (404, true), "{body}");
    let tap = std::process::Command::new(&prefix[0])
        .args(&prefix[1..])
        .args([harness::PYTHON, script, &format!("{url}?listen={alice}"), server::ADMIN_TOKEN])
        .args(["0", "6"])
        .args(&listen)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let output = tap.wait_with_output().unwrap();
    assert!(output.status.success(), "the tap failed: {output:?}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    eprintln!("the tap on alice heard {report}");
    let level = |freq: u32| report["levels"][freq.to_string()].as_f64().unwrap();
    assert!(level(CALLERS[0].1) > -30.0, "the tap does not hear alice: {report}");
    assert!(level(CALLERS[1].1) < -50.0, "the tap hears bob: {report}");
    drop(playing);
    assert_eq!(server.stop(), 0);
}
