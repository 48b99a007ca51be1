//! Media files decoded for playing into a room: any container and codec FFmpeg reads (WAV,
//! MP3, Ogg, MP4, WebM, Matroska, ...). The best audio stream comes out as 48 kHz mono `f32`,
//! and the best video stream as I420 pictures no larger than 1280 × 720.
//!
//! [`MediaFile::open`] decodes the first frame of each stream before it returns. So a file
//! that cannot be played is refused before anything is played, with an error that names it.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;

use ffmpeg_next as ffmpeg;

use ffmpeg::format::context::Input;
use ffmpeg::format::stream::Disposition;
use ffmpeg::format::{Pixel, Sample, sample};
use ffmpeg::software::{resampling, scaling};
use ffmpeg::util::error::{EACCES, EAGAIN, EISDIR, ENOENT, EPERM};
use ffmpeg::util::frame;
use ffmpeg::{ChannelLayout, Dictionary, Packet, Rational, codec, media};

/// The sample rate of decoded audio.
const SAMPLE_RATE: u32 = 48_000;
/// The largest picture handed out: larger video is scaled down to fit.
const MAX_WIDTH: u32 = 1280;
/// See [`MAX_WIDTH`].
const MAX_HEIGHT: u32 = 720;
/// Packets of one stream that [`MediaFile::open`] decodes, at most, to get its first frame.
/// A decoder may hold a few frames back (B-frames, threads), and a cut stream may start
/// before its first key frame.
const PROBE_STREAM_PACKETS: usize = 500;
/// Packets of the whole file that [`MediaFile::open`] reads, at most, to find a first frame
/// for every stream.
const PROBE_PACKETS: usize = 20_000;
/// Read errors skipped in a row before the file is taken as ended.
const MAX_READ_ERRORS: usize = 1_000;
/// Decode errors received in a row from one decoder before it is given the next packet.
const MAX_DECODE_ERRORS: usize = 16;

/// What a file holds, found when it was opened.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaInfo {
    /// FFmpeg's name for the container, such as "wav", "mp3", "ogg", "matroska,webm" or
    /// "mov,mp4,m4a,3gp,3g2,mj2".
    pub container: String,
    /// The codec of the audio stream that is played, such as "pcm_s16le", "mp3", "opus" or
    /// "aac". `None` when the file has no audio.
    pub audio: Option<String>,
    /// The video stream that is played, if any.
    pub video: Option<VideoInfo>,
    /// How long the file plays, when the container says.
    pub duration: Option<Duration>,
}

/// The video stream of a file, as stored (before scaling).
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    /// The codec, such as "h264", "vp8" or "mjpeg".
    pub codec: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Why a file cannot be played. All of these come from the file the user chose, and each
/// message names the file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Nothing is at this path.
    #[error("media file {0} does not exist")]
    NotFound(PathBuf),
    /// Something is there but it cannot be read: a directory, no permission, ...
    #[error("media file {path} cannot be read: {reason}")]
    NotReadable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Not a container that FFmpeg recognises, or a malformed one.
    #[error("{path} is not a media file that can be played (FFmpeg: {reason})")]
    NotMedia {
        /// The file.
        path: PathBuf,
        /// What FFmpeg said.
        reason: String,
    },
    /// A media container with neither audio nor video in it (only subtitles or data, say).
    #[error("media file {0} has neither audio nor video to play")]
    NoStreams(PathBuf),
    /// A stream is in a codec that no decoder here reads.
    #[error(
        "the {kind} of media file {path} is in a codec that this server cannot decode ({codec})"
    )]
    UnknownCodec {
        /// The file.
        path: PathBuf,
        /// "audio" or "video".
        kind: &'static str,
        /// FFmpeg's name for the codec, or "unknown" when FFmpeg does not know it either.
        codec: String,
    },
    /// The decoder opened, but the data does not decode.
    #[error("media file {path} does not decode: {reason}")]
    Undecodable {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// A piece of a file, decoded.
#[derive(Debug)]
pub enum Decoded {
    /// Audio at 48 kHz, mono, f32 in [-1, 1], continuous with the previous Audio piece (any length).
    Audio(Vec<f32>),
    /// A video frame.
    Picture(Picture),
}

/// A decoded video frame, scaled down (never up) to fit within 1280 × 720 keeping its aspect
/// ratio, with an even width and height.
#[derive(Clone, PartialEq)]
pub struct Picture {
    /// When it shows: its presentation time from the start of the file.
    pub at: Duration,
    /// Width in pixels (even).
    pub width: u32,
    /// Height in pixels (even).
    pub height: u32,
    /// Tightly packed I420: Y (`width × height` bytes), then U, then V
    /// (`width/2 × height/2` bytes each).
    pub i420: Vec<u8>,
}

impl fmt::Debug for Picture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Picture")
            .field("at", &self.at)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("i420_len", &self.i420.len())
            .finish()
    }
}

