//! Real files, made by the `ffmpeg` command-line tool into a temporary directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use super::*;

/// ffmpeg's `sine` source has an amplitude of 1/8: an RMS level of 20·log10(1/8/√2).
const SINE_DBFS: f64 = -21.07;

/// A temporary directory to make files in, or `None` (the test is skipped, loudly) when the
/// `ffmpeg` tool is missing. Under CI a missing tool is a failure.
fn workdir() -> Option<TempDir> {
    let found =
        Command::new("ffmpeg").arg("-version").output().is_ok_and(|output| output.status.success());
    if !found {
        if std::env::var("CI").is_ok_and(|value| value == "true") {
            panic!("ffmpeg is needed: scripts/setup test installs it");
        }
        eprintln!(
            "\n*** SKIPPED: the ffmpeg tool is missing; `scripts/setup test` installs it ***\n"
        );
        return None;
    }
    Some(tempfile::tempdir().expect("temporary directory"))
}

/// Runs `ffmpeg <args> <dir/name>` and returns the path of the file made. The arguments
/// are split at white space.
fn ffmpeg(dir: &TempDir, name: &str, args: &str) -> PathBuf {
    let path = dir.path().join(name);
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args.split_whitespace())
        .arg(&path)
        .output()
        .expect("ffmpeg runs");
    assert!(
        output.status.success(),
        "ffmpeg {args:?} {name} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    path
}

/// Makes stereo of a mono input with the same signal at the same level in both channels
/// (`-ac 2` would put it 3 dB lower in each).
const STEREO: &str = "pan=stereo|c0=c0|c1=c0";

/// A one-second 1 kHz sine at `rate` Hz, as ffmpeg input arguments.
fn sine(rate: u32) -> String {
    format!(" -f lavfi -i sine=frequency=1000:sample_rate={rate}:duration=1 ")
}

/// One second of ffmpeg's test picture, `size` at 10 pictures per second, as ffmpeg input
/// arguments.
fn testsrc(size: &str) -> String {
    format!(" -f lavfi -i testsrc=size={size}:rate=10:duration=1 ")
}

/// Everything in the file: its audio, and its pictures.
fn decode_all(file: &mut MediaFile) -> (Vec<f32>, Vec<Picture>) {
    let mut audio = Vec::new();
    let mut pictures = Vec::new();
    while let Some(piece) = file.next().expect("decodes") {
        match piece {
            Decoded::Audio(samples) => audio.extend(samples),
            Decoded::Picture(picture) => pictures.push(picture),
        }
    }
    assert!(file.next().expect("still at the end").is_none());
    (audio, pictures)
}

/// The RMS level in dBFS.
fn level_dbfs(samples: &[f32]) -> f64 {
    let sum: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
    10.0 * (sum / samples.len() as f64).log10()
}

/// The frequency of a tone at 48 kHz, from its upward zero crossings.
fn frequency(samples: &[f32]) -> f64 {
    let crossings = samples.windows(2).filter(|pair| pair[0] < 0.0 && pair[1] >= 0.0).count();
    crossings as f64 * f64::from(SAMPLE_RATE) / samples.len() as f64
}

/// Checks that `audio` is one second of the 1 kHz sine at 48 kHz.
fn assert_is_the_sine(audio: &[f32], what: &str) {
    let expected = f64::from(SAMPLE_RATE);
    let count = audio.len() as f64;
    assert!((count - expected).abs() <= expected * 0.05, "{what}: {count} samples for one second");
    assert!(audio.iter().all(|s| (-1.0..=1.0).contains(s)), "{what}: out of range");
    // Leave out the edges, where encoders fade in and out.
    let middle = &audio[audio.len() / 10..audio.len() * 9 / 10];
    let level = level_dbfs(middle);
    assert!(
        (level - SINE_DBFS).abs() <= 2.0,
        "{what}: level {level:.2} dBFS, expected {SINE_DBFS}"
    );
    let frequency = frequency(middle);
    assert!((frequency - 1000.0).abs() <= 30.0, "{what}: frequency {frequency:.1} Hz");
}

/// Opens `path`, checks its info, and checks that its audio is the sine.
fn check_tone_file(path: &Path, container: &str, codec: &str) {
    let mut file = MediaFile::open(path).expect("opens");
    let info = file.info().clone();
    assert_eq!(info.container, container);
    assert_eq!(info.audio.as_deref(), Some(codec));
    assert_eq!(info.video, None);
    let duration = info.duration.expect("a duration");
    assert!((900..=1100).contains(&duration.as_millis()), "duration {duration:?}");
    let (audio, pictures) = decode_all(&mut file);
    assert!(pictures.is_empty());
    assert_is_the_sine(&audio, codec);
}

