//! A room's mixer and the routes of its output to the calls. The mixer (`rdv-mixer`'s
//! [`MediaRoom`], on a thread of its own) starts with the first participant and stops with
//! the last; a router task hands each encoded packet to the calls of its listeners.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rdv_mixer::audio::ParticipantId;
use rdv_mixer::audio_room::AudioRoomConfig;
use rdv_mixer::engine::AudioEvent;
use rdv_mixer::media_room::{Command, MediaRoom, Output};
use rdv_mixer::video::VideoConfig;
use tokio::sync::mpsc;
use tracing::{debug, info, trace, warn};

use crate::room::RoomName;

/// Packets queued per participant before the slowest are dropped (about 1 s of audio).
const OUTGOING_QUEUE: usize = 64;

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

type Routes = Arc<Mutex<HashMap<ParticipantId, mpsc::Sender<Outgoing>>>>;

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
    pub(super) outgoing: mpsc::Receiver<Outgoing>,
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

    /// Adds an audio participant, starting the mixer if it is the first.
    pub(super) async fn join(self: &Arc<Self>, member: Member) -> Result<Participant, String> {
        let mut active = self.active.lock().await;
        if active.is_none() {
            // Starting GStreamer pipelines blocks: off the async executor.
            let started = tokio::task::spawn_blocking(|| {
                MediaRoom::spawn(AudioRoomConfig::default(), VideoConfig::default())
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            let (mixer, outputs) = started;
            let routes: Routes = Arc::default();
            let router = tokio::spawn(route(outputs, Arc::clone(&routes), self.room.clone()));
            info!(room = %self.room, "mixer started");
            *active = Some(Active { mixer: Arc::new(mixer), routes, router });
        }
        let Some(running) = active.as_ref() else { return Err("no mixer".into()) };
        let id = ParticipantId(self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let (sender, outgoing) = mpsc::channel(OUTGOING_QUEUE);
        running.routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id, sender);
        running
            .mixer
            .send(Command::Add { participant: id, video: None })
            .map_err(|e| e.to_string())?;
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
        Ok(Participant { id, mixer: Arc::clone(&running.mixer), outgoing, owner: Arc::clone(self) })
    }

    fn members(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<ParticipantId, (Member, std::time::Instant)>> {
        self.members.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Removes a participant; the last one stops the mixer.
    async fn leave(&self, id: ParticipantId) {
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
        // The last reference to the mixer may be ours: let `leave` drop it off the executor.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { owner.leave(id).await });
        }
    }
}

/// Hands the mixer's output to the participants it is for.
async fn route(mut outputs: mpsc::Receiver<Output>, routes: Routes, room: RoomName) {
    let mut dropped = 0u64;
    while let Some(output) = outputs.recv().await {
        match output {
            Output::Audio(packet) => {
                let routes = routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                for listener in &packet.listeners {
                    let Some(sender) = routes.get(listener) else { continue };
                    let outgoing =
                        Outgoing::Audio { index: packet.index, payload: packet.payload.clone() };
                    if sender.try_send(outgoing).is_err() {
                        dropped += 1;
                    }
                }
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
            Output::Video(_) | Output::VideoEvent(_) => {}
        }
    }
    if dropped > 0 {
        info!(room = %room, dropped, "audio packets dropped for slow calls");
    }
}