/// A media file being decoded, in file order. It is `Send`: it can be moved to a blocking
/// thread to decode there.
pub struct MediaFile {
    path: PathBuf,
    info: MediaInfo,
    /// False when the video stream is only a cover picture that does not decode: then the
    /// file plays as audio only.
    with_video: bool,
    session: Session,
    /// Decoded pieces not yet handed out.
    pending: VecDeque<Decoded>,
}

impl fmt::Debug for MediaFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediaFile")
            .field("path", &self.path)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl MediaFile {
    /// Opens `path` and checks that it plays: the container is read, the best audio and video
    /// streams are found, their decoders opened, and the first frame of each decoded (then it
    /// rewinds), so a file that cannot be played is refused before anything is played.
    pub fn open(path: &Path) -> Result<Self, FileError> {
        init();
        let (mut probe, mut info) = Session::open(path, true)?;
        probe.probe()?;
        let with_video = probe.video.is_some();
        if !with_video {
            info.video = None;
        }
        drop(probe);
        let (session, _) = Session::open(path, with_video)?;
        Ok(MediaFile { path: path.to_owned(), info, with_video, session, pending: VecDeque::new() })
    }

    /// What the file holds.
    pub fn info(&self) -> &MediaInfo {
        &self.info
    }

    /// The next decoded piece in file order; `Ok(None)` at the end of the file. Corrupt
    /// packets in the middle of a file are skipped (logged with `tracing::debug!`), not errors.
    #[allow(clippy::should_implement_trait, reason = "it can fail, so it is not an Iterator")]
    pub fn next(&mut self) -> Result<Option<Decoded>, FileError> {
        loop {
            if let Some(piece) = self.pending.pop_front() {
                return Ok(Some(piece));
            }
            if self.session.ended {
                return Ok(None);
            }
            self.session.step(&mut self.pending)?;
        }
    }

    /// Back to the start, for looping. The file is opened again, so that the decoders start
    /// afresh whatever the container; this fails if the file has gone meanwhile.
    pub fn rewind(&mut self) -> Result<(), FileError> {
        let (session, _) = Session::open(&self.path, self.with_video)?;
        self.session = session;
        self.pending.clear();
        Ok(())
    }
}

/// Initialises FFmpeg once, and silences its own logging: what matters is logged here with
/// `tracing`, and FFmpeg would otherwise write every decoding hiccup to stderr.
fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if let Err(error) = ffmpeg::init() {
            tracing::warn!(%error, "FFmpeg initialisation failed");
        }
        ffmpeg::log::set_level(ffmpeg::log::Level::Quiet);
    });
}

/// FFmpeg's demuxers that may open a played file: sound and video containers, and still
/// pictures.
const CONTAINERS: &str = "wav,w64,rf64,mp3,ogg,flac,mov,mp4,m4a,3gp,matroska,webm,aac,aiff,caf,\
    au,amr,ac3,eac3,avi,flv,asf,mpeg,mpegts,wv,ape,tta,dts,mpc,mpc8,image2,png_pipe,jpeg_pipe,gif";

/// One pass through a file: the demuxer and the decoders of the streams played.
struct Session {
    path: PathBuf,
    input: Input,
    audio: Option<AudioTrack>,
    video: Option<VideoTrack>,
    /// The end of the file was reached and the decoders flushed.
    ended: bool,
}