#[test]
fn wav_16khz_mono() {
    let Some(dir) = workdir() else { return };
    let path = ffmpeg(&dir, "tone.wav", &format!("{} -c:a pcm_s16le", sine(16_000)));
    check_tone_file(&path, "wav", "pcm_s16le");
}

#[test]
fn mp3_44khz_stereo() {
    let Some(dir) = workdir() else { return };
    let args = format!("{} -af {STEREO} -c:a libmp3lame -b:a 128k", sine(44_100));
    let path = ffmpeg(&dir, "tone.mp3", &args);
    check_tone_file(&path, "mp3", "mp3");
}

#[test]
fn ogg_opus() {
    let Some(dir) = workdir() else { return };
    let path = ffmpeg(&dir, "tone.ogg", &format!("{} -c:a libopus -b:a 64k", sine(48_000)));
    check_tone_file(&path, "ogg", "opus");
}

#[test]
fn mp4_aac_44khz_stereo() {
    let Some(dir) = workdir() else { return };
    let args = format!("{} -af {STEREO} -c:a aac -b:a 128k", sine(44_100));
    let path = ffmpeg(&dir, "tone.mp4", &args);
    check_tone_file(&path, "mov,mp4,m4a,3gp,3g2,mj2", "aac");
}

/// Checks ten pictures a tenth of a second apart, of `width` × `height`.
fn assert_pictures(pictures: &[Picture], width: u32, height: u32) {
    assert!(
        (9..=11).contains(&pictures.len()),
        "{} pictures for one second at 10 per second",
        pictures.len()
    );
    for picture in pictures {
        assert_eq!((picture.width, picture.height), (width, height));
        assert_eq!(picture.i420.len(), (width * height * 3 / 2) as usize);
    }
    for pair in pictures.windows(2) {
        assert!(pair[0].at < pair[1].at, "{:?} then {:?}", pair[0].at, pair[1].at);
    }
    assert!(pictures[0].at < Duration::from_millis(50), "first at {:?}", pictures[0].at);
    let last = pictures[pictures.len() - 1].at;
    assert!(
        (Duration::from_millis(850)..=Duration::from_millis(950)).contains(&last),
        "last at {last:?}"
    );
    // testsrc is a colourful pattern, not a flat picture.
    let y = &pictures[0].i420[..(width * height) as usize];
    let (min, max) = (y.iter().min(), y.iter().max());
    assert!(max > min, "a flat luma plane");
}

#[test]
fn h264_with_aac_in_mp4() {
    let Some(dir) = workdir() else { return };
    // The video in 4:4:4, so that the scaler converts as well.
    let args = format!(
        "{}{} -c:v libx264 -preset ultrafast -pix_fmt yuv444p -c:a aac -af {STEREO}",
        testsrc("320x240"),
        sine(44_100)
    );
    let path = ffmpeg(&dir, "clip.mp4", &args);
    let mut file = MediaFile::open(&path).expect("opens");
    let info = file.info().clone();
    assert_eq!(info.container, "mov,mp4,m4a,3gp,3g2,mj2");
    assert_eq!(info.audio.as_deref(), Some("aac"));
    assert_eq!(info.video, Some(VideoInfo { codec: "h264".into(), width: 320, height: 240 }));
    let (audio, pictures) = decode_all(&mut file);
    assert_pictures(&pictures, 320, 240);
    assert_is_the_sine(&audio, "aac with video");
}

#[test]
fn vp8_webm_without_audio() {
    let Some(dir) = workdir() else { return };
    let args = format!("{} -c:v libvpx -b:v 500k -deadline realtime", testsrc("320x240"));
    let path = ffmpeg(&dir, "clip.webm", &args);
    let mut file = MediaFile::open(&path).expect("opens");
    let info = file.info().clone();
    assert_eq!(info.container, "matroska,webm");
    assert_eq!(info.audio, None);
    assert_eq!(info.video, Some(VideoInfo { codec: "vp8".into(), width: 320, height: 240 }));
    let (audio, pictures) = decode_all(&mut file);
    assert!(audio.is_empty());
    assert_pictures(&pictures, 320, 240);
}

