//! A room's media on a thread of its own: commands in over a bounded channel, encoded frames
//! and events out over another. The thread owns the [`AudioRoom`] and the [`VideoMixer`],
//! ticks them on its own clock (20 ms for audio, the frame rate for video), and is the only
//! place where GStreamer pipelines are created, changed and dropped.
//!
//! Sending never blocks: a full command queue refuses the command (the caller counts it as a
//! lost packet), and a consumer that falls behind loses output frames rather than slowing the
//! room.

use std::sync::mpsc::{
    Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError, sync_channel,
};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::audio::ParticipantId;
use crate::audio_room::{AudioPacket, AudioRoom, AudioRoomConfig};
use crate::engine::AudioEvent;
use crate::layout::Layout;
use crate::pipeline::MediaError;
use crate::video::{EncodedVideo, RawPicture, VideoCodec, VideoConfig, VideoEvent, VideoMixer};

/// Commands queued for the media thread (about a second of packets for a 16-person room).
const COMMAND_QUEUE: usize = 4096;

/// Outputs queued for the consumer.
const OUTPUT_QUEUE: usize = 4096;

/// Ticks less than this late are caught up back to back, so that the mix keeps to the RTP
/// clocks of its inputs (a skipped tick shifts every jitter buffer); later ones are skipped.
const MAX_LATE: Duration = Duration::from_secs(1);

/// What the room's media thread is told.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// A participant joins, with video in `video` (`None`: audio-only).
    Add {
        /// Who.
        participant: ParticipantId,
        /// Its video codec.
        video: Option<VideoCodec>,
    },
    /// A participant leaves.
    Remove(ParticipantId),
    /// A participant's video starts, stops or changes codec.
    SetVideo {
        /// Who.
        participant: ParticipantId,
        /// Its video codec, `None` for no video.
        video: Option<VideoCodec>,
    },
    /// An Opus packet with its RTP timestamp.
    Audio {
        /// From whom.
        participant: ParticipantId,
        /// RTP timestamp.
        timestamp: u32,
        /// The Opus payload.
        payload: Vec<u8>,
    },
    /// An H.264 access unit or a VP8 frame.
    Video {
        /// From whom.
        participant: ParticipantId,
        /// The access unit.
        data: Vec<u8>,
    },
    /// A decoded picture of a participant whose video is not a stream (a played file); its
    /// tile shows the latest one.
    Picture {
        /// Whose.
        participant: ParticipantId,
        /// The picture.
        picture: RawPicture,
    },
    /// What a participant hears: only one participant (a tap), or the mix (`None`).
    Hear {
        /// Who.
        participant: ParticipantId,
        /// The one participant heard, if any.
        only: Option<ParticipantId>,
    },
    /// Compose (and encode) the composite even while no one sends video: a recording with
    /// pictures wants a continuous video track.
    KeepComposing(bool),
    /// Moderator mute of a participant's audio.
    SetMuted {
        /// Who.
        participant: ParticipantId,
        /// Muted.
        muted: bool,
    },
    /// Gain of what a participant hears, dB.
    SetGain {
        /// Who.
        participant: ParticipantId,
        /// Gain in dB.
        gain_db: f32,
    },
    /// The composite's layout.
    SetLayout(Layout),
    /// The participant shown big, if any.
    SetActive(Option<ParticipantId>),
    /// A receiver needs a keyframe of the composite in this codec.
    RequestKeyframe(VideoCodec),
}

/// What comes out of the room's media thread.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// An Opus packet for some listeners.
    Audio(AudioPacket),
    /// A frame of the composite.
    Video(EncodedVideo),
    /// Voice activity, levels, audio failures.
    AudioEvent(AudioEvent),
    /// Tiles, video failures, keyframe needs.
    VideoEvent(VideoEvent),
    /// A command failed (for example a decoder that could not be created).
    Failed(String),
}

/// Why a command was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The media thread is behind; the command was dropped.
    #[error("the room's media queue is full")]
    Full,
    /// The media thread has stopped.
    #[error("the room's media thread has stopped")]
    Stopped,
}

/// The handle of a room's media thread; dropping it stops the thread.
pub struct MediaRoom {
    commands: Option<SyncSender<Command>>,
    thread: Option<JoinHandle<()>>,
    cpu: Option<CpuClock>,
}

/// The CPU time of one thread, read from Linux's `/proc` from any thread.
#[derive(Debug, Clone)]
pub struct CpuClock {
    schedstat: std::path::PathBuf,
}

impl CpuClock {
    /// The clock of the calling thread; `None` where `/proc/thread-self` is missing.
    fn of_this_thread() -> Option<Self> {
        let task = std::fs::read_link("/proc/thread-self").ok()?;
        Some(Self { schedstat: std::path::Path::new("/proc").join(task).join("schedstat") })
    }

    /// CPU time the thread has used so far; `None` once it has ended.
    pub fn elapsed(&self) -> Option<Duration> {
        let text = std::fs::read_to_string(&self.schedstat).ok()?;
        let nanos = text.split_whitespace().next()?.parse().ok()?;
        Some(Duration::from_nanos(nanos))
    }
}

