//! The API's wire types: what the server returns, what clients send, and live events.
//!
//! JSON is snake_case. Every request body refuses unknown fields, so a typo is a 400
//! rather than a silently ignored setting.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A room as listed: its name, its Jami account and how many are in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RoomSummary {
    /// The room's name, unique regardless of case.
    pub name: String,
    /// The room's Jami account id (40 hex characters).
    pub jami_id: String,
    /// Participants currently in the conference.
    pub participants: usize,
}

/// A room in full: identity, policy, who is in and the current layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RoomDetail {
    /// The room's name, unique regardless of case.
    pub name: String,
    /// The room's Jami account id (40 hex characters).
    pub jami_id: String,
    /// The room's Jami device id.
    pub device_id: String,
    /// The room's stored policy.
    pub policy: Policy,
    /// Participants currently in the conference, lobby included.
    pub participants: Vec<Participant>,
    /// The layout in use now (the policy's layout is the one a conference starts with).
    pub layout: LayoutName,
    /// When the room was created, Unix seconds.
    pub created_at: i64,
}

/// Who may call a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Admission {
    /// Any Jami account that is not banned.
    #[default]
    Open,
    /// Only the accounts on the room's allow-list.
    AllowList,
}

/// How the composite video is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LayoutName {
    /// All participants in equal tiles.
    #[default]
    Grid,
    /// The active participant big, the others small.
    OneBigWithSmall,
    /// Only the active participant.
    OneBig,
}

/// A room's policy, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct Policy {
    /// Who may call.
    pub admission: Admission,
    /// A locked room takes no new participants.
    pub locked: bool,
    /// New callers wait, unheard and unseen, until a moderator admits them.
    pub lobby: bool,
    /// Most participants at once; absent (`null`) for no limit.
    pub max_participants: Option<u32>,
    /// Everyone in the room is a moderator.
    pub all_moderators: bool,
    /// The big tile follows whoever speaks.
    pub active_speaker: bool,
    /// The layout a new conference starts with.
    pub layout: LayoutName,
}

/// A change to a room's policy: absent fields are left as they are.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyPatch {
    /// Who may call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<Admission>,
    /// Lock or unlock the room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked: Option<bool>,
    /// Turn the lobby on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lobby: Option<bool>,
    /// Most participants at once; `0` removes the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_participants: Option<u32>,
    /// Make everyone a moderator, or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_moderators: Option<bool>,
    /// Let the big tile follow whoever speaks, or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_speaker: Option<bool>,
    /// The layout a new conference starts with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<LayoutName>,
}

/// A request to create a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRoom {
    /// The new room's name: 1 to 64 ASCII letters, digits, `.`, `_` or `-`.
    pub name: String,
    /// Policy settings that differ from the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyPatch>,
}

/// One call in a room's conference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Participant {
    /// The participant's id in this room, used by the action routes.
    pub id: u64,
    /// The caller's Jami account id.
    pub account: String,
    /// The caller's Jami device id.
    pub device: String,
    /// The call's id.
    pub call_id: String,
    /// The participant may moderate the room.
    pub moderator: bool,
    /// The participant muted their own audio.
    pub audio_local_muted: bool,
    /// A moderator muted the participant's audio.
    pub audio_moderator_muted: bool,
    /// The participant's video is off.
    pub video_muted: bool,
    /// A moderator turned the participant's video off.
    pub video_moderator_muted: bool,
    /// The participant's hand is raised.
    pub hand_raised: bool,
    /// The participant is speaking.
    pub voice_activity: bool,
    /// The participant waits in the lobby.
    pub in_lobby: bool,
    /// The participant holds its call (out of the mix until it resumes).
    #[serde(default)]
    pub on_hold: bool,
    /// The participant is the active (big) one.
    pub active: bool,
    /// When the participant joined, Unix seconds.
    pub joined_at: i64,
}

