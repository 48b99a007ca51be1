//! The room's rules in virtual time: every input is a method call with `now`, every output an
//! effect. The hostile sequences of review H1 and H2 are here, each as a test.

use std::time::{Duration, Instant, SystemTime};

use rdv_mixer::audio::ParticipantId;
use rdv_mixer::engine::AudioEvent;
use rdv_mixer::layout::Layout;
use rdv_mixer::media_room::{Command, Output};
use rdv_mixer::video::VideoCodec;

use super::*;
use crate::conference::order::{Order, Target};

const SIZE: (i32, i32) = (1280, 720);

fn account(n: u8) -> AccountId {
    AccountId::from_bytes([n; 20])
}

fn device(n: u8) -> DeviceLongId {
    DeviceLongId::from_bytes([n; 32])
}

fn call(text: &str) -> CallId {
    CallId::parse(text.as_bytes()).expect("a valid Call-ID")
}

const AUDIO: MediaShape = MediaShape { video: None, sends_video: false, held: false };
const VIDEO: MediaShape =
    MediaShape { video: Some(VideoCodec::H264), sends_video: true, held: false };
/// Jami's hold of a video call: audio `sendrecv`, video `sendonly`.
const VIDEO_HELD: MediaShape =
    MediaShape { video: Some(VideoCodec::H264), sends_video: true, held: true };

/// A room in virtual time, with what its core said so far.
struct Room {
    core: ConferenceCore,
    now: Instant,
    effects: Vec<Effect>,
}

impl Room {
    fn new(policy: RoomPolicy, roles: Roles) -> Self {
        Self {
            core: ConferenceCore::new(policy, roles, SIZE),
            now: Instant::now(),
            effects: Vec::new(),
        }
    }

    fn open() -> Self {
        Self::new(RoomPolicy::default(), Roles::new())
    }

    /// Runs the core's timers up to `now + by`, collecting effects.
    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some(at) = self.core.poll_timeout().filter(|at| *at <= until) {
            self.now = self.now.max(at);
            self.core.handle_timeout(self.now);
            self.collect();
        }
        self.now = until;
        self.core.handle_timeout(self.now);
        self.collect();
    }

    fn collect(&mut self) {
        while let Some(effect) = self.core.poll_effect() {
            self.effects.push(effect);
        }
    }

    /// Takes the effects said since the last call.
    fn take(&mut self) -> Vec<Effect> {
        self.collect();
        std::mem::take(&mut self.effects)
    }

    fn join_as(
        &mut self,
        who: u8,
        call_id: &str,
        media: MediaShape,
    ) -> Result<ParticipantId, JoinError> {
        let request = JoinRequest {
            caller: Caller { account: account(who), device: device(who) },
            call_id: call(call_id),
            media,
            codecs: "opus/48000".into(),
            joined_at: SystemTime::UNIX_EPOCH,
        };
        let joined = self.core.join(request, self.now).map(|(id, _)| id);
        self.collect();
        joined
    }

    fn join(&mut self, who: u8, media: MediaShape) -> ParticipantId {
        self.join_as(who, &format!("call-{who}"), media).expect("joins")
    }

    /// The mixer's state for `id` after the effects said so far: (heard, hears, video).
    fn mix_state(&mut self, id: ParticipantId) -> (bool, bool, Option<VideoCodec>) {
        self.collect();
        let mut state = (false, false, None);
        for effect in &self.effects {
            match effect {
                Effect::Mix(Command::SetMuted { participant, muted }) if *participant == id => {
                    state.0 = !muted;
                }
                Effect::Mix(Command::SetGain { participant, gain_db }) if *participant == id => {
                    state.1 = *gain_db > -60.0;
                }
                Effect::Mix(Command::SetVideo { participant, video }) if *participant == id => {
                    state.2 = *video;
                }
                _ => {}
            }
        }
        state
    }

    fn view(&self, id: ParticipantId) -> ParticipantView {
        self.core.snapshot().participants.into_iter().find(|p| p.id == id).expect("in the room")
    }

    /// The last confInfo sent to `id`, as JSON.
    fn last_conf_info(&mut self, id: ParticipantId) -> Option<serde_json::Value> {
        self.collect();
        self.effects.iter().rev().find_map(|effect| match effect {
            Effect::Call { participant, order: CallOrder::ConfInfo(body) }
                if *participant == id =>
            {
                serde_json::from_str(body).ok()
            }
            _ => None,
        })
    }

    fn events(&mut self) -> Vec<&RoomEvent> {
        self.collect();
        self.effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::Event(event) => Some(event),
                _ => None,
            })
            .collect()
    }

    fn hangups(&mut self) -> Vec<ParticipantId> {
        self.collect();
        self.effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::Call { participant, order: CallOrder::Hangup } => Some(*participant),
                _ => None,
            })
            .collect()
    }
}

