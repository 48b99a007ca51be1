//! A room's conference as a state machine without I/O: who is in the room and in what state,
//! the room's policy and its accounts' roles, admission and the lobby, moderation (force
//! mute, mute all, video mute, kick, hands, layout, the big tile and the active speaker),
//! holds, and the confInfo every participant gets, paced.
//!
//! Inputs are methods that take `now`; outputs are [`Effect`]s taken with
//! [`ConferenceCore::poll_effect`] (a mixer command, something for one participant's call,
//! an event) and the next wake-up from [`ConferenceCore::poll_timeout`]. The room's owner
//! task (`server::room_owner`) only carries effects out.
//!
//! Participants are known by the [`ParticipantId`] the core issued when they joined: every
//! later input about a call carries that handle. A Call-ID is only checked for uniqueness
//! in the room, never used to find who sent something.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use rdv_mixer::audio::ParticipantId;
use rdv_mixer::engine::AudioEvent;
use rdv_mixer::layout::Layout;
use rdv_mixer::media_room::{Command, Output};
use rdv_mixer::video::{ParticipantTile, VideoCodec, VideoEvent};

use super::action::{Action, Who};
use super::event::RoomEvent;
use super::info::{self as conf_info, ConfInfoEntry, Pacer};
use super::order::Order;
use super::speaker::{Hysteresis, SpeakerPicker};
use crate::identity::{AccountId, DeviceLongId};
use crate::room::{AccountRole, Refusal, RoomPolicy, admit};
use crate::sip::CallId;

#[cfg(test)]
mod tests;

/// What a participant in the lobby, or on hold, hears of the room: nothing.
const SILENT_GAIN_DB: f32 = -120.0;
/// Fewest time between two confInfo messages to a participant.
const CONF_INFO_INTERVAL: Duration = Duration::from_millis(250);
/// A newcomer gets the confInfo again this long after it joined: jamid 13.7 can lose the
/// first one while it merges its call (interop/README.md §5.8).
const CONF_INFO_RESEND: Duration = Duration::from_millis(1500);
/// Accounts with a role in the room that the core keeps (the store holds the rest of an
/// oversized list; the core refuses none of them, it just stops learning more).
pub const MAX_ROLES: usize = 100_000;

/// Every account with a role in the room, as stored.
pub type Roles = HashMap<AccountId, Vec<AccountRole>>;

/// Who is calling: its account and the device it calls from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// The caller's account.
    pub account: AccountId,
    /// The calling device (confInfo's `device`).
    pub device: DeviceLongId,
}

/// What a call's latest offer asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MediaShape {
    /// Its video stream's codec, both ways (`None`: audio only).
    pub video: Option<VideoCodec>,
    /// It sends video into the composite (its video is `sendrecv` or `sendonly`).
    pub sends_video: bool,
    /// The caller holds the call: it wants nothing from the room (every video stream
    /// `sendonly` or `inactive`, or every stream when all are).
    pub held: bool,
}

/// A call asking to join.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// Who calls.
    pub caller: Caller,
    /// Its Call-ID, unique in the room.
    pub call_id: CallId,
    /// What its offer asks for.
    pub media: MediaShape,
    /// Negotiated codecs, for the logs (e.g. `opus/48000 + H264/90000`).
    pub codecs: String,
    /// Wall-clock time of the join, for the admin API.
    pub joined_at: SystemTime,
}

/// What an admitted caller may do, and where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// It may order others (a room moderator, or everyone is).
    pub moderator: bool,
    /// It waits in the lobby (neither heard nor shown) until admitted.
    pub lobby: bool,
}

/// Why a call did not join.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// The room's policy refuses the caller (its account's or the room's state).
    #[error("{0}")]
    Refused(#[from] Refusal),
    /// Another call in the room has this Call-ID (the caller's fault: a Call-ID is its own
    /// to make unique).
    #[error("the Call-ID is already in use in the room")]
    CallIdInUse,
}

/// Why an action was not carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// The action names a participant that is not in the room (the sender's fault).
    #[error("no such participant in the room")]
    NoSuchParticipant,
    /// The layout number is not 0, 1 or 2 (the sender's fault).
    #[error("no such layout")]
    NoSuchLayout,
    /// The room's owner task has stopped (the server is stopping).
    #[error("the room is not running")]
    NotRunning,
}