#[test]
fn full_hd_comes_out_720p() {
    let Some(dir) = workdir() else { return };
    let args = " -f lavfi -i testsrc=size=1920x1080:rate=5:duration=0.4 \
                -c:v libx264 -preset ultrafast -pix_fmt yuv420p";
    let path = ffmpeg(&dir, "big.mp4", args);
    let mut file = MediaFile::open(&path).expect("opens");
    assert_eq!(
        file.info().video,
        Some(VideoInfo { codec: "h264".into(), width: 1920, height: 1080 })
    );
    let (_, pictures) = decode_all(&mut file);
    assert_eq!(pictures.len(), 2);
    for picture in &pictures {
        assert_eq!((picture.width, picture.height), (1280, 720));
        assert_eq!(picture.i420.len(), 1280 * 720 * 3 / 2);
    }
}

#[test]
fn fit_scales_down_keeping_the_shape() {
    let square = Rational::new(1, 1);
    let unknown = Rational::new(0, 1);
    assert_eq!(fit(320, 240, square), (320, 240));
    assert_eq!(fit(320, 240, unknown), (320, 240));
    assert_eq!(fit(1920, 1080, square), (1280, 720));
    assert_eq!(fit(3840, 2160, unknown), (1280, 720));
    // 4:3 and portrait: the height is what limits.
    assert_eq!(fit(1440, 1080, square), (960, 720));
    assert_eq!(fit(1080, 1920, square), (404, 720));
    // Very wide: the width limits.
    assert_eq!(fit(2560, 720, square), (1280, 360));
    // Odd sizes become even.
    assert_eq!(fit(321, 241, square), (320, 240));
    assert_eq!(fit(1, 1, square), (2, 2));
    // Anamorphic PAL 16:9 (pixels 64:45 wide): shown 720 × 405, made even.
    assert_eq!(fit(720, 576, Rational::new(64, 45)), (720, 404));
    // Pixels narrower than wide.
    assert_eq!(fit(640, 480, Rational::new(1, 2)), (320, 480));
}

#[test]
fn rewind_decodes_the_same_again() {
    let Some(dir) = workdir() else { return };
    let wav = ffmpeg(&dir, "tone.wav", &sine(16_000));
    let mut file = MediaFile::open(&wav).expect("opens");
    let (first, _) = decode_all(&mut file);
    file.rewind().expect("rewinds");
    let (second, _) = decode_all(&mut file);
    assert!(!first.is_empty());
    assert_eq!(first.len(), second.len());
    assert_eq!(first, second);

    // Rewinding halfway, with video.
    let args =
        format!("{}{} -c:v libx264 -preset ultrafast -c:a aac", testsrc("320x240"), sine(44_100));
    let clip = ffmpeg(&dir, "clip.mp4", &args);
    let mut file = MediaFile::open(&clip).expect("opens");
    let (audio, pictures) = decode_all(&mut file);
    file.rewind().expect("rewinds");
    for _ in 0..5 {
        file.next().expect("decodes");
    }
    file.rewind().expect("rewinds");
    let (audio_again, pictures_again) = decode_all(&mut file);
    assert_eq!(audio.len(), audio_again.len());
    assert_eq!(pictures, pictures_again);
}

/// Checks that the error names the file.
fn assert_names(error: &FileError, path: &Path) {
    let message = error.to_string();
    assert!(
        message.contains(&path.display().to_string()),
        "{message:?} does not name {}",
        path.display()
    );
}

#[test]
fn missing_file_is_not_found() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("nothing-here.mp3");
    let error = MediaFile::open(&path).expect_err("refused");
    assert!(matches!(&error, FileError::NotFound(p) if *p == path), "{error:?}");
    assert_names(&error, &path);
}

#[test]
fn directory_is_not_readable() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let error = MediaFile::open(dir.path()).expect_err("refused");
    assert!(matches!(&error, FileError::NotReadable { .. }), "{error:?}");
    assert_names(&error, dir.path());
}

/// Writes `bytes` to `dir/name` and expects the file to be refused as not media.
fn assert_not_media(dir: &TempDir, name: &str, bytes: &[u8]) {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("written");
    let error = MediaFile::open(&path).expect_err("refused");
    assert!(matches!(&error, FileError::NotMedia { .. }), "{name}: {error:?}");
    assert_names(&error, &path);
}

#[test]
fn empty_random_and_text_files_are_not_media() {
    let dir = tempfile::tempdir().expect("temporary directory");
    assert_not_media(&dir, "empty.wav", b"");
    assert_not_media(&dir, "empty", b"");
    let noise = noise(8192);
    assert_not_media(&dir, "noise.bin", &noise);
    assert_not_media(&dir, "noise.mp4", &noise);
    let text = b"Hello, this is just a text file.\nThere is nothing to play here.\n";
    assert_not_media(&dir, "notes.txt", text);
    assert_not_media(&dir, "notes.mp3", text);
}