/// A moderation action: the same commands a moderator's Jami client can send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Mute or unmute a participant's audio.
    MuteAudio {
        /// The participant's id.
        participant: u64,
        /// Mute (`true`) or unmute (`false`).
        muted: bool,
    },
    /// Turn a participant's video off or back on.
    MuteVideo {
        /// The participant's id.
        participant: u64,
        /// Mute (`true`) or unmute (`false`).
        muted: bool,
    },
    /// Mute everyone's audio except the moderators'.
    MuteAll,
    /// Hang up on a participant.
    Kick {
        /// The participant's id.
        participant: u64,
    },
    /// Let a participant in from the lobby.
    Admit {
        /// The participant's id.
        participant: u64,
    },
    /// Lower a participant's raised hand.
    LowerHand {
        /// The participant's id.
        participant: u64,
    },
    /// Change the conference's layout.
    SetLayout {
        /// The new layout.
        layout: LayoutName,
    },
    /// Make a participant the active (big) one, or none.
    SetActive {
        /// The participant's id, or `null` for none.
        participant: Option<u64>,
    },
    /// Lock or unlock the room.
    Lock {
        /// Lock (`true`) or unlock (`false`).
        locked: bool,
    },
    /// Send a chat message to the conference, as the room.
    Chat {
        /// The message: 1 to 4096 characters.
        text: String,
    },
}

/// The longest chat message accepted, in characters.
pub const MAX_CHAT_CHARS: usize = 4096;

impl Action {
    /// Checks what the type system cannot: a chat message is 1 to [`MAX_CHAT_CHARS`] characters.
    pub(crate) fn validate(&self) -> Result<(), crate::ApiError> {
        match self {
            Self::Chat { text } if text.trim().is_empty() => {
                Err(crate::ApiError::BadRequest("chat text is empty".into()))
            }
            Self::Chat { text } if text.chars().count() > MAX_CHAT_CHARS => {
                Err(crate::ApiError::BadRequest(format!(
                    "chat text is over {MAX_CHAT_CHARS} characters"
                )))
            }
            _ => Ok(()),
        }
    }
}

/// A role an account can hold in a room.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// May moderate the room.
    Moderator,
    /// May not call the room.
    Banned,
    /// On the allow-list of a room with `allow_list` admission.
    Allowed,
}

/// One role held by one account in a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccountRoleEntry {
    /// The Jami account id (40 lower-case hex characters).
    pub account: String,
    /// The role it holds.
    pub role: Role,
}

/// A room token as stored (the token itself is never shown again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenInfo {
    /// The token's id, used to revoke it.
    pub id: i64,
    /// What the token is for, as given at creation.
    pub label: String,
    /// When the token was created, Unix seconds.
    pub created_at: i64,
}

/// A newly created room token: the only time the token itself is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    /// The token's id, used to revoke it.
    pub id: i64,
    /// What the token is for.
    pub label: String,
    /// The bearer token (64 hex characters); store it now, it cannot be shown again.
    pub token: String,
}

/// A request to create a room token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// What the token is for: 1 to 100 characters, no control characters.
    pub label: String,
}

/// A request to mute or unmute a participant's audio, video or both (at least one).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MuteRequest {
    /// Mute (`true`) or unmute (`false`) the audio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<bool>,
    /// Turn the video off (`true`) or back on (`false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<bool>,
}

/// A request to change the conference's layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LayoutRequest {
    /// The new layout.
    pub layout: LayoutName,
}

/// A request to send a chat message to the conference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatRequest {
    /// The message: 1 to 4096 characters.
    pub text: String,
}

/// Something that happened in a room, as streamed by the events routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// The room's name.
    pub room: String,
    /// When it happened, Unix milliseconds.
    pub at_ms: u64,
    /// What happened.
    pub kind: EventKind,
}

