//! A room's mixer and the routes of its output to the calls. The mixer (`rdv-mixer`'s
//! [`MediaRoom`], on a thread of its own) starts with the first participant and stops with
//! the last; a router task hands each encoded packet to the calls of its listeners.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rdv_mixer::audio::ParticipantId;
use rdv_mixer::audio_room::AudioRoomConfig;
use rdv_mixer::engine::AudioEvent;
use rdv_mixer::media_room::{Command, MediaRoom, Output};
use rdv_mixer::video::{EncodedVideo, VideoCodec, VideoConfig, VideoEvent};
use tokio::sync::mpsc;
use tracing::{debug, info, trace, warn};

use crate::room::RoomName;

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

type Routes = Arc<Mutex<HashMap<ParticipantId, Route>>>;

/// A call's video in the mix: the codec it sends and receives.
pub(super) struct VideoJoin {
    /// H.264 or VP8, both ways.
    pub(super) codec: VideoCodec,
    /// Whether the caller sends video (its offer is `sendrecv` or `sendonly`).
    pub(super) sends: bool,
}

/// Who is in the room: for the logs.
#[derive(Debug, Clone)]
pub(super) struct Member {
    /// The caller's account.
    pub(super) caller: crate::identity::AccountId,
    /// The call.
    pub(super) call_id: String,
    /// Negotiated codecs, e.g. `opus/48000/2 + H264/90000`.
    pub(super) codecs: String,
}

struct Active {
    mixer: Arc<MediaRoom>,
    routes: Routes,
    router: tokio::task::JoinHandle<()>,
}

/// A room's media, shared by its calls.
pub(super) struct RoomMedia {
    room: RoomName,
    active: tokio::sync::Mutex<Option<Active>>,
    next_id: std::sync::atomic::AtomicU64,
    members: Mutex<HashMap<ParticipantId, (Member, std::time::Instant)>>,
}

/// A call's place in the mix; leaving the mix when dropped.
pub(super) struct Participant {
    pub(super) id: ParticipantId,
    pub(super) mixer: Arc<MediaRoom>,
    /// Its mix-minus (taken by the audio stream).
    pub(super) outgoing: Option<mpsc::Receiver<Outgoing>>,
    /// The composite, when it has video (taken by the video stream).
    pub(super) video: Option<mpsc::Receiver<Arc<EncodedVideo>>>,
    /// The mixer's keyframe requests for its video (taken by the video stream).
    pub(super) keyframes: Option<mpsc::Receiver<()>>,
    owner: Arc<RoomMedia>,
}

impl RoomMedia {
    pub(super) fn new(room: RoomName) -> Arc<Self> {
        Arc::new(Self {
            room,
            active: tokio::sync::Mutex::new(None),
            next_id: std::sync::atomic::AtomicU64::new(1),
            members: Mutex::new(HashMap::new()),
        })
    }

