//! Playing files into a room of real Jami clients through the admin API: a WAV, an MP3, an
//! Ogg Opus and an MP4 (H.264 and AAC) tone are each heard by both jamid callers, and each
//! ends with a `playback_finished` event. A looped file pauses, resumes and stops on request.
//! Files that cannot be played (malformed, not media, an unknown codec, missing, outside the
//! media directory) are refused with a clear 400 before anything is heard, and a bot that
//! vanishes mid-stream leaves the room as it was: the conference goes on.

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

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use api::Api;
use common::{Rdv, prerequisite, runs};
use harness::Harness;
use tones::{Callers, assert_mix_minus, heard, play, start_callers};

const CALLERS: [(&str, u32); 2] = [("alice", 440), ("bob", 1000)];

/// Files played, their tone (Hz), and how ffmpeg encodes them.
const FILES: [(&str, u32, &[&str]); 4] = [
    ("jingle.wav", 1500, &["-c:a", "pcm_s16le", "-ar", "16000"]),
    ("jingle.mp3", 2000, &["-c:a", "libmp3lame", "-ar", "44100", "-ac", "2"]),
    ("jingle.opus", 2500, &["-c:a", "libopus"]),
    ("clip.mp4", 3000, &["-c:a", "aac", "-c:v", "libx264", "-pix_fmt", "yuv420p"]),
];
/// How long each file lasts, s.
const FILE_SECONDS: &str = "7";

/// Makes a tone file with ffmpeg (at -9 dBFS RMS; the MP4 with a test picture too).
fn make_file(media: &Path, name: &str, freq: u32, codec: &[&str]) {
    let tone = format!("aevalsrc=0.5*sin(2*PI*{freq}*t):s=48000:d={FILE_SECONDS}");
    let mut command = std::process::Command::new("ffmpeg");
    command.args(["-v", "error", "-y", "-f", "lavfi", "-i", &tone]);
    if name.ends_with(".mp4") {
        let picture = format!("testsrc=size=320x240:rate=15:d={FILE_SECONDS}");
        command.args(["-f", "lavfi", "-i", &picture, "-shortest"]);
    }
    let status = command.args(codec).arg(media.join(name)).status().unwrap();
    assert!(status.success(), "ffmpeg made no {name}");
}

/// Waits until every caller hears `freq` louder (or, with `heard_at_all` false, quieter) than
/// -30 dBFS. The callers' own tones are measured too, to tell a caller that hears nothing at
/// all from one that misses only the file.
fn wait_heard(harness: &Harness, dir: &Path, freq: u32, heard_at_all: bool) {
    wait_heard_by(harness, dir, &CALLERS.map(|(name, _)| name), freq, heard_at_all);
}

/// [`wait_heard`] for some of the callers.
fn wait_heard_by(harness: &Harness, dir: &Path, names: &[&str], freq: u32, heard_at_all: bool) {
    let tones = [("file", freq), CALLERS[0], CALLERS[1]];
    for &name in names {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let levels = heard(harness, dir, name, &tones);
            eprintln!("{name} hears {freq} Hz at {:.1} dBFS (all: {levels:?})", levels[0].1);
            if (levels[0].1 > -30.0) == heard_at_all {
                break;
            }
            let what = if heard_at_all { "does not hear" } else { "still hears" };
            assert!(Instant::now() < deadline, "{name} {what} {freq} Hz: {levels:?}");
        }
    }
}