/// Something for one participant's call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOrder {
    /// Send it the conference's state (SIP MESSAGE, confInfo JSON).
    ConfInfo(String),
    /// Send it a text message, shown in its call.
    Chat(String),
    /// End its call (a moderator's kick, or a ban).
    Hangup,
}

/// What the core asks its owner to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A command for the room's mixer.
    Mix(Command),
    /// Something for one participant's call.
    Call {
        /// Whose call.
        participant: ParticipantId,
        /// What to do.
        order: CallOrder,
    },
    /// Something for the room's event stream.
    Event(RoomEvent),
}

/// A participant as the admin API lists it.
#[derive(Debug, Clone)]
pub struct ParticipantView {
    /// Its id in the room.
    pub id: ParticipantId,
    /// Its account.
    pub account: AccountId,
    /// Its device.
    pub device: DeviceLongId,
    /// Its call.
    pub call_id: CallId,
    /// A moderator.
    pub moderator: bool,
    /// Muted by itself.
    pub audio_local_muted: bool,
    /// Muted by a moderator.
    pub audio_moderator_muted: bool,
    /// No picture on its tile.
    pub video_muted: bool,
    /// Its picture taken off by a moderator.
    pub video_moderator_muted: bool,
    /// Its hand is up.
    pub hand_raised: bool,
    /// It speaks.
    pub voice_activity: bool,
    /// It waits in the lobby.
    pub in_lobby: bool,
    /// It holds its call.
    pub on_hold: bool,
    /// It is shown big.
    pub active: bool,
    /// When it joined.
    pub joined_at: SystemTime,
}

/// The room's conference as it stands.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Jami's layout number.
    pub layout: u8,
    /// The participants, in joining order.
    pub participants: Vec<ParticipantView>,
}

/// A participant with a call, and what the room knows of it besides the mix.
#[derive(Debug)]
struct Member {
    caller: Caller,
    call_id: CallId,
    codecs: String,
    moderator: bool,
    media: MediaShape,
    since: Instant,
    joined_at: SystemTime,
    /// It muted its own microphone (INFO mute_state).
    local_muted: bool,
    /// A moderator muted its audio.
    moderator_muted: bool,
    /// A moderator took its picture off its tile.
    video_moderator_muted: bool,
    hand_raised: bool,
    in_lobby: bool,
}

impl Member {
    /// Its video in the composite now, if any.
    fn video_input(&self) -> Option<VideoCodec> {
        let shown = !self.in_lobby && !self.media.held && !self.video_moderator_muted;
        self.media.video.filter(|_| self.media.sends_video && shown)
    }

    /// Whether the room hears it.
    fn heard(&self) -> bool {
        !self.in_lobby && !self.media.held && !self.moderator_muted
    }

    /// Whether it hears the room.
    fn hears(&self) -> bool {
        !self.in_lobby && !self.media.held
    }
}

/// What the mixer says of the conference: where the tiles are, who speaks.
#[derive(Debug, Default)]
struct MixView {
    tiles: BTreeMap<ParticipantId, ParticipantTile>,
    speaking: HashSet<ParticipantId>,
}

/// A room's conference.
#[derive(Debug)]
pub struct ConferenceCore {
    /// By id: joining order.
    members: BTreeMap<ParticipantId, Member>,
    /// Every member's Call-ID, unique in the room.
    call_ids: HashMap<CallId, ParticipantId>,
    policy: RoomPolicy,
    roles: Roles,
    next_id: u64,
    layout: Layout,
    /// Who is shown big.
    active: Option<ParticipantId>,
    recording: bool,
    view: MixView,
    pacer: Pacer,
    speakers: SpeakerPicker,
    /// The composite's size, for confInfo.
    size: (i32, i32),
    effects: VecDeque<Effect>,
}

impl ConferenceCore {
    /// An empty conference with `policy` and `roles`, composing `width` × `height`.
    pub fn new(policy: RoomPolicy, roles: Roles, (width, height): (i32, i32)) -> Self {
        Self {
            members: BTreeMap::new(),
            call_ids: HashMap::new(),
            layout: mixer_layout(policy.layout),
            policy,
            roles,
            next_id: 1,
            active: None,
            recording: false,
            view: MixView::default(),
            pacer: Pacer::new(CONF_INFO_INTERVAL),
            speakers: SpeakerPicker::new(Hysteresis::default()),
            size: (width, height),
            effects: VecDeque::new(),
        }
    }

