//! The trait the server implements so that the API can read and steer its rooms.
//!
//! Handlers check authentication and validate input, then delegate to [`Control`]; they hold
//! no room state of their own. Room names arrive as the client spelled them (names are unique
//! regardless of case); account ids arrive validated and lower-cased.

use std::future::Future;

use tokio::sync::broadcast;

use crate::ApiError;
use crate::types::{
    AccountRoleEntry, Action, CreateRoom, Event, Participant, PlayRequest, Playback, PlaybackPatch,
    Policy, PolicyPatch, RecordRequest, Recording, Role, RoomDetail, RoomSummary, TokenInfo,
};

/// What the admin API needs from the server.
pub trait Control: Clone + Send + Sync + 'static {
    /// Every room, in a stable order.
    fn rooms(&self) -> impl Future<Output = Result<Vec<RoomSummary>, ApiError>> + Send;

    /// One room in full.
    fn room(&self, room: &str) -> impl Future<Output = Result<RoomDetail, ApiError>> + Send;

    /// Creates a room (and its Jami account).
    fn create_room(
        &self,
        request: CreateRoom,
    ) -> impl Future<Output = Result<RoomDetail, ApiError>> + Send;

    /// Deletes a room, ending its conference.
    fn delete_room(&self, room: &str) -> impl Future<Output = Result<(), ApiError>> + Send;

    /// Changes a room's policy and returns it as it now is.
    fn update_policy(
        &self,
        room: &str,
        patch: PolicyPatch,
    ) -> impl Future<Output = Result<Policy, ApiError>> + Send;

    /// The room's participants, lobby included.
    fn participants(
        &self,
        room: &str,
    ) -> impl Future<Output = Result<Vec<Participant>, ApiError>> + Send;

    /// Every moderation action, same command as a moderator's Jami client sends.
    fn act(&self, room: &str, action: Action) -> impl Future<Output = Result<(), ApiError>> + Send;

    /// Grants (`granted`) or withdraws a role from an account (40 lower-case hex characters).
    fn set_role(
        &self,
        room: &str,
        account: &str,
        role: Role,
        granted: bool,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;

    /// Every role held in the room.
    fn roles(
        &self,
        room: &str,
    ) -> impl Future<Output = Result<Vec<AccountRoleEntry>, ApiError>> + Send;

    /// Room tokens: stored as SHA-256 hex of the token; the API crate makes and hashes tokens
    /// (see [`token_sha256_hex`](crate::token_sha256_hex)).
    fn add_room_token(
        &self,
        room: &str,
        token_sha256_hex: String,
        label: String,
    ) -> impl Future<Output = Result<TokenInfo, ApiError>> + Send;

    /// Revokes one of the room's tokens; [`ApiError::NotFound`] if the room has no such token.
    fn revoke_room_token(
        &self,
        room: &str,
        token_id: i64,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;

    /// Which room (name) a token hash grants, if any.
    fn room_of_token(
        &self,
        token_sha256_hex: &str,
    ) -> impl Future<Output = Result<Option<String>, ApiError>> + Send;

    /// Live events: of one room, or all rooms when None.
    fn events(&self, room: Option<&str>) -> Result<broadcast::Receiver<Event>, ApiError>;

    /// Ready to take calls (DHT bootstrapped, rooms published).
    fn ready(&self) -> bool;

    /// Starts (`Some`) or stops (`None`) recording the room: its mix into an Ogg Opus file,
    /// or with `video` its mix and composite into a WebM file, on the server.
    fn record(
        &self,
        room: &str,
        start: Option<RecordRequest>,
    ) -> impl Future<Output = Result<Recording, ApiError>> + Send;

    /// Adds a bot to the room's mix: it hears the room (or, with `listen`, only that
    /// participant) and is heard in it (see [`BotLink`]).
    fn attach_bot(
        &self,
        room: &str,
        listen: Option<u64>,
    ) -> impl Future<Output = Result<BotLink, ApiError>> + Send;

    /// Plays a file into the room; a file that cannot be played is refused before anything
    /// is heard.
    fn play(
        &self,
        room: &str,
        request: PlayRequest,
    ) -> impl Future<Output = Result<Playback, ApiError>> + Send;

    /// The files playing into the room.
    fn playbacks(&self, room: &str)
    -> impl Future<Output = Result<Vec<Playback>, ApiError>> + Send;

    /// Pauses, resumes or changes the volume of a playback.
    fn change_playback(
        &self,
        room: &str,
        playback: u64,
        patch: PlaybackPatch,
    ) -> impl Future<Output = Result<Playback, ApiError>> + Send;

    /// Stops a playback.
    fn stop_playback(
        &self,
        room: &str,
        playback: u64,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
}

/// Samples in one bot audio frame: 20 ms at 48 kHz, mono.
pub const BOT_FRAME_SAMPLES: usize = 960;

/// A bot's two ways into a room's audio, in frames of [`BOT_FRAME_SAMPLES`] signed 16-bit
/// samples at 48 kHz, mono. The bot is a participant without a call: it hears everyone (its
/// own frames excepted) and everyone hears it. It leaves when `to_room` is dropped.
#[derive(Debug)]
pub struct BotLink {
    /// Frames the bot says, in real time (a bot that sends faster loses frames).
    pub to_room: tokio::sync::mpsc::Sender<Vec<i16>>,
    /// Frames the bot hears; closed when the bot fell too far behind and was dropped.
    pub from_room: tokio::sync::mpsc::Receiver<Vec<i16>>,
}