/// What happened in a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A participant joined the conference (or its lobby).
    Joined {
        /// The participant's id.
        participant: u64,
        /// The caller's Jami account id.
        account: String,
        /// The caller's Jami device id.
        device: String,
    },
    /// A participant left.
    Left {
        /// The participant's id.
        participant: u64,
        /// The caller's Jami account id.
        account: String,
        /// How long the participant stayed, in seconds.
        seconds: u64,
    },
    /// A participant's audio or video was muted or unmuted.
    Muted {
        /// The participant's id.
        participant: u64,
        /// Audio (`true`) or video (`false`).
        audio: bool,
        /// Muted (`true`) or unmuted (`false`).
        muted: bool,
        /// A moderator did it, rather than the participant.
        by_moderator: bool,
    },
    /// A participant raised or lowered their hand.
    HandRaised {
        /// The participant's id.
        participant: u64,
        /// Raised (`true`) or lowered (`false`).
        raised: bool,
    },
    /// The layout or the active participant changed.
    LayoutChanged {
        /// The layout now.
        layout: LayoutName,
        /// The active participant now, if any.
        active: Option<u64>,
    },
    /// A participant started or stopped speaking.
    VoiceActivity {
        /// The participant's id.
        participant: u64,
        /// Speaking (`true`) or silent (`false`).
        speaking: bool,
    },
    /// A call was refused at the door (banned, locked, full, not allowed...).
    CallRefused {
        /// The caller's Jami account id.
        account: String,
        /// Why.
        reason: String,
    },
    /// A call failed to set up.
    CallFailed {
        /// The caller's Jami account id.
        account: String,
        /// Why.
        reason: String,
    },
    /// A participant entered or left the lobby.
    Lobby {
        /// The participant's id.
        participant: u64,
        /// Waiting in the lobby (`true`) or out of it (`false`).
        waiting: bool,
    },
    /// A participant put its call on hold or resumed it; it stays in the room, out of the
    /// mix while held.
    Hold {
        /// The participant's id.
        participant: u64,
        /// On hold now.
        on_hold: bool,
    },
    /// A participant sent a text message in its call (Jami's in-call chat).
    Chat {
        /// Who sent it.
        participant: u64,
        /// Its Jami account id.
        account: String,
        /// The text (at most 4096 characters; longer ones are cut).
        text: String,
    },
    /// A file stopped playing into the room.
    PlaybackFinished {
        /// The playback's id.
        playback: u64,
        /// The file, as asked.
        file: String,
        /// How it ended.
        outcome: PlaybackOutcome,
        /// What failed, when it failed.
        error: Option<String>,
    },
    /// A recording ended and its file is complete (as far as it could be written).
    RecordingFinished {
        /// The recording's file on the server.
        file: String,
        /// How long it lasts, milliseconds (none when it failed).
        duration_ms: Option<u64>,
        /// Why it ended.
        outcome: RecordingOutcome,
        /// What failed, when it failed (the disk filled up, say).
        error: Option<String>,
    },
}

impl EventKind {
    /// The kind's name, as in the JSON `type` field and the SSE `event:` line.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Joined { .. } => "joined",
            Self::Left { .. } => "left",
            Self::Muted { .. } => "muted",
            Self::HandRaised { .. } => "hand_raised",
            Self::LayoutChanged { .. } => "layout_changed",
            Self::VoiceActivity { .. } => "voice_activity",
            Self::CallRefused { .. } => "call_refused",
            Self::CallFailed { .. } => "call_failed",
            Self::Lobby { .. } => "lobby",
            Self::Hold { .. } => "hold",
            Self::Chat { .. } => "chat",
            Self::PlaybackFinished { .. } => "playback_finished",
            Self::RecordingFinished { .. } => "recording_finished",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_kind_name_matches_its_json_tag() {
        let kinds = [
            EventKind::Joined { participant: 1, account: "a".into(), device: "d".into() },
            EventKind::Left { participant: 1, account: "a".into(), seconds: 3 },
            EventKind::Muted { participant: 1, audio: true, muted: true, by_moderator: false },
            EventKind::HandRaised { participant: 1, raised: true },
            EventKind::LayoutChanged { layout: LayoutName::OneBig, active: None },
            EventKind::VoiceActivity { participant: 1, speaking: true },
            EventKind::CallRefused { account: "a".into(), reason: "locked".into() },
            EventKind::CallFailed { account: "a".into(), reason: "ice".into() },
            EventKind::Lobby { participant: 1, waiting: true },
            EventKind::Hold { participant: 1, on_hold: true },
            EventKind::Chat { participant: 1, account: "a".into(), text: "hi".into() },
            EventKind::PlaybackFinished {
                playback: 4,
                file: "a.wav".into(),
                outcome: PlaybackOutcome::Finished,
                error: None,
            },
            EventKind::RecordingFinished {
                file: "/r/lobby.ogg".into(),
                duration_ms: None,
                outcome: RecordingOutcome::Failed,
                error: Some("disk full".into()),
            },
        ];
        for kind in kinds {
            let json = serde_json::to_value(&kind).unwrap();
            assert_eq!(json["type"], kind.name());
        }
    }