    // ---- getters ----

    /// Participants with a call (the lobby and held ones included).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether no call is in the room.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Whether `id` is a participant with a call.
    pub fn contains(&self, id: ParticipantId) -> bool {
        self.members.contains_key(&id)
    }

    /// The account of participant `id`.
    pub fn account_of(&self, id: ParticipantId) -> Option<AccountId> {
        self.members.get(&id).map(|member| member.caller.account)
    }

    /// The Call-ID of participant `id`.
    pub fn call_id_of(&self, id: ParticipantId) -> Option<&CallId> {
        self.members.get(&id).map(|member| &member.call_id)
    }

    /// The layout now.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The policy now.
    pub fn policy(&self) -> &RoomPolicy {
        &self.policy
    }

    /// The conference as it stands.
    pub fn snapshot(&self) -> Snapshot {
        let participants = self
            .members
            .iter()
            .map(|(id, member)| ParticipantView {
                id: *id,
                account: member.caller.account,
                device: member.caller.device,
                call_id: member.call_id.clone(),
                moderator: member.moderator,
                audio_local_muted: member.local_muted,
                audio_moderator_muted: member.moderator_muted,
                video_muted: !self.has_picture(*id),
                video_moderator_muted: member.video_moderator_muted,
                hand_raised: member.hand_raised,
                voice_activity: self.view.speaking.contains(id),
                in_lobby: member.in_lobby,
                on_hold: member.media.held,
                active: self.active == Some(*id),
                joined_at: member.joined_at,
            })
            .collect();
        Snapshot { layout: self.layout.number(), participants }
    }

    // ---- admission ----

    /// Whether `account` may call the room now, and how it would join.
    pub fn admit(&self, account: AccountId) -> Result<Admission, Refusal> {
        let roles = self.roles_of(account);
        admit(&self.policy, roles, self.members.len())?;
        Ok(self.admission_of(account))
    }

    fn roles_of(&self, account: AccountId) -> &[AccountRole] {
        self.roles.get(&account).map(Vec::as_slice).unwrap_or_default()
    }

    fn admission_of(&self, account: AccountId) -> Admission {
        let roles = self.roles_of(account);
        let moderator = self.policy.all_moderators || roles.contains(&AccountRole::Moderator);
        let lobby = self.policy.lobby && !moderator && !roles.contains(&AccountRole::Allowed);
        Admission { moderator, lobby }
    }

    /// The id of the next participant in the mix: a call's, or a bot's, a played file's, a
    /// recorder's (the owner seats those).
    pub fn new_id(&mut self) -> ParticipantId {
        let id = ParticipantId(self.next_id);
        self.next_id += 1;
        id
    }

    /// A call joins: admitted by the room's policy as it stands, with a Call-ID no other
    /// call in the room has. The mixer is told to add it (muted and deaf in the lobby).
    pub fn join(
        &mut self,
        request: JoinRequest,
        now: Instant,
    ) -> Result<(ParticipantId, Admission), JoinError> {
        if self.call_ids.contains_key(&request.call_id) {
            return Err(JoinError::CallIdInUse);
        }
        let admission = self.admit(request.caller.account)?;
        let id = self.new_id();
        let member = Member {
            caller: request.caller,
            call_id: request.call_id.clone(),
            codecs: request.codecs,
            moderator: admission.moderator,
            media: request.media,
            since: now,
            joined_at: request.joined_at,
            local_muted: false,
            moderator_muted: false,
            video_moderator_muted: false,
            hand_raised: false,
            in_lobby: admission.lobby,
        };
        self.effects
            .push_back(Effect::Mix(Command::Add { participant: id, video: member.video_input() }));
        self.effects.push_back(Effect::Event(RoomEvent::Joined {
            participant: id,
            account: member.caller.account,
            device: member.caller.device.to_string(),
            lobby: member.in_lobby,
        }));
        self.call_ids.insert(request.call_id, id);
        self.members.insert(id, member);
        self.sync_mix(id);
        if let Some(member) = self.members.get(&id) {
            tracing::info!(
                participant = id.0,
                caller_account = %member.caller.account,
                call_id = %member.call_id,
                codecs = %member.codecs,
                lobby = member.in_lobby,
                moderator = member.moderator,
                on_hold = member.media.held,
                participants = self.members.len(),
                "participant joined"
            );
            if member.in_lobby {
                tracing::info!(participant = id.0, caller_account = %member.caller.account, "waiting in the lobby");
            }
        }
        self.pacer.changed();
        self.pacer.resend_at(now + CONF_INFO_RESEND);
        Ok((id, admission))
    }

