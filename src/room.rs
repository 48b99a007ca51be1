//! Rooms as the operator names and configures them. Each room is one Jami account.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

use serde::Serialize;

use crate::identity::RoomIdentity;

/// Longest room name accepted.
pub const MAX_ROOM_NAME_LEN: usize = 64;

/// A room's name: 1 to 64 ASCII letters, digits, `.`, `_` or `-`, starting with a letter or
/// digit, so that it is safe in URLs, file names and logs. Names are unique regardless of
/// case; the case given at creation is kept for display.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct RoomName(String);

/// A room name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid room name {name:?}: {reason}")]
pub struct InvalidRoomName {
    name: String,
    reason: &'static str,
}

impl RoomName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for RoomName {
    type Err = InvalidRoomName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let refuse = |reason| Err(InvalidRoomName { name: name.to_owned(), reason });
        let Some(first) = name.chars().next() else {
            return refuse("it is empty");
        };
        if name.len() > MAX_ROOM_NAME_LEN {
            return refuse("it is longer than 64 characters");
        }
        if !first.is_ascii_alphanumeric() {
            return refuse("it must start with a letter or a digit");
        }
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
            return refuse("only ASCII letters, digits, '.', '_' and '-' are allowed");
        }
        Ok(Self(name.to_owned()))
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The store's key for a room; internal, never shown to users (they see the name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(pub i64);

/// Who may call the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Admission {
    /// Any Jami account that is not banned.
    #[default]
    Open,
    /// Only the accounts on the room's allow-list.
    AllowList,
}

/// How the composite video is laid out (Jami's `Layout`: grid, one big with small ones, one big).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// All participants in equal tiles.
    #[default]
    Grid,
    /// The active participant big, the others small.
    OneBigWithSmall,
    /// Only the active participant.
    OneBig,
}

/// A room's policy, as stored. Defaults: open to anyone, unlocked, no lobby, no cap.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RoomPolicy {
    /// Who may call.
    pub admission: Admission,
    /// A locked room takes no new participants.
    pub locked: bool,
    /// New callers wait, unheard and unseen, until a moderator admits them.
    pub lobby: bool,
    /// Most participants at once; `None` for no limit.
    pub max_participants: Option<NonZeroU32>,
    /// Everyone in the room is a moderator.
    pub all_moderators: bool,
    /// The big tile follows whoever speaks.
    pub active_speaker: bool,
    /// The layout a new conference starts with.
    pub layout: Layout,
}

/// An account's role in a room (the `room_accounts` table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountRole {
    /// May moderate the room.
    Moderator,
    /// On the allow-list of a room with [`Admission::AllowList`].
    Allowed,
    /// May not call the room.
    Banned,
}

impl AccountRole {
    /// The role's name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Moderator => "moderator",
            Self::Allowed => "allowed",
            Self::Banned => "banned",
        }
    }

    /// The role stored as `text`.
    pub fn from_stored(text: &str) -> Option<Self> {
        [Self::Moderator, Self::Allowed, Self::Banned].into_iter().find(|r| r.as_str() == text)
    }
}

/// Why a caller was refused at the door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The caller's account is banned from the room.
    #[error("banned")]
    Banned,
    /// The room takes only its allow-list, and the caller is not on it.
    #[error("not on the allow-list")]
    NotAllowed,
    /// The room is locked.
    #[error("the room is locked")]
    Locked,
    /// The room has as many participants as it may.
    #[error("the room is full")]
    Full,
    /// The server is draining before it stops: it takes no new callers.
    #[error("the server is draining")]
    Draining,
}

