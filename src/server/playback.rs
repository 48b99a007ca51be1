//! Files played into a room. Each playback is a participant in the mix without a call, fed by
//! a thread of its own that decodes the file (FFmpeg, [`MediaFile`]), paces it in real time,
//! encodes its audio as Opus for the mixer and hands its pictures to the compositor (a tile
//! of its own). Pause, volume and stop are flags the thread reads every 20 ms; it tells the
//! room's owner task how it ended.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdv_mixer::audio::{FRAME_SAMPLES, ParticipantId};
use rdv_mixer::media_room::{Command, MediaRoom};
use rdv_mixer::opus::OpusEncoder;
use rdv_mixer::video::RawPicture;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::mix_routes::{Outgoing, Seat};
use crate::conference::event::PlaybackEnd;
use crate::media::media_file::{Decoded, MediaFile, MediaInfo, Picture};

/// Opus bitrate of a played file (music as well as speech).
const PLAYBACK_BITRATE: u32 = 64_000;
/// One audio frame.
const FRAME: Duration = Duration::from_millis(20);
/// Pictures decoded ahead of the clock at most (a file whose audio lags its pictures).
const PICTURES_AHEAD: usize = 30;
/// Further behind than this, the pacing clock starts again from now (a stalled thread).
const MAX_LATE: Duration = Duration::from_secs(1);

/// The settings a playing file reads every frame.
#[derive(Debug)]
pub(crate) struct Controls {
    paused: AtomicBool,
    /// Linear gain, as f32 bits.
    volume: AtomicU32,
    stop: AtomicBool,
    /// Milliseconds played in the current round.
    position_ms: AtomicU64,
}

impl Controls {
    fn new(paused: bool, volume: f32) -> Self {
        Self {
            paused: AtomicBool::new(paused),
            volume: AtomicU32::new(volume.to_bits()),
            stop: AtomicBool::new(false),
            position_ms: AtomicU64::new(0),
        }
    }

    /// Pauses or resumes.
    pub(crate) fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
    }

    /// Paused now.
    pub(crate) fn paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// Sets the linear gain.
    pub(crate) fn set_volume(&self, volume: f32) {
        self.volume.store(volume.to_bits(), Ordering::Relaxed);
    }

    /// The linear gain.
    pub(crate) fn volume(&self) -> f32 {
        f32::from_bits(self.volume.load(Ordering::Relaxed))
    }

    /// Asks the thread to stop at its next frame.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Time played in the current round.
    pub(crate) fn position(&self) -> Duration {
        Duration::from_millis(self.position_ms.load(Ordering::Relaxed))
    }
}

/// A file to play, opened and checked (it decodes).
pub(crate) struct PlayRequest {
    /// The file's name, as asked (relative to the media directory).
    pub(crate) name: String,
    /// The opened file.
    pub(crate) media: MediaFile,
    /// Start again at the end.
    pub(crate) looped: bool,
    /// Linear gain.
    pub(crate) volume: f32,
    /// Start paused.
    pub(crate) paused: bool,
}

/// A playing file, as the owner task keeps it.
pub(crate) struct Player {
    /// The file's name, as asked.
    pub(crate) name: String,
    /// Starts again at the end.
    pub(crate) looped: bool,
    /// What the file holds.
    pub(crate) info: MediaInfo,
    /// Pause, volume, stop, position.
    pub(crate) controls: Arc<Controls>,
}

/// Starts playing `request` on a thread of its own.
pub(super) fn spawn(seat: Seat, request: PlayRequest) -> Result<Player, String> {
    let encoder = OpusEncoder::new(PLAYBACK_BITRATE).map_err(|error| error.to_string())?;
    let controls = Arc::new(Controls::new(request.paused, request.volume));
    let player = Player {
        name: request.name.clone(),
        looped: request.looped,
        info: request.media.info().clone(),
        controls: Arc::clone(&controls),
    };
    let PlayRequest { name, media, looped, .. } = request;
    std::thread::Builder::new()
        .name("rdv-playback".into())
        .spawn(move || {
            let Seat { id, mixer, mut outgoing, owner } = seat;
            let mut feed = Feed { id, mixer: &mixer, encoder, timestamp: 0 };
            let end = play(&mut feed, media, looped, &controls, &mut outgoing);
            match &end {
                PlaybackEnd::Failed(error) => {
                    warn!(room = %owner.room(), participant = id.0, file = %name, %error, "a playback failed");
                }
                end => debug!(room = %owner.room(), participant = id.0, file = %name, ?end, "a playback ended"),
            }
            owner.playback_ended(id, end);
        })
        .map_err(|error| error.to_string())?;
    Ok(player)
}

/// Where a playback's frames go.
struct Feed<'a> {
    id: ParticipantId,
    mixer: &'a MediaRoom,
    encoder: OpusEncoder,
    /// RTP timestamp of the next frame: it advances every 20 ms, paused or not, so that the
    /// mixer's jitter buffer sees a pause as silence, not as late packets.
    timestamp: u32,
}

