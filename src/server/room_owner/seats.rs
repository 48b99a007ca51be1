//! Participants of the mix without a call, as the owner task seats them: bots (the admin
//! API's WebSocket), played files and the recorder. None of them is in confInfo; the room's
//! mixer runs while it has callers or bots, and playbacks and the recording end with it.

use std::sync::Arc;
use std::time::Duration;

use rdv_admin_api::BotLink;
use rdv_mixer::audio::ParticipantId;
use rdv_mixer::media_room::{Command, Output};
use rdv_mixer::video::VideoCodec;
use tokio::sync::{broadcast, mpsc};
use tracing::{info, warn};

use super::{PlaybackView, RecordError, RecordTarget, RecordingState, RoomOwner, SeatError};
use crate::conference::event::{PlaybackEnd, RecordingEnd, RoomEvent};
use crate::room::RoomName;
use crate::server::bot;
use crate::server::mix_routes::Seat;
use crate::server::playback::{self, PlayRequest, Player};
use crate::server::recording::Recorder;

/// Bots a room has at once at most (a transcriber per participant of a big meeting fits).
const MAX_BOTS: usize = 32;
/// Files a room plays at once at most (each is a decoding thread).
const MAX_PLAYBACKS: usize = 8;

impl Player {
    /// How the API shows it.
    pub(super) fn view(&self, id: ParticipantId) -> PlaybackView {
        PlaybackView {
            id,
            name: self.name.clone(),
            looped: self.looped,
            paused: self.controls.paused(),
            volume: self.controls.volume(),
            position: self.controls.position(),
            info: self.info.clone(),
        }
    }
}

impl RoomOwner {
    /// Starts recording `target`, unless a recording runs already.
    pub(super) fn start_recording(
        &mut self,
        target: RecordTarget,
    ) -> Result<RecordingState, RecordError> {
        if let Some((_, recorder)) = &self.recording {
            return Ok(recorder.state());
        }
        if self.mixer.is_none() || self.core.is_empty() {
            return Err(RecordError::Empty);
        }
        let owner = self.handle().map_err(|_| RecordError::NotRunning)?;
        let id = self.core.new_id();
        let Some(mixer) = self.mixer.as_mut() else { return Err(RecordError::Empty) };
        let receivers = mixer.add(id, target.video.then_some(VideoCodec::Vp8));
        let video = target.video;
        let failed = async move { owner.recording_failed(id).await };
        let recorder = match Recorder::start(target, receivers.outgoing, receivers.video, failed) {
            Ok(recorder) => recorder,
            Err(error) => {
                mixer.remove(id);
                warn!(%error, "the recording cannot start");
                return Err(RecordError::Unwritable(error));
            }
        };
        if video {
            // A continuous picture track, even while nobody sends video.
            mixer.send(Command::KeepComposing(true));
        }
        info!(file = %recorder.file.display(), video, "recording started");
        let state = recorder.state();
        self.recording = Some((id, recorder));
        self.core.set_recording(true);
        Ok(state)
    }

    /// Stops the recording, if any, once its file is complete; the event stream is told why
    /// it ended (`why`, unless writing it failed).
    pub(super) async fn stop_recording(&mut self, why: RecordingEnd) -> RecordingState {
        let Some((id, recorder)) = self.recording.take() else {
            return RecordingState { recording: false, file: None, video: false, seconds: None };
        };
        if let Some(mixer) = &mut self.mixer {
            mixer.remove(id);
            mixer.send(Command::KeepComposing(false));
        }
        self.core.set_recording(false);
        let (file, video) = (recorder.file.clone(), recorder.video);
        let seconds = finish_recording(recorder, &self.room, &self.shared.events, why).await;
        RecordingState { recording: false, file: Some(file), video, seconds }
    }