    /// A participant's call sent a new offer (hold, resume, video on or off): its media
    /// change and nothing else. A caller banned meanwhile is refused (its call must end);
    /// a locked or full room keeps those already in it.
    pub fn renegotiate(
        &mut self,
        id: ParticipantId,
        media: MediaShape,
        now: Instant,
    ) -> Result<(), Refusal> {
        let Some(member) = self.members.get_mut(&id) else { return Ok(()) };
        if self.roles.get(&member.caller.account).is_some_and(|r| r.contains(&AccountRole::Banned))
        {
            return Err(Refusal::Banned);
        }
        let was_held = member.media.held;
        member.media = media;
        if was_held != media.held {
            tracing::info!(participant = id.0, caller_account = %member.caller.account, on_hold = media.held, "hold changed");
            self.effects
                .push_back(Effect::Event(RoomEvent::Held { participant: id, held: media.held }));
            if media.held {
                self.speakers.remove(id);
                self.view.speaking.remove(&id);
            }
        }
        self.sync_mix(id);
        self.pacer.changed();
        let _ = now;
        Ok(())
    }

    /// A participant's call ended.
    pub fn leave(&mut self, id: ParticipantId, now: Instant) {
        self.speakers.remove(id);
        self.view.speaking.remove(&id);
        let Some(member) = self.members.remove(&id) else { return };
        self.call_ids.remove(&member.call_id);
        if self.active == Some(id) {
            self.active = None;
        }
        let seconds = now.saturating_duration_since(member.since).as_secs();
        tracing::info!(
            participant = id.0,
            caller_account = %member.caller.account,
            call_id = %member.call_id,
            seconds,
            participants = self.members.len(),
            "participant left"
        );
        self.effects.push_back(Effect::Mix(Command::Remove(id)));
        self.effects.push_back(Effect::Event(RoomEvent::Left {
            participant: id,
            account: member.caller.account,
            seconds,
        }));
        self.pacer.changed();
    }

    /// The room's stored policy changed: callers in the lobby of a room that no longer has
    /// one come in; everyone's role follows `all_moderators`. A locked or full room keeps
    /// those already in it.
    pub fn set_policy(&mut self, policy: RoomPolicy) {
        if policy == self.policy {
            return;
        }
        let moderators_changed = policy.all_moderators != self.policy.all_moderators;
        tracing::info!(?policy, "room policy changed");
        self.policy = policy;
        let accounts: HashSet<AccountId> = if moderators_changed {
            self.members.values().map(|member| member.caller.account).collect()
        } else {
            HashSet::new()
        };
        self.roles_changed(&accounts);
    }

    /// The room's accounts' roles as stored now: a banned caller's calls end, a new or
    /// withdrawn moderator role applies at once, and an account allowed in leaves the lobby.
    pub fn set_roles(&mut self, mut roles: Roles) {
        if roles.len() > MAX_ROLES {
            roles = roles.into_iter().take(MAX_ROLES).collect();
        }
        let mut changed: HashSet<AccountId> = HashSet::new();
        for (account, new) in &roles {
            if self.roles.get(account) != Some(new) {
                changed.insert(*account);
            }
        }
        changed.extend(self.roles.keys().filter(|account| !roles.contains_key(account)));
        if changed.is_empty() {
            return;
        }
        tracing::info!(accounts = changed.len(), "room roles changed");
        self.roles = roles;
        self.roles_changed(&changed);
    }

    /// Applies the room's roles and policy to the members of `accounts` (role changes), and
    /// lets the lobby in where the policy no longer keeps it.
    fn roles_changed(&mut self, accounts: &HashSet<AccountId>) {
        let ids: Vec<ParticipantId> = self.members.keys().copied().collect();
        for id in ids {
            let Some(account) = self.account_of(id) else { continue };
            let banned = self.roles_of(account).contains(&AccountRole::Banned);
            let admission = self.admission_of(account);
            let Some(member) = self.members.get_mut(&id) else { continue };
            if banned {
                tracing::info!(participant = id.0, caller_account = %account, "banned: the call ends");
                self.effects.push_back(Effect::Call { participant: id, order: CallOrder::Hangup });
                continue;
            }
            if accounts.contains(&account) && member.moderator != admission.moderator {
                member.moderator = admission.moderator;
                self.pacer.changed();
            }
            if member.in_lobby && !admission.lobby {
                self.admit_from_lobby(id);
            }
        }
    }