impl Session {
    /// Opens the file and the decoders of its best audio stream and (if `with_video`) its
    /// best video stream.
    fn open(path: &Path, with_video: bool) -> Result<(Self, MediaInfo), FileError> {
        check_file(path)?;
        let Some(name) = path.to_str() else {
            return Err(FileError::NotReadable {
                path: path.to_owned(),
                reason: "its name is not valid UTF-8, which FFmpeg needs".into(),
            });
        };
        // "file:" so that FFmpeg never takes a file name for another protocol's URL, and only
        // local files: a playlist (HLS, concat, SDP) must not make the server fetch anything.
        // Only containers of sound and pictures: FFmpeg also renders text files as video.
        let mut options = Dictionary::new();
        options.set("protocol_whitelist", "file");
        options.set("format_whitelist", CONTAINERS);
        let input = ffmpeg::format::input_with_dictionary(&format!("file:{name}"), options)
            .map_err(|error| {
                let path = path.to_owned();
                match error {
                    ffmpeg::Error::Other { errno } if errno == ENOENT => FileError::NotFound(path),
                    ffmpeg::Error::Other { errno }
                        if errno == EACCES || errno == EPERM || errno == EISDIR =>
                    {
                        FileError::NotReadable { path, reason: error.to_string() }
                    }
                    _ => FileError::NotMedia { path, reason: error.to_string() },
                }
            })?;
        let audio_index = best_stream(&input, media::Type::Audio);
        let video_index = best_stream(&input, media::Type::Video);
        if audio_index.is_none() && video_index.is_none() {
            return Err(FileError::NoStreams(path.to_owned()));
        }
        let audio = match audio_index {
            Some(index) => Some(AudioTrack::open(&input, index, path)?),
            None => None,
        };
        let video = match video_index.filter(|_| with_video) {
            Some(index) => VideoTrack::open(&input, index, path)?,
            None => None,
        };
        if audio.is_none() && video.is_none() {
            // Only a cover picture that cannot be decoded.
            return Err(FileError::NoStreams(path.to_owned()));
        }
        let duration = u64::try_from(input.duration())
            .ok()
            .filter(|&micros| micros > 0)
            .map(Duration::from_micros);
        let info = MediaInfo {
            container: input.format().name().to_owned(),
            audio: audio.as_ref().map(|track| track.codec.clone()),
            video: video.as_ref().map(|track| VideoInfo {
                codec: track.codec.clone(),
                width: track.decoder.width(),
                height: track.decoder.height(),
            }),
            duration,
        };
        let session = Session { path: path.to_owned(), input, audio, video, ended: false };
        Ok((session, info))
    }

    /// Reads packets until every stream played has decoded a frame (converting that frame,
    /// to check the conversion too). A cover picture that does not decode is dropped.
    fn probe(&mut self) -> Result<(), FileError> {
        let mut scratch = VecDeque::new();
        let mut packets = 0;
        loop {
            let audio_done = self.audio.as_ref().is_none_or(|track| track.frames > 0);
            let video_done = self.video.as_ref().is_none_or(|track| track.frames > 0);
            if audio_done && video_done {
                return Ok(());
            }
            if packets >= PROBE_PACKETS {
                return self.probe_failed(&format!("in its first {PROBE_PACKETS} packets"));
            }
            let Some(packet) = read_packet(&mut self.input, &self.path) else {
                // The end: whatever the decoders still hold is all there is.
                if let Some(track) = self.audio.as_mut().filter(|track| track.frames == 0) {
                    track.decode(None, &mut scratch).map_err(|e| undecodable(&self.path, &e))?;
                }
                if let Some(track) = self.video.as_mut().filter(|track| track.frames == 0) {
                    track.decode(None, &mut scratch).map_err(|e| undecodable(&self.path, &e))?;
                }
                let audio_done = self.audio.as_ref().is_none_or(|track| track.frames > 0);
                let video_done = self.video.as_ref().is_none_or(|track| track.frames > 0);
                if audio_done && video_done {
                    return Ok(());
                }
                return self.probe_failed("in the whole file");
            };
            packets += 1;
            let stream = packet.stream();
            if let Some(track) = self.audio.as_mut()
                && track.index == stream
                && track.frames == 0
            {
                track.packets += 1;
                track
                    .decode(Some(&packet), &mut scratch)
                    .map_err(|e| undecodable(&self.path, &e))?;
                if track.frames == 0 && track.packets >= PROBE_STREAM_PACKETS {
                    return self.probe_failed(&format!(
                        "in its first {PROBE_STREAM_PACKETS} audio packets"
                    ));
                }
            } else if let Some(track) = self.video.as_mut()
                && track.index == stream
                && track.frames == 0
            {
                track.packets += 1;
                track
                    .decode(Some(&packet), &mut scratch)
                    .map_err(|e| undecodable(&self.path, &e))?;
                if track.frames == 0 && track.packets >= PROBE_STREAM_PACKETS {
                    return self.probe_failed(&format!(
                        "in its first {PROBE_STREAM_PACKETS} video packets"
                    ));
                }
            }
            scratch.clear();
        }
    }

