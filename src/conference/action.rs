//! The moderation vocabulary, shared by every way of acting on a room: a participant's Jami
//! client (confOrder, turned into [`Action`]s here), the admin API and the web panel. The
//! room's owner task carries out `Action`s and nothing else.

use rdv_mixer::audio::ParticipantId;

use super::order::{Order, Target};
use crate::identity::AccountId;

/// Whom an action is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// One participant, by the id the room gave it (the admin API's handle).
    Participant(ParticipantId),
    /// Every participant of an account, or one of its devices (a Jami client's handle).
    Account(Target),
}

/// One thing done to a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Switch the composite to layout 0 (grid), 1 (one big with small) or 2 (one big).
    SetLayout(u8),
    /// Show one participant big, or no one.
    SetActive(Option<Who>),
    /// Force-mute (or unmute) audio: the participant's own unmute does not undo it.
    MuteAudio {
        /// Who.
        who: Who,
        /// Muted.
        muted: bool,
    },
    /// Take (or give back) a participant's tile picture.
    MuteVideo {
        /// Who.
        who: Who,
        /// Muted.
        muted: bool,
    },
    /// Force-mute everyone but the moderators.
    MuteAll,
    /// Hang up (kick).
    Hangup(Who),
    /// Raise or lower a hand.
    RaiseHand {
        /// Whose.
        who: Who,
        /// Raised.
        raised: bool,
    },
    /// Let a participant in from the lobby.
    Admit(Who),
    /// Make a participant a moderator, or no longer one (the operator's only).
    SetModerator {
        /// Who.
        who: Who,
        /// A moderator now.
        moderator: bool,
    },
    /// A text message to everyone in the room (SIP MESSAGE text/plain, shown in the call).
    Chat(String),
}

impl From<Order> for Action {
    fn from(order: Order) -> Self {
        match order {
            Order::Layout(number) => Self::SetLayout(number),
            Order::Active(target) => Self::SetActive(target.map(Who::Account)),
            Order::MuteAudio { target, muted } => {
                Self::MuteAudio { who: Who::Account(target), muted }
            }
            Order::Hangup(target) => Self::Hangup(Who::Account(target)),
            Order::RaiseHand { target, raised } => {
                Self::RaiseHand { who: Who::Account(target), raised }
            }
        }
    }
}

impl Action {
    /// Whether a participant of account `sender` may do this: moderators anything, others
    /// only raise or lower their own hand.
    pub fn permitted(&self, sender: AccountId, moderator: bool) -> bool {
        moderator
            || matches!(self,
                Self::RaiseHand { who: Who::Account(target), .. } if target.account == sender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(byte: u8) -> AccountId {
        AccountId::from_bytes([byte; 20])
    }

    #[test]
    fn only_moderators_act_on_others_and_anyone_on_their_own_hand() {
        let own = Target { account: account(1), device: None };
        let other = Target { account: account(2), device: None };
        let raise = |target: &Target| {
            Action::from(Order::RaiseHand { target: target.clone(), raised: true })
        };
        assert!(raise(&own).permitted(account(1), false));
        assert!(!raise(&other).permitted(account(1), false));
        assert!(raise(&other).permitted(account(1), true));
        let mute = Action::from(Order::MuteAudio { target: own, muted: true });
        assert!(!mute.permitted(account(1), false));
        assert!(mute.permitted(account(1), true));
        assert!(!Action::MuteAll.permitted(account(1), false));
        assert_eq!(Action::from(Order::Layout(2)), Action::SetLayout(2));
    }
}