fn moderator_roles(who: u8) -> Roles {
    Roles::from([(account(who), vec![AccountRole::Moderator])])
}

fn target(who: u8) -> Target {
    Target { account: account(who), device: None }
}

fn mute(who: u8) -> Order {
    Order::MuteAudio { target: target(who), muted: true }
}

// ---- participants by handle (H1) ----

#[test]
fn a_call_id_already_in_the_room_is_refused_and_free_again_once_its_call_leaves() {
    let mut room = Room::new(RoomPolicy::default(), moderator_roles(1));
    let moderator = room.join_as(1, "shared-id", AUDIO).unwrap();
    assert_eq!(room.join_as(2, "shared-id", AUDIO), Err(JoinError::CallIdInUse));
    // The same caller on a second link cannot reuse it either.
    assert_eq!(room.join_as(1, "shared-id", AUDIO), Err(JoinError::CallIdInUse));
    assert_eq!(room.core.len(), 1);
    room.core.leave(moderator, room.now);
    assert!(room.join_as(2, "shared-id", AUDIO).is_ok());
}

#[test]
fn orders_chat_and_mutes_act_as_the_handle_that_sent_them() {
    let mut room = Room::new(RoomPolicy::default(), moderator_roles(1));
    let moderator = room.join_as(1, "moderator-call", AUDIO).unwrap();
    let attacker = room.join_as(2, "attacker-call", AUDIO).unwrap();
    // The attacker learns the moderator's Call-ID from confInfo, but a second call with it
    // is refused: nothing it sends can reach the room as the moderator.
    assert_eq!(room.join_as(2, "moderator-call", AUDIO), Err(JoinError::CallIdInUse));
    room.take();
    room.core.orders(attacker, vec![mute(1), Order::Hangup(target(1)), Order::Layout(2)]);
    room.core.chat(attacker, "hello".into());
    room.core.local_mute(attacker, true);
    let effects = room.take();
    assert!(room.hangups().is_empty());
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Mix(Command::SetMuted { muted: true, .. })))
    );
    assert_eq!(room.core.layout(), Layout::Grid);
    let chat = effects.iter().find_map(|e| match e {
        Effect::Event(RoomEvent::Chat { participant, account, .. }) => {
            Some((*participant, *account))
        }
        _ => None,
    });
    assert_eq!(chat, Some((attacker, account(2))));
    assert!(room.view(attacker).audio_local_muted);
    assert!(!room.view(moderator).audio_local_muted);
    // The moderator's own orders work.
    room.core.orders(moderator, vec![mute(2)]);
    room.take();
    assert!(room.view(attacker).audio_moderator_muted);
}

#[test]
fn inputs_about_a_participant_that_left_do_nothing() {
    let mut room = Room::new(RoomPolicy::default(), moderator_roles(1));
    let gone = room.join(1, AUDIO);
    let other = room.join(2, AUDIO);
    room.core.leave(gone, room.now);
    room.take();
    room.core.orders(gone, vec![Order::Hangup(target(2))]);
    room.core.chat(gone, "ghost".into());
    room.core.local_mute(gone, true);
    assert_eq!(room.core.renegotiate(gone, AUDIO, room.now), Ok(()));
    assert!(room.take().is_empty());
    assert!(room.core.contains(other));
}

