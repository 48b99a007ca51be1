//! An in-memory [`Control`]: a test double for the router layer only. It keeps rooms, records
//! every action and role change, and fans events out through broadcast channels.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rdv_admin_api::types::{
    AccountRoleEntry, Action, CreateRoom, Event, LayoutName, Participant, PlayRequest, Playback,
    PlaybackPatch, Policy, PolicyPatch, RecordRequest, Recording, Role, RoomDetail, RoomSummary,
    TokenInfo,
};
use rdv_admin_api::{ApiError, Control, token_sha256_hex};
use tokio::sync::broadcast;

/// Events a subscriber may fall behind by before it is told it lagged.
pub(crate) const EVENT_CAPACITY: usize = 4;

/// A room that answers every call with an internal error.
pub(crate) const BROKEN_ROOM: &str = "broken";
/// A room whose calls never finish.
pub(crate) const SLOW_ROOM: &str = "slow";

/// A role change as the double received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoleChange {
    pub(crate) room: String,
    pub(crate) account: String,
    pub(crate) role: Role,
    pub(crate) granted: bool,
}

#[derive(Debug)]
struct StoredToken {
    id: i64,
    room: String,
    hash: String,
}

#[derive(Default)]
struct State {
    /// Keyed by lower-cased name.
    rooms: BTreeMap<String, RoomDetail>,
    actions: Vec<(String, Action)>,
    role_changes: Vec<RoleChange>,
    tokens: Vec<StoredToken>,
    next_token_id: i64,
    room_events: HashMap<String, broadcast::Sender<Event>>,
    /// (room, playback), in starting order.
    playbacks: Vec<(String, Playback)>,
}

/// The in-memory server.
#[derive(Clone)]
pub(crate) struct MemControl {
    state: Arc<Mutex<State>>,
    all_events: broadcast::Sender<Event>,
    ready: Arc<AtomicBool>,
}

impl MemControl {
    /// A server with these rooms, ready.
    pub(crate) fn with_rooms(names: &[&str]) -> Self {
        let control = Self {
            state: Arc::default(),
            all_events: broadcast::channel(EVENT_CAPACITY).0,
            ready: Arc::new(AtomicBool::new(true)),
        };
        {
            let mut state = control.state.lock().unwrap();
            for name in names {
                state.rooms.insert(name.to_lowercase(), detail(name));
            }
        }
        control
    }

    /// Starts "playing" `request` in `room` (lower-cased); its id is 100, 101...
    pub(crate) fn add_playback(&self, room: &str, request: PlayRequest) -> Playback {
        let mut state = self.state.lock().unwrap();
        let playback = Playback {
            id: 100 + state.playbacks.len() as u64,
            file: request.file,
            looped: request.looped,
            paused: request.paused,
            volume: request.volume,
            position_seconds: 0.0,
            container: "wav".into(),
            audio: Some("pcm_s16le".into()),
            video: None,
            duration_seconds: Some(1.0),
        };
        state.playbacks.push((room.to_owned(), playback.clone()));
        playback
    }

    /// Stores a token for `room` and returns it.
    pub(crate) fn grant(&self, room: &str) -> String {
        // Any 64 hex characters will do; this makes them differ by room.
        let token = token_sha256_hex(&format!("token for {room}"));
        let mut state = self.state.lock().unwrap();
        state.next_token_id += 1;
        let id = state.next_token_id;
        state.tokens.push(StoredToken {
            id,
            room: room.to_owned(),
            hash: token_sha256_hex(&token),
        });
        token
    }

    /// Every action performed, with its room, in order.
    pub(crate) fn actions(&self) -> Vec<(String, Action)> {
        self.state.lock().unwrap().actions.clone()
    }

    /// Every role change, in order.
    pub(crate) fn role_changes(&self) -> Vec<RoleChange> {
        self.state.lock().unwrap().role_changes.clone()
    }

    /// The stored hash of token `id`.
    pub(crate) fn token_hash(&self, id: i64) -> Option<String> {
        let state = self.state.lock().unwrap();
        state.tokens.iter().find(|t| t.id == id).map(|t| t.hash.clone())
    }

    /// Sends an event to the room's subscribers and to those of all rooms.
    pub(crate) fn emit(&self, event: Event) {
        let state = self.state.lock().unwrap();
        if let Some(sender) = state.room_events.get(&event.room.to_lowercase()) {
            let _ = sender.send(event.clone());
        }
        let _ = self.all_events.send(event);
    }