    /// The error for a probe that found no frame `where_` for some stream, unless that stream
    /// is a cover picture: that one is dropped and the probe goes on.
    fn probe_failed(&mut self, where_: &str) -> Result<(), FileError> {
        if self.video.as_ref().is_some_and(|track| track.frames == 0 && track.cover)
            && self.audio.is_some()
        {
            tracing::debug!(
                path = %self.path.display(),
                "the cover picture does not decode: playing the audio only"
            );
            self.video = None;
            return self.probe();
        }
        let (kind, last_error) = match &self.audio {
            Some(track) if track.frames == 0 => ("audio", &track.last_error),
            _ => match &self.video {
                Some(track) => ("video", &track.last_error),
                None => ("audio", &None),
            },
        };
        let mut reason = format!("no {kind} frame decodes {where_}");
        if let Some(error) = last_error {
            reason.push_str(&format!(" (the decoder said: {error})"));
        }
        Err(FileError::Undecodable { path: self.path.clone(), reason })
    }

    /// Reads and decodes one packet, adding what it gives to `out`. At the end of the file,
    /// flushes the decoders (and the resampler) instead, and sets `ended`.
    fn step(&mut self, out: &mut VecDeque<Decoded>) -> Result<(), FileError> {
        let result = match read_packet(&mut self.input, &self.path) {
            Some(packet) => {
                let stream = packet.stream();
                if let Some(track) = self.audio.as_mut().filter(|track| track.index == stream) {
                    track.decode(Some(&packet), out)
                } else if let Some(track) =
                    self.video.as_mut().filter(|track| track.index == stream)
                {
                    track.decode(Some(&packet), out)
                } else {
                    Ok(())
                }
            }
            None => {
                self.ended = true;
                let video = match self.video.as_mut() {
                    Some(track) => track.decode(None, out),
                    None => Ok(()),
                };
                let audio = match self.audio.as_mut() {
                    Some(track) => track.decode(None, out),
                    None => Ok(()),
                };
                video.and(audio)
            }
        };
        result.map_err(|error| undecodable(&self.path, &error))
    }
}

/// The error for a failure to decode or convert.
fn undecodable(path: &Path, error: &ffmpeg::Error) -> FileError {
    FileError::Undecodable { path: path.to_owned(), reason: error.to_string() }
}

/// Checks that `path` is a regular file that can be opened, before FFmpeg gets it, so that
/// these errors are told apart from FFmpeg's.
fn check_file(path: &Path) -> Result<(), FileError> {
    let not_readable = |reason: String| FileError::NotReadable { path: path.to_owned(), reason };
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(FileError::NotFound(path.to_owned()));
        }
        Err(error) => return Err(not_readable(error.to_string())),
    };
    if metadata.is_dir() {
        return Err(not_readable("it is a directory".into()));
    }
    if !metadata.is_file() {
        return Err(not_readable("it is not a regular file".into()));
    }
    std::fs::File::open(path).map_err(|error| not_readable(error.to_string()))?;
    Ok(())
}