// ---- re-INVITEs keep the participant (H2) ----

#[test]
fn hold_and_resume_keep_a_force_mute() {
    let mut room = Room::new(RoomPolicy::default(), moderator_roles(1));
    let moderator = room.join(1, VIDEO);
    let carol = room.join(3, VIDEO);
    room.core.orders(moderator, vec![mute(3)]);
    room.core.act(Action::RaiseHand { who: Who::Participant(carol), raised: true }).unwrap();
    room.take();
    assert_eq!(room.core.renegotiate(carol, VIDEO_HELD, room.now), Ok(()));
    assert_eq!(room.core.renegotiate(carol, VIDEO, room.now), Ok(()));
    let events = room.take();
    let view = room.view(carol);
    assert!(view.audio_moderator_muted && view.hand_raised && !view.on_hold);
    assert!(!room.mix_state_of(&events, carol).0, "still unheard after resume");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Effect::Event(RoomEvent::Joined { .. } | RoomEvent::Left { .. })))
    );
    assert_eq!(room.core.len(), 2);
}

#[test]
fn hold_and_resume_keep_a_caller_in_the_lobby() {
    let policy = RoomPolicy { lobby: true, ..RoomPolicy::default() };
    let mut room = Room::new(policy, moderator_roles(1));
    let _moderator = room.join(1, VIDEO);
    let dave = room.join(4, VIDEO);
    assert!(room.view(dave).in_lobby);
    for media in [VIDEO_HELD, VIDEO, AUDIO, VIDEO] {
        assert_eq!(room.core.renegotiate(dave, media, room.now), Ok(()));
    }
    assert!(room.view(dave).in_lobby);
    assert_eq!(room.mix_state(dave), (false, false, None), "unheard, deaf and unseen");
    room.advance(Duration::from_secs(1));
    let info = room.last_conf_info(dave).expect("the lobby sees who is in");
    let listed = info["p"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "the lobby is not shown: {info}");
    // It orders and says nothing while it waits.
    room.take();
    room.core.orders(dave, vec![Order::RaiseHand { target: target(4), raised: true }]);
    room.core.chat(dave, "let me in".into());
    assert!(room.take().is_empty());
}

#[test]
fn a_caller_banned_during_its_call_is_hung_up_and_its_next_offer_refused() {
    let mut room = Room::open();
    let eve = room.join(5, AUDIO);
    room.take();
    room.core.set_roles(Roles::from([(account(5), vec![AccountRole::Banned])]));
    assert_eq!(room.hangups(), vec![eve]);
    assert_eq!(room.core.renegotiate(eve, AUDIO, room.now), Err(Refusal::Banned));
    assert_eq!(room.core.admit(account(5)), Err(Refusal::Banned));
}

#[test]
fn a_withdrawn_moderator_stays_withdrawn_through_hold_and_resume() {
    let mut room = Room::new(RoomPolicy::default(), moderator_roles(1));
    let former = room.join(1, AUDIO);
    let other = room.join(2, AUDIO);
    assert!(room.view(former).moderator);
    room.core.set_roles(Roles::new());
    assert!(!room.view(former).moderator);
    room.core.renegotiate(former, AUDIO, room.now).unwrap();
    assert!(!room.view(former).moderator);
    room.take();
    room.core.orders(former, vec![mute(2)]);
    room.take();
    assert!(!room.view(other).audio_moderator_muted);
}