    /// A bot joins the audio: heard by all, hearing all but itself (or only `listen`), not
    /// shown in confInfo.
    pub(super) async fn attach_bot(
        &mut self,
        listen: Option<ParticipantId>,
        outputs: &mut Option<mpsc::Receiver<Output>>,
    ) -> Result<BotLink, SeatError> {
        if let Some(source) = listen
            && !self.core.contains(source)
        {
            return Err(SeatError::NoSuchParticipant(source.0));
        }
        if self.bots.len() >= MAX_BOTS {
            return Err(SeatError::TooManyBots(MAX_BOTS));
        }
        self.ensure_mixer(outputs).await.map_err(SeatError::Failed)?;
        let seat = self.seat()?.ok_or_else(|| SeatError::Failed("no mixer".into()))?;
        let id = seat.id;
        if listen.is_some() {
            let _ = seat.mixer.send(Command::Hear { participant: id, only: listen });
        }
        let link = bot::spawn(seat).map_err(|error| self.unseat(id, error))?;
        self.bots.insert(id);
        let listen = listen.map(|source| source.0);
        info!(participant = id.0, ?listen, bots = self.bots.len(), "bot joined");
        Ok(link)
    }

    /// Starts playing a file into the room's mix (and, with pictures, its composite).
    pub(super) fn play(&mut self, request: PlayRequest) -> Result<PlaybackView, SeatError> {
        if self.core.is_empty() && self.bots.is_empty() {
            return Err(SeatError::Empty);
        }
        if self.players.len() >= MAX_PLAYBACKS {
            return Err(SeatError::TooManyPlaybacks(MAX_PLAYBACKS));
        }
        let seat = self.seat()?.ok_or(SeatError::Empty)?;
        let id = seat.id;
        let player = playback::spawn(seat, request).map_err(|error| self.unseat(id, error))?;
        info!(participant = id.0, file = %player.name, looped = player.looped, "playing a file");
        let view = player.view(id);
        self.players.insert(id, player);
        Ok(view)
    }

    /// A new participant without a call in the running mixer (`None`: no mixer runs).
    fn seat(&mut self) -> Result<Option<Seat>, SeatError> {
        let owner = self.handle().map_err(SeatError::Failed)?;
        let id = self.core.new_id();
        let Some(mixer) = self.mixer.as_mut() else { return Ok(None) };
        let receivers = mixer.add(id, None);
        Ok(Some(Seat { id, mixer: Arc::clone(&mixer.room), outgoing: receivers.outgoing, owner }))
    }

    /// Takes back a seat whose task could not start; the error to answer with.
    fn unseat(&mut self, id: ParticipantId, error: String) -> SeatError {
        if let Some(mixer) = &mut self.mixer {
            mixer.remove(id);
        }
        SeatError::Failed(error)
    }

    /// Pauses, resumes or changes the volume of playback `id`.
    pub(super) fn change_playback(
        &mut self,
        id: ParticipantId,
        paused: Option<bool>,
        volume: Option<f32>,
    ) -> Option<PlaybackView> {
        let player = self.players.get(&id)?;
        if let Some(paused) = paused {
            player.controls.set_paused(paused);
        }
        if let Some(volume) = volume {
            player.controls.set_volume(volume);
        }
        info!(participant = id.0, ?paused, ?volume, "playback changed");
        Some(player.view(id))
    }

    /// Ends playback `id` (stopped, or its thread ended): it leaves the mix and the event
    /// stream is told. Whether it was playing.
    pub(super) fn stop_playback(&mut self, id: ParticipantId, end: PlaybackEnd) -> bool {
        let Some(player) = self.players.remove(&id) else { return false };
        player.controls.stop();
        if let Some(mixer) = &mut self.mixer {
            mixer.remove(id);
        }
        info!(participant = id.0, file = %player.name, ?end, "playback ended");
        let _ = self.shared.events.send(RoomEvent::PlaybackFinished {
            playback: id,
            file: player.name,
            end,
        });
        true
    }
}

/// Waits until `recorder`'s file is complete and tells the event stream why it ended (`why`,
/// unless writing it failed, which is logged); the seconds written.
pub(super) async fn finish_recording(
    recorder: Recorder,
    room: &RoomName,
    events: &broadcast::Sender<RoomEvent>,
    why: RecordingEnd,
) -> Option<f64> {
    let file = recorder.file.clone();
    let (seconds, end) = match recorder.finished().await {
        Ok(seconds) => (Some(seconds), why),
        Err(error) => {
            warn!(room = %room, file = %file.display(), %error, "the recording ended badly");
            (None, RecordingEnd::Failed(error))
        }
    };
    let duration = seconds.map(|seconds| Duration::from_secs_f64(seconds.max(0.0)));
    let _ = events.send(RoomEvent::RecordingFinished { file, duration, end });
    seconds
}