#[test]
fn truncated_mp4_is_refused() {
    let Some(dir) = workdir() else { return };
    let args = format!("{} -c:v libx264 -preset ultrafast", testsrc("320x240"));
    let whole = ffmpeg(&dir, "clip.mp4", &args);
    let bytes = std::fs::read(&whole).expect("read");
    let path = dir.path().join("truncated.mp4");
    std::fs::write(&path, &bytes[..200]).expect("written");
    let error = MediaFile::open(&path).expect_err("refused");
    assert!(
        matches!(&error, FileError::NotMedia { .. } | FileError::Undecodable { .. }),
        "{error:?}"
    );
    assert_names(&error, &path);
}

/// A WAV file of 16-bit mono 8 kHz "audio" whose format tag, 0x3039, no codec has.
fn unknown_codec_wav() -> Vec<u8> {
    let data: Vec<u8> = (0..16_000u32).map(|i| (i % 251) as u8).collect();
    let mut fmt = Vec::new();
    fmt.extend_from_slice(&0x3039u16.to_le_bytes()); // format tag
    fmt.extend_from_slice(&1u16.to_le_bytes()); // channels
    fmt.extend_from_slice(&8_000u32.to_le_bytes()); // sample rate
    fmt.extend_from_slice(&16_000u32.to_le_bytes()); // bytes per second
    fmt.extend_from_slice(&2u16.to_le_bytes()); // block align
    fmt.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    let mut body = b"WAVE".to_vec();
    body.extend_from_slice(b"fmt ");
    body.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
    body.extend_from_slice(&fmt);
    body.extend_from_slice(b"data");
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(&data);
    let mut wav = b"RIFF".to_vec();
    wav.extend_from_slice(&(body.len() as u32).to_le_bytes());
    wav.extend_from_slice(&body);
    wav
}

#[test]
fn unknown_audio_codec_in_wav() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("strange.wav");
    std::fs::write(&path, unknown_codec_wav()).expect("written");
    let error = MediaFile::open(&path).expect_err("refused");
    assert!(
        matches!(&error, FileError::UnknownCodec { kind: "audio", codec, .. } if codec == "unknown"),
        "{error:?}"
    );
    assert_names(&error, &path);
}

#[test]
fn unknown_audio_codec_beside_good_video_is_refused() {
    let Some(dir) = workdir() else { return };
    // An AVI of MJPEG video and PCM audio, then the audio's format tag (the first field of
    // the WAVEFORMATEX in the second stream's `strf` chunk) changed to one no codec has.
    let args = format!("{}{} -c:v mjpeg -c:a pcm_s16le", testsrc("320x240"), sine(16_000));
    let path = ffmpeg(&dir, "clip.avi", &args);
    let mut bytes = std::fs::read(&path).expect("read");
    let strf: Vec<usize> = bytes
        .windows(4)
        .enumerate()
        .filter(|(_, window)| *window == b"strf")
        .map(|(at, _)| at)
        .collect();
    assert_eq!(strf.len(), 2, "two streams");
    let tag = strf[1] + 8;
    assert_eq!(bytes[tag..tag + 2], 1u16.to_le_bytes(), "PCM");
    bytes[tag..tag + 2].copy_from_slice(&0x3039u16.to_le_bytes());
    std::fs::write(&path, &bytes).expect("written");
    let error = MediaFile::open(&path).expect_err("refused");
    assert!(matches!(&error, FileError::UnknownCodec { kind: "audio", .. }), "{error:?}");
    assert_names(&error, &path);
}

#[test]
fn subtitles_only_have_no_streams() {
    let Some(dir) = workdir() else { return };
    let srt = dir.path().join("words.srt");
    std::fs::write(
        &srt,
        "1\n00:00:00,000 --> 00:00:01,000\nHello\n\n2\n00:00:01,000 --> 00:00:02,000\nWorld\n",
    )
    .expect("written");
    // A subtitle file is no container of sound or pictures.
    let error = MediaFile::open(&srt).expect_err("refused");
    assert!(matches!(&error, FileError::NotMedia { path, .. } if *path == srt), "{error:?}");
    assert_names(&error, &srt);

    let srt_arg = srt.to_str().expect("UTF-8 path");
    let mkv = ffmpeg(&dir, "words.mkv", &format!("-i {srt_arg} -c:s srt"));
    let error = MediaFile::open(&mkv).expect_err("refused");
    assert!(matches!(&error, FileError::NoStreams(p) if *p == mkv), "{error:?}");
    assert_names(&error, &mkv);
}