/// The index of the stream of `kind` to play: FFmpeg's choice, or else the first of that
/// kind (FFmpeg skips audio streams whose parameters it could not find, and such a stream
/// is still to be reported).
fn best_stream(input: &Input, kind: media::Type) -> Option<usize> {
    input.streams().best(kind).map(|stream| stream.index()).or_else(|| {
        input
            .streams()
            .find(|stream| stream.parameters().medium() == kind)
            .map(|stream| stream.index())
    })
}

/// FFmpeg's name for a codec, or "unknown".
fn codec_name(id: codec::Id) -> String {
    if id == codec::Id::None { "unknown".into() } else { id.name().to_owned() }
}

/// Opens the decoder of stream `index` (the stream must exist).
fn open_decoder(
    input: &Input,
    index: usize,
    kind: &'static str,
    path: &Path,
) -> Result<(codec::decoder::Decoder, String), FileError> {
    let Some(stream) = input.stream(index) else {
        return Err(FileError::NoStreams(path.to_owned()));
    };
    let parameters = stream.parameters();
    let name = codec_name(parameters.id());
    let context =
        codec::Context::from_parameters(parameters).map_err(|error| FileError::Undecodable {
            path: path.to_owned(),
            reason: format!("its {kind} stream parameters are unusable: {error}"),
        })?;
    let mut decoder = context.decoder();
    decoder.set_packet_time_base(stream.time_base());
    Ok((decoder, name))
}

/// The error for a decoder that did not open.
fn decoder_error(
    error: ffmpeg::Error,
    kind: &'static str,
    codec: String,
    path: &Path,
) -> FileError {
    match error {
        ffmpeg::Error::DecoderNotFound => {
            FileError::UnknownCodec { path: path.to_owned(), kind, codec }
        }
        error => FileError::Undecodable {
            path: path.to_owned(),
            reason: format!("its {kind} decoder ({codec}) does not open: {error}"),
        },
    }
}

/// Sends a packet (or the end of the stream, `None`) to a decoder, logging a refused packet.
fn send(
    decoder: &mut codec::decoder::Opened,
    packet: Option<&Packet>,
    last_error: &mut Option<String>,
) {
    let sent = match packet {
        Some(packet) => decoder.send_packet(packet),
        None => decoder.send_eof(),
    };
    if let Err(error) = sent {
        // A corrupt packet: skipped.
        tracing::debug!(%error, "a packet does not decode");
        *last_error = Some(error.to_string());
    }
}

/// What [`receive`] got.
enum Received {
    Frame,
    /// The decoder needs more input, or has nothing left.
    Nothing,
}

/// Receives a decoded frame into `frame`, skipping decode errors.
fn receive(
    decoder: &mut codec::decoder::Opened,
    frame: &mut ffmpeg::Frame,
    last_error: &mut Option<String>,
) -> Received {
    for _ in 0..MAX_DECODE_ERRORS {
        match decoder.receive_frame(frame) {
            Ok(()) => return Received::Frame,
            Err(ffmpeg::Error::Eof) => return Received::Nothing,
            Err(ffmpeg::Error::Other { errno }) if errno == EAGAIN => return Received::Nothing,
            Err(error) => {
                tracing::debug!(%error, "a frame does not decode");
                *last_error = Some(error.to_string());
            }
        }
    }
    Received::Nothing
}

/// Reads the next packet, skipping corrupt ones; `None` at the end of the file (or when
/// reading fails for good, which is logged).
fn read_packet(input: &mut Input, path: &Path) -> Option<Packet> {
    for _ in 0..MAX_READ_ERRORS {
        let mut packet = Packet::empty();
        match packet.read(input) {
            Ok(()) => return Some(packet),
            Err(ffmpeg::Error::Eof) => return None,
            Err(ffmpeg::Error::InvalidData) => {
                tracing::debug!(path = %path.display(), "skipping corrupt data");
            }
            Err(ffmpeg::Error::Other { errno }) if errno == EAGAIN => {}
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "reading stopped before the end of the file");
                return None;
            }
        }
    }
    tracing::warn!(path = %path.display(), "too much corrupt data: reading stopped");
    None
}

