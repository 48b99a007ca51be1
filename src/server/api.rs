//! The admin API's view of the server: [`rdv_admin_api::Control`] over the store and the
//! running rooms, and the HTTP listener that serves it.

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use rdv_admin_api::types::{
    self as api, AccountRoleEntry, CreateRoom, Event, EventKind, LayoutName, Participant,
    PlaybackOutcome, Policy, PolicyPatch, Recording, RecordingOutcome, RoomDetail, RoomSummary,
    TokenInfo,
};
use rdv_admin_api::{ApiError, AuthConfig, BotLink, Control};
use rdv_mixer::audio::ParticipantId;
use tokio::sync::broadcast;
use tracing::{info, warn};

use super::playback::{self, PlayRequest};
use super::registry::Registry;
use super::room_owner::{PlaybackView, RecordError, RecordTarget, RoomHandle, SeatError};
use crate::clock::{unix_now, unix_seconds};
use crate::conference::action::{Action, Who};
use crate::conference::core::{ActionError, ParticipantView};
use crate::conference::event::{PlaybackEnd, RecordingEnd, RoomEvent};
use crate::config::ApiConfig;
use crate::identity::{AccountId, RoomIdentity};
use crate::room::{AccountRole, Admission, Layout, RoomName, RoomPolicy};
use crate::store::{RoomOutline, StoreError};

/// The server as the admin API sees it.
#[derive(Clone)]
pub(crate) struct ServerControl {
    rooms: Arc<Registry>,
}

impl ServerControl {
    pub(super) fn new(rooms: Arc<Registry>) -> Self {
        Self { rooms }
    }

    /// The stored room's key, name, policy and ids (its keys are not loaded: requests are
    /// frequent, RSA keys slow to parse).
    async fn stored_room(&self, room: &str) -> Result<RoomOutline, ApiError> {
        let name = room_name(room)?;
        let outline = self.rooms.store().room_outline(&name).await.map_err(store_error)?;
        outline.ok_or_else(|| no_such_room(room))
    }

    /// The running conference of a stored room.
    async fn conference(&self, room: &str) -> Result<RoomHandle, ApiError> {
        let stored = self.stored_room(room).await?;
        self.rooms.conference(stored.name.as_str()).ok_or_else(|| {
            ApiError::Unavailable(format!("room {} is not being served yet", stored.name))
        })
    }

    async fn detail(&self, room: RoomOutline) -> Result<RoomDetail, ApiError> {
        let (layout, participants) = match self.rooms.conference(room.name.as_str()) {
            Some(conference) => match conference.snapshot().await {
                Some(snapshot) => (
                    layout_from_number(snapshot.layout),
                    snapshot.participants.iter().map(participant).collect(),
                ),
                None => (layout_name(room.policy.layout), Vec::new()),
            },
            None => (layout_name(room.policy.layout), Vec::new()),
        };
        Ok(RoomDetail {
            name: room.name.to_string(),
            jami_id: room.jami_id,
            device_id: room.device_id,
            policy: policy(&room.policy),
            participants,
            layout,
            created_at: room.created_at,
        })
    }

    /// Stores a new policy and hands it to the running conference.
    async fn store_policy(&self, room: &RoomName, policy: &RoomPolicy) -> Result<(), ApiError> {
        let stored =
            self.rooms.store().set_policy(room, policy, unix_now()).await.map_err(store_error)?;
        if !stored {
            return Err(no_such_room(room.as_str()));
        }
        if let Some(conference) = self.rooms.conference(room.as_str()) {
            conference.set_policy(policy.clone());
        }
        info!(%room, ?policy, "room policy changed through the admin API");
        Ok(())
    }

    async fn act_on(&self, room: &str, action: Action) -> Result<(), ApiError> {
        let conference = self.conference(room).await?;
        conference.act(action).await.map_err(action_error)
    }
}