#[test]
fn played_files_are_heard_by_every_caller() {
    if !prerequisite("ffmpeg", runs("ffmpeg", &["-version"]))
        || !prerequisite("python3-websockets", runs(harness::PYTHON, &["-c", "import websockets"]))
    {
        return;
    }
    let Some(Callers { harness, dir, ids: _ }) = start_callers(&CALLERS) else { return };
    let rdv = Rdv::new();
    rdv.run(&["room", "create", "lobby"]).ok();
    let media = rdv.data_dir().join("media");
    std::fs::create_dir_all(media.join("bad")).unwrap();
    for (name, freq, codec) in FILES {
        make_file(&media, name, freq, codec);
    }
    let (mut server, room_id) = harness.serve_room_created(&rdv, "lobby");
    let api = Api::new(&harness, &mut server);
    let playbacks = "/api/v1/rooms/lobby/playbacks";

    // Nobody in the room: nobody to play to.
    let (status, body) = api.request("POST", playbacks, Some(r#"{"file":"jingle.wav"}"#));
    assert_eq!((status, body.contains("\"conflict\"")), (409, true), "{body}");

    let mut playing = Vec::new();
    for (joined, (name, _)) in CALLERS.iter().enumerate() {
        harness.join(&mut server, name, &room_id, joined + 1);
        playing.push(play(&harness, dir.path(), name));
    }
    assert_mix_minus(&harness, dir.path(), &CALLERS);

    // Files that cannot be played are refused before anything is heard, saying why.
    std::fs::write(media.join("bad/noise.mp3"), rand_bytes(64 * 1024)).unwrap();
    std::fs::write(media.join("bad/notes.txt"), "not a sound\n".repeat(100)).unwrap();
    std::fs::write(media.join("bad/unknown-codec.wav"), wav_with_format_tag(0x3039)).unwrap();
    let clip = std::fs::read(media.join("clip.mp4")).unwrap();
    std::fs::write(media.join("bad/truncated.mp4"), &clip[..clip.len().min(300)]).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", media.join("bad/outside.wav")).unwrap();
    for (body, says) in [
        (r#"{"file":"bad/noise.mp3"}"#, "bad/noise.mp3 is not a media file"),
        (r#"{"file":"bad/notes.txt"}"#, "bad/notes.txt is not a media file"),
        (r#"{"file":"bad/unknown-codec.wav"}"#, "bad/unknown-codec.wav is in a codec"),
        (r#"{"file":"bad/truncated.mp4"}"#, "bad/truncated.mp4 is not a media file"),
        (r#"{"file":"bad/outside.wav"}"#, "outside the media directory"),
        (r#"{"file":"missing.wav"}"#, "in the media directory"),
        (r#"{"file":"../rdv.db"}"#, "relative to the media directory"),
        (r#"{"file":"jingle.wav","volume":12}"#, "volume"),
    ] {
        let (status, reply) = api.request("POST", playbacks, Some(body));
        eprintln!("{body} → {status} {reply}");
        assert_eq!(status, 400, "{body}: {reply}");
        assert!(reply.contains(says), "{body}: {reply} does not say {says:?}");
        assert!(!reply.contains(media.to_str().unwrap()), "{reply} shows the server's paths");
    }
    assert_eq!(api.participants("lobby").len(), 2, "the room goes on");

    // Each file is heard by both callers, then ends on its own.
    let mut events = api.events("/api/v1/rooms/lobby/events");
    for (name, freq, _) in FILES {
        let body = format!(r#"{{"file":"{name}"}}"#);
        let started = api.expect(201, "POST", playbacks, Some(&body));
        eprintln!("playing {started}");
        assert!(started["audio"].is_string(), "{started}");
        assert_eq!(started["video"].is_object(), name.ends_with(".mp4"), "{started}");
        wait_heard(&harness, dir.path(), freq, true);
        let id = started["id"].as_u64().unwrap();
        let finished = events.next("playback_finished", |kind| kind["playback"] == id);
        assert_eq!(finished["kind"]["outcome"], "finished", "{finished}");
        assert_eq!(finished["kind"]["file"], name);
    }
    assert_eq!(api.expect(200, "GET", playbacks, None), serde_json::json!([]));

    // A looped file pauses, resumes and stops on request (as alice hears it: every caller's
    // hearing was checked above).
    let looped = api.expect(201, "POST", playbacks, Some(r#"{"file":"jingle.wav","loop":true}"#));
    let one = format!("{playbacks}/{}", looped["id"]);
    wait_heard_by(&harness, dir.path(), &["alice"], 1500, true);
    let paused = api.expect(200, "PATCH", &one, Some(r#"{"paused":true}"#));
    assert_eq!(paused["paused"], true);
    wait_heard_by(&harness, dir.path(), &["alice"], 1500, false);
    api.expect(200, "PATCH", &one, Some(r#"{"paused":false,"volume":0.5}"#));
    wait_heard_by(&harness, dir.path(), &["alice"], 1500, true);
    let listed = api.expect(200, "GET", playbacks, None);
    assert_eq!(
        (listed[0]["volume"].as_f64(), listed[0]["loop"].as_bool()),
        (Some(0.5), Some(true))
    );
    let (status, _) = api.request("DELETE", &one, None);
    assert_eq!(status, 204);
    let stopped = events.next("playback_finished", |kind| kind["playback"] == looped["id"]);
    assert_eq!(stopped["kind"]["outcome"], "stopped", "{stopped}");
    wait_heard_by(&harness, dir.path(), &["alice"], 1500, false);
    let (status, body) = api.request("DELETE", &one, None);
    assert_eq!((status, body.contains("not_found")), (404, true), "{body}");

    // A room plays 8 files at once at most (each is a decoding thread).
    let quiet = r#"{"file":"jingle.wav","loop":true,"volume":0}"#;
    let ids: Vec<u64> = (0..8)
        .map(|_| api.expect(201, "POST", playbacks, Some(quiet))["id"].as_u64().unwrap())
        .collect();
    let (status, body) = api.request("POST", playbacks, Some(quiet));
    assert_eq!((status, body.contains("already plays 8 files")), (409, true), "{body}");
    for id in ids {
        let (status, _) = api.request("DELETE", &format!("{playbacks}/{id}"), None);
        assert_eq!(status, 204);
    }

    // A bot that vanishes mid-stream (killed: no close frame) leaves; the room goes on.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/bot_client.py");
    let url = format!("ws://{}/api/v1/rooms/lobby/bot", server.api_address());
    let prefix = harness.exec_prefix();
    let mut bot = std::process::Command::new(&prefix[0])
        .args(&prefix[1..])
        .args([harness::PYTHON, script, &url, server::ADMIN_TOKEN, "3500", "60"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    server.wait_for(&["bot joined"]);
    wait_heard(&harness, dir.path(), 3500, true);
    bot.kill().unwrap();
    bot.wait().unwrap();
    server.wait_for(&["bot left"]);
    assert_mix_minus(&harness, dir.path(), &CALLERS);

    drop(events);
    drop(playing);
    assert_eq!(server.stop(), 0);
}

/// Bytes that are no container at all.
fn rand_bytes(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_u32;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// A WAV file whose format tag names no codec FFmpeg decodes.
fn wav_with_format_tag(tag: u16) -> Vec<u8> {
    let data = vec![0u8; 48_000];
    let mut wav = Vec::new();
    wav.extend(b"RIFF");
    wav.extend((36 + data.len() as u32).to_le_bytes());
    wav.extend(b"WAVEfmt ");
    wav.extend(16u32.to_le_bytes());
    wav.extend(tag.to_le_bytes());
    wav.extend(1u16.to_le_bytes()); // channels
    wav.extend(48_000u32.to_le_bytes()); // sample rate
    wav.extend(96_000u32.to_le_bytes()); // bytes per second
    wav.extend(2u16.to_le_bytes()); // block align
    wav.extend(16u16.to_le_bytes()); // bits per sample
    wav.extend(b"data");
    wav.extend((data.len() as u32).to_le_bytes());
    wav.extend(data);
    wav
}
