//! Playback benchmark: prints figures, asserts nothing. Run: `cargo bench --bench playback`.
//!
//! What a played file costs the server, against the `ffmpeg` command doing the same work in
//! the same run (one thread each):
//! 1. A 60 s stereo 44.1 kHz MP3 decoded, resampled to 48 kHz mono and encoded as 20 ms Opus
//!    frames at 64 kbit/s (what a playback feeds the mix), as a multiple of real time.
//! 2. A 30 s 640×360 H.264 clip decoded and converted to tightly packed I420 (what a playback
//!    hands the compositor).

#![allow(clippy::unwrap_used)] // a measuring tool: a failed unwrap is a failed measurement

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rdv::media::media_file::{Decoded, MediaFile};
use rdv_mixer::audio::FRAME_SAMPLES;
use rdv_mixer::opus::OpusEncoder;

const AUDIO_SECONDS: f64 = 60.0;
const VIDEO_SECONDS: f64 = 30.0;

fn ffmpeg(args: &[&str]) -> Duration {
    let started = Instant::now();
    let status = Command::new("ffmpeg").args(["-v", "error", "-y"]).args(args).status().unwrap();
    assert!(status.success(), "ffmpeg {args:?}");
    started.elapsed()
}

/// Decodes the whole file; Opus-encodes its audio in 20 ms frames when `encode`.
fn play_through(path: &Path, encode: bool) -> (Duration, usize, usize) {
    let started = Instant::now();
    let mut file = MediaFile::open(path).unwrap();
    let mut encoder = OpusEncoder::new(64_000).unwrap();
    let (mut pending, mut frames, mut pictures) = (Vec::new(), 0, 0);
    while let Some(piece) = file.next().unwrap() {
        match piece {
            Decoded::Audio(samples) if encode => {
                pending.extend(samples);
                while pending.len() >= FRAME_SAMPLES {
                    let frame: Vec<f32> = pending.drain(..FRAME_SAMPLES).collect();
                    encoder.encode(&frame).unwrap();
                    frames += 1;
                }
            }
            Decoded::Audio(_) => {}
            Decoded::Picture(picture) => {
                std::hint::black_box(&picture.i420);
                pictures += 1;
            }
        }
    }
    (started.elapsed(), frames, pictures)
}

fn main() {
    if Command::new("ffmpeg").arg("-version").output().is_err() {
        eprintln!("SKIPPED: the playback benchmark needs ffmpeg (scripts/setup test installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mp3 = dir.path().join("music.mp3");
    let mp4 = dir.path().join("clip.mp4");
    let (audio_seconds, video_seconds) = (AUDIO_SECONDS.to_string(), VIDEO_SECONDS.to_string());
    let tone = format!("sine=frequency=440:sample_rate=44100:duration={audio_seconds}");
    let mp3_arg = mp3.to_str().unwrap();
    ffmpeg(&["-f", "lavfi", "-i", &tone, "-ac", "2", "-c:a", "libmp3lame", mp3_arg]);
    let picture = format!("testsrc=size=640x360:rate=30:duration={video_seconds}");
    let mp4_arg = mp4.to_str().unwrap();
    ffmpeg(&["-f", "lavfi", "-i", &picture, "-c:v", "libx264", "-pix_fmt", "yuv420p", mp4_arg]);

    // What starting the ffmpeg command costs by itself, taken off its figures below.
    let startup = (0..3)
        .map(|_| ffmpeg(&["-f", "lavfi", "-i", "anullsrc", "-t", "0.02", "-f", "null", "-"]))
        .min()
        .unwrap();
    println!(
        "playback benchmark (one thread each; the reference is the ffmpeg command, less its \
         {:.0} ms start)",
        startup.as_secs_f64() * 1000.0
    );
    let (ours, frames, _) = play_through(&mp3, true);
    let reference = ffmpeg(&[
        "-threads",
        "1",
        "-i",
        mp3_arg,
        "-ac",
        "1",
        "-ar",
        "48000",
        "-c:a",
        "libopus",
        "-b:a",
        "64k",
        "-frame_duration",
        "20",
        "-f",
        "null",
        "-",
    ]);
    report("MP3 → 48 kHz mono Opus", AUDIO_SECONDS, ours, reference.saturating_sub(startup));
    println!("  ({frames} Opus frames)");

    let (ours, _, pictures) = play_through(&mp4, false);
    let reference = ffmpeg(&[
        "-threads",
        "1",
        "-i",
        mp4_arg,
        "-f",
        "rawvideo",
        "-pix_fmt",
        "yuv420p",
        "-y",
        "/dev/null",
    ]);
    report("H.264 640×360 → I420", VIDEO_SECONDS, ours, reference.saturating_sub(startup));
    println!("  ({pictures} pictures)");
}

fn report(what: &str, media_seconds: f64, ours: Duration, reference: Duration) {
    let (ours_s, reference_s) = (ours.as_secs_f64(), reference.as_secs_f64());
    println!(
        "{what}: rdv {ours_s:.2} s ({:.0}× real time), ffmpeg {reference_s:.2} s ({:.0}× real \
         time); rdv/ffmpeg time ratio {:.2}",
        media_seconds / ours_s,
        media_seconds / reference_s,
        ours_s / reference_s
    );
}