impl Control for ServerControl {
    async fn rooms(&self) -> Result<Vec<RoomSummary>, ApiError> {
        let rooms = self.rooms.store().room_outlines().await.map_err(store_error)?;
        Ok(rooms
            .into_iter()
            .map(|room| RoomSummary {
                participants: self.rooms.participant_count(room.name.as_str()),
                jami_id: room.jami_id,
                name: room.name.to_string(),
            })
            .collect())
    }

    async fn room(&self, room: &str) -> Result<RoomDetail, ApiError> {
        let room = self.stored_room(room).await?;
        self.detail(room).await
    }

    async fn create_room(&self, request: CreateRoom) -> Result<RoomDetail, ApiError> {
        let name = room_name(&request.name)?;
        let mut policy = RoomPolicy::default();
        if let Some(patch) = &request.policy {
            apply_patch(&mut policy, patch);
        }
        let identity = RoomIdentity::generate().await.map_err(|error| {
            ApiError::Internal(format!("cannot create the room's Jami identity: {error}"))
        })?;
        let room = match self.rooms.store().create_room(&name, &identity, &policy, unix_now()).await
        {
            Ok(room) => room,
            Err(StoreError::RoomExists(name)) => {
                return Err(ApiError::Conflict(format!("a room named {name:?} already exists")));
            }
            Err(error) => return Err(store_error(error)),
        };
        info!(room = %room.name, jami_id = %room.identity.account_id(), "room created through the admin API");
        self.rooms.sync().await.map_err(store_error)?;
        self.detail(room.outline()).await
    }

    async fn delete_room(&self, room: &str) -> Result<(), ApiError> {
        let name = room_name(room)?;
        let deleted = self.rooms.store().delete_room(&name).await.map_err(store_error)?;
        let Some(deleted) = deleted else { return Err(no_such_room(room)) };
        self.rooms.stop_room(&name).await;
        info!(room = %deleted.name, jami_id = %deleted.jami_id, "room deleted through the admin API");
        Ok(())
    }

    async fn update_policy(&self, room: &str, patch: PolicyPatch) -> Result<Policy, ApiError> {
        let stored = self.stored_room(room).await?;
        let mut new = stored.policy.clone();
        apply_patch(&mut new, &patch);
        self.store_policy(&stored.name, &new).await?;
        if let Some(layout) = patch.layout {
            // The running conference takes the new layout now, not only the next one.
            let _ = self.act_on(room, Action::SetLayout(layout_number(layout))).await;
        }
        Ok(policy(&new))
    }

    async fn participants(&self, room: &str) -> Result<Vec<Participant>, ApiError> {
        let stored = self.stored_room(room).await?;
        match self.rooms.conference(stored.name.as_str()) {
            Some(conference) => Ok(conference
                .snapshot()
                .await
                .map(|snapshot| snapshot.participants.iter().map(participant).collect())
                .unwrap_or_default()),
            None => Ok(Vec::new()),
        }
    }

    async fn act(&self, room: &str, action: api::Action) -> Result<(), ApiError> {
        let one = |participant: u64| Who::Participant(ParticipantId(participant));
        let action = match action {
            api::Action::MuteAudio { participant, muted } => {
                Action::MuteAudio { who: one(participant), muted }
            }
            api::Action::MuteVideo { participant, muted } => {
                Action::MuteVideo { who: one(participant), muted }
            }
            api::Action::MuteAll => Action::MuteAll,
            api::Action::Kick { participant } => Action::Hangup(one(participant)),
            api::Action::Admit { participant } => Action::Admit(one(participant)),
            api::Action::LowerHand { participant } => {
                Action::RaiseHand { who: one(participant), raised: false }
            }
            api::Action::SetLayout { layout } => Action::SetLayout(layout_number(layout)),
            api::Action::SetActive { participant } => Action::SetActive(participant.map(one)),
            api::Action::Chat { text } => Action::Chat(text),
            api::Action::Lock { locked } => {
                let stored = self.stored_room(room).await?;
                let policy = RoomPolicy { locked, ..stored.policy.clone() };
                return self.store_policy(&stored.name, &policy).await;
            }
        };
        self.act_on(room, action).await
    }