    // ---- from a participant's call ----

    /// Participant `id` muted or unmuted its own microphone.
    pub fn local_mute(&mut self, id: ParticipantId, muted: bool) {
        let Some(member) = self.members.get_mut(&id) else { return };
        if member.local_muted == muted {
            return;
        }
        member.local_muted = muted;
        self.effects.push_back(Effect::Event(RoomEvent::Muted {
            participant: id,
            audio: true,
            muted,
            by_moderator: false,
        }));
        self.pacer.changed();
    }

    /// confOrders from participant `id`'s call, checked against its rights now: moderators
    /// may order anything, anyone may raise or lower their own hand; a participant in the
    /// lobby orders nothing. Refused orders are logged.
    pub fn orders(&mut self, id: ParticipantId, orders: Vec<Order>) {
        let Some(member) = self.members.get(&id) else { return };
        let (sender, moderator, in_lobby) =
            (member.caller.account, member.moderator, member.in_lobby);
        for order in orders {
            let action = Action::from(order);
            if in_lobby || !action.permitted(sender, moderator) {
                tracing::info!(participant = id.0, caller_account = %sender, ?action, in_lobby, "order refused: not a moderator");
                continue;
            }
            match self.act(action.clone()) {
                Ok(()) => {
                    tracing::info!(participant = id.0, caller_account = %sender, ?action, "order carried out")
                }
                Err(error) => {
                    tracing::info!(participant = id.0, caller_account = %sender, ?action, %error, "order not carried out")
                }
            }
        }
    }

    /// A text message from participant `id`'s call, told to the room's event stream under
    /// its own account (the lobby's texts are not).
    pub fn chat(&mut self, id: ParticipantId, text: String) {
        let Some(member) = self.members.get(&id) else { return };
        if member.in_lobby {
            return;
        }
        let account = member.caller.account;
        tracing::info!(participant = id.0, caller_account = %account, chars = text.chars().count(), "in-call message");
        self.effects.push_back(Effect::Event(RoomEvent::Chat { participant: id, account, text }));
    }

    // ---- from the operator and moderators ----

    /// Carries out an action. A participant named by id must be in the room; orders about
    /// an account that is not in are no-ops, as in Jami.
    pub fn act(&mut self, action: Action) -> Result<(), ActionError> {
        let targets = |core: &Self, who: &Who| {
            let ids = core.targets(who);
            if ids.is_empty() && matches!(who, Who::Participant(_)) {
                Err(ActionError::NoSuchParticipant)
            } else {
                Ok(ids)
            }
        };
        match action {
            Action::SetLayout(number) => {
                let layout = Layout::from_number(number).ok_or(ActionError::NoSuchLayout)?;
                self.layout = layout;
                self.effects.push_back(Effect::Mix(Command::SetLayout(layout)));
                self.layout_changed();
            }
            Action::SetActive(who) => {
                let id = match who {
                    Some(who) => targets(self, &who)?.first().copied(),
                    None => None,
                };
                self.set_active(id);
            }
            Action::MuteAudio { who, muted } => {
                for id in targets(self, &who)? {
                    self.force_mute(id, muted);
                }
            }
            Action::MuteAll => {
                let ids: Vec<_> = self
                    .members
                    .iter()
                    .filter(|(_, member)| !member.moderator)
                    .map(|(id, _)| *id)
                    .collect();
                for id in ids {
                    self.force_mute(id, true);
                }
            }
            Action::MuteVideo { who, muted } => {
                for id in targets(self, &who)? {
                    self.mute_video(id, muted);
                }
            }
            Action::Hangup(who) => {
                for id in targets(self, &who)? {
                    self.effects
                        .push_back(Effect::Call { participant: id, order: CallOrder::Hangup });
                }
            }
            Action::RaiseHand { who, raised } => {
                for id in targets(self, &who)? {
                    if let Some(member) = self.members.get_mut(&id)
                        && member.hand_raised != raised
                    {
                        member.hand_raised = raised;
                        self.effects.push_back(Effect::Event(RoomEvent::HandRaised {
                            participant: id,
                            raised,
                        }));
                    }
                }
            }
            Action::Admit(who) => {
                for id in targets(self, &who)? {
                    self.admit_from_lobby(id);
                }
            }
            Action::SetModerator { who, moderator } => {
                for id in targets(self, &who)? {
                    if let Some(member) = self.members.get_mut(&id) {
                        member.moderator = moderator;
                    }
                }
            }
            Action::Chat(text) => {
                let ids: Vec<_> =
                    self.members.iter().filter(|(_, m)| !m.in_lobby).map(|(id, _)| *id).collect();
                for id in ids {
                    let order = CallOrder::Chat(text.clone());
                    self.effects.push_back(Effect::Call { participant: id, order });
                }
            }
        }
        self.pacer.changed();
        Ok(())
    }

