//! What happens in a room, as the admin API's event stream and webhooks tell it.

use std::path::PathBuf;
use std::time::Duration;

use rdv_mixer::audio::ParticipantId;

use crate::identity::AccountId;

/// One thing that happened in a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomEvent {
    /// A participant joined (maybe into the lobby).
    Joined {
        /// Its id in the room.
        participant: ParticipantId,
        /// Its account.
        account: AccountId,
        /// Its device.
        device: String,
        /// It waits in the lobby.
        lobby: bool,
    },
    /// A participant left.
    Left {
        /// Its id in the room.
        participant: ParticipantId,
        /// Its account.
        account: AccountId,
        /// How long it stayed.
        seconds: u64,
    },
    /// A participant's audio or video was muted or unmuted.
    Muted {
        /// Who.
        participant: ParticipantId,
        /// Audio (true) or video.
        audio: bool,
        /// Muted now.
        muted: bool,
        /// By a moderator (true) or by itself.
        by_moderator: bool,
    },
    /// A hand went up or down.
    HandRaised {
        /// Whose.
        participant: ParticipantId,
        /// Raised now.
        raised: bool,
    },
    /// The layout or the big tile changed.
    LayoutChanged {
        /// Jami's layout number (0 grid, 1 one big with small, 2 one big).
        layout: u8,
        /// Who is shown big.
        active: Option<ParticipantId>,
    },
    /// A participant started or stopped speaking.
    VoiceActivity {
        /// Who.
        participant: ParticipantId,
        /// Speaking now.
        speaking: bool,
    },
    /// A participant left the lobby.
    Admitted {
        /// Who.
        participant: ParticipantId,
    },
    /// A participant put its call on hold, or resumed it.
    Held {
        /// Who.
        participant: ParticipantId,
        /// On hold now.
        held: bool,
    },
    /// A call was refused at the door.
    CallRefused {
        /// The caller.
        account: AccountId,
        /// Why.
        reason: String,
    },
    /// A participant sent a text message in its call.
    Chat {
        /// Who.
        participant: ParticipantId,
        /// Its account.
        account: AccountId,
        /// The text.
        text: String,
    },
    /// A call could not be set up (device link, TLS, media).
    CallFailed {
        /// The caller.
        account: AccountId,
        /// Why.
        reason: String,
    },
    /// A file stopped playing into the room.
    PlaybackFinished {
        /// The playback (its participant id in the mix).
        playback: ParticipantId,
        /// The file, as asked.
        file: String,
        /// How it ended.
        end: PlaybackEnd,
    },
    /// A recording ended; its file is complete (as far as it could be written).
    RecordingFinished {
        /// The file.
        file: PathBuf,
        /// How long it lasts (`None` when it failed).
        duration: Option<Duration>,
        /// Why it ended.
        end: RecordingEnd,
    },
}

/// Why a recording ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordingEnd {
    /// Stopped through the API.
    Stopped,
    /// The room emptied.
    RoomEmpty,
    /// The room stopped serving.
    RoomStopped,
    /// Writing the file failed.
    Failed(String),
}

/// How a playback ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaybackEnd {
    /// The file played to its end.
    Finished,
    /// It was stopped (through the API, or the room emptied or stopped).
    Stopped,
    /// Decoding failed midway.
    Failed(String),
}