    async fn set_role(
        &self,
        room: &str,
        account: &str,
        role: api::Role,
        granted: bool,
    ) -> Result<(), ApiError> {
        let stored = self.stored_room(room).await?;
        let account: AccountId = account
            .parse()
            .map_err(|_| ApiError::BadRequest(format!("{account:?} is not a Jami account id")))?;
        let role = account_role(role);
        let store = self.rooms.store();
        if granted {
            store.grant_role(&stored.name, account, role, unix_now()).await.map_err(store_error)?;
        } else if !store.revoke_role(&stored.name, account, role).await.map_err(store_error)? {
            return Err(ApiError::NotFound(format!(
                "account {account} is not {} in room {}",
                role.as_str(),
                stored.name
            )));
        }
        info!(room = %stored.name, %account, role = role.as_str(), granted, "account role changed through the admin API");
        // The running room takes the roles now: a ban ends the account's calls, a new or
        // withdrawn moderator role applies, an account allowed in leaves the lobby.
        self.rooms.refresh_roles(&stored.name).await;
        Ok(())
    }

    async fn roles(&self, room: &str) -> Result<Vec<AccountRoleEntry>, ApiError> {
        let stored = self.stored_room(room).await?;
        let accounts = self.rooms.store().accounts(stored.id).await.map_err(store_error)?;
        Ok(accounts
            .into_iter()
            .map(|(account, role)| AccountRoleEntry { account, role: api_role(role) })
            .collect())
    }

    async fn add_room_token(
        &self,
        room: &str,
        token_sha256_hex: String,
        label: String,
    ) -> Result<TokenInfo, ApiError> {
        let name = room_name(room)?;
        let token = self
            .rooms
            .store()
            .add_room_token(&name, &token_sha256_hex, &label, unix_now())
            .await
            .map_err(store_error)?
            .ok_or_else(|| no_such_room(room))?;
        info!(room = %name, token_id = token.id, label = %token.label, "room token created");
        Ok(TokenInfo { id: token.id, label: token.label, created_at: token.created_at })
    }

    async fn revoke_room_token(&self, room: &str, token_id: i64) -> Result<(), ApiError> {
        let name = room_name(room)?;
        if self.rooms.store().revoke_room_token(&name, token_id).await.map_err(store_error)? {
            info!(room = %name, token_id, "room token revoked");
            Ok(())
        } else {
            Err(ApiError::NotFound(format!("room {room} has no token {token_id}")))
        }
    }

    async fn room_of_token(&self, token_sha256_hex: &str) -> Result<Option<String>, ApiError> {
        self.rooms.store().room_of_token(token_sha256_hex).await.map_err(store_error)
    }

    fn events(&self, room: Option<&str>) -> Result<broadcast::Receiver<Event>, ApiError> {
        match room {
            None => Ok(self.rooms.all_events()),
            Some(room) => self.rooms.room_events(room).ok_or_else(|| no_such_room(room)),
        }
    }

    fn ready(&self) -> bool {
        self.rooms.is_ready()
    }

    async fn record(
        &self,
        room: &str,
        start: Option<api::RecordRequest>,
    ) -> Result<Recording, ApiError> {
        let stored = self.stored_room(room).await?;
        let conference = self.conference(room).await?;
        let target = start.map(|request| {
            let extension = if request.video { "webm" } else { "ogg" };
            RecordTarget {
                file: self.rooms.recording_file(&stored.name, extension),
                video: request.video,
            }
        });
        let state = conference.record(target).await.map_err(|error| match error {
            RecordError::Empty => ApiError::Conflict(error.to_string()),
            RecordError::Unwritable(_) => ApiError::Internal(error.to_string()),
            RecordError::NotRunning => ApiError::Unavailable(error.to_string()),
        })?;
        Ok(Recording {
            recording: state.recording,
            file: state.file.map(|file| file.display().to_string()),
            video: state.video,
            seconds: state.seconds,
        })
    }