    /// Sets what `ready()` answers.
    pub(crate) fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Runs `f` on the room, or fails as a server would.
    async fn with_room<T>(
        &self,
        room: &str,
        f: impl FnOnce(&mut State, &str) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let key = room.to_lowercase();
        if key == SLOW_ROOM {
            std::future::pending::<()>().await;
        }
        if key == BROKEN_ROOM {
            return Err(ApiError::Internal("disk /var/lib/rdv is on fire".into()));
        }
        let mut state = self.state.lock().unwrap();
        if !state.rooms.contains_key(&key) {
            return Err(ApiError::NotFound(format!("no room {room:?}")));
        }
        f(&mut state, &key)
    }
}

fn detail(name: &str) -> RoomDetail {
    RoomDetail {
        name: name.to_owned(),
        jami_id: format!("{:0>40}", name.len()),
        device_id: format!("{:0>40}", name.len() + 1),
        policy: Policy::default(),
        participants: vec![Participant {
            id: 1,
            account: "a".repeat(40),
            device: "d".repeat(40),
            call_id: "call-1".into(),
            moderator: false,
            audio_local_muted: false,
            audio_moderator_muted: false,
            video_muted: false,
            video_moderator_muted: false,
            hand_raised: true,
            voice_activity: false,
            in_lobby: false,
            on_hold: false,
            active: false,
            joined_at: 1_700_000_000,
        }],
        layout: LayoutName::Grid,
        created_at: 1_700_000_000,
    }
}

fn apply(policy: &mut Policy, patch: PolicyPatch) {
    if let Some(admission) = patch.admission {
        policy.admission = admission;
    }
    if let Some(locked) = patch.locked {
        policy.locked = locked;
    }
    if let Some(lobby) = patch.lobby {
        policy.lobby = lobby;
    }
    if let Some(max) = patch.max_participants {
        policy.max_participants = (max != 0).then_some(max);
    }
    if let Some(all) = patch.all_moderators {
        policy.all_moderators = all;
    }
    if let Some(active) = patch.active_speaker {
        policy.active_speaker = active;
    }
    if let Some(layout) = patch.layout {
        policy.layout = layout;
    }
}

impl Control for MemControl {
    async fn rooms(&self) -> Result<Vec<RoomSummary>, ApiError> {
        let state = self.state.lock().unwrap();
        Ok(state
            .rooms
            .values()
            .map(|room| RoomSummary {
                name: room.name.clone(),
                jami_id: room.jami_id.clone(),
                participants: room.participants.len(),
            })
            .collect())
    }

    async fn room(&self, room: &str) -> Result<RoomDetail, ApiError> {
        self.with_room(room, |state, key| Ok(state.rooms[key].clone())).await
    }

    async fn create_room(&self, request: CreateRoom) -> Result<RoomDetail, ApiError> {
        if request.name.is_empty() {
            return Err(ApiError::BadRequest("a room name is not empty".into()));
        }
        let mut state = self.state.lock().unwrap();
        let key = request.name.to_lowercase();
        if state.rooms.contains_key(&key) {
            return Err(ApiError::Conflict(format!("room {:?} exists", request.name)));
        }
        let mut room = detail(&request.name);
        room.participants.clear();
        apply(&mut room.policy, request.policy.unwrap_or_default());
        state.rooms.insert(key, room.clone());
        Ok(room)
    }

    async fn delete_room(&self, room: &str) -> Result<(), ApiError> {
        self.with_room(room, |state, key| {
            state.rooms.remove(key);
            Ok(())
        })
        .await
    }

    async fn update_policy(&self, room: &str, patch: PolicyPatch) -> Result<Policy, ApiError> {
        self.with_room(room, |state, key| {
            let Some(room) = state.rooms.get_mut(key) else {
                return Err(ApiError::NotFound(key.to_owned()));
            };
            apply(&mut room.policy, patch);
            Ok(room.policy.clone())
        })
        .await
    }

    async fn participants(&self, room: &str) -> Result<Vec<Participant>, ApiError> {
        self.with_room(room, |state, key| Ok(state.rooms[key].participants.clone())).await
    }

    async fn act(&self, room: &str, action: Action) -> Result<(), ApiError> {
        self.with_room(room, |state, key| {
            state.actions.push((key.to_owned(), action));
            Ok(())
        })
        .await
    }

    async fn set_role(
        &self,
        room: &str,
        account: &str,
        role: Role,
        granted: bool,
    ) -> Result<(), ApiError> {
        self.with_room(room, |state, key| {
            let change =
                RoleChange { room: key.to_owned(), account: account.to_owned(), role, granted };
            state.role_changes.push(change);
            Ok(())
        })
        .await
    }

    async fn roles(&self, room: &str) -> Result<Vec<AccountRoleEntry>, ApiError> {
        self.with_room(room, |state, key| {
            let mut held: BTreeMap<(String, Role), bool> = BTreeMap::new();
            for change in state.role_changes.iter().filter(|c| c.room == key) {
                held.insert((change.account.clone(), change.role), change.granted);
            }
            Ok(held
                .into_iter()
                .filter(|(_, granted)| *granted)
                .map(|((account, role), _)| AccountRoleEntry { account, role })
                .collect())
        })
        .await
    }

