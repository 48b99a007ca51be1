use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use super::*;
use crate::audio::{FRAME_SAMPLES, SAMPLE_RATE};
use crate::opus::OpusEncoder;

const VIDEO: VideoTrack = VideoTrack { width: 320, height: 240, framerate: 30 };

/// A directory of its own for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("rdv-webm-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// An empty file in it, created as the recorder creates it.
    fn file(&self, name: &str) -> PathBuf {
        let path = self.0.join(name);
        File::create(&path).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Whether `tool` runs; a loud skip (or, on CI, a failure) when it does not.
fn have(tool: &str) -> bool {
    if Command::new(tool).arg("-version").output().is_ok_and(|o| o.status.success()) {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{tool} is missing on CI");
    eprintln!("SKIPPED: {tool} is not installed, so the file written cannot be checked");
    false
}

/// `seconds` of Opus packets of a 440 Hz sine, with their times.
fn opus_packets(seconds: u32) -> Vec<(Duration, Vec<u8>)> {
    let mut encoder = OpusEncoder::new(64_000).unwrap();
    let frames = seconds as usize * SAMPLE_RATE as usize / FRAME_SAMPLES;
    (0..frames)
        .map(|n| {
            let frame: Vec<f32> = (0..FRAME_SAMPLES)
                .map(|i| {
                    let t = (n * FRAME_SAMPLES + i) as f32 / SAMPLE_RATE as f32;
                    0.3 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()
                })
                .collect();
            (AUDIO_FRAME * n as u32, encoder.encode(&frame).unwrap())
        })
        .collect()
}

/// `count` VP8 frames of a 320x240 test picture at 30 fps: time, keyframe, data.
fn vp8_frames(count: u32) -> Vec<(Duration, bool, Vec<u8>)> {
    vp8_frames_with_keyframes_every(count, 128)
}

/// `count` VP8 frames with a keyframe every `interval` frames.
fn vp8_frames_with_keyframes_every(count: u32, interval: u32) -> Vec<(Duration, bool, Vec<u8>)> {
    init().unwrap();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers={count} ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! vp8enc deadline=1 keyframe-max-dist={interval} ! appsink name=sink sync=false"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = by_name::<gst_app::AppSink>(&pipeline, "vp8", "sink").unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut frames = Vec::new();
    while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(5)) {
        let buffer = sample.buffer().unwrap();
        let at = Duration::from_nanos(buffer.pts().unwrap().nseconds());
        let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        frames.push((at, keyframe, buffer.map_readable().unwrap().to_vec()));
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(frames.len(), count as usize);
    assert!(frames[0].1, "vp8enc starts with a keyframe");
    frames
}

/// Pushes audio and video in the order of their times, as the recorder does.
fn write(
    writer: &mut WebmWriter,
    audio: &[(Duration, Vec<u8>)],
    video: &[(Duration, bool, Vec<u8>)],
) {
    let (mut a, mut v) = (audio.iter().peekable(), video.iter().peekable());
    loop {
        match (a.peek(), v.peek()) {
            (Some((at, _)), Some((vt, _, _))) if at <= vt => {
                let (at, opus) = a.next().unwrap();
                writer.push_audio(*at, opus).unwrap();
            }
            (_, Some(_)) => {
                let (at, keyframe, vp8) = v.next().unwrap();
                writer.push_video(*at, *keyframe, vp8).unwrap();
            }
            (Some(_), None) => {
                let (at, opus) = a.next().unwrap();
                writer.push_audio(*at, opus).unwrap();
            }
            (None, None) => break,
        }
    }
}

/// What `ffprobe` says about a file, as flat `key=value` pairs (`streams.stream.0.codec_name`,
/// `format.duration`, ...), with the packets counted.
fn probe(path: &Path) -> HashMap<String, String> {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-count_packets", "-show_streams", "-show_format", "-of", "flat"])
        .arg(path)
        .output()
        .unwrap();
    assert!(output.status.success(), "ffprobe: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.trim_matches('"').to_owned()))
        .collect()
}

/// The stream of `codec_type` in a probe: its keys without the `streams.stream.N.` prefix.
fn stream(probe: &HashMap<String, String>, codec_type: &str) -> HashMap<String, String> {
    let index = (0..)
        .take_while(|i| probe.contains_key(&format!("streams.stream.{i}.index")))
        .find(|i| probe[&format!("streams.stream.{i}.codec_type")] == codec_type)
        .unwrap_or_else(|| panic!("no {codec_type} stream in {probe:?}"));
    let prefix = format!("streams.stream.{index}.");
    probe
        .iter()
        .filter_map(|(key, value)| Some((key.strip_prefix(&prefix)?.to_owned(), value.clone())))
        .collect()
}

fn duration(probe: &HashMap<String, String>) -> f64 {
    probe["format.duration"].parse().unwrap()
}

/// Whether `ffmpeg` decodes the whole file without an error.
fn decodes(path: &Path) -> bool {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(errors.trim().is_empty(), "ffmpeg: {errors}");
    output.status.success()
}

/// The MD5 of every picture decoded from the file's video, in order, none dropped or doubled.
fn picture_hashes(path: &Path) -> Vec<String> {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0:v:0", "-vsync", "passthrough", "-f", "framemd5", "-"])
        .output()
        .unwrap();
    assert!(output.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| Some(line.rsplit_once(',')?.1.trim().to_owned()))
        .collect()
}

/// Whether the file has cues (the Matroska Cues element's ID), which make it seekable.
fn has_cues(path: &Path) -> bool {
    fs::read(path).unwrap().windows(4).any(|w| w == [0x1C, 0x53, 0xBB, 0x6B])
}

#[test]
fn audio_and_video_make_a_complete_seekable_file() {
    if !have("ffprobe") || !have("ffmpeg") {
        return;
    }
    let dir = TempDir::new("av");
    let path = dir.file("room.webm");
    let mut writer = WebmWriter::create(&path, Some(VIDEO)).unwrap();
    write(&mut writer, &opus_packets(3), &vp8_frames(90));
    writer.finish().unwrap();

    let probe = probe(&path);
    assert_eq!(probe["format.nb_streams"], "2");
    let audio = stream(&probe, "audio");
    assert_eq!(audio["codec_name"], "opus");
    assert_eq!(audio["channels"], "1");
    assert_eq!(audio["sample_rate"], "48000");
    assert_eq!(audio["extradata_size"], "19", "OpusHead");
    assert_eq!(audio["nb_read_packets"], "150");
    let video = stream(&probe, "video");
    assert_eq!(video["codec_name"], "vp8");
    assert_eq!((video["width"].as_str(), video["height"].as_str()), ("320", "240"));
    assert_eq!(video["nb_read_packets"], "90");
    assert!((duration(&probe) - 3.0).abs() <= 0.2, "duration {}", duration(&probe));
    assert!(has_cues(&path));
    assert!(decodes(&path));
    let head = [b"OpusHead".as_slice(), &[1, 1, 0x38, 0x01, 0x80, 0xBB, 0, 0, 0, 0, 0]].concat();
    assert!(fs::read(&path).unwrap().windows(19).any(|w| w == head), "pre-skip 312");
}

#[test]
fn an_audio_only_file_is_valid() {
    if !have("ffprobe") || !have("ffmpeg") {
        return;
    }
    let dir = TempDir::new("audio");
    let path = dir.file("room.webm");
    let mut writer = WebmWriter::create(&path, None).unwrap();
    write(&mut writer, &opus_packets(3), &[]);
    assert!(writer.push_video(Duration::ZERO, true, &[1]).is_err(), "there is no video track");
    writer.finish().unwrap();

    let probe = probe(&path);
    assert_eq!(probe["format.nb_streams"], "1");
    assert_eq!(stream(&probe, "audio")["codec_name"], "opus");
    assert!((duration(&probe) - 3.0).abs() <= 0.2, "duration {}", duration(&probe));
    assert!(decodes(&path));
}

#[test]
fn video_frames_before_the_first_keyframe_are_dropped() {
    if !have("ffprobe") || !have("ffmpeg") {
        return;
    }
    let dir = TempDir::new("keyframe");
    let path = dir.file("room.webm");
    let frames = vp8_frames(90);
    // The recording starts in the middle of the composite's stream: 30 delta frames, then
    // the stream again from its keyframe.
    let late = Duration::from_secs(1);
    let mut video: Vec<_> = frames[1..31].to_vec();
    assert!(video.iter().all(|(_, keyframe, _)| !keyframe));
    video.extend(frames.iter().map(|(at, keyframe, vp8)| (*at + late, *keyframe, vp8.clone())));
    let mut writer = WebmWriter::create(&path, Some(VIDEO)).unwrap();
    write(&mut writer, &opus_packets(4), &video);
    writer.finish().unwrap();

    let probe = probe(&path);
    let video = stream(&probe, "video");
    assert_eq!(video["nb_read_packets"], "90");
    let start: f64 = video["start_time"].parse().unwrap();
    assert!((start - 1.0).abs() < 0.01, "video starts at {start}");
    assert!((duration(&probe) - 4.0).abs() <= 0.2, "duration {}", duration(&probe));
    assert!(decodes(&path));
}

#[test]
fn a_file_whose_directory_is_gone_is_an_error() {
    let dir = TempDir::new("gone");
    let path = dir.file("room.webm");
    fs::remove_dir_all(&dir.0).unwrap();
    assert!(WebmWriter::create(&path, Some(VIDEO)).is_err());
    assert!(!path.exists(), "the writer never creates the file");
}

#[test]
fn a_full_disk_is_an_error_not_a_hang() {
    let path = Path::new("/dev/full");
    if !path.exists() {
        eprintln!("SKIPPED: no /dev/full");
        return;
    }
    let started = Instant::now();
    let mut writer = WebmWriter::create(path, Some(VIDEO)).unwrap();
    let audio = opus_packets(3);
    let error = audio
        .iter()
        .find_map(|(at, opus)| writer.push_audio(*at, opus).err())
        .or_else(|| writer.finish().err())
        .expect("writing to a full disk succeeded");
    eprintln!("{error}");
    assert!(
        matches!(&error, MediaError::Element { element, .. } if element.contains("sink")),
        "{error:?}"
    );
    assert!(started.elapsed() < WAIT, "took {:?}", started.elapsed());
}

#[test]
fn a_long_idle_video_track_holds_nothing_back() {
    if !have("ffprobe") || !have("ffmpeg") {
        return;
    }
    let dir = TempDir::new("idle");
    let path = dir.file("room.webm");
    let audio = opus_packets(10);
    let mut writer = WebmWriter::create(&path, Some(VIDEO)).unwrap();
    write(&mut writer, &audio, &vp8_frames(30));
    // The muxer went on without the video: most of the audio is in the file already.
    let written: usize =
        audio.iter().filter(|(at, _)| *at < Duration::from_secs(8)).map(|(_, p)| p.len()).sum();
    let deadline = Instant::now() + WAIT;
    while fs::metadata(&path).unwrap().len() < written as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(fs::metadata(&path).unwrap().len() >= written as u64, "the muxer held audio back");
    let started = Instant::now();
    writer.finish().unwrap();
    assert!(started.elapsed() < WAIT, "finish took {:?}", started.elapsed());

    let probe = probe(&path);
    assert_eq!(stream(&probe, "audio")["nb_read_packets"], "500");
    assert!((duration(&probe) - 10.0).abs() <= 0.2, "duration {}", duration(&probe));
    assert!(decodes(&path));
    // The 30 pictures, then black ones filling the video track from 1 s to 9 s.
    let hashes = picture_hashes(&path);
    assert!(hashes.len() > 30, "{} pictures", hashes.len());
    assert!(hashes[30..].iter().all(|hash| *hash == hashes[30] && *hash != hashes[29]));
}

#[test]
fn the_composite_decodes_as_it_was_after_an_idle_spell() {
    if !have("ffprobe") || !have("ffmpeg") {
        return;
    }
    let dir = TempDir::new("resume");
    // Keyframes at frames 0, 30, 60 and 90.
    let frames = vp8_frames_with_keyframes_every(120, 30);
    let reference = dir.file("reference.webm");
    let mut writer = WebmWriter::create(&reference, Some(VIDEO)).unwrap();
    write(&mut writer, &opus_packets(4), &frames);
    writer.finish().unwrap();
    let expected = picture_hashes(&reference);
    assert_eq!(expected.len(), 120);

    // Frames 0-29 (0 s to 1 s), nothing for 3 s, then frames 45-119 (from 4 s on): the track
    // is filled, and frames 45-59 that follow the fill are dropped until the keyframe 60.
    let idle = dir.file("idle.webm");
    let pause = Duration::from_millis(2500);
    let mut video = frames[..30].to_vec();
    video.extend(frames[45..].iter().map(|(at, key, vp8)| (*at + pause, *key, vp8.clone())));
    let mut writer = WebmWriter::create(&idle, Some(VIDEO)).unwrap();
    write(&mut writer, &opus_packets(7), &video);
    writer.finish().unwrap();
    let probe = probe(&idle);
    assert!((duration(&probe) - 7.0).abs() <= 0.2, "duration {}", duration(&probe));
    assert!(decodes(&idle));
    let hashes = picture_hashes(&idle);
    assert!(hashes.starts_with(&expected[..30]));
    assert!(hashes.ends_with(&expected[60..]), "the pictures after the fill differ");
    let fill = &hashes[30..hashes.len() - 60];
    assert!(!fill.is_empty() && fill.iter().all(|hash| *hash == fill[0]), "{fill:?}");
    assert!(!expected.contains(&fill[0]));
}

#[test]
fn an_idle_audio_track_is_filled_with_silence() {
    if !have("ffprobe") || !have("ffmpeg") {
        return;
    }
    let dir = TempDir::new("silence");
    let path = dir.file("room.webm");
    let audio: Vec<_> =
        opus_packets(1).into_iter().filter(|(at, _)| *at < Duration::from_millis(500)).collect();
    let mut writer = WebmWriter::create(&path, Some(VIDEO)).unwrap();
    write(&mut writer, &audio, &vp8_frames(90));
    writer.finish().unwrap();

    let probe = probe(&path);
    assert_eq!(stream(&probe, "video")["nb_read_packets"], "90");
    // 25 packets, then silence from 0.5 s to between IDLE and SLACK before the last picture
    // (2.97 s): to between 1.47 s and 1.97 s.
    let packets: u32 = stream(&probe, "audio")["nb_read_packets"].parse().unwrap();
    assert!((25 + 48..=25 + 74).contains(&packets), "{packets} audio packets");
    assert!((duration(&probe) - 3.0).abs() <= 0.2, "duration {}", duration(&probe));
    assert!(decodes(&path));
}

#[test]
fn video_that_starts_late_or_never_holds_nothing_back() {
    if !have("ffprobe") || !have("ffmpeg") {
        return;
    }
    let dir = TempDir::new("late");
    let frames = vp8_frames(30);
    let reference = dir.file("reference.webm");
    let mut writer = WebmWriter::create(&reference, Some(VIDEO)).unwrap();
    write(&mut writer, &opus_packets(1), &frames);
    writer.finish().unwrap();

    // The picture arrives after 4 s of audio.
    let late = dir.file("late.webm");
    let frames: Vec<_> = frames
        .into_iter()
        .map(|(at, keyframe, vp8)| (at + Duration::from_secs(4), keyframe, vp8))
        .collect();
    let mut writer = WebmWriter::create(&late, Some(VIDEO)).unwrap();
    write(&mut writer, &opus_packets(6), &frames);
    writer.finish().unwrap();
    let probed = probe(&late);
    // Black pictures from the start until 1 s before the first, then the 30.
    let pictures: u32 = stream(&probed, "video")["nb_read_packets"].parse().unwrap();
    assert!(pictures > 30, "{pictures} pictures");
    assert_eq!(&picture_hashes(&late)[pictures as usize - 30..], &picture_hashes(&reference)[..]);
    assert!((duration(&probed) - 6.0).abs() <= 0.2, "duration {}", duration(&probed));
    assert!(decodes(&late));

    // No picture at all.
    let never = dir.file("never.webm");
    let mut writer = WebmWriter::create(&never, Some(VIDEO)).unwrap();
    write(&mut writer, &opus_packets(6), &[]);
    writer.finish().unwrap();
    let probed = probe(&never);
    assert_eq!(stream(&probed, "audio")["nb_read_packets"], "300");
    assert_eq!(stream(&probed, "video")["codec_name"], "vp8", "black pictures");
    assert!((duration(&probed) - 6.0).abs() <= 0.2, "duration {}", duration(&probed));
    assert!(decodes(&never));
}

#[test]
fn the_writer_is_send() {
    fn send<T: Send>() {}
    send::<WebmWriter>();
}