impl MediaRoom {
    /// Starts the media thread. The video mixer is created on it; its failure is returned.
    pub fn spawn(
        audio: AudioRoomConfig,
        video: VideoConfig,
    ) -> Result<(Self, mpsc::Receiver<Output>), MediaError> {
        let (commands, inbox) = sync_channel(COMMAND_QUEUE);
        let (outputs, receiver) = mpsc::channel(OUTPUT_QUEUE);
        let (ready, started) = sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("rdv-media".into())
            .spawn(move || {
                let mixer = match VideoMixer::new(video) {
                    Ok(mixer) => {
                        let _ = ready.send(Ok(CpuClock::of_this_thread()));
                        mixer
                    }
                    Err(error) => {
                        let _ = ready.send(Err(error));
                        return;
                    }
                };
                Worker {
                    audio: AudioRoom::new(audio),
                    video: mixer,
                    outputs,
                    keep_composing: false,
                }
                .run(&inbox);
            })
            .map_err(|e| MediaError::Setup(format!("media thread: {e}")))?;
        match started.recv() {
            Ok(Ok(cpu)) => {
                Ok((Self { commands: Some(commands), thread: Some(thread), cpu }, receiver))
            }
            Ok(Err(error)) => Err(error),
            Err(_) => Err(MediaError::Setup("the media thread ended while starting".into())),
        }
    }

    /// The media thread's CPU clock, where the system tells it.
    pub fn cpu_clock(&self) -> Option<&CpuClock> {
        self.cpu.as_ref()
    }

    /// Queues a command without blocking.
    pub fn send(&self, command: Command) -> Result<(), SendError> {
        let Some(commands) = &self.commands else { return Err(SendError::Stopped) };
        commands.try_send(command).map_err(|error| match error {
            TrySendError::Full(_) => SendError::Full,
            TrySendError::Disconnected(_) => SendError::Stopped,
        })
    }
}

impl Drop for MediaRoom {
    fn drop(&mut self) {
        self.commands.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Worker {
    audio: AudioRoom,
    video: VideoMixer,
    outputs: mpsc::Sender<Output>,
    /// Compose even without video inputs.
    keep_composing: bool,
}

impl Worker {
    fn run(mut self, inbox: &Receiver<Command>) {
        let audio_period = Duration::from_millis(20);
        let video_period =
            Duration::from_nanos(1_000_000_000 / u64::from(self.video.config().framerate));
        let mut next_audio = Instant::now() + audio_period;
        let mut next_video = Instant::now() + video_period;
        loop {
            // Whatever has arrived goes in before the tick that may play it.
            loop {
                match inbox.try_recv() {
                    Ok(command) => self.apply(command),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            let now = Instant::now();
            if now >= next_audio {
                let tick = self.audio.tick();
                tick.packets.into_iter().for_each(|p| self.emit(Output::Audio(p)));
                tick.events.into_iter().for_each(|e| self.emit(Output::AudioEvent(e)));
                next_audio = next_deadline(next_audio, audio_period, now);
            }
            if now >= next_video {
                self.video_tick();
                next_video = next_deadline(next_video, video_period, now);
            }
            let wait = next_audio.min(next_video).saturating_duration_since(Instant::now());
            match inbox.recv_timeout(wait) {
                Ok(command) => self.apply(command),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn video_tick(&mut self) {
        // No one sends video: composing and encoding black pictures would only cost CPU;
        // the tiles (audio-only entries) are still reported.
        if !self.video.has_video_inputs() && !self.keep_composing {
            let events = self.video.refresh_tiles();
            events.into_iter().for_each(|e| self.emit(Output::VideoEvent(e)));
            return;
        }
        match self.video.tick() {
            Ok(events) => events.into_iter().for_each(|e| self.emit(Output::VideoEvent(e))),
            Err(error) => self.emit(Output::Failed(error.to_string())),
        }
        for codec in self.video.config().codecs.clone() {
            loop {
                match self.video.pull(codec, Duration::ZERO) {
                    Ok(Some(frame)) => self.emit(Output::Video(frame)),
                    Ok(None) => break,
                    Err(error) => {
                        self.emit(Output::Failed(error.to_string()));
                        break;
                    }
                }
            }
        }
    }

    fn apply(&mut self, command: Command) {
        let result = match command {
            Command::Add { participant, video } => {
                self.audio.add(participant).and_then(|()| self.video.add(participant, video))
            }
            Command::Remove(participant) => {
                self.audio.remove(participant);
                self.video.remove(participant);
                Ok(())
            }
            Command::SetVideo { participant, video } => self.video.set_input(participant, video),
            Command::Audio { participant, timestamp, payload } => {
                // Late and duplicate packets are normal on a network; they are simply dropped.
                let _ = self.audio.push(participant, timestamp, payload);
                Ok(())
            }
            Command::Video { participant, data } => {
                self.video.push(participant, &data);
                Ok(())
            }
            Command::Picture { participant, picture } => self.video.show(participant, picture),
            Command::Hear { participant, only } => {
                self.audio.set_only(participant, only);
                Ok(())
            }
            Command::KeepComposing(keep) => {
                self.keep_composing = keep;
                Ok(())
            }
            Command::SetMuted { participant, muted } => {
                self.audio.set_muted(participant, muted);
                Ok(())
            }
            Command::SetGain { participant, gain_db } => {
                self.audio.set_gain(participant, gain_db);
                Ok(())
            }
            Command::SetLayout(layout) => {
                self.video.set_layout(layout);
                Ok(())
            }
            Command::SetActive(participant) => {
                self.video.set_active(participant);
                Ok(())
            }
            Command::RequestKeyframe(codec) => {
                self.video.request_keyframe(codec);
                Ok(())
            }
        };
        if let Err(error) = result {
            self.emit(Output::Failed(error.to_string()));
        }
    }

    /// Hands an output to the consumer; one that is behind loses it.
    fn emit(&self, output: Output) {
        let _ = self.outputs.try_send(output);
    }
}

/// The deadline after `deadline`, skipping ticks when more than [`MAX_LATE`] behind.
fn next_deadline(deadline: Instant, period: Duration, now: Instant) -> Instant {
    let next = deadline + period;
    if now.saturating_duration_since(next) > MAX_LATE { now + period } else { next }
}
