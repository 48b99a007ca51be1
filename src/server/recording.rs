//! Recording a room: a listener in the mix that writes what it hears (everyone), as Ogg Opus,
//! or with the composite as WebM (Opus and VP8). The mixer already encodes both; the
//! recorder only packs packets into the file, on a blocking thread, and finishes the file
//! (Ogg's end-of-stream page, WebM's cues and duration) when its routes close: when the
//! recording is stopped, the room empties, or the room stops.

use std::fs::OpenOptions;
use std::io::BufWriter;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use rdv_mixer::video::{EncodedVideo, VideoCodec};
use rdv_mixer::webm::{VideoTrack, WebmWriter};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use super::mix_routes::{Outgoing, video_config};
use super::room_owner::{RecordTarget, RecordingState};
use crate::media::ogg_opus::OggOpusWriter;

/// Pieces queued for the writing thread (about 2 s of audio and video).
const PIECES_QUEUED: usize = 160;
/// Length of one mix frame.
const FRAME: Duration = Duration::from_millis(20);

/// A recording in progress.
pub(super) struct Recorder {
    /// The file being written.
    pub(super) file: PathBuf,
    /// With the composite (WebM).
    pub(super) video: bool,
    /// Ends with the seconds written once the file is complete.
    done: oneshot::Receiver<Result<f64, String>>,
}

impl Recorder {
    /// Creates the target's file (and its directory, private) and starts writing the packets
    /// of `mix` (and the frames of `composite`, VP8, for a recording with video) into it. A
    /// file that cannot be created is refused before anything is recorded; one that cannot be
    /// written midway (a full disk) tells the room through `failed`.
    pub(super) fn start(
        target: RecordTarget,
        mix: mpsc::Receiver<Outgoing>,
        composite: Option<mpsc::Receiver<Arc<EncodedVideo>>>,
        failed: impl Future<Output = ()> + Send + 'static,
    ) -> Result<Self, String> {
        let RecordTarget { file, video } = target;
        let describe = |error: &dyn std::fmt::Display| format!("{}: {error}", file.display());
        let output = create(&file).map_err(|error| describe(&error))?;
        let task = match composite.filter(|_| video) {
            None => {
                let writer = OggOpusWriter::new(BufWriter::new(output), rand::random(), "rdv")
                    .map_err(|error| describe(&error))?;
                let path = file.clone();
                tokio::task::spawn_blocking(move || write_ogg(writer, mix, &path))
            }
            Some(composite) => {
                drop(output);
                let config = video_config();
                let track = VideoTrack {
                    width: config.size.width,
                    height: config.size.height,
                    framerate: config.framerate,
                };
                let writer =
                    WebmWriter::create(&file, Some(track)).map_err(|error| describe(&error))?;
                let (pieces, queue) = std_mpsc::sync_channel(PIECES_QUEUED);
                tokio::spawn(merge(mix, composite, pieces, config.framerate));
                let path = file.clone();
                tokio::task::spawn_blocking(move || write_webm(writer, &queue, &path))
            }
        };
        let (finished, done) = oneshot::channel();
        tokio::spawn(async move {
            let result = task.await.map_err(|error| error.to_string()).and_then(|result| result);
            let failed_midway = result.is_err();
            // The result first: the room may be waiting for it (a stop) rather than reading
            // its commands.
            if finished.send(result).is_ok() && failed_midway {
                failed.await;
            }
        });
        Ok(Self { file, video, done })
    }

    /// How the API shows it while it runs.
    pub(super) fn state(&self) -> RecordingState {
        RecordingState {
            recording: true,
            file: Some(self.file.clone()),
            video: self.video,
            seconds: None,
        }
    }

    /// Waits until the file is complete (its route must be closed first); the seconds written.
    pub(super) async fn finished(self) -> Result<f64, String> {
        self.done.await.unwrap_or_else(|_| Err("the recording's writer vanished".into()))
    }
}

fn create(file: &Path) -> std::io::Result<std::fs::File> {
    if let Some(directory) = file.parent() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(directory)?;
    }
    OpenOptions::new().write(true).create_new(true).mode(0o600).open(file)
}