    async fn attach_bot(&self, room: &str, listen: Option<u64>) -> Result<BotLink, ApiError> {
        let conference = self.conference(room).await?;
        conference.attach_bot(listen.map(ParticipantId)).await.map_err(seat_error)
    }

    async fn play(&self, room: &str, request: api::PlayRequest) -> Result<api::Playback, ApiError> {
        let conference = self.conference(room).await?;
        let media = playback::open(self.rooms.files_dir(), &request.file)
            .await
            .map_err(|error| ApiError::BadRequest(error.to_string()))?;
        let request = PlayRequest {
            name: request.file,
            media,
            looped: request.looped,
            volume: request.volume,
            paused: request.paused,
        };
        Ok(api_playback(conference.play(request).await.map_err(seat_error)?))
    }

    async fn playbacks(&self, room: &str) -> Result<Vec<api::Playback>, ApiError> {
        let conference = self.conference(room).await?;
        let playbacks = conference.playbacks().await.ok_or_else(room_stopped)?;
        Ok(playbacks.into_iter().map(api_playback).collect())
    }

    async fn change_playback(
        &self,
        room: &str,
        playback: u64,
        patch: api::PlaybackPatch,
    ) -> Result<api::Playback, ApiError> {
        let conference = self.conference(room).await?;
        let id = ParticipantId(playback);
        let view = conference.change_playback(id, patch.paused, patch.volume).await;
        view.map(api_playback).ok_or_else(|| no_such_playback(playback))
    }

    async fn stop_playback(&self, room: &str, playback: u64) -> Result<(), ApiError> {
        let conference = self.conference(room).await?;
        if conference.stop_playback(ParticipantId(playback)).await {
            Ok(())
        } else {
            Err(no_such_playback(playback))
        }
    }
}

fn seat_error(error: SeatError) -> ApiError {
    match error {
        SeatError::Empty | SeatError::TooManyPlaybacks(_) | SeatError::TooManyBots(_) => {
            ApiError::Conflict(error.to_string())
        }
        SeatError::NoSuchParticipant(_) => ApiError::NotFound(error.to_string()),
        SeatError::Failed(_) => ApiError::Unavailable(error.to_string()),
    }
}

fn room_stopped() -> ApiError {
    ApiError::Unavailable("the room has stopped".into())
}

fn no_such_playback(id: u64) -> ApiError {
    ApiError::NotFound(format!("no playback {id} in the room"))
}

fn api_playback(view: PlaybackView) -> api::Playback {
    api::Playback {
        id: view.id.0,
        file: view.name,
        looped: view.looped,
        paused: view.paused,
        volume: view.volume,
        position_seconds: view.position.as_secs_f64(),
        container: view.info.container,
        audio: view.info.audio,
        video: view.info.video.map(|video| api::PlaybackVideo {
            codec: video.codec,
            width: video.width,
            height: video.height,
        }),
        duration_seconds: view.info.duration.map(|duration| duration.as_secs_f64()),
    }
}

/// Serves the admin API on `config.listen` until `shutdown` completes; in-flight requests
/// finish, event streams end.
pub(super) async fn serve(
    config: &ApiConfig,
    rooms: Arc<Registry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let address = listener.local_addr()?;
    let auth = AuthConfig {
        admin_token: config.admin_token.as_ref().map(|token| token.expose().to_owned()),
    };
    let router = rdv_admin_api::router(ServerControl::new(rooms), auth);
    info!(%address, admin_token = config.admin_token.is_some(), "admin API listening");
    Ok(tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(error) = axum::serve(listener, service).with_graceful_shutdown(shutdown).await {
            warn!(%error, "the admin API stopped");
        }
    }))
}