    /// Adds a participant, with video if `video` says so, starting the mixer if it is the
    /// first.
    pub(super) async fn join(
        self: &Arc<Self>,
        member: Member,
        video: Option<VideoJoin>,
    ) -> Result<Participant, String> {
        let mut active = self.active.lock().await;
        if active.is_none() {
            // Starting GStreamer pipelines blocks: off the async executor.
            let started = tokio::task::spawn_blocking(|| {
                MediaRoom::spawn(AudioRoomConfig::default(), video_config())
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            let (mixer, outputs) = started;
            let routes: Routes = Arc::default();
            let mixer = Arc::new(mixer);
            let router = tokio::spawn(route(
                outputs,
                Arc::clone(&routes),
                Arc::downgrade(&mixer),
                self.room.clone(),
            ));
            info!(room = %self.room, "mixer started");
            *active = Some(Active { mixer, routes, router });
        }
        let Some(running) = active.as_ref() else { return Err("no mixer".into()) };
        let id = ParticipantId(self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let (sender, outgoing) = mpsc::channel(OUTGOING_QUEUE);
        let (video_route, video_out, keyframes) = match &video {
            Some(join) => {
                let (frames, video_out) = mpsc::channel(VIDEO_QUEUE);
                let (keyframe_sender, keyframes) = mpsc::channel(1);
                let route = VideoRoute {
                    codec: join.codec,
                    frames,
                    keyframes: keyframe_sender,
                    broken: false,
                };
                (Some(route), Some(video_out), Some(keyframes))
            }
            None => (None, None, None),
        };
        running
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, Route { audio: sender, video: video_route });
        let input = video.as_ref().filter(|join| join.sends).map(|join| join.codec);
        running
            .mixer
            .send(Command::Add { participant: id, video: input })
            .map_err(|e| e.to_string())?;
        if let Some(join) = &video {
            // The newcomer's decoder starts at a keyframe.
            let _ = running.mixer.send(Command::RequestKeyframe(join.codec));
        }
        let count = {
            let mut members = self.members();
            members.insert(id, (member.clone(), std::time::Instant::now()));
            members.len()
        };
        info!(
            room = %self.room,
            participant = id.0,
            caller_account = %member.caller,
            call_id = %member.call_id,
            codecs = %member.codecs,
            participants = count,
            "participant joined"
        );
        Ok(Participant {
            id,
            mixer: Arc::clone(&running.mixer),
            outgoing: Some(outgoing),
            video: video_out,
            keyframes,
            owner: Arc::clone(self),
        })
    }

    fn members(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<ParticipantId, (Member, std::time::Instant)>> {
        self.members.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a participant off the member list, at once: the room's head count is right
    /// before anything else happens.
    fn forget(&self, id: ParticipantId) {
        let (left, count) = {
            let mut members = self.members();
            (members.remove(&id), members.len())
        };
        if let Some((member, since)) = left {
            info!(
                room = %self.room,
                participant = id.0,
                caller_account = %member.caller,
                call_id = %member.call_id,
                seconds = since.elapsed().as_secs(),
                participants = count,
                "participant left"
            );
        }
    }

    /// Removes a participant from the mix; the last one stops the mixer.
    async fn leave(&self, id: ParticipantId) {
        let mut active = self.active.lock().await;
        let Some(running) = active.as_ref() else { return };
        let _ = running.mixer.send(Command::Remove(id));
        let empty = {
            let mut routes =
                running.routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            routes.remove(&id);
            routes.is_empty()
        };
        if empty && let Some(stopped) = active.take() {
            stopped.router.abort();
            // Joining the mixer's thread blocks: off the async executor.
            let mixer = stopped.mixer;
            let _ = tokio::task::spawn_blocking(move || drop(mixer)).await;
            info!(room = %self.room, "mixer stopped: the room is empty");
        }
    }
}

impl Drop for Participant {
    fn drop(&mut self) {
        let (owner, id) = (Arc::clone(&self.owner), self.id);
        owner.forget(id);
        // The last reference to the mixer may be ours: let `leave` drop it off the executor.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { owner.leave(id).await });
        }
    }
}

/// Hands the mixer's output to the participants it is for.
async fn route(
    mut outputs: mpsc::Receiver<Output>,
    routes: Routes,
    mixer: std::sync::Weak<MediaRoom>,
    room: RoomName,
) {
    let mut dropped = 0u64;
    let mut dropped_video = 0u64;
    while let Some(output) = outputs.recv().await {
        match output {
            Output::Audio(packet) => {
                let routes = routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                for listener in &packet.listeners {
                    let Some(route) = routes.get(listener) else { continue };
                    let outgoing =
                        Outgoing::Audio { index: packet.index, payload: packet.payload.clone() };
                    if route.audio.try_send(outgoing).is_err() {
                        dropped += 1;
                    }
                }
            }
            Output::Video(frame) => {
                let codec = frame.codec;
                let newly_broken = route_video(&routes, frame);
                dropped_video += newly_broken;
                if newly_broken > 0
                    && let Some(mixer) = mixer.upgrade()
                {
                    let _ = mixer.send(Command::RequestKeyframe(codec));
                }
            }
            Output::VideoEvent(VideoEvent::KeyframeNeeded(participant)) => {
                let routes = routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(video) = routes.get(&participant).and_then(|r| r.video.as_ref()) {
                    let _ = video.keyframes.try_send(());
                }
            }
            Output::VideoEvent(VideoEvent::InputFailed { participant, error }) => {
                warn!(room = %room, participant = participant.0, %error, "video input failed");
            }
            Output::VideoEvent(VideoEvent::TilesChanged(tiles)) => {
                debug!(room = %room, tiles = tiles.len(), "composite layout changed");
            }
            Output::Failed(error) => warn!(room = %room, %error, "mixer failure"),
            Output::AudioEvent(AudioEvent::VoiceActivity { participant, active }) => {
                debug!(room = %room, participant = participant.0, active, "voice activity");
            }
            Output::AudioEvent(AudioEvent::Levels(levels)) => {
                let levels: Vec<String> =
                    levels.iter().map(|(id, level)| format!("{}:{level:.0}", id.0)).collect();
                trace!(room = %room, levels = %levels.join(" "), "audio levels (dBFS)");
            }
            Output::AudioEvent(AudioEvent::InputFailed { participant, error }) => {
                warn!(room = %room, participant = participant.0, %error, "audio input failed");
            }
            Output::AudioEvent(AudioEvent::OutputFailed { listeners, error }) => {
                warn!(room = %room, ?listeners, %error, "audio output failed");
            }
        }
    }
    if dropped > 0 || dropped_video > 0 {
        info!(room = %room, dropped, dropped_video, "packets dropped for slow calls");
    }
}

/// Hands a composite frame to the participants that receive its codec; a participant whose
/// queue is full loses frames until the next keyframe. Returns how many participants fell
/// behind with this frame (each then needs a keyframe).
fn route_video(routes: &Routes, frame: EncodedVideo) -> u64 {
    let frame = Arc::new(frame);
    let mut routes = routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut newly_broken = 0;
    for video in routes.values_mut().filter_map(|route| route.video.as_mut()) {
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
    newly_broken
}