/// The audio stream played, decoded and resampled.
struct AudioTrack {
    index: usize,
    codec: String,
    decoder: codec::decoder::Audio,
    /// Made for the first frame, and made anew if the frames change format.
    resampler: Option<resampling::Context>,
    /// Frames decoded so far.
    frames: u64,
    /// Packets sent to the decoder (counted while probing).
    packets: usize,
    last_error: Option<String>,
}

impl AudioTrack {
    fn open(input: &Input, index: usize, path: &Path) -> Result<Self, FileError> {
        let (decoder, codec) = open_decoder(input, index, "audio", path)?;
        let decoder = match decoder.audio() {
            Ok(decoder) => decoder,
            Err(error) => return Err(decoder_error(error, "audio", codec, path)),
        };
        Ok(AudioTrack {
            index,
            codec,
            decoder,
            resampler: None,
            frames: 0,
            packets: 0,
            last_error: None,
        })
    }

    /// Decodes `packet` (`None`: the end of the stream, which also flushes the resampler)
    /// into audio pieces added to `out`.
    fn decode(
        &mut self,
        packet: Option<&Packet>,
        out: &mut VecDeque<Decoded>,
    ) -> Result<(), ffmpeg::Error> {
        send(&mut self.decoder, packet, &mut self.last_error);
        let mut frame = frame::Audio::empty();
        while let Received::Frame = receive(&mut self.decoder, &mut frame, &mut self.last_error) {
            self.frames += 1;
            self.resample(&mut frame, out)?;
        }
        if packet.is_none() {
            self.flush_resampler(out)?;
        }
        Ok(())
    }

    /// Resamples `frame` to 48 kHz mono f32.
    fn resample(
        &mut self,
        frame: &mut frame::Audio,
        out: &mut VecDeque<Decoded>,
    ) -> Result<(), ffmpeg::Error> {
        if frame.channel_layout().is_empty() {
            // Say, a plain WAV: only a channel count. The usual layout for it.
            frame.set_channel_layout(ChannelLayout::default(i32::from(frame.channels())));
        }
        if frame.rate() == 0 || frame.channel_layout().is_empty() {
            return Err(ffmpeg::Error::InvalidData);
        }
        let changed = self.resampler.as_ref().is_some_and(|resampler| {
            let input = resampler.input();
            input.format != frame.format()
                || input.channel_layout != frame.channel_layout()
                || input.rate != frame.rate()
        });
        if changed {
            self.flush_resampler(out)?;
            self.resampler = None;
        }
        let resampler = match self.resampler.take() {
            Some(resampler) => self.resampler.insert(resampler),
            None => self.resampler.insert(new_resampler(frame)?),
        };
        let buffered = resampler.delay().map_or(0, |delay| delay.output);
        let capacity = u64::try_from(frame.samples()).unwrap_or(0) * u64::from(SAMPLE_RATE)
            / u64::from(frame.rate())
            + u64::try_from(buffered).unwrap_or(0)
            + 64;
        let mut mono = mono_frame(capacity);
        resampler.run(frame, &mut mono)?;
        push_samples(&mono, out);
        Ok(())
    }

    /// Takes out what the resampler still holds.
    fn flush_resampler(&mut self, out: &mut VecDeque<Decoded>) -> Result<(), ffmpeg::Error> {
        let Some(resampler) = self.resampler.as_mut() else {
            return Ok(());
        };
        for _ in 0..16 {
            let buffered = resampler.delay().map_or(0, |delay| delay.output);
            let mut mono = mono_frame(u64::try_from(buffered).unwrap_or(0) + 1024);
            resampler.flush(&mut mono)?;
            if mono.samples() == 0 {
                break;
            }
            push_samples(&mono, out);
        }
        Ok(())
    }
}

