//! Real Jami clients see the room's composite: two jamid 13.7 callers (harness, private
//! namespace) call a room sending video from a file (H.264, 320x240); each one's jamid starts
//! decoding a remote stream of the composite's size (1280x720), which only the room's
//! compositor makes. End to end through media ICE, SRTP, RTP H.264, the decoder, the
//! compositor, the encoder and back. Their confInfo places both pictures exactly where the
//! composite draws them. A video file played into the room through the admin API gets a tile
//! of its own in that composite, as a WebM recording of the room shows.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "support/api.rs"]
mod api;
mod common;
#[path = "support/harness.rs"]
mod harness;
#[path = "support/server.rs"]
mod server;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use api::Api;
use common::{Rdv, prerequisite, runs};
use harness::{Harness, prerequisites};
use rdv_mixer::layout::{Frame, Layout, Size, Source, tiles};

/// The composite's size (rdv-mixer's default video configuration).
const COMPOSITE: (u64, u64) = (1280, 720);
/// Longest wait for a caller's jamid to start decoding the composite.
const DECODING_TIMEOUT: Duration = Duration::from_secs(30);

/// A harness `events` listener, stopped on drop.
struct Events {
    child: Child,
    lines: mpsc::Receiver<serde_json::Value>,
}

impl Events {
    fn start(harness: &Harness, name: &str) -> Self {
        let mut child = harness
            .command(&["events", name, "--only", "decodingStarted"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(event) = serde_json::from_str(&line)
                    && sender.send(event).is_err()
                {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// Waits for `decodingStarted` of call `call`; returns its width and height.
    fn decoding(&self, call: &str) -> (u64, u64) {
        let deadline = Instant::now() + DECODING_TIMEOUT;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok(event) = self.lines.recv_timeout(left) else { break };
            let args = &event["args"];
            if args[0].as_str() == Some(call) {
                return (args[2].as_u64().unwrap(), args[3].as_u64().unwrap());
            }
            seen.push(event);
        }
        panic!("no decodingStarted for call {call} within {DECODING_TIMEOUT:?}; saw {seen:?}");
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn callers_see_the_composite() {
    if !prerequisites() || !prerequisite("ffmpeg (Debian ffmpeg)", runs("ffmpeg", &["-version"])) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("testsrc.mp4");
    let made = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=15"])
        .args(["-t", "20", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "15"])
        .arg(&clip)
        .status()
        .unwrap();
    assert!(made.success(), "ffmpeg could not make the test video");
    let source = format!("file://{}", clip.display());

    let harness = Harness::with_dht();
    let callers = ["alice", "bob"];
    for name in callers {
        harness.add_account(name);
    }
    let rdv = Rdv::new();
    let (mut server, room_id) = harness.serve_room(&rdv, "screen");

    let mut calls = Vec::new();
    for (joined, name) in callers.into_iter().enumerate() {
        let events = Events::start(&harness, name);
        let placed = Instant::now();
        let call = harness.run(&[
            "call",
            name,
            &room_id,
            "--video",
            "--video-source",
            &source,
            "--wait",
            "CURRENT",
            "--timeout",
            "10",
        ]);
        eprintln!("{name}: CURRENT {:?} after placing the call", placed.elapsed());
        let joined_line = server.wait_for_nth(&["participant joined"], joined + 1);
        assert!(joined_line.contains("H264/90000"), "{joined_line}");
        let size = events.decoding(&call);
        eprintln!(
            "{name}: decoding the room's stream, {size:?}, {:?} after placing the call",
            placed.elapsed()
        );
        assert_eq!(size, COMPOSITE, "{name} decodes a stream that is not the composite");
        calls.push(call);
    }
    // Both jamids list both participants, each tile where the composite draws it: the grid of
    // 1280x720 as rdv-mixer's layout (Jami's geometry) computes it, a 320x240 picture
    // letterboxed in its cell. At least one picture must be there (jamid 13.7 now and then
    // never starts sending from its file source; the other caller's picture then still shows).
    let picture = Frame { size: Size { width: 320, height: 240 }, rotation: 0 };
    let size = Size { width: COMPOSITE.0 as i32, height: COMPOSITE.1 as i32 };
    for (name, call) in callers.iter().zip(&calls) {
        // A picture comes a moment after the call: wait for entries that have one.
        let deadline = Instant::now() + DECODING_TIMEOUT;
        loop {
            let entries = harness.conference_info(name, call, 2);
            let pictured: Vec<bool> = entries.iter().map(|e| e["videoMuted"] == "false").collect();
            let sources: Vec<Source> = pictured
                .iter()
                .map(|has| Source::Video { frame: has.then_some(picture), active: false })
                .collect();
            let layout = tiles(size, Layout::Grid, &sources);
            let expected: Vec<Option<[i32; 4]>> = (0..sources.len())
                .map(|i| {
                    let tile = layout.iter().find(|tile| tile.source == i)?;
                    Some([tile.rect.x, tile.rect.y, tile.rect.w, tile.rect.h])
                })
                .collect();
            let rects: Vec<Option<[i32; 4]>> = entries
                .iter()
                .map(|e| {
                    let value = |key: &str| e[key].parse::<i32>().ok();
                    Some([value("x")?, value("y")?, value("w")?, value("h")?])
                })
                .collect();
            if entries.len() == 2 && pictured.contains(&true) && rects == expected {
                eprintln!("{name}'s confInfo: pictures {pictured:?}, tiles {rects:?}");
                break;
            }
            if Instant::now() >= deadline {
                for caller in ["alice", "bob"] {
                    let log = harness.run(&["logs", caller]);
                    let video: Vec<&str> = log
                        .lines()
                        .filter(|l| {
                            l.contains("ideo") || l.contains("input") || l.contains("ncoder")
                        })
                        .collect();
                    eprintln!(
                        "--- {caller}'s jamid, video lines\n{}",
                        video[video.len().saturating_sub(60)..].join("\n")
                    );
                }
                panic!("{name}'s confInfo: {entries:?}, want tiles {expected:?}");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    // A red video played into the room gets a tile in the composite: the last picture of a
    // WebM recording of the room is red over the area of a letterboxed grid cell.
    let media = rdv.data_dir().join("media");
    std::fs::create_dir_all(&media).unwrap();
    let made = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-f", "lavfi", "-i", "color=c=red:size=320x240:rate=15"])
        .args(["-t", "5", "-c:v", "libx264", "-pix_fmt", "yuv420p"])
        .arg(media.join("red.mp4"))
        .status()
        .unwrap();
    assert!(made.success(), "ffmpeg could not make the red video");
    let api = Api::new(&harness, &mut server);
    let played = api.expect(
        201,
        "POST",
        "/api/v1/rooms/screen/playbacks",
        Some(r#"{"file":"red.mp4","loop":true}"#),
    );
    assert_eq!(played["video"]["width"], 320, "{played}");
    api.expect(200, "POST", "/api/v1/rooms/screen/recording/start", Some(r#"{"video":true}"#));
    std::thread::sleep(Duration::from_secs(3));
    let recording = api.expect(200, "POST", "/api/v1/rooms/screen/recording/stop", None);
    let last = dir.path().join("last.rgb");
    let extracted = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-sseof", "-0.5", "-i"])
        .arg(recording["file"].as_str().unwrap())
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24"])
        .arg(&last)
        .status()
        .unwrap();
    assert!(extracted.success(), "no picture in the recording {recording}");
    let rgb = std::fs::read(&last).unwrap();
    assert_eq!(rgb.len() as u64, COMPOSITE.0 * COMPOSITE.1 * 3);
    // The third cell of the grid (Jami's geometry, as confInfo reports it for the callers):
    // the played file is the room's newest participant.
    let sources = vec![Source::Video { frame: Some(picture), active: false }; 3];
    let cell = tiles(size, Layout::Grid, &sources)[2].rect;
    let is_red = |p: &[u8]| p[0] > 180 && p[1] < 70 && p[2] < 70;
    let red_in_cell = (cell.y..cell.y + cell.h)
        .flat_map(|y| (cell.x..cell.x + cell.w).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let at = (y as usize * COMPOSITE.0 as usize + x as usize) * 3;
            is_red(&rgb[at..at + 3])
        })
        .count();
    let area = (cell.w * cell.h) as usize;
    eprintln!("the played file's tile {cell:?} is {red_in_cell} of {area} pixels red");
    assert!(red_in_cell * 100 >= area * 95, "{red_in_cell} of {area} red in {cell:?}");

    // Bob holds his video call (video `sendonly`): he stays in the room, shown without a
    // picture and out of the mix; resumed, he is back, without leaving and joining again.
    let bob_account = harness.run(&["id", "bob"]);
    harness.run(&["dbus", "bob", "hold", &calls[1]]);
    server.wait_for(&["hold changed", &bob_account, "on_hold=true"]);
    let held = api.participants("screen");
    let bob = held.iter().find(|p| p["account"] == bob_account.as_str()).unwrap();
    assert_eq!(bob["on_hold"], true, "{held:?}");
    let deadline = Instant::now() + DECODING_TIMEOUT;
    loop {
        let entries = harness.conference_info("alice", &calls[0], 2);
        let bob = entries.iter().find(|e| e["uri"].starts_with(&bob_account));
        if bob.is_some_and(|bob| bob["videoMuted"] == "true") {
            break;
        }
        assert!(Instant::now() < deadline, "alice's confInfo never showed bob held: {entries:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let unhold = harness.command(&["dbus", "bob", "unhold", &calls[1]]).output().unwrap();
    if !unhold.status.success() {
        harness.run(&["dbus", "bob", "resume", &calls[1]]);
    }
    server.wait_for(&["hold changed", &bob_account, "on_hold=false"]);
    assert_eq!(server.count(&["participant left"]), 0, "a held call left the room");
    assert_eq!(server.count(&["participant joined"]), 2, "a resumed call joined again");

    // The callers' pictures reach the compositor.
    server.wait_for(&["first mixed media sent", "kind=Video"]);
    server.wait_for(&["first media packet received", "kind=Video", "component=1"]);
    for failure in ["video input failed", "mixer failure", "RTP packet dropped"] {
        assert_eq!(server.count(&[failure]), 0, "the server logged {failure:?}");
    }
    eprintln!(
        "keyframe requests: {} to the callers, {} from them",
        server.count(&["keyframe requested from the caller"]),
        server.count(&["the caller asks for a keyframe"])
    );
    assert_eq!(server.stop(), 0);
}