    #[test]
    fn actions_are_tagged_snake_case() {
        let json = serde_json::json!({"action": "mute_audio", "participant": 3, "muted": true});
        let action: Action = serde_json::from_value(json).unwrap();
        assert_eq!(action, Action::MuteAudio { participant: 3, muted: true });
        let action: Action =
            serde_json::from_value(serde_json::json!({"action": "mute_all"})).unwrap();
        assert_eq!(action, Action::MuteAll);
        let unknown = serde_json::json!({"action": "kick", "participant": 3, "extra": 1});
        assert!(serde_json::from_value::<Action>(unknown).is_err());
    }

    #[test]
    fn chat_length_is_checked_in_characters() {
        let ok = Action::Chat { text: "é".repeat(MAX_CHAT_CHARS) };
        assert!(ok.validate().is_ok());
        let long = Action::Chat { text: "a".repeat(MAX_CHAT_CHARS + 1) };
        assert!(long.validate().is_err());
        assert!(Action::Chat { text: " ".into() }.validate().is_err());
    }

    #[test]
    fn a_played_file_stays_in_the_media_directory_and_volumes_are_bounded() {
        let play = |file: &str, volume: f32| PlayRequest {
            file: file.into(),
            looped: false,
            volume,
            paused: false,
        };
        assert!(play("welcome.wav", 1.0).validate().is_ok());
        assert!(play("announcements/welcome.mp3", 0.0).validate().is_ok());
        assert!(play("a.wav", MAX_VOLUME).validate().is_ok());
        for file in ["", " ", "/etc/passwd", "../secret.wav", "a/../../b.wav", "./a.wav", "a\0b"] {
            assert!(play(file, 1.0).validate().is_err(), "{file:?}");
        }
        assert!(play(&"a".repeat(MAX_FILE_NAME + 1), 1.0).validate().is_err());
        for volume in [-0.1, MAX_VOLUME + 0.1, f32::NAN, f32::INFINITY] {
            assert!(play("a.wav", volume).validate().is_err(), "{volume}");
        }
        assert!(PlaybackPatch { paused: None, volume: Some(5.0) }.validate().is_err());
        assert!(PlaybackPatch { paused: Some(true), volume: None }.validate().is_ok());
        let json: PlayRequest = serde_json::from_str(r#"{"file":"a.wav","loop":true}"#).unwrap();
        assert!(json.looped && json.volume == 1.0 && !json.paused);
        assert!(serde_json::from_str::<PlayRequest>(r#"{"file":"a","lop":true}"#).is_err());
    }
}

/// Whether a room is being recorded, and where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Recording {
    /// Recording now.
    pub recording: bool,
    /// The recording's file on the server (Ogg Opus, or WebM with pictures), the current one
    /// or the one just ended.
    pub file: Option<String>,
    /// The recording has pictures (the composite) as well as the mix.
    #[serde(default)]
    pub video: bool,
    /// Seconds recorded, for a recording that just ended.
    pub seconds: Option<f64>,
}

/// Why a recording ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordingOutcome {
    /// Stopped through the API.
    Stopped,
    /// The room emptied.
    RoomEmpty,
    /// The room stopped (the server shut down, or the room moved to another replica).
    RoomStopped,
    /// Writing the file failed midway (see `error`); what was written is kept.
    Failed,
}

/// How to record (the body of `recording/start` is optional).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordRequest {
    /// Record the composite too: a WebM file (VP8 and Opus) instead of Ogg Opus.
    #[serde(default)]
    pub video: bool,
}