/// A resampler from `frame`'s format to 48 kHz mono f32.
fn new_resampler(frame: &frame::Audio) -> Result<resampling::Context, ffmpeg::Error> {
    let mut options = Dictionary::new();
    // Mixing down to mono: scale the mix so that it cannot exceed full scale (stereo becomes
    // the mean of its channels). Without it a float mix of two equal channels is 3 dB louder.
    options.set("rematrix_maxval", "1.0");
    resampling::Context::get_with(
        frame.format(),
        frame.channel_layout(),
        frame.rate(),
        Sample::F32(sample::Type::Packed),
        ChannelLayout::MONO,
        SAMPLE_RATE,
        options,
    )
}

/// An output frame for the resampler, with room for `capacity` samples.
fn mono_frame(capacity: u64) -> frame::Audio {
    let capacity = usize::try_from(capacity).unwrap_or(usize::MAX / 8);
    frame::Audio::new(Sample::F32(sample::Type::Packed), capacity, ChannelLayout::MONO)
}

/// Adds the samples of a resampled frame to `out`, clamped to [-1, 1].
fn push_samples(mono: &frame::Audio, out: &mut VecDeque<Decoded>) {
    let count = mono.samples();
    if count == 0 {
        return;
    }
    let samples = mono.plane::<f32>(0);
    let samples = samples.iter().take(count).map(|sample| sample.clamp(-1.0, 1.0)).collect();
    out.push_back(Decoded::Audio(samples));
}

/// The video stream played, decoded and scaled.
struct VideoTrack {
    index: usize,
    codec: String,
    decoder: codec::decoder::Video,
    time_base: Rational,
    /// The stream's start time, in `time_base` units.
    start: i64,
    /// How long a frame lasts, for frames without a timestamp.
    frame_period: Duration,
    last_at: Option<Duration>,
    /// The stream is a cover picture (an MP3's, say): the file plays without it if it does
    /// not decode.
    cover: bool,
    /// Frames decoded so far.
    frames: u64,
    /// Packets sent to the decoder (counted while probing).
    packets: usize,
    last_error: Option<String>,
}

impl VideoTrack {
    /// The track, or `None` for a cover picture whose codec has no decoder.
    fn open(input: &Input, index: usize, path: &Path) -> Result<Option<Self>, FileError> {
        let Some(stream) = input.stream(index) else {
            return Ok(None);
        };
        let cover = stream.disposition().contains(Disposition::ATTACHED_PIC);
        let time_base = stream.time_base();
        let start = match stream.start_time() {
            ffmpeg::ffi::AV_NOPTS_VALUE => 0,
            start => start,
        };
        let rate = stream.avg_frame_rate();
        let frame_period = if rate.numerator() > 0 && rate.denominator() > 0 {
            Duration::from_secs_f64(f64::from(rate.invert()))
        } else {
            Duration::from_millis(40)
        };
        let (decoder, codec) = open_decoder(input, index, "video", path)?;
        let decoder = match decoder.video() {
            Ok(decoder) => decoder,
            Err(error) if cover => {
                tracing::debug!(path = %path.display(), %error, "the cover picture cannot be decoded: ignored");
                return Ok(None);
            }
            Err(error) => return Err(decoder_error(error, "video", codec, path)),
        };
        Ok(Some(VideoTrack {
            index,
            codec,
            decoder,
            time_base,
            start,
            frame_period,
            last_at: None,
            cover,
            frames: 0,
            packets: 0,
            last_error: None,
        }))
    }

    /// Decodes `packet` (`None`: the end of the stream) into pictures added to `out`.
    fn decode(
        &mut self,
        packet: Option<&Packet>,
        out: &mut VecDeque<Decoded>,
    ) -> Result<(), ffmpeg::Error> {
        send(&mut self.decoder, packet, &mut self.last_error);
        let mut frame = frame::Video::empty();
        while let Received::Frame = receive(&mut self.decoder, &mut frame, &mut self.last_error) {
            self.frames += 1;
            let picture = self.picture(&frame)?;
            out.push_back(Decoded::Picture(picture));
        }
        Ok(())
    }