impl Feed<'_> {
    /// The timestamp of this frame (the clock moves on).
    fn tick(&mut self) -> u32 {
        let timestamp = self.timestamp;
        self.timestamp = timestamp.wrapping_add(FRAME_SAMPLES as u32);
        timestamp
    }

    fn audio(&mut self, timestamp: u32, samples: &[f32]) {
        match self.encoder.encode(samples) {
            Ok(payload) => {
                let command = Command::Audio { participant: self.id, timestamp, payload };
                // A full queue loses this frame, as it would lose a caller's packet.
                let _ = self.mixer.send(command);
            }
            Err(error) => {
                warn!(participant = self.id.0, %error, "a played frame could not be encoded")
            }
        }
    }

    fn picture(&self, picture: Picture) {
        let picture =
            RawPicture { width: picture.width, height: picture.height, i420: picture.i420 };
        let _ = self.mixer.send(Command::Picture { participant: self.id, picture });
    }
}

/// Plays `media` in real time until its end (or forever when `looped`), a stop, or a
/// decoding failure.
fn play(
    feed: &mut Feed<'_>,
    mut media: MediaFile,
    looped: bool,
    controls: &Controls,
    outgoing: &mut mpsc::Receiver<Outgoing>,
) -> PlaybackEnd {
    let has_audio = media.info().audio.is_some();
    let has_video = media.info().video.is_some();
    let mut audio: VecDeque<f32> = VecDeque::new();
    let mut pictures: VecDeque<Picture> = VecDeque::new();
    let mut ended = false;
    // Where the file is: time played in this round.
    let mut clock = Duration::ZERO;
    let mut next = Instant::now();
    loop {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else if now - next > MAX_LATE {
            next = now;
        }
        next += FRAME;
        while outgoing.try_recv().is_ok() {}
        if controls.stop.load(Ordering::Relaxed) {
            return PlaybackEnd::Stopped;
        }
        let timestamp = feed.tick();
        if controls.paused() {
            continue;
        }
        // Decode until this frame's audio and every picture due by the clock are at hand.
        while !ended
            && ((has_audio && audio.len() < FRAME_SAMPLES)
                || (has_video && pictures.back().is_none_or(|p| p.at <= clock)))
        {
            match media.next() {
                Ok(Some(Decoded::Audio(samples))) => audio.extend(samples),
                Ok(Some(Decoded::Picture(picture))) => {
                    if pictures.len() == PICTURES_AHEAD {
                        pictures.pop_front();
                    }
                    pictures.push_back(picture);
                }
                Ok(None) => ended = true,
                Err(error) => return PlaybackEnd::Failed(error.to_string()),
            }
        }
        if ended && audio.is_empty() && pictures.is_empty() {
            if !looped {
                return PlaybackEnd::Finished;
            }
            if let Err(error) = media.rewind() {
                return PlaybackEnd::Failed(error.to_string());
            }
            ended = false;
            clock = Duration::ZERO;
            continue;
        }
        if !audio.is_empty() {
            let volume = controls.volume();
            let take = audio.len().min(FRAME_SAMPLES);
            let mut frame: Vec<f32> =
                audio.drain(..take).map(|s| (s * volume).clamp(-1.0, 1.0)).collect();
            frame.resize(FRAME_SAMPLES, 0.0);
            feed.audio(timestamp, &frame);
        }
        let mut due = None;
        while pictures.front().is_some_and(|p| p.at <= clock) {
            due = pictures.pop_front();
        }
        if let Some(picture) = due {
            feed.picture(picture);
        }
        clock += FRAME;
        let millis = u64::try_from(clock.as_millis()).unwrap_or(u64::MAX);
        controls.position_ms.store(millis, Ordering::Relaxed);
    }
}

/// Opens `name` in `directory` for playing, on a blocking thread: refused when it is not a
/// file inside the directory (after symbolic links) or does not decode.
pub(super) async fn open(directory: &std::path::Path, name: &str) -> Result<MediaFile, OpenError> {
    let directory = directory.to_owned();
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || {
        let path = directory.join(&name);
        let root = directory.canonicalize().map_err(|_| OpenError::NotFound(name.clone()))?;
        let real = path.canonicalize().map_err(|_| OpenError::NotFound(name.clone()))?;
        if !real.starts_with(&root) {
            return Err(OpenError::Outside(name));
        }
        let media = MediaFile::open(&real).map_err(|error| {
            // The requester named the file relative to the media directory: so does the
            // answer (the server's own paths stay in its log).
            let message = error.to_string();
            info!(file = %real.display(), %message, "a file cannot be played");
            OpenError::Unplayable(message.replace(&real.display().to_string(), &name))
        })?;
        info!(file = %name, info = ?media.info(), "a file to play was opened");
        Ok(media)
    })
    .await
    .map_err(|error| OpenError::Unplayable(error.to_string()))?
}

/// Why a file cannot be played (the requester's fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OpenError {
    /// No such file in the media directory.
    #[error("no file {0:?} in the media directory")]
    NotFound(String),
    /// It leads out of the media directory (a symbolic link).
    #[error("{0:?} is outside the media directory")]
    Outside(String),
    /// It does not decode.
    #[error("{0}")]
    Unplayable(String),
}
