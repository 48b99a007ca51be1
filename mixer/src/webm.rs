//! Recordings with pictures: the room's mix (Opus) and its composite (VP8) muxed into WebM by
//! one GStreamer pipeline, written into a file the caller has already created.
//!
//! `webmmux name=mux ! fdsink` fed by `appsrc name=audio ! queue ! mux.audio_%u` and, with
//! pictures, `appsrc name=video ! queue ! mux.video_%u`. The muxer writes a block only once
//! every track has data up to its time, and it ignores GAP events: a track that stops
//! (nobody sends video for minutes) would make it hold the other back, in memory, until the
//! end. So when a track falls more than 1.5 s behind the other, the writer fills it up to
//! 1 s behind the other with data of its own: silent Opus packets for audio, a black
//! keyframe for video (after which the composite's delta frames are dropped until its next
//! keyframe, which the compositor's encoder makes at least every `keyframe_interval` frames).
//! Data that then comes for the filled time is too late: audio is dropped, a picture is moved
//! to the end of the fill. The caller pushes both tracks in about the order of their times.
//!
//! No call waits for the pipeline: what it has not taken yet is bounded (1 MiB of audio,
//! 16 MiB of video), beyond which a push fails (the disk stopped taking data).

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::audio::{FRAME_SAMPLES, SAMPLE_RATE};
use crate::opus::OpusEncoder;
use crate::pipeline::{
    MediaError, Pipeline, WAIT, bus_error, by_name, clock_time, init, sample_bytes,
};

/// The pipeline's name in errors.
const NAME: &str = "webm writer";

/// One Opus packet's duration.
const AUDIO_FRAME: Duration = Duration::from_millis(20);

/// How far a track may fall behind the other before it is filled.
const IDLE: Duration = Duration::from_millis(1500);

/// How far behind the other track a fill ends: room for the idle track's late data.
const SLACK: Duration = Duration::from_secs(1);

/// The longest stretch of silence one push fills in; an earlier hole stays a hole (a
/// timestamp jumping by hours must not make millions of packets).
const MAX_AUDIO_FILL: Duration = Duration::from_secs(60);

/// The most audio the pipeline may hold back (about two minutes at 64 kbit/s) before a push
/// fails.
const AUDIO_BACKLOG: u64 = 1 << 20;

/// The most video the pipeline may hold back before a push fails.
const VIDEO_BACKLOG: u64 = 16 << 20;

/// The Opus encoder's delay, in samples at 48 kHz, that a decoder skips (libopus's lookahead:
/// 2.5 ms plus 4 ms of delay compensation).
const PRE_SKIP: u16 = 312;

/// Each queue in front of the muxer holds this much, more than a track may lag by.
const QUEUE: Duration = Duration::from_secs(3);

/// The composite's track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoTrack {
    /// Width in pixels.
    pub width: i32,
    /// Height in pixels.
    pub height: i32,
    /// Frames per second.
    pub framerate: u32,
}

/// Writes a WebM file: an Opus audio track (mono, 48 kHz, 20 ms packets) and optionally a VP8
/// track. Every call blocks for a bounded time; run it off the async executor. Dropped
/// without [`WebmWriter::finish`], it stops at once and leaves the file without its end.
pub struct WebmWriter {
    pipeline: gst::Pipeline,
    audio: Track,
    /// A packet of silence, to fill the audio track with.
    silence: gst::Buffer,
    video: Option<Video>,
    /// The first error the pipeline reported: every later call fails with it.
    failure: Option<(String, String)>,
    /// The file `fdsink` writes to, open until the pipeline has stopped (see [`Drop`]).
    _file: File,
}

/// The video track's state.
struct Video {
    track: Track,
    /// One frame's duration at the announced rate.
    frame: Duration,
    /// A black keyframe of the announced size, to fill the track with.
    black: gst::Buffer,
    /// The last keyframe written is the composite's: its delta frames decode.
    synced: bool,
}

/// One track's source and how far the muxer knows it.
struct Track {
    source: gst_app::AppSrc,
    /// The timestamp of the last buffer pushed.
    last: Option<Duration>,
    /// The end of the last buffer pushed: how far the muxer knows this track.
    reached: Duration,
    /// The end of the last fill: data from before it is too late.
    filled: Duration,
    /// The most bytes its `appsrc` may hold.
    backlog: u64,
}

