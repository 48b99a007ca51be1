//! Recording a room of real Jami clients through the admin API: three jamid callers play
//! their tones; the recording, started and stopped over the API, is a complete Ogg Opus file
//! (ffmpeg decodes it) that holds each caller's tone, and the callers' Jami clients show the
//! room as recorded meanwhile. A recording that cannot be written is refused with a clear
//! error and the conference goes on; one running when the server stops is finished too. A
//! recording with the composite is a WebM file (Opus and VP8) of the right length. A
//! recording whose disk fills up midway ends as failed, said on the event stream, and the
//! room goes on. Each recording's end is an event once its file is complete.

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

use std::time::{Duration, Instant};

use api::Api;
use common::Rdv;
use serde_json::json;
use tones::{Callers, assert_mix_minus, play, start_callers};

const CALLERS: [(&str, u32); 3] = [("alice", 440), ("bob", 1000), ("carol", 1500)];
/// How much of the conference is recorded.
const RECORDED: Duration = Duration::from_secs(4);

#[test]
fn a_recording_holds_every_callers_tone() {
    let Some(Callers { harness, dir, ids: _ }) = start_callers(&CALLERS) else { return };
    let rdv = Rdv::new();
    rdv.run(&["room", "create", "lobby"]).ok();
    let (mut server, room_id) = harness.serve_room_created(&rdv, "lobby");
    let api = Api::new(&harness, &mut server);

    // Nobody in the room: nothing to record.
    let (status, body) = api.request("POST", "/api/v1/rooms/lobby/recording/start", None);
    assert_eq!((status, body.contains("\"conflict\"")), (409, true), "{body}");

    let mut calls = Vec::new();
    let mut playing = Vec::new();
    for (joined, (name, _)) in CALLERS.iter().enumerate() {
        calls.push(harness.join(&mut server, name, &room_id, joined + 1));
        playing.push(play(&harness, dir.path(), name));
    }
    assert_mix_minus(&harness, dir.path(), &CALLERS);

    // Where recordings go is a file, not a directory: refused, clearly, and the room goes on.
    let recordings = rdv.data_dir().join("recordings");
    std::fs::write(&recordings, b"in the way").unwrap();
    let (status, body) = api.request("POST", "/api/v1/rooms/lobby/recording/start", None);
    assert_eq!((status, body.contains("\"internal\"")), (500, true), "{body}");
    // The details (which file, why) are for the operator: in the server's log.
    server.wait_for(&["the recording cannot start", "recordings/lobby-"]);
    assert_eq!(api.participants("lobby").len(), 3);
    std::fs::remove_file(&recordings).unwrap();

    let mut events = api.events("/api/v1/rooms/lobby/events");
    let started = api.expect(200, "POST", "/api/v1/rooms/lobby/recording/start", None);
    assert_eq!(started["recording"], true, "{started}");
    // Every caller's Jami client shows that the room is recorded.
    for ((name, _), call) in CALLERS.iter().zip(&calls) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !harness.conference_info(name, call, 3).iter().all(|e| e["recording"] == "true") {
            assert!(Instant::now() < deadline, "{name} does not show the recording");
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    std::thread::sleep(RECORDED); // what is recorded
    let stopped = api.expect(200, "POST", "/api/v1/rooms/lobby/recording/stop", None);
    assert_eq!(stopped["recording"], false, "{stopped}");
    assert_eq!(stopped["file"], started["file"]);
    let seconds = stopped["seconds"].as_f64().unwrap();
    assert!(seconds >= RECORDED.as_secs_f64(), "{stopped}");
    // Bots learn it from the event stream too, once the file is complete.
    let finished = events.next("recording_finished", |kind| kind["file"] == stopped["file"]);
    assert_eq!(finished["kind"]["outcome"], "stopped", "{finished}");
    let milliseconds = finished["kind"]["duration_ms"].as_f64().unwrap();
    assert!((milliseconds - seconds * 1000.0).abs() <= 1.0, "{finished} for {stopped}");

    // A complete Ogg Opus file: ffmpeg decodes it to the end, and it holds every tone.
    let file = stopped["file"].as_str().unwrap();
    eprintln!("the recording lasts {seconds:.1} s");
    assert_holds_every_tone(&harness, dir.path(), file);

    // With the composite: a WebM file with the mix (Opus) and the composite (VP8, 1280×720),
    // black here since nobody sends video, as long as the recording.
    let started =
        api.expect(200, "POST", "/api/v1/rooms/lobby/recording/start", Some(r#"{"video":true}"#));
    assert_eq!(
        (started["recording"].as_bool(), started["video"].as_bool()),
        (Some(true), Some(true))
    );
    std::thread::sleep(RECORDED);
    let stopped = api.expect(200, "POST", "/api/v1/rooms/lobby/recording/stop", None);
    let file = stopped["file"].as_str().unwrap();
    assert!(file.ends_with(".webm"), "{stopped}");
    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_streams", "-show_format", "-of", "json", file])
        .output()
        .unwrap();
    assert!(probe.status.success(), "{probe:?}");
    let probe: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
    let codecs: Vec<&str> = probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_name"].as_str().unwrap())
        .collect();
    assert_eq!(codecs.len(), 2, "{probe}");
    assert!(codecs.contains(&"opus") && codecs.contains(&"vp8"), "{probe}");
    let video =
        probe["streams"].as_array().unwrap().iter().find(|s| s["codec_name"] == "vp8").unwrap();
    assert_eq!((video["width"].as_u64(), video["height"].as_u64()), (Some(1280), Some(720)));
    let duration: f64 = probe["format"]["duration"].as_str().unwrap().parse().unwrap();
    eprintln!("the WebM recording lasts {duration:.2} s ({stopped})");
    assert!((duration - RECORDED.as_secs_f64()).abs() < 1.0, "{probe}");
    assert_holds_every_tone(&harness, dir.path(), file);

    // A disk that fills up midway ends the recording as failed (the recordings directory is
    // now a 16 KiB tmpfs in the server's mount namespace: a few seconds of Ogg Opus). The
    // event says why, the callers' Jami clients stop showing the room as recorded, and the
    // conference goes on.
    mount_small_disk(server.pid(), &recordings, "16k");
    let started = api.expect(200, "POST", "/api/v1/rooms/lobby/recording/start", None);
    let failed = events.next("recording_finished", |kind| kind["file"] == started["file"]);
    eprintln!("a recording on a full disk: {failed}");
    assert_eq!(failed["kind"]["outcome"], "failed", "{failed}");
    let error = failed["kind"]["error"].as_str().unwrap();
    assert!(error.contains("No space left on device"), "{failed}");
    for ((name, _), call) in CALLERS.iter().zip(&calls) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !harness.conference_info(name, call, 3).iter().all(|e| e["recording"] == "false") {
            assert!(Instant::now() < deadline, "{name} still shows the room as recorded");
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    let stopped = api.expect(200, "POST", "/api/v1/rooms/lobby/recording/stop", None);
    assert_eq!((stopped["recording"].as_bool(), &stopped["file"]), (Some(false), &json!(null)));
    assert_eq!(api.participants("lobby").len(), 3);
    unmount(server.pid(), &recordings);
    drop(events);

    // A recording running when the server stops (SIGTERM) is finished too: a complete file.
    let started = api.expect(200, "POST", "/api/v1/rooms/lobby/recording/start", None);
    let file = started["file"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_secs(2)); // what is recorded
    assert_eq!(server.stop(), 0);
    drop(playing);
    let decoded = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i", &file, "-f", "null", "-"])
        .output()
        .unwrap();
    assert!(decoded.status.success() && decoded.stderr.is_empty(), "{decoded:?}");
    let mut reader = std::io::BufReader::new(std::fs::File::open(&file).unwrap());
    let mut last_page_ends_the_stream = false;
    let mut pages = 0;
    let mut header = [0u8; 27];
    while std::io::Read::read_exact(&mut reader, &mut header).is_ok() {
        // An Ogg page: "OggS", version, flags (4: end of stream), ..., segment count.
        assert_eq!(&header[..4], b"OggS");
        last_page_ends_the_stream = header[5] & 4 != 0;
        let mut table = vec![0u8; usize::from(header[26])];
        std::io::Read::read_exact(&mut reader, &mut table).unwrap();
        let body: usize = table.iter().map(|&len| usize::from(len)).sum();
        std::io::copy(&mut std::io::Read::take(&mut reader, body as u64), &mut std::io::sink())
            .unwrap();
        pages += 1;
    }
    assert!(
        pages > 2 && last_page_ends_the_stream,
        "{pages} pages, finished: {last_page_ends_the_stream}"
    );
}

/// Mounts a tmpfs of `size` on `dir` in process `pid`'s mount namespace (the server's, which
/// `ip netns exec` made private): only the server sees it, and it goes with the server.
fn mount_small_disk(pid: u32, dir: &std::path::Path, size: &str) {
    let options = format!("size={size},mode=0700");
    let status = std::process::Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-m", "mount", "-t", "tmpfs", "-o", &options, "tmpfs"])
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success(), "mount tmpfs on {}: {status}", dir.display());
}

/// Undoes [`mount_small_disk`].
fn unmount(pid: u32, dir: &std::path::Path) {
    let status = std::process::Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-m", "umount"])
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success(), "umount {}: {status}", dir.display());
}

/// Decodes a recording with ffmpeg (to its end, without a complaint) and checks that it holds
/// every caller's tone.
fn assert_holds_every_tone(harness: &harness::Harness, dir: &std::path::Path, file: &str) {
    let wav = dir.join("recording.wav");
    let decoded = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i", file, "-ac", "1", "-ar", "48000"])
        .arg(&wav)
        .output()
        .unwrap();
    assert!(decoded.status.success() && decoded.stderr.is_empty(), "{decoded:?}");
    let mut args = vec!["analyze", wav.to_str().unwrap(), "--skip", "1"];
    let freqs: Vec<String> = CALLERS.iter().map(|(_, freq)| freq.to_string()).collect();
    for freq in &freqs {
        args.extend(["--freq", freq]);
    }
    let analysis: serde_json::Value = serde_json::from_str(&harness.run(&args)).unwrap();
    eprintln!("{file} holds {analysis}");
    for (_, freq) in CALLERS {
        let level = analysis["tones_dbfs"][format!("{freq}.0")].as_f64().unwrap();
        assert!(level > -30.0, "{freq} Hz is missing from {file}: {analysis}");
    }
}