    /// The participants an action is about.
    fn targets(&self, who: &Who) -> Vec<ParticipantId> {
        match who {
            Who::Participant(id) => {
                self.members.contains_key(id).then_some(*id).into_iter().collect()
            }
            Who::Account(target) => self
                .members
                .iter()
                .filter(|(_, member)| {
                    member.caller.account == target.account
                        && target
                            .device
                            .as_ref()
                            .is_none_or(|device| *device == member.caller.device.to_string())
                })
                .map(|(id, _)| *id)
                .collect(),
        }
    }

    fn set_active(&mut self, id: Option<ParticipantId>) {
        self.active = id;
        self.effects.push_back(Effect::Mix(Command::SetActive(id)));
        self.layout_changed();
        self.pacer.changed();
    }

    fn layout_changed(&mut self) {
        self.effects.push_back(Effect::Event(RoomEvent::LayoutChanged {
            layout: self.layout.number(),
            active: self.active,
        }));
    }

    fn force_mute(&mut self, id: ParticipantId, muted: bool) {
        let Some(member) = self.members.get_mut(&id) else { return };
        member.moderator_muted = muted;
        self.sync_mix(id);
        self.effects.push_back(Effect::Event(RoomEvent::Muted {
            participant: id,
            audio: true,
            muted,
            by_moderator: true,
        }));
    }

    fn mute_video(&mut self, id: ParticipantId, muted: bool) {
        let Some(member) = self.members.get_mut(&id) else { return };
        member.video_moderator_muted = muted;
        self.sync_mix(id);
        self.effects.push_back(Effect::Event(RoomEvent::Muted {
            participant: id,
            audio: false,
            muted,
            by_moderator: true,
        }));
    }

    /// Lets a participant in from the lobby: heard (unless force-muted), hearing, shown.
    fn admit_from_lobby(&mut self, id: ParticipantId) {
        let Some(member) = self.members.get_mut(&id).filter(|member| member.in_lobby) else {
            return;
        };
        member.in_lobby = false;
        tracing::info!(participant = id.0, caller_account = %member.caller.account, "admitted from the lobby");
        self.sync_mix(id);
        self.effects.push_back(Effect::Event(RoomEvent::Admitted { participant: id }));
        self.pacer.changed();
    }

    /// Tells the mixer what participant `id`'s state means for it: heard or not, hearing or
    /// not, and its picture.
    fn sync_mix(&mut self, id: ParticipantId) {
        let Some(member) = self.members.get(&id) else { return };
        let gain_db = if member.hears() { 0.0 } else { SILENT_GAIN_DB };
        self.effects.extend([
            Effect::Mix(Command::SetMuted { participant: id, muted: !member.heard() }),
            Effect::Mix(Command::SetGain { participant: id, gain_db }),
            Effect::Mix(Command::SetVideo { participant: id, video: member.video_input() }),
        ]);
    }

    // ---- from the mixer and the owner ----

    /// The mixer (re)started: the conference starts with the policy's layout and nobody big.
    pub fn mixer_started(&mut self) {
        self.layout = mixer_layout(self.policy.layout);
        self.active = None;
        self.view = MixView::default();
        self.effects.push_back(Effect::Mix(Command::SetLayout(self.layout)));
    }

    /// The room records (or stops): every participant is told.
    pub fn set_recording(&mut self, recording: bool) {
        if self.recording != recording {
            self.recording = recording;
            self.pacer.changed();
        }
    }