impl WebmWriter {
    /// Starts writing `path` (which the caller has already created, empty, with the
    /// permissions it wants: it is opened for writing and truncated, never created).
    pub fn create(path: &Path, video: Option<VideoTrack>) -> Result<Self, MediaError> {
        init()?;
        let framerate = match video {
            Some(video) => {
                let framerate = i32::try_from(video.framerate).unwrap_or(0);
                if video.width <= 0 || video.height <= 0 || framerate <= 0 {
                    let message = format!("{NAME}: an invalid video track {video:?}");
                    return Err(MediaError::Setup(message));
                }
                framerate
            }
            None => 0,
        };
        let silence =
            gst::Buffer::from_mut_slice(OpusEncoder::new(16_000)?.encode(&[0.0; FRAME_SAMPLES])?);
        let black = video.map(black_keyframe).transpose()?;
        let file = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .map_err(|e| MediaError::Setup(format!("{NAME}: {}: {e}", path.display())))?;

        let queue = format!(
            "queue max-size-buffers=0 max-size-bytes=0 max-size-time={}",
            clock_time(QUEUE).nseconds()
        );
        // The muxer's pads are named: linked to "some pad", audio would get a video pad.
        let mut description = format!(
            "webmmux name=mux ! fdsink name=sink sync=false \
             appsrc name=audio format=time is-live=false block=false max-bytes={AUDIO_BACKLOG} \
             ! {queue} ! mux.audio_%u"
        );
        if let Some(video) = video {
            description.push_str(&format!(
                " appsrc name=video format=time is-live=false block=false \
                   max-bytes={VIDEO_BACKLOG} \
                   caps=\"video/x-vp8,width={},height={},framerate={framerate}/1\" \
                 ! {queue} ! mux.video_%u",
                video.width, video.height
            ));
        }
        let pipeline = gst::parse::launch(&description)
            .map_err(|e| MediaError::Setup(format!("{NAME}: {e}")))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| MediaError::Setup(format!("{NAME}: not a pipeline")))?;
        by_name::<gst::Element>(&pipeline, NAME, "sink")?.set_property("fd", file.as_raw_fd());
        let audio = Track::new(by_name(&pipeline, NAME, "audio")?, AUDIO_BACKLOG);
        // Without a stream header the muxer makes up an OpusHead with no pre-skip.
        let head = gst::Buffer::from_mut_slice(opus_head());
        audio.source.set_caps(Some(
            &gst::Caps::builder("audio/x-opus")
                .field("channel-mapping-family", 0)
                .field("channels", 1)
                .field("rate", i32::try_from(SAMPLE_RATE).unwrap_or(48_000))
                .field("streamheader", gst::Array::new([head]))
                .build(),
        ));
        let video = match (video, black) {
            (Some(video), Some(black)) => Some(Video {
                track: Track::new(by_name(&pipeline, NAME, "video")?, VIDEO_BACKLOG),
                frame: Duration::from_secs(1) / video.framerate,
                black,
                synced: false,
            }),
            _ => None,
        };
        let writer = Self { pipeline, audio, silence, video, failure: None, _file: file };
        writer.pipeline.set_state(gst::State::Playing).map_err(|_| writer.error())?;
        Ok(writer)
    }

    /// One Opus packet, `at` from the start of the recording. A packet that is not after the
    /// last one, or that comes for time already filled with silence, is dropped.
    pub fn push_audio(&mut self, at: Duration, opus: &[u8]) -> Result<(), MediaError> {
        self.check()?;
        let track = &self.audio;
        if opus.is_empty() || at < track.filled || track.last.is_some_and(|last| at <= last) {
            return Ok(());
        }
        let buffer = stamped(gst::Buffer::from_mut_slice(opus.to_vec()), at, AUDIO_FRAME, false);
        self.audio.push(buffer).map_err(|e| self.fail(e))?;
        self.fill(at)
    }

    /// One VP8 frame of the composite, `at` from the start of the recording. Delta frames
    /// are dropped until a keyframe (a file must start decodable, and a fill interrupts the
    /// stream); a frame that is not after the last one, or that comes for time already
    /// filled, is moved just after it.
    pub fn push_video(
        &mut self,
        at: Duration,
        keyframe: bool,
        vp8: &[u8],
    ) -> Result<(), MediaError> {
        self.check()?;
        let Some(video) = self.video.as_mut() else {
            return Err(MediaError::Setup(format!("{NAME}: this recording has no video track")));
        };
        if vp8.is_empty() || !(video.synced || keyframe) {
            return Ok(());
        }
        video.synced = true;
        let track = &mut video.track;
        let after_last = track.last.map_or(Duration::ZERO, |last| last + Duration::from_millis(1));
        let at = at.max(track.filled).max(after_last);
        let buffer = stamped(gst::Buffer::from_mut_slice(vp8.to_vec()), at, video.frame, !keyframe);
        track.push(buffer).map_err(|e| self.fail(e))?;
        self.fill(at)
    }

    /// Ends the streams and waits (at most [`WAIT`]) until the muxer has written the end of
    /// the file: it is then complete and seekable (duration and cues written).
    pub fn finish(mut self) -> Result<(), MediaError> {
        self.check()?;
        let mut sources = vec![self.audio.source.clone()];
        sources.extend(self.video.as_ref().map(|video| video.track.source.clone()));
        for source in sources {
            source.end_of_stream().map_err(|_| self.error())?;
        }
        let bus =
            self.pipeline.bus().ok_or_else(|| MediaError::Setup(format!("{NAME}: no bus")))?;
        let types = [gst::MessageType::Eos, gst::MessageType::Error];
        let Some(message) = bus.timed_pop_filtered(clock_time(WAIT), &types) else {
            return Err(MediaError::Timeout(NAME));
        };
        match message.view() {
            gst::MessageView::Error(error) => Err(element_error(error)),
            _ => Ok(()),
        }
    }

    /// Fills each track that has fallen more than [`IDLE`] behind `at` up to [`SLACK`]
    /// before it: with silence, or with a black keyframe.
    fn fill(&mut self, at: Duration) -> Result<(), MediaError> {
        let Some(end) = at.checked_sub(SLACK) else { return Ok(()) };
        let mut result = Ok(());
        let audio = &mut self.audio;
        if audio.reached + IDLE < at {
            let mut t = audio.reached.max(end.saturating_sub(MAX_AUDIO_FILL));
            while t < end && result.is_ok() {
                result = audio.push(stamped(self.silence.clone(), t, AUDIO_FRAME, false));
                t += AUDIO_FRAME;
            }
            audio.filled = audio.reached;
        }
        if let Some(video) = self.video.as_mut().filter(|v| v.track.reached + IDLE < at) {
            let track = &mut video.track;
            let length = end.saturating_sub(track.reached);
            if result.is_ok() && !length.is_zero() {
                result = track.push(stamped(video.black.clone(), track.reached, length, false));
                track.filled = track.reached;
                video.synced = false;
            }
        }
        result.map_err(|e| self.fail(e))
    }

    /// Fails with the pipeline's error if it reported one, now or before.
    fn check(&mut self) -> Result<(), MediaError> {
        if self.failure.is_none() {
            match bus_error(&self.pipeline, NAME) {
                MediaError::Element { element, message } => {
                    self.failure = Some((element, message));
                }
                // Nothing on the bus (it has now been drained): all is well.
                _ => return Ok(()),
            }
        }
        Err(self.error())
    }

    /// The error a push failed with: the pipeline's own if it reported one.
    fn fail(&mut self, error: PushError) -> MediaError {
        match (self.check(), error) {
            (Err(error), _) => error,
            (Ok(()), PushError::Backlog) => MediaError::Timeout(NAME),
            (Ok(()), PushError::Refused) => self.error(),
        }
    }

    /// The pipeline's error: the one it reported, else whatever is on its bus.
    fn error(&self) -> MediaError {
        match &self.failure {
            Some((element, message)) => {
                MediaError::Element { element: element.clone(), message: message.clone() }
            }
            None => bus_error(&self.pipeline, NAME),
        }
    }
}