    fn picture(&mut self, frame: &frame::Video) -> Result<Picture, ffmpeg::Error> {
        let at = match frame.timestamp() {
            Some(timestamp) => self.time_of(timestamp),
            None => self.last_at.map_or(Duration::ZERO, |last| last + self.frame_period),
        };
        self.last_at = Some(at);
        let (width, height) = fit(frame.width(), frame.height(), frame.aspect_ratio());
        let scaled = scale(frame, width, height)?;
        Ok(Picture { at, width, height, i420: pack_i420(&scaled, width, height) })
    }

    /// `timestamp` (in the stream's time base) as a time from the start of the stream.
    fn time_of(&self, timestamp: i64) -> Duration {
        let ticks = i128::from(timestamp) - i128::from(self.start);
        let numerator = i128::from(self.time_base.numerator());
        let denominator = i128::from(self.time_base.denominator());
        if denominator <= 0 || numerator <= 0 {
            return Duration::ZERO;
        }
        let nanos = ticks * numerator * 1_000_000_000 / denominator;
        Duration::from_nanos(u64::try_from(nanos.max(0)).unwrap_or(u64::MAX))
    }
}

/// The picture size for a `width` × `height` frame whose pixels have the aspect ratio
/// `pixel_aspect` (0/0 or 0/1 when unknown): the displayed shape, within the source's
/// size and 1280 × 720, even.
fn fit(width: u32, height: u32, pixel_aspect: Rational) -> (u32, u32) {
    let mut shown_width = f64::from(width.max(2));
    let mut shown_height = f64::from(height.max(2));
    if pixel_aspect.numerator() > 0 && pixel_aspect.denominator() > 0 {
        let aspect = f64::from(pixel_aspect);
        if (0.1..=10.0).contains(&aspect) {
            // Narrow one side rather than widen the other: never more pixels than stored.
            if aspect > 1.0 {
                shown_height /= aspect;
            } else {
                shown_width *= aspect;
            }
        }
    }
    let scale =
        (f64::from(MAX_WIDTH) / shown_width).min(f64::from(MAX_HEIGHT) / shown_height).min(1.0);
    // (The epsilon: 1920 × (1280 / 1920) may come out as 1279.999...)
    let even = |size: f64| ((size * scale / 2.0 + 1e-6).floor() as u32 * 2).max(2);
    (even(shown_width), even(shown_height))
}

thread_local! {
    /// The last scaler used on this thread, reused while the frames keep their shape.
    /// FFmpeg's scaler cannot be sent to another thread, so it is not kept in [`MediaFile`],
    /// which can.
    static SCALER: RefCell<Option<scaling::Context>> = const { RefCell::new(None) };
}

/// `frame` scaled to `width` × `height` in YUV420P.
fn scale(frame: &frame::Video, width: u32, height: u32) -> Result<frame::Video, ffmpeg::Error> {
    let from = scaling::context::Definition {
        format: frame.format(),
        width: frame.width(),
        height: frame.height(),
    };
    let to = scaling::context::Definition { format: Pixel::YUV420P, width, height };
    SCALER.with_borrow_mut(|slot| {
        let scaler = match slot.take() {
            Some(scaler) if *scaler.input() == from && *scaler.output() == to => {
                slot.insert(scaler)
            }
            _ => slot.insert(scaling::Context::get(
                from.format,
                from.width,
                from.height,
                to.format,
                to.width,
                to.height,
                scaling::Flags::BILINEAR,
            )?),
        };
        let mut scaled = frame::Video::empty();
        scaler.run(frame, &mut scaled)?;
        Ok(scaled)
    })
}

/// The planes of a YUV420P `frame` of `width` × `height` (even), without row padding.
fn pack_i420(frame: &frame::Video, width: u32, height: u32) -> Vec<u8> {
    let (width, height) = (width as usize, height as usize);
    let mut i420 = Vec::with_capacity(width * height * 3 / 2);
    for (plane, plane_width, plane_height) in
        [(0, width, height), (1, width / 2, height / 2), (2, width / 2, height / 2)]
    {
        let stride = frame.stride(plane).max(1);
        for row in frame.data(plane).chunks(stride).take(plane_height) {
            i420.extend_from_slice(row.get(..plane_width).unwrap_or(row));
        }
    }
    i420
}

#[cfg(test)]
mod tests;
