//! The example bot (`examples/announcer.py`) against a running server, as its documentation
//! says to run it: with `--file` it joins the room's audio, has the server play a file from
//! its media directory, hears it, and ends with the playback's `playback_finished` event;
//! with `--wav` it sends the announcement itself; a file the server cannot play is refused
//! with the server's reason. No Jami client is needed: the bot is the room's only participant.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[path = "support/harness.rs"]
mod harness;
#[path = "support/server.rs"]
mod server;

use std::process::{Command, Output};

use common::{Rdv, prerequisite, runs};
use server::Server;

/// Runs the example with `args` (after the API, token and room), at most 60 s.
fn announcer(api: &str, args: &[&str]) -> Output {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/announcer.py");
    let url = format!("http://{api}");
    Command::new("timeout")
        .args(["60", harness::PYTHON, script, "--api", &url, "--token", server::ADMIN_TOKEN])
        .args(["--room", "lobby"])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_example_bot_plays_announcements() {
    if !prerequisite("ffmpeg", runs("ffmpeg", &["-version"]))
        || !prerequisite("python3-websockets", runs(harness::PYTHON, &["-c", "import websockets"]))
    {
        return;
    }
    let rdv = Rdv::new();
    rdv.run(&["room", "create", "lobby"]).ok();
    let media = rdv.data_dir().join("media");
    std::fs::create_dir_all(&media).unwrap();
    let tone = "aevalsrc=0.5*sin(2*PI*1000*t):s=48000:d=3";
    for (name, codec) in [("welcome.mp3", "libmp3lame"), ("welcome.wav", "pcm_s16le")] {
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i", tone, "-c:a", codec])
            .arg(media.join(name))
            .status()
            .unwrap();
        assert!(status.success(), "ffmpeg made no {name}");
    }
    // Nothing answers on the discard port: the DHT node stays alone.
    let mut server = Server::start(&rdv, &[], "127.0.0.1:9");
    server.wait_for(&["room listening for calls on the DHT", "room=lobby"]);
    let api = server.api_address();

    // The server plays an MP3 from its media directory; the bot hears it, then it ends.
    let output = announcer(&api, &["--file", "welcome.mp3"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.contains("playing welcome.mp3 (mp3, mp3)"), "{stdout}");
    let loudest = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("room level: ")?.strip_suffix(" dBFS")?.parse().ok())
        .fold(f64::MIN, f64::max);
    assert!(loudest > -12.0, "the bot did not hear the file: {stdout}");
    assert!(stdout.contains("playback finished") && stdout.contains("done"), "{stdout}");
    server.wait_for(&["playback ended", "file=welcome.mp3", "Finished"]);

    // The bot sends a WAV itself.
    let output = announcer(&api, &["--wav", media.join("welcome.wav").to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("done"), "{output:?}");
    server.wait_for_nth(&["bot left"], 2);

    // A file the server cannot play: the example says why and fails.
    let output = announcer(&api, &["--file", "missing.mp3"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{output:?}");
    assert!(stderr.contains("the server refused missing.mp3: no file"), "{stderr}");
    assert_eq!(server.stop(), 0);
}