#[test]
fn locking_or_filling_the_room_keeps_those_already_in_through_their_re_invites() {
    let mut room = Room::open();
    let first = room.join(1, AUDIO);
    let second = room.join(2, AUDIO);
    room.core.set_policy(RoomPolicy {
        locked: true,
        max_participants: std::num::NonZeroU32::new(1),
        ..RoomPolicy::default()
    });
    assert!(room.hangups().is_empty());
    for id in [first, second] {
        assert_eq!(room.core.renegotiate(id, VIDEO_HELD, room.now), Ok(()));
        assert_eq!(room.core.renegotiate(id, AUDIO, room.now), Ok(()));
    }
    assert_eq!(room.join_as(3, "new", AUDIO), Err(JoinError::Refused(Refusal::Locked)));
    assert_eq!(room.core.len(), 2);
}

// ---- hold ----

#[test]
fn a_held_participant_stays_out_of_the_mix_and_comes_back_on_resume() {
    let mut room = Room::open();
    let alice = room.join(1, VIDEO);
    let bob = room.join(2, VIDEO);
    room.take();
    room.core.renegotiate(bob, VIDEO_HELD, room.now).unwrap();
    room.advance(Duration::from_secs(1));
    assert_eq!(room.mix_state(bob), (false, false, None));
    assert!(room.view(bob).on_hold);
    let info = room.last_conf_info(alice).unwrap();
    let bob_entry = &info["p"][1];
    assert_eq!(bob_entry["sinkId"], "call-2_video_0");
    assert_eq!(bob_entry["videoMuted"], true);
    assert!(room.events().contains(&&RoomEvent::Held { participant: bob, held: true }));
    room.take();
    room.core.renegotiate(bob, VIDEO, room.now).unwrap();
    assert_eq!(room.mix_state(bob), (true, true, Some(VideoCodec::H264)));
    assert!(room.events().contains(&&RoomEvent::Held { participant: bob, held: false }));
    assert_eq!(room.view(bob).id, bob);
}

#[test]
fn video_on_and_off_change_only_the_picture() {
    let mut room = Room::open();
    let alice = room.join(1, AUDIO);
    room.core.act(Action::RaiseHand { who: Who::Participant(alice), raised: true }).unwrap();
    room.take();
    room.core.renegotiate(alice, VIDEO, room.now).unwrap();
    assert_eq!(room.mix_state(alice), (true, true, Some(VideoCodec::H264)));
    room.take();
    let off = MediaShape { sends_video: false, ..VIDEO };
    room.core.renegotiate(alice, off, room.now).unwrap();
    assert_eq!(room.mix_state(alice), (true, true, None));
    assert!(room.view(alice).hand_raised);
    assert!(!room.view(alice).on_hold);
}

// ---- moderation ----

#[test]
fn only_moderators_order_others_and_anyone_raises_their_own_hand() {
    let mut room = Room::new(RoomPolicy::default(), moderator_roles(1));
    let moderator = room.join(1, AUDIO);
    let bob = room.join(2, AUDIO);
    let carol = room.join(3, AUDIO);
    room.core.orders(bob, vec![Order::RaiseHand { target: target(2), raised: true }]);
    room.core.orders(bob, vec![Order::RaiseHand { target: target(3), raised: true }]);
    assert!(room.view(bob).hand_raised);
    assert!(!room.view(carol).hand_raised);
    room.core.orders(moderator, vec![Order::RaiseHand { target: target(2), raised: false }]);
    assert!(!room.view(bob).hand_raised);
    room.core.orders(moderator, vec![Order::Layout(1), Order::Active(Some(target(3)))]);
    assert_eq!(room.core.layout(), Layout::OneBigWithSmall);
    assert!(room.view(carol).active);
    room.take();
    room.core.orders(moderator, vec![Order::Hangup(target(3))]);
    assert_eq!(room.hangups(), vec![carol]);
}