#[test]
fn media_file_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<MediaFile>();
    assert_send::<Decoded>();
    assert_send::<FileError>();
}

#[test]
fn mp3_with_a_cover_picture() {
    let Some(dir) = workdir() else { return };
    let tone = ffmpeg(&dir, "tone.mp3", &format!("{} -c:a libmp3lame", sine(44_100)));
    let cover = ffmpeg(&dir, "cover.png", " -f lavfi -i testsrc=size=64x48 -frames:v 1");
    let args = format!(
        "-i {} -i {} -map 0 -map 1 -c copy -disposition:v attached_pic",
        tone.display(),
        cover.display()
    );
    let path = ffmpeg(&dir, "covered.mp3", &args);
    let mut file = MediaFile::open(&path).expect("opens");
    assert_eq!(file.info().audio.as_deref(), Some("mp3"));
    assert_eq!(file.info().video, Some(VideoInfo { codec: "png".into(), width: 64, height: 48 }));
    let (audio, pictures) = decode_all(&mut file);
    assert_eq!(pictures.len(), 1);
    assert_eq!((pictures[0].width, pictures[0].height, pictures[0].at), (64, 48, Duration::ZERO));
    assert_is_the_sine(&audio, "mp3 with a cover");
}

#[test]
fn name_that_is_not_utf8_is_not_readable() {
    use std::os::unix::ffi::OsStrExt;

    let Some(dir) = workdir() else { return };
    let tone = ffmpeg(&dir, "tone.wav", &sine(16_000));
    let path = dir.path().join(std::ffi::OsStr::from_bytes(b"tone-\xff.wav"));
    std::fs::rename(&tone, &path).expect("renamed");
    let error = MediaFile::open(&path).expect_err("refused");
    assert!(matches!(&error, FileError::NotReadable { .. }), "{error:?}");
    assert_names(&error, &path);
}

/// `len` bytes of noise from a fixed seed (xorshift).
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

#[test]
fn garbled_video_is_undecodable() {
    let Some(dir) = workdir() else { return };
    let args = format!("{} -c:v libx264 -preset ultrafast", testsrc("320x240"));
    let path = ffmpeg(&dir, "clip.mp4", &args);
    // The container stays whole, but every coded picture (the payload of the `mdat` box)
    // becomes noise.
    let mut bytes = std::fs::read(&path).expect("read");
    let mdat = bytes.windows(4).position(|window| window == b"mdat").expect("an mdat box");
    let size = u32::from_be_bytes(bytes[mdat - 4..mdat].try_into().expect("4 bytes")) as usize;
    let payload = mdat + 4..mdat - 4 + size;
    let garble = noise(payload.len());
    bytes[payload].copy_from_slice(&garble);
    std::fs::write(&path, &bytes).expect("written");
    let error = MediaFile::open(&path).expect_err("refused");
    assert!(matches!(&error, FileError::Undecodable { .. }), "{error:?}");
    assert_names(&error, &path);
}

#[test]
fn corrupt_data_in_the_middle_is_skipped() {
    let Some(dir) = workdir() else { return };
    let path = ffmpeg(&dir, "tone.mp3", &format!("{} -c:a libmp3lame", sine(44_100)));
    let mut bytes = std::fs::read(&path).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle..middle + 600].copy_from_slice(&noise(600));
    std::fs::write(&path, &bytes).expect("written");
    let mut file = MediaFile::open(&path).expect("opens");
    let (audio, _) = decode_all(&mut file);
    assert!((36_000..=50_000).contains(&audio.len()), "{} samples", audio.len());
}

#[test]
fn playlists_and_text_are_not_played() {
    let Some(dir) = workdir() else { return };
    let tone = ffmpeg(&dir, "tone.wav", &format!("{} -c:a pcm_s16le", sine(48_000)));
    let tone = tone.to_str().expect("UTF-8 path");
    // Each would make FFmpeg read another file or the network, or render text as video.
    let cases = [
        (
            "list.m3u8",
            "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nhttp://127.0.0.1:9/a.ts\n".to_owned(),
        ),
        ("list.ffconcat", format!("ffconcat version 1.0\nfile '{tone}'\n")),
        (
            "stream.sdp",
            "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 9 RTP/AVP 0\n"
                .to_owned(),
        ),
        ("notes.txt", "Not a sound, but FFmpeg's tty demuxer would draw it.\n".repeat(200)),
    ];
    for (name, text) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("written");
        let error = MediaFile::open(&path).expect_err(name);
        assert!(matches!(&error, FileError::NotMedia { .. }), "{name}: {error:?}");
        assert_names(&error, &path);
    }
}