/// Longest file name accepted for playing, in bytes.
pub const MAX_FILE_NAME: usize = 1024;

/// Loudest volume: four times (+12 dB) the file's own level.
pub const MAX_VOLUME: f32 = 4.0;

/// A file to play into a room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlayRequest {
    /// The file, relative to the server's media directory (`media.files_dir`), for example
    /// `announcements/welcome.mp3`. Any container and codec FFmpeg decodes; a video's
    /// pictures get a tile in the composite.
    pub file: String,
    /// Start again at the end, until stopped.
    #[serde(default, rename = "loop")]
    pub looped: bool,
    /// Linear gain, 0 to 4 (1: as in the file).
    #[serde(default = "full_volume")]
    pub volume: f32,
    /// Start paused.
    #[serde(default)]
    pub paused: bool,
}

fn full_volume() -> f32 {
    1.0
}

impl PlayRequest {
    /// Checks what the type system cannot: a relative name inside the media directory and a
    /// volume from 0 to [`MAX_VOLUME`].
    pub(crate) fn validate(&self) -> Result<(), crate::ApiError> {
        let name = std::path::Path::new(&self.file);
        let refuse = |why: &str| Err(crate::ApiError::BadRequest(format!("file: {why}")));
        if self.file.trim().is_empty() {
            return refuse("is empty");
        }
        if self.file.len() > MAX_FILE_NAME {
            return refuse(&format!("is over {MAX_FILE_NAME} bytes"));
        }
        if self.file.contains('\0') {
            return refuse("contains a NUL character");
        }
        if !name.components().all(|c| matches!(c, std::path::Component::Normal(_))) {
            return refuse("must be a path relative to the media directory, without `..`");
        }
        validate_volume(self.volume)
    }
}

/// A playing file's changes: pause or resume, volume.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaybackPatch {
    /// Pause (`true`) or resume (`false`).
    pub paused: Option<bool>,
    /// Linear gain, 0 to 4.
    pub volume: Option<f32>,
}

impl PlaybackPatch {
    /// Checks the volume's range.
    pub(crate) fn validate(&self) -> Result<(), crate::ApiError> {
        self.volume.map_or(Ok(()), validate_volume)
    }
}

fn validate_volume(volume: f32) -> Result<(), crate::ApiError> {
    if volume.is_finite() && (0.0..=MAX_VOLUME).contains(&volume) {
        Ok(())
    } else {
        Err(crate::ApiError::BadRequest(format!(
            "volume: {volume} is not between 0 and {MAX_VOLUME}"
        )))
    }
}

/// A file playing into a room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Playback {
    /// The playback's id in the room (its participant id in the mix).
    pub id: u64,
    /// The file, as asked.
    pub file: String,
    /// Starts again at the end.
    #[serde(rename = "loop")]
    pub looped: bool,
    /// Paused now.
    pub paused: bool,
    /// Linear gain.
    pub volume: f32,
    /// Seconds played in the current round (paused time excluded).
    pub position_seconds: f64,
    /// The file's container (FFmpeg's name, such as `wav`, `mp3`, `ogg`).
    pub container: String,
    /// Its audio codec, if it has audio.
    pub audio: Option<String>,
    /// Its video, if it has pictures.
    pub video: Option<PlaybackVideo>,
    /// Its length, when the container tells.
    pub duration_seconds: Option<f64>,
}

/// A played file's pictures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlaybackVideo {
    /// The codec (FFmpeg's name, such as `h264`, `vp8`).
    pub codec: String,
    /// Width of the pictures shown, pixels.
    pub width: u32,
    /// Height of the pictures shown, pixels.
    pub height: u32,
}

/// How a playback ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlaybackOutcome {
    /// The file played to its end.
    Finished,
    /// It was stopped (through the API, or because the room emptied or stopped).
    Stopped,
    /// Decoding failed midway (see `error`).
    Failed,
}