    /// Takes in the mixer's view of the conference: tiles and voice activity (other outputs
    /// are the owner's business).
    pub fn handle_mixer_output(&mut self, output: &Output, now: Instant) {
        match output {
            Output::VideoEvent(VideoEvent::TilesChanged(tiles)) => {
                let tiles: BTreeMap<ParticipantId, ParticipantTile> =
                    tiles.iter().map(|tile| (tile.participant, *tile)).collect();
                let members_of = |tiles: &BTreeMap<ParticipantId, ParticipantTile>| {
                    tiles
                        .iter()
                        .filter(|(id, _)| self.members.contains_key(id))
                        .map(|(_, tile)| *tile)
                        .collect::<Vec<_>>()
                };
                if members_of(&self.view.tiles) != members_of(&tiles) {
                    self.pacer.changed();
                }
                self.view.tiles = tiles;
            }
            Output::AudioEvent(AudioEvent::VoiceActivity { participant, active }) => {
                let id = *participant;
                let audible = self.members.get(&id).is_none_or(Member::heard);
                let active = *active && audible;
                let changed = if active {
                    self.view.speaking.insert(id)
                } else {
                    self.view.speaking.remove(&id)
                };
                if !changed {
                    return;
                }
                self.speakers.voice(id, active, now);
                self.effects.push_back(Effect::Event(RoomEvent::VoiceActivity {
                    participant: id,
                    speaking: active,
                }));
                if self.members.contains_key(&id) {
                    self.pacer.changed();
                }
            }
            _ => {}
        }
    }

    /// When [`ConferenceCore::handle_timeout`] wants to run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.pacer.poll_timeout(), self.speakers.poll_timeout()].into_iter().flatten().min()
    }

    /// Time passed: the big tile may follow the speaker, and confInfo may be due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(speaker) = self.speakers.poll(now)
            && self.policy.active_speaker
            && self.members.get(&speaker).is_some_and(|member| !member.in_lobby)
            && self.active != Some(speaker)
        {
            tracing::info!(participant = speaker.0, "the big tile follows the speaker");
            self.set_active(Some(speaker));
        }
        if self.pacer.poll_due(now) {
            self.send_conf_info();
        }
    }

    /// The next thing to carry out.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    fn has_picture(&self, id: ParticipantId) -> bool {
        self.view.tiles.get(&id).is_some_and(|tile| tile.has_video)
    }

    /// Every member (lobby included: it sees who is in) gets the confInfo of the room now:
    /// everyone but the lobby, in joining order; a held participant shows without picture.
    fn send_conf_info(&mut self) {
        let entries: Vec<ConfInfoEntry> = self
            .members
            .iter()
            .filter(|(_, member)| !member.in_lobby)
            .map(|(id, member)| {
                let tile = self.view.tiles.get(id);
                let rect = tile.map(|tile| tile.rect).unwrap_or_default();
                let stream = if member.media.video.is_some() { "video" } else { "audio" };
                ConfInfoEntry {
                    uri: format!("{}@ring.dht", member.caller.account),
                    device: member.caller.device.to_string(),
                    sink_id: format!("{}_{stream}_0", member.call_id),
                    active: self.active == Some(*id),
                    x: rect.x,
                    y: rect.y,
                    w: rect.w,
                    h: rect.h,
                    video_muted: member.media.held || !self.has_picture(*id),
                    audio_local_muted: member.local_muted || member.media.held,
                    audio_moderator_muted: member.moderator_muted,
                    is_moderator: member.moderator,
                    hand_raised: member.hand_raised,
                    voice_activity: self.view.speaking.contains(id),
                    recording: self.recording,
                }
            })
            .collect();
        let body = conf_info::conf_info(&entries, self.size.0, self.size.1, self.layout.number());
        tracing::debug!(recipients = self.members.len(), bytes = body.len(), "confInfo sent");
        let ids: Vec<ParticipantId> = self.members.keys().copied().collect();
        for id in ids {
            let order = CallOrder::ConfInfo(body.clone());
            self.effects.push_back(Effect::Call { participant: id, order });
        }
    }
}

/// The mixer's layout for the stored one.
fn mixer_layout(layout: crate::room::Layout) -> Layout {
    match layout {
        crate::room::Layout::Grid => Layout::Grid,
        crate::room::Layout::OneBigWithSmall => Layout::OneBigWithSmall,
        crate::room::Layout::OneBig => Layout::OneBig,
    }
}