/// A room event as the API streams it.
pub(super) fn api_event(room: &RoomName, at_ms: u64, event: RoomEvent) -> Event {
    let kind = match event {
        RoomEvent::Joined { participant, account, device, lobby: _ } => {
            EventKind::Joined { participant: participant.0, account: account.to_string(), device }
        }
        RoomEvent::Left { participant, account, seconds } => {
            EventKind::Left { participant: participant.0, account: account.to_string(), seconds }
        }
        RoomEvent::Muted { participant, audio, muted, by_moderator } => {
            EventKind::Muted { participant: participant.0, audio, muted, by_moderator }
        }
        RoomEvent::HandRaised { participant, raised } => {
            EventKind::HandRaised { participant: participant.0, raised }
        }
        RoomEvent::LayoutChanged { layout, active } => EventKind::LayoutChanged {
            layout: layout_from_number(layout),
            active: active.map(|id| id.0),
        },
        RoomEvent::VoiceActivity { participant, speaking } => {
            EventKind::VoiceActivity { participant: participant.0, speaking }
        }
        RoomEvent::Admitted { participant } => {
            EventKind::Lobby { participant: participant.0, waiting: false }
        }
        RoomEvent::Held { participant, held } => {
            EventKind::Hold { participant: participant.0, on_hold: held }
        }
        RoomEvent::CallRefused { account, reason } => {
            EventKind::CallRefused { account: account.to_string(), reason }
        }
        RoomEvent::Chat { participant, account, text } => {
            EventKind::Chat { participant: participant.0, account: account.to_string(), text }
        }
        RoomEvent::CallFailed { account, reason } => {
            EventKind::CallFailed { account: account.to_string(), reason }
        }
        RoomEvent::PlaybackFinished { playback, file, end } => {
            let (outcome, error) = match end {
                PlaybackEnd::Finished => (PlaybackOutcome::Finished, None),
                PlaybackEnd::Stopped => (PlaybackOutcome::Stopped, None),
                PlaybackEnd::Failed(error) => (PlaybackOutcome::Failed, Some(error)),
            };
            EventKind::PlaybackFinished { playback: playback.0, file, outcome, error }
        }
        RoomEvent::RecordingFinished { file, duration, end } => {
            let (outcome, error) = match end {
                RecordingEnd::Stopped => (RecordingOutcome::Stopped, None),
                RecordingEnd::RoomEmpty => (RecordingOutcome::RoomEmpty, None),
                RecordingEnd::RoomStopped => (RecordingOutcome::RoomStopped, None),
                RecordingEnd::Failed(error) => (RecordingOutcome::Failed, Some(error)),
            };
            EventKind::RecordingFinished {
                file: file.display().to_string(),
                duration_ms: duration.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                outcome,
                error,
            }
        }
    };
    Event { room: room.to_string(), at_ms, kind }
}

fn participant(view: &ParticipantView) -> Participant {
    Participant {
        id: view.id.0,
        account: view.account.to_string(),
        device: view.device.to_string(),
        call_id: view.call_id.to_string(),
        moderator: view.moderator,
        audio_local_muted: view.audio_local_muted,
        audio_moderator_muted: view.audio_moderator_muted,
        video_muted: view.video_muted,
        video_moderator_muted: view.video_moderator_muted,
        hand_raised: view.hand_raised,
        voice_activity: view.voice_activity,
        in_lobby: view.in_lobby,
        on_hold: view.on_hold,
        active: view.active,
        joined_at: unix_seconds(view.joined_at),
    }
}

fn policy(policy: &RoomPolicy) -> Policy {
    Policy {
        admission: match policy.admission {
            Admission::Open => api::Admission::Open,
            Admission::AllowList => api::Admission::AllowList,
        },
        locked: policy.locked,
        lobby: policy.lobby,
        max_participants: policy.max_participants.map(NonZeroU32::get),
        all_moderators: policy.all_moderators,
        active_speaker: policy.active_speaker,
        layout: layout_name(policy.layout),
    }
}