#[test]
fn mute_all_spares_moderators_and_video_mute_takes_the_picture() {
    let mut room = Room::new(RoomPolicy::default(), moderator_roles(1));
    let moderator = room.join(1, VIDEO);
    let bob = room.join(2, VIDEO);
    room.core.act(Action::MuteAll).unwrap();
    assert!(!room.view(moderator).audio_moderator_muted);
    assert!(room.view(bob).audio_moderator_muted);
    room.take();
    room.core.act(Action::MuteVideo { who: Who::Participant(bob), muted: true }).unwrap();
    assert_eq!(room.mix_state(bob), (false, true, None));
    room.take();
    room.core.act(Action::MuteVideo { who: Who::Participant(bob), muted: false }).unwrap();
    room.core.act(Action::MuteAudio { who: Who::Participant(bob), muted: false }).unwrap();
    assert_eq!(room.mix_state(bob), (true, true, Some(VideoCodec::H264)));
    assert_eq!(
        room.core.act(Action::Admit(Who::Participant(ParticipantId(999)))),
        Err(ActionError::NoSuchParticipant)
    );
    assert_eq!(room.core.act(Action::SetLayout(7)), Err(ActionError::NoSuchLayout));
}

#[test]
fn the_lobby_opens_on_admit_on_an_allow_role_or_when_the_policy_drops_it() {
    let policy = RoomPolicy { lobby: true, ..RoomPolicy::default() };
    let mut room = Room::new(policy.clone(), moderator_roles(1));
    let moderator = room.join(1, AUDIO);
    assert!(!room.view(moderator).in_lobby, "moderators skip the lobby");
    let (a, b, c) = (room.join(2, AUDIO), room.join(3, AUDIO), room.join(4, AUDIO));
    room.core.act(Action::Admit(Who::Participant(a))).unwrap();
    let mut roles = moderator_roles(1);
    roles.insert(account(3), vec![AccountRole::Allowed]);
    room.core.set_roles(roles);
    assert!(!room.view(a).in_lobby && !room.view(b).in_lobby && room.view(c).in_lobby);
    room.core.set_policy(RoomPolicy { lobby: false, ..policy });
    assert!(!room.view(c).in_lobby);
    room.take();
    room.core.act(Action::Admit(Who::Participant(c))).unwrap();
    assert!(!room.take().iter().any(|e| matches!(e, Effect::Event(RoomEvent::Admitted { .. }))));
}

#[test]
fn a_force_mute_set_in_the_lobby_holds_once_admitted() {
    let policy = RoomPolicy { lobby: true, ..RoomPolicy::default() };
    let mut room = Room::new(policy, Roles::new());
    let dave = room.join(4, AUDIO);
    room.core.act(Action::MuteAudio { who: Who::Participant(dave), muted: true }).unwrap();
    room.core.act(Action::Admit(Who::Participant(dave))).unwrap();
    assert_eq!(room.mix_state(dave), (false, true, None));
}

#[test]
fn the_big_tile_follows_a_steady_speaker_only_when_the_policy_says_so() {
    for follows in [false, true] {
        let policy = RoomPolicy { active_speaker: follows, ..RoomPolicy::default() };
        let mut room = Room::new(policy, Roles::new());
        let _alice = room.join(1, AUDIO);
        let bob = room.join(2, AUDIO);
        let voice =
            Output::AudioEvent(AudioEvent::VoiceActivity { participant: bob, active: true });
        room.core.handle_mixer_output(&voice, room.now);
        room.advance(Duration::from_secs(5));
        assert_eq!(room.view(bob).active, follows);
    }
}