impl Drop for WebmWriter {
    fn drop(&mut self) {
        // Stops the streaming threads before the file they write to is closed.
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// An error message as [`bus_error`] reports it.
fn element_error(error: &gst::message::Error) -> MediaError {
    let element = error.src().map_or_else(|| NAME.to_owned(), |s| s.path_string().to_string());
    let message = match error.debug() {
        Some(debug) => format!("{} ({debug})", error.error()),
        None => error.error().to_string(),
    };
    MediaError::Element { element, message }
}

/// Why a push failed.
enum PushError {
    /// The `appsrc` holds more than its backlog: the pipeline stopped taking data.
    Backlog,
    /// The `appsrc` refused the buffer (it is ending or stopped).
    Refused,
}

impl Track {
    fn new(source: gst_app::AppSrc, backlog: u64) -> Self {
        Self { source, last: None, reached: Duration::ZERO, filled: Duration::ZERO, backlog }
    }

    /// Pushes a buffer stamped by [`stamped`].
    fn push(&mut self, buffer: gst::Buffer) -> Result<(), PushError> {
        if self.source.current_level_bytes() >= self.backlog {
            return Err(PushError::Backlog);
        }
        let pts = Duration::from_nanos(buffer.pts().map_or(0, gst::ClockTime::nseconds));
        let duration = Duration::from_nanos(buffer.duration().map_or(0, gst::ClockTime::nseconds));
        self.source.push_buffer(buffer).map_err(|_| PushError::Refused)?;
        self.last = Some(pts);
        self.reached = self.reached.max(pts + duration);
        Ok(())
    }
}

/// `buffer` (copied, sharing its memory, if it is shared) at `pts` for `duration`, a delta
/// unit or not. No DTS: the muxer orders buffers by their DTS first.
fn stamped(mut buffer: gst::Buffer, pts: Duration, duration: Duration, delta: bool) -> gst::Buffer {
    let buffer_mut = buffer.make_mut();
    buffer_mut.set_pts(clock_time(pts));
    buffer_mut.set_dts(gst::ClockTime::NONE);
    buffer_mut.set_duration(clock_time(duration));
    buffer_mut.unset_flags(gst::BufferFlags::all());
    if delta {
        buffer_mut.set_flags(gst::BufferFlags::DELTA_UNIT);
    }
    buffer
}

/// The Opus identification header (RFC 7845, section 5.1) of a mono 48 kHz stream.
fn opus_head() -> Vec<u8> {
    let mut head = b"OpusHead".to_vec();
    head.extend([1, 1]); // Version 1, one channel.
    head.extend(PRE_SKIP.to_le_bytes());
    head.extend(SAMPLE_RATE.to_le_bytes());
    head.extend(0_i16.to_le_bytes()); // No output gain.
    head.push(0); // Channel mapping family 0: mono or stereo.
    head
}

/// A black VP8 keyframe of the track's size.
fn black_keyframe(video: VideoTrack) -> Result<gst::Buffer, MediaError> {
    let (width, height) = (video.width, video.height);
    let pipeline = Pipeline::launch(
        "black keyframe",
        &format!(
            "appsrc name=source format=time \
               caps=\"video/x-raw,format=I420,width={width},height={height},framerate=1/1\" \
             ! vp8enc deadline=1 lag-in-frames=0 ! appsink name=sink sync=false"
        ),
    )?;
    let luma = usize::try_from(width).unwrap_or(0) * usize::try_from(height).unwrap_or(0);
    let chroma = usize::try_from((width + 1) / 2 * ((height + 1) / 2)).unwrap_or(0);
    let mut picture = vec![16; luma];
    picture.resize(luma + 2 * chroma, 128);
    pipeline.push(picture, Some(gst::ClockTime::ZERO), Some(gst::ClockTime::SECOND))?;
    let sample = pipeline.pull(WAIT)?.ok_or(MediaError::Timeout("black keyframe"))?;
    match sample.buffer() {
        // Only the bytes: the encoder's timestamps and offsets stay behind.
        Some(buffer) if !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) => {
            Ok(gst::Buffer::from_mut_slice(sample_bytes(&sample)))
        }
        _ => Err(MediaError::Setup("black keyframe: vp8enc made no keyframe".into())),
    }
}

#[cfg(test)]
mod tests;