fn write_ogg(
    mut writer: OggOpusWriter<BufWriter<std::fs::File>>,
    mut mix: mpsc::Receiver<Outgoing>,
    file: &Path,
) -> Result<f64, String> {
    let describe = |error: std::io::Error| format!("{}: {error}", file.display());
    while let Some(Outgoing::Audio { index, payload }) = mix.blocking_recv() {
        if let Err(error) = writer.push(payload, index) {
            warn!(file = %file.display(), %error, "recording stopped: the file cannot be written");
            return Err(describe(error));
        }
    }
    let seconds = writer.seconds();
    writer.finish().map_err(describe)?;
    info!(file = %file.display(), seconds, "recording finished");
    Ok(seconds)
}

/// One thing to write into a WebM recording, timed from the mixer's start.
enum Piece {
    Audio {
        at: Duration,
        payload: Vec<u8>,
    },
    /// A frame of the composite, shared with the calls that receive it.
    Video {
        at: Duration,
        frame: Arc<EncodedVideo>,
    },
}

/// Interleaves the mix and the composite, in arrival order, for the writing thread; a
/// writer that falls behind loses pieces rather than slowing the room.
async fn merge(
    mut mix: mpsc::Receiver<Outgoing>,
    mut composite: mpsc::Receiver<Arc<EncodedVideo>>,
    pieces: std_mpsc::SyncSender<Piece>,
    framerate: u32,
) {
    let frame_time = |tick: u64| Duration::from_nanos(tick * 1_000_000_000 / u64::from(framerate));
    let (mut mix_open, mut composite_open) = (true, true);
    let mut dropped = 0u64;
    while mix_open || composite_open {
        let piece = tokio::select! {
            packet = mix.recv(), if mix_open => match packet {
                Some(Outgoing::Audio { index, payload }) => {
                    Piece::Audio { at: FRAME * u32::try_from(index).unwrap_or(u32::MAX), payload }
                }
                None => {
                    mix_open = false;
                    continue;
                }
            },
            frame = composite.recv(), if composite_open => match frame {
                Some(frame) if frame.codec == VideoCodec::Vp8 => {
                    Piece::Video { at: frame_time(frame.tick), frame }
                }
                Some(_) => continue,
                None => {
                    composite_open = false;
                    continue;
                }
            },
        };
        match pieces.try_send(piece) {
            Ok(()) => {}
            Err(std_mpsc::TrySendError::Full(_)) => dropped += 1,
            Err(std_mpsc::TrySendError::Disconnected(_)) => break,
        }
    }
    if dropped > 0 {
        warn!(dropped, "the recording fell behind: pieces were dropped");
    }
}

fn write_webm(
    mut writer: WebmWriter,
    pieces: &std_mpsc::Receiver<Piece>,
    file: &Path,
) -> Result<f64, String> {
    let describe = |error: &dyn std::fmt::Display| format!("{}: {error}", file.display());
    // Times count from the first piece; anything older (the other track's backlog) is
    // dropped so that both tracks start together.
    let mut origin = None;
    let mut last = Duration::ZERO;
    while let Ok(piece) = pieces.recv() {
        let at = match &piece {
            Piece::Audio { at, .. } | Piece::Video { at, .. } => *at,
        };
        let origin = *origin.get_or_insert(at);
        let Some(at) = at.checked_sub(origin) else { continue };
        last = last.max(at);
        let written = match piece {
            Piece::Audio { payload, .. } => writer.push_audio(at, &payload),
            Piece::Video { frame, .. } => writer.push_video(at, frame.keyframe, &frame.data),
        };
        if let Err(error) = written {
            warn!(file = %file.display(), %error, "recording stopped: the file cannot be written");
            let _ = writer.finish();
            return Err(describe(&error));
        }
    }
    writer.finish().map_err(|error| describe(&error))?;
    let seconds = (last + FRAME).as_secs_f64();
    info!(file = %file.display(), seconds, "recording finished");
    Ok(seconds)
}