#[test]
fn a_flood_of_voice_activity_flips_sends_paced_conf_info() {
    let mut room = Room::open();
    let ids: Vec<_> = (1..=3).map(|n| room.join(n, AUDIO)).collect();
    room.advance(Duration::from_secs(2));
    room.take();
    for flip in 0..10_000u32 {
        let active = flip % 2 == 0;
        let output = Output::AudioEvent(AudioEvent::VoiceActivity { participant: ids[1], active });
        room.core.handle_mixer_output(&output, room.now);
        room.advance(Duration::from_micros(100));
    }
    let effects = room.take();
    let sent = effects
        .iter()
        .filter(|e| {
            matches!(e, Effect::Call { participant, order: CallOrder::ConfInfo(_) } if *participant == ids[0])
        })
        .count();
    // One virtual second of flips: at most one confInfo per 250 ms, and at least one.
    assert!((1..=5).contains(&sent), "{sent} confInfo messages");
    // Voice activity of a force-muted participant is not shown.
    room.core.act(Action::MuteAudio { who: Who::Participant(ids[2]), muted: true }).unwrap();
    room.take();
    let output =
        Output::AudioEvent(AudioEvent::VoiceActivity { participant: ids[2], active: true });
    room.core.handle_mixer_output(&output, room.now);
    assert!(!room.view(ids[2]).voice_activity);
}

#[test]
fn a_hundred_joins_and_leaves_leave_an_empty_room_with_unique_ids() {
    let mut room = Room::open();
    let mut seen = HashSet::new();
    let mut present = Vec::new();
    for round in 0..100u32 {
        let who = (round % 50) as u8 + 1;
        let id = room.join_as(who, &format!("c{round}"), AUDIO).unwrap();
        assert!(seen.insert(id), "id {id:?} issued twice");
        present.push(id);
        if round % 3 == 2 {
            let leaving = present.remove(0);
            room.core.leave(leaving, room.now);
        }
        room.advance(Duration::from_millis(10));
    }
    assert_eq!(room.core.len(), present.len());
    room.advance(Duration::from_secs(1));
    let info = room.last_conf_info(present[0]).unwrap();
    assert_eq!(info["p"].as_array().unwrap().len(), present.len());
    for id in present.drain(..) {
        room.core.leave(id, room.now);
    }
    assert!(room.core.is_empty());
    assert_eq!(room.join_as(1, "c0", AUDIO).map(|_| ()), Ok(()), "every Call-ID is free again");
    let events = room.take();
    let joins =
        events.iter().filter(|e| matches!(e, Effect::Event(RoomEvent::Joined { .. }))).count();
    let leaves =
        events.iter().filter(|e| matches!(e, Effect::Event(RoomEvent::Left { .. }))).count();
    assert_eq!((joins, leaves), (101, 100));
}

#[test]
fn admission_follows_bans_locks_caps_and_allow_lists() {
    let mut room = Room::new(RoomPolicy::default(), moderator_roles(1));
    room.core.set_policy(RoomPolicy {
        admission: crate::room::Admission::AllowList,
        ..RoomPolicy::default()
    });
    assert_eq!(room.core.admit(account(2)), Err(Refusal::NotAllowed));
    assert_eq!(room.core.admit(account(1)), Ok(Admission { moderator: true, lobby: false }));
    room.core.set_policy(RoomPolicy {
        max_participants: std::num::NonZeroU32::new(1),
        ..RoomPolicy::default()
    });
    room.join(2, AUDIO);
    assert_eq!(room.join_as(3, "x", AUDIO), Err(JoinError::Refused(Refusal::Full)));
    assert!(room.join_as(1, "y", AUDIO).is_ok(), "moderators get into a full room");
}

impl Room {
    /// The mixer's state for `id` after `effects` only.
    fn mix_state_of(
        &self,
        effects: &[Effect],
        id: ParticipantId,
    ) -> (bool, bool, Option<VideoCodec>) {
        let mut room = Room::open();
        room.effects = effects.to_vec();
        room.mix_state(id)
    }
}

#[test]
fn an_oversized_role_list_is_cut_to_its_bound() {
    let mut room = Room::open();
    let roles: Roles = (0..MAX_ROLES as u64 + 5)
        .map(|n| {
            let mut bytes = [0u8; 20];
            bytes[..8].copy_from_slice(&n.to_be_bytes());
            (AccountId::from_bytes(bytes), vec![AccountRole::Allowed])
        })
        .collect();
    room.core.set_roles(roles);
    assert_eq!(room.core.roles.len(), MAX_ROLES);
}