/// Applies the fields a patch sets; a `max_participants` of 0 removes the cap.
fn apply_patch(policy: &mut RoomPolicy, patch: &PolicyPatch) {
    if let Some(admission) = patch.admission {
        policy.admission = match admission {
            api::Admission::Open => Admission::Open,
            api::Admission::AllowList => Admission::AllowList,
        };
    }
    if let Some(locked) = patch.locked {
        policy.locked = locked;
    }
    if let Some(lobby) = patch.lobby {
        policy.lobby = lobby;
    }
    if let Some(max) = patch.max_participants {
        policy.max_participants = NonZeroU32::new(max);
    }
    if let Some(all) = patch.all_moderators {
        policy.all_moderators = all;
    }
    if let Some(active_speaker) = patch.active_speaker {
        policy.active_speaker = active_speaker;
    }
    if let Some(layout) = patch.layout {
        policy.layout = match layout {
            LayoutName::Grid => Layout::Grid,
            LayoutName::OneBigWithSmall => Layout::OneBigWithSmall,
            LayoutName::OneBig => Layout::OneBig,
        };
    }
}

fn layout_name(layout: Layout) -> LayoutName {
    match layout {
        Layout::Grid => LayoutName::Grid,
        Layout::OneBigWithSmall => LayoutName::OneBigWithSmall,
        Layout::OneBig => LayoutName::OneBig,
    }
}

/// Jami's layout number for a layout name.
fn layout_number(layout: LayoutName) -> u8 {
    match layout {
        LayoutName::Grid => 0,
        LayoutName::OneBigWithSmall => 1,
        LayoutName::OneBig => 2,
    }
}

fn layout_from_number(number: u8) -> LayoutName {
    match number {
        1 => LayoutName::OneBigWithSmall,
        2 => LayoutName::OneBig,
        _ => LayoutName::Grid,
    }
}

fn account_role(role: api::Role) -> AccountRole {
    match role {
        api::Role::Moderator => AccountRole::Moderator,
        api::Role::Banned => AccountRole::Banned,
        api::Role::Allowed => AccountRole::Allowed,
    }
}

fn api_role(role: AccountRole) -> api::Role {
    match role {
        AccountRole::Moderator => api::Role::Moderator,
        AccountRole::Banned => api::Role::Banned,
        AccountRole::Allowed => api::Role::Allowed,
    }
}

fn room_name(text: &str) -> Result<RoomName, ApiError> {
    text.parse()
        .map_err(|error: crate::room::InvalidRoomName| ApiError::BadRequest(error.to_string()))
}

fn no_such_room(room: &str) -> ApiError {
    ApiError::NotFound(format!("no room named {room:?}"))
}

fn store_error(error: StoreError) -> ApiError {
    warn!(%error, "the store failed an admin API request");
    ApiError::Internal("the store failed; see the server log".into())
}

fn action_error(error: ActionError) -> ApiError {
    match error {
        ActionError::NoSuchParticipant => ApiError::NotFound(error.to_string()),
        ActionError::NoSuchLayout => ApiError::BadRequest(error.to_string()),
        ActionError::NotRunning => ApiError::Unavailable(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_patches_set_only_their_fields_and_zero_removes_the_cap() {
        let mut stored =
            RoomPolicy { max_participants: NonZeroU32::new(5), ..RoomPolicy::default() };
        apply_patch(&mut stored, &PolicyPatch { lobby: Some(true), ..PolicyPatch::default() });
        assert!(stored.lobby);
        assert_eq!(stored.max_participants, NonZeroU32::new(5));
        apply_patch(
            &mut stored,
            &PolicyPatch { max_participants: Some(0), ..PolicyPatch::default() },
        );
        assert_eq!(stored.max_participants, None);
        apply_patch(
            &mut stored,
            &PolicyPatch { layout: Some(LayoutName::OneBig), ..PolicyPatch::default() },
        );
        assert_eq!(policy(&stored).layout, LayoutName::OneBig);
        for layout in [LayoutName::Grid, LayoutName::OneBigWithSmall, LayoutName::OneBig] {
            assert_eq!(layout_from_number(layout_number(layout)), layout);
        }
    }
}