/// Whether a caller whose account has `roles` in the room may call it while `participants`
/// are in. A ban wins over everything; moderators always get in otherwise; a locked room
/// and a full one take no one else; an allow-list room takes only its list.
pub fn admit(
    policy: &RoomPolicy,
    roles: &[AccountRole],
    participants: usize,
) -> Result<(), Refusal> {
    if roles.contains(&AccountRole::Banned) {
        return Err(Refusal::Banned);
    }
    if roles.contains(&AccountRole::Moderator) {
        return Ok(());
    }
    if policy.locked {
        return Err(Refusal::Locked);
    }
    if policy.max_participants.is_some_and(|max| participants >= max.get() as usize) {
        return Err(Refusal::Full);
    }
    match policy.admission {
        Admission::Open => Ok(()),
        Admission::AllowList if roles.contains(&AccountRole::Allowed) => Ok(()),
        Admission::AllowList => Err(Refusal::NotAllowed),
    }
}

/// A stored room.
#[derive(Debug, Clone)]
pub struct Room {
    /// Store key.
    pub id: RoomId,
    /// Unique name.
    pub name: RoomName,
    /// The room's Jami account and device.
    pub identity: RoomIdentity,
    /// Policy.
    pub policy: RoomPolicy,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

impl Room {
    /// The room without its keys.
    pub fn outline(&self) -> crate::store::RoomOutline {
        crate::store::RoomOutline {
            id: self.id,
            name: self.name.clone(),
            policy: self.policy.clone(),
            jami_id: self.identity.account_id().to_string(),
            device_id: self.identity.device_id().to_string(),
            created_at: self.created_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_bans_win_and_allow_lists_take_only_their_list() {
        let open = RoomPolicy::default();
        let restricted = RoomPolicy { admission: Admission::AllowList, ..RoomPolicy::default() };
        assert_eq!(admit(&open, &[], 0), Ok(()));
        assert_eq!(admit(&open, &[AccountRole::Banned], 0), Err(Refusal::Banned));
        assert_eq!(admit(&restricted, &[], 0), Err(Refusal::NotAllowed));
        assert_eq!(admit(&restricted, &[AccountRole::Allowed], 0), Ok(()));
        assert_eq!(admit(&restricted, &[AccountRole::Moderator], 0), Ok(()));
        assert_eq!(
            admit(&restricted, &[AccountRole::Allowed, AccountRole::Banned], 0),
            Err(Refusal::Banned)
        );
        for role in [AccountRole::Moderator, AccountRole::Allowed, AccountRole::Banned] {
            assert_eq!(AccountRole::from_stored(role.as_str()), Some(role));
        }
    }

    #[test]
    fn locked_and_full_rooms_take_only_moderators() {
        let locked = RoomPolicy { locked: true, ..RoomPolicy::default() };
        assert_eq!(admit(&locked, &[], 0), Err(Refusal::Locked));
        assert_eq!(admit(&locked, &[AccountRole::Allowed], 0), Err(Refusal::Locked));
        assert_eq!(admit(&locked, &[AccountRole::Moderator], 5), Ok(()));
        assert_eq!(
            admit(&locked, &[AccountRole::Moderator, AccountRole::Banned], 0),
            Err(Refusal::Banned)
        );
        let capped = RoomPolicy { max_participants: NonZeroU32::new(2), ..RoomPolicy::default() };
        assert_eq!(admit(&capped, &[], 1), Ok(()));
        assert_eq!(admit(&capped, &[], 2), Err(Refusal::Full));
        assert_eq!(admit(&capped, &[AccountRole::Moderator], 2), Ok(()));
    }

    #[test]
    fn accepts_reasonable_names() {
        for name in ["lobby", "Team-7", "a", "stand_up.daily", &"x".repeat(64)] {
            assert_eq!(name.parse::<RoomName>().unwrap().as_str(), name);
        }
    }

    #[test]
    fn refuses_unsafe_names() {
        for name in
            ["", "-lead", ".hidden", "with space", "slash/room", "émile", "a\nb", &"x".repeat(65)]
        {
            let error = name.parse::<RoomName>().unwrap_err();
            assert!(error.to_string().contains("invalid room name"), "{error}");
        }
    }
}
