//! A room's mixer and the routes of its output to the calls. The mixer (`rdv-mixer`'s
//! [`MediaRoom`], on a thread of its own) starts with the first participant and stops with
//! the last; the room's owner task (`conference`) hands each encoded packet to the calls of
//! its listeners through the routes kept here.

use std::collections::HashMap;
use std::sync::Arc;

use rdv_mixer::audio::ParticipantId;
use rdv_mixer::audio_room::AudioRoomConfig;
use rdv_mixer::media_room::{Command, MediaRoom, Output};
use rdv_mixer::video::{EncodedVideo, VideoCodec, VideoConfig};
use tokio::sync::mpsc;

use super::room_owner::RoomHandle;

/// Packets queued per participant before the slowest are dropped (about 1 s of audio).
const OUTGOING_QUEUE: usize = 64;
/// Composite frames queued per participant (about 1 s); a call that falls further behind
/// loses frames and is sent a keyframe once it catches up.
const VIDEO_QUEUE: usize = 30;

/// An encoded packet for one participant.
#[derive(Debug, Clone)]
pub(super) enum Outgoing {
    /// 20 ms of the participant's mix-minus, for mix frame `index`.
    Audio {
        /// Mix frame index (RTP timestamp / 960).
        index: u64,
        /// The Opus packet.
        payload: Vec<u8>,
    },
}

/// How a room's composite is made.
pub(super) fn video_config() -> VideoConfig {
    VideoConfig::default()
}

/// Where a participant's share of the mixer's output goes.
struct Route {
    audio: mpsc::Sender<Outgoing>,
    video: Option<VideoRoute>,
}

struct VideoRoute {
    codec: VideoCodec,
    frames: mpsc::Sender<Arc<EncodedVideo>>,
    /// The mixer asks for a keyframe of this participant's video.
    keyframes: mpsc::Sender<()>,
    /// A frame was dropped: the next ones are useless until a keyframe.
    broken: bool,
}

/// A participant without a call (a bot, a played file): its place in the mix, handed over by
/// the owner task to the task or thread that feeds it.
pub(super) struct Seat {
    pub(super) id: ParticipantId,
    pub(super) mixer: Arc<MediaRoom>,
    /// Its mix-minus.
    pub(super) outgoing: mpsc::Receiver<Outgoing>,
    /// Told when it goes.
    pub(super) owner: RoomHandle,
}

/// A running mixer and where its output goes; owned by the room's owner task.
pub(super) struct Mixer {
    pub(super) room: Arc<MediaRoom>,
    routes: HashMap<ParticipantId, Route>,
    /// Packets dropped for calls that fell behind.
    pub(super) dropped: u64,
    /// Composite frames dropped for calls that fell behind.
    pub(super) dropped_video: u64,
}

/// A participant's receiving ends of its routes.
pub(super) struct Receivers {
    pub(super) outgoing: mpsc::Receiver<Outgoing>,
    pub(super) video: Option<mpsc::Receiver<Arc<EncodedVideo>>>,
    pub(super) keyframes: Option<mpsc::Receiver<()>>,
}

impl Mixer {
    /// Starts the mixer's pipelines (blocking: off the async executor).
    pub(super) async fn start() -> Result<(Self, mpsc::Receiver<Output>), String> {
        let (room, outputs) = tokio::task::spawn_blocking(|| {
            MediaRoom::spawn(AudioRoomConfig::default(), video_config())
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        let mixer =
            Self { room: Arc::new(room), routes: HashMap::new(), dropped: 0, dropped_video: 0 };
        Ok((mixer, outputs))
    }

    /// Sends the mixer a command; it only fails once the mixer has stopped.
    pub(super) fn send(&self, command: Command) {
        let _ = self.room.send(command);
    }

    /// Adds participant `id` without a call (a bot, a played file, the recorder): it hears
    /// the mix and, with `video`, sees the composite; it sends no video of its own.
    pub(super) fn add(&mut self, id: ParticipantId, video: Option<VideoCodec>) -> Receivers {
        self.send(Command::Add { participant: id, video: None });
        self.route(id, video)
    }

    /// New routes to participant `id` (replacing any it had: a call's new media after a
    /// re-INVITE): its mix-minus and, with `video`, the composite in that codec.
    pub(super) fn route(&mut self, id: ParticipantId, video: Option<VideoCodec>) -> Receivers {
        let (audio, outgoing) = mpsc::channel(OUTGOING_QUEUE);
        let (video_route, video_out, keyframes) = match video {
            Some(codec) => {
                let (frames, video_out) = mpsc::channel(VIDEO_QUEUE);
                let (keyframe_sender, keyframes) = mpsc::channel(1);
                let route = VideoRoute { codec, frames, keyframes: keyframe_sender, broken: false };
                (Some(route), Some(video_out), Some(keyframes))
            }
            None => (None, None, None),
        };
        self.routes.insert(id, Route { audio, video: video_route });
        if let Some(codec) = video {
            // The newcomer's decoder starts at a keyframe.
            self.send(Command::RequestKeyframe(codec));
        }
        Receivers { outgoing, video: video_out, keyframes }
    }

    /// Removes a participant; whether the mixer is left with no one.
    pub(super) fn remove(&mut self, id: ParticipantId) -> bool {
        self.send(Command::Remove(id));
        self.routes.remove(&id);
        self.routes.is_empty()
    }

    /// Hands a mix-minus packet to its listeners; a full queue drops it.
    pub(super) fn route_audio(&mut self, listeners: &[ParticipantId], index: u64, payload: &[u8]) {
        for listener in listeners {
            let Some(route) = self.routes.get(listener) else { continue };
            let outgoing = Outgoing::Audio { index, payload: payload.to_vec() };
            if route.audio.try_send(outgoing).is_err() {
                self.dropped += 1;
            }
        }
    }

    /// Hands a composite frame to the participants that receive its codec; a participant
    /// whose queue is full loses frames until the next keyframe, which is asked for.
    pub(super) fn route_video(&mut self, frame: EncodedVideo) {
        let frame = Arc::new(frame);
        let mut newly_broken = 0;
        for video in self.routes.values_mut().filter_map(|route| route.video.as_mut()) {
            if video.codec != frame.codec || (video.broken && !frame.keyframe) {
                continue;
            }
            if video.frames.try_send(Arc::clone(&frame)).is_ok() {
                video.broken = false;
            } else if !video.broken {
                video.broken = true;
                newly_broken += 1;
            }
        }
        self.dropped_video += newly_broken;
        if newly_broken > 0 {
            self.send(Command::RequestKeyframe(frame.codec));
        }
    }

    /// The mixer needs a keyframe of `participant`'s video: asks its call.
    pub(super) fn keyframe_needed(&self, participant: ParticipantId) {
        if let Some(video) = self.routes.get(&participant).and_then(|r| r.video.as_ref()) {
            let _ = video.keyframes.try_send(());
        }
    }

    /// Stops the mixer; joining its thread blocks, so that happens off the executor.
    pub(super) fn stop(self) {
        let room = self.room;
        tokio::task::spawn_blocking(move || drop(room));
    }
}