    async fn add_room_token(
        &self,
        room: &str,
        token_sha256_hex: String,
        label: String,
    ) -> Result<TokenInfo, ApiError> {
        self.with_room(room, |state, key| {
            state.next_token_id += 1;
            let id = state.next_token_id;
            state.tokens.push(StoredToken { id, room: key.to_owned(), hash: token_sha256_hex });
            Ok(TokenInfo { id, label, created_at: 1_700_000_000 })
        })
        .await
    }

    async fn revoke_room_token(&self, room: &str, token_id: i64) -> Result<(), ApiError> {
        self.with_room(room, |state, key| {
            let before = state.tokens.len();
            state.tokens.retain(|t| !(t.id == token_id && t.room.eq_ignore_ascii_case(key)));
            if state.tokens.len() == before {
                return Err(ApiError::NotFound(format!("no token {token_id}")));
            }
            Ok(())
        })
        .await
    }

    async fn room_of_token(&self, token_sha256_hex: &str) -> Result<Option<String>, ApiError> {
        let state = self.state.lock().unwrap();
        Ok(state.tokens.iter().find(|t| t.hash == token_sha256_hex).map(|t| t.room.clone()))
    }

    fn events(&self, room: Option<&str>) -> Result<broadcast::Receiver<Event>, ApiError> {
        let Some(room) = room else {
            return Ok(self.all_events.subscribe());
        };
        let key = room.to_lowercase();
        let mut state = self.state.lock().unwrap();
        if !state.rooms.contains_key(&key) {
            return Err(ApiError::NotFound(format!("no room {room:?}")));
        }
        let sender =
            state.room_events.entry(key).or_insert_with(|| broadcast::channel(EVENT_CAPACITY).0);
        Ok(sender.subscribe())
    }

    fn ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    async fn record(
        &self,
        room: &str,
        start: Option<RecordRequest>,
    ) -> Result<Recording, ApiError> {
        self.room(room).await?;
        let video = start.is_some_and(|request| request.video);
        let extension = if video { "webm" } else { "ogg" };
        Ok(Recording {
            recording: start.is_some(),
            file: Some(format!("/recordings/{room}.{extension}")),
            video,
            seconds: start.is_none().then_some(1.0),
        })
    }

    async fn attach_bot(
        &self,
        room: &str,
        listen: Option<u64>,
    ) -> Result<rdv_admin_api::BotLink, ApiError> {
        // The double's bot hears its own voice back: enough to check the socket's framing.
        self.room(room).await?;
        if listen.is_some_and(|id| id != 1) {
            return Err(ApiError::NotFound("no such participant".into()));
        }
        let (to_room, mut heard) = tokio::sync::mpsc::channel::<Vec<i16>>(8);
        let (echo, from_room) = tokio::sync::mpsc::channel(8);
        tokio::spawn(async move {
            while let Some(frame) = heard.recv().await {
                if echo.send(frame).await.is_err() {
                    break;
                }
            }
        });
        Ok(rdv_admin_api::BotLink { to_room, from_room })
    }

    async fn play(&self, room: &str, request: PlayRequest) -> Result<Playback, ApiError> {
        let name = self.room(room).await?.name.to_lowercase();
        Ok(self.add_playback(&name, request))
    }

    async fn playbacks(&self, room: &str) -> Result<Vec<Playback>, ApiError> {
        let name = self.room(room).await?.name.to_lowercase();
        let state = self.state.lock().unwrap();
        Ok(state.playbacks.iter().filter(|(r, _)| *r == name).map(|(_, p)| p.clone()).collect())
    }

    async fn change_playback(
        &self,
        room: &str,
        playback: u64,
        patch: PlaybackPatch,
    ) -> Result<Playback, ApiError> {
        let name = self.room(room).await?.name.to_lowercase();
        let mut state = self.state.lock().unwrap();
        let (_, found) = state
            .playbacks
            .iter_mut()
            .find(|(r, p)| *r == name && p.id == playback)
            .ok_or_else(|| ApiError::NotFound(format!("no playback {playback}")))?;
        found.paused = patch.paused.unwrap_or(found.paused);
        found.volume = patch.volume.unwrap_or(found.volume);
        Ok(found.clone())
    }

    async fn stop_playback(&self, room: &str, playback: u64) -> Result<(), ApiError> {
        let name = self.room(room).await?.name.to_lowercase();
        let mut state = self.state.lock().unwrap();
        let before = state.playbacks.len();
        state.playbacks.retain(|(r, p)| !(*r == name && p.id == playback));
        if state.playbacks.len() == before {
            return Err(ApiError::NotFound(format!("no playback {playback}")));
        }
        Ok(())
    }
}
