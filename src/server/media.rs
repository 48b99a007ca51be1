//! A room's mixer and the routes of its output to the calls. The mixer (`rdv-mixer`'s
//! [`MediaRoom`], on a thread of its own) starts with the first participant and stops with
//! the last; a router task hands each encoded packet to the calls of its listeners.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdv_mixer::audio::ParticipantId;
use rdv_mixer::audio_room::AudioRoomConfig;
use rdv_mixer::engine::AudioEvent;
use rdv_mixer::layout::Layout;
use rdv_mixer::media_room::{Command, MediaRoom, Output};
use rdv_mixer::video::{EncodedVideo, ParticipantTile, VideoCodec, VideoConfig, VideoEvent};
use tokio::sync::mpsc;
use tracing::{debug, info, trace, warn};

use super::call::CallEvent;
use crate::conference::info::{self as conf_info, Pacer, ParticipantInfo};
use crate::conference::order::{Order, Target};
use crate::conference::speaker::{Hysteresis, SpeakerPicker};
use crate::room::RoomName;

/// What a participant in the lobby hears of the room: nothing.
const LOBBY_GAIN_DB: f32 = -120.0;
/// Fewest time between two confInfo messages to a participant.
const CONF_INFO_INTERVAL: Duration = Duration::from_millis(250);
/// A newcomer gets the confInfo again this long after it joined: jamid 13.7 can lose the
/// first one while it merges its call (interop/README.md §5.8).
const CONF_INFO_RESEND: Duration = Duration::from_millis(1500);

/// Packets queued per participant before the slowest are dropped (about 1 s of audio).
const OUTGOING_QUEUE: usize = 64;
/// Composite frames queued per participant (about 1 s); a call that falls further behind
/// loses frames and is sent a keyframe once it catches up.
const VIDEO_QUEUE: usize = 30;

/// An encoded packet for one participant.
#[derive(Debug, Clone)]
pub(super) enum Outgoing {
    /// 20 ms of the participant's mix-minus, for mix frame `index`.
    Audio {
        /// Mix frame index (RTP timestamp / 960).
        index: u64,
        /// The Opus packet.
        payload: Vec<u8>,
    },
}

/// How a room's composite is made.
pub(super) fn video_config() -> VideoConfig {
    VideoConfig::default()
}

/// Where a participant's share of the mixer's output goes.
struct Route {
    audio: mpsc::Sender<Outgoing>,
    video: Option<VideoRoute>,
}

struct VideoRoute {
    codec: VideoCodec,
    frames: mpsc::Sender<Arc<EncodedVideo>>,
    /// The mixer asks for a keyframe of this participant's video.
    keyframes: mpsc::Sender<()>,
    /// A frame was dropped: the next ones are useless until a keyframe.
    broken: bool,
}

type Routes = Arc<Mutex<HashMap<ParticipantId, Route>>>;

/// A call's video in the mix: the codec it sends and receives.
pub(super) struct VideoJoin {
    /// H.264 or VP8, both ways.
    pub(super) codec: VideoCodec,
    /// Whether the caller sends video (its offer is `sendrecv` or `sendonly`).
    pub(super) sends: bool,
}

/// Who is in the room: for the logs and the participants' confInfo.
#[derive(Debug, Clone)]
pub(super) struct Member {
    /// The caller's account.
    pub(super) caller: crate::identity::AccountId,
    /// The calling device's id.
    pub(super) device: String,
    /// The caller is a moderator of the room.
    pub(super) moderator: bool,
    /// The call.
    pub(super) call_id: String,
    /// Negotiated codecs, e.g. `opus/48000/2 + H264/90000`.
    pub(super) codecs: String,
    /// The call has a video stream.
    pub(super) video: bool,
    /// Where the call's confInfo goes: the link that carries its dialog.
    pub(super) events: mpsc::Sender<CallEvent>,
    /// It joins in the lobby: neither heard nor shown, hearing nothing.
    pub(super) lobby: bool,
}

/// A member and what the room knows of it besides the mix.
struct MemberState {
    member: Member,
    since: std::time::Instant,
    /// It muted its own microphone (INFO mute_state).
    local_muted: bool,
    /// A moderator muted it.
    moderator_muted: bool,
    /// Its hand is raised.
    hand_raised: bool,
    /// It waits in the lobby.
    in_lobby: bool,
}

struct Active {
    mixer: Arc<MediaRoom>,
    routes: Routes,
    router: tokio::task::JoinHandle<()>,
}

/// A room's media, shared by its calls.
pub(super) struct RoomMedia {
    room: RoomName,
    active: tokio::sync::Mutex<Option<Active>>,
    next_id: std::sync::atomic::AtomicU64,
    members: Mutex<HashMap<ParticipantId, MemberState>>,
    /// Wakes the router when the members change.
    members_changed: Arc<tokio::sync::Notify>,
    /// The composite's layout and the participant shown big.
    layout: Mutex<(Layout, Option<ParticipantId>)>,
    /// The room's policy as of the last admission: the layout a new mixer starts with, and
    /// whether the big tile follows the speakers.
    policy: Mutex<(Layout, bool)>,
}

/// A call's place in the mix; leaving the mix when dropped.
pub(super) struct Participant {
    pub(super) id: ParticipantId,
    pub(super) mixer: Arc<MediaRoom>,
    /// Its mix-minus (taken by the audio stream).
    pub(super) outgoing: Option<mpsc::Receiver<Outgoing>>,
    /// The composite, when it has video (taken by the video stream).
    pub(super) video: Option<mpsc::Receiver<Arc<EncodedVideo>>>,
    /// The mixer's keyframe requests for its video (taken by the video stream).
    pub(super) keyframes: Option<mpsc::Receiver<()>>,
    owner: Arc<RoomMedia>,
}

impl RoomMedia {
    pub(super) fn new(room: RoomName) -> Arc<Self> {
        Arc::new(Self {
            room,
            active: tokio::sync::Mutex::new(None),
            next_id: std::sync::atomic::AtomicU64::new(1),
            members: Mutex::new(HashMap::new()),
            members_changed: Arc::new(tokio::sync::Notify::new()),
            layout: Mutex::new((Layout::Grid, None)),
            policy: Mutex::new((Layout::Grid, false)),
        })
    }

    /// Adds a participant, with video if `video` says so, starting the mixer if it is the
    /// first.
    pub(super) async fn join(
        self: &Arc<Self>,
        member: Member,
        video: Option<VideoJoin>,
    ) -> Result<Participant, String> {
        let mut active = self.active.lock().await;
        if active.is_none() {
            // Starting GStreamer pipelines blocks: off the async executor.
            let started = tokio::task::spawn_blocking(|| {
                MediaRoom::spawn(AudioRoomConfig::default(), video_config())
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            let (mixer, outputs) = started;
            let routes: Routes = Arc::default();
            let mixer = Arc::new(mixer);
            let router = tokio::spawn(route(
                outputs,
                Arc::clone(&routes),
                Arc::downgrade(&mixer),
                Arc::downgrade(self),
                self.room.clone(),
            ));
            let (layout, _) =
                *self.policy.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            *self.layout.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = (layout, None);
            let _ = mixer.send(Command::SetLayout(layout));
            info!(room = %self.room, ?layout, "mixer started");
            *active = Some(Active { mixer, routes, router });
        }
        let Some(running) = active.as_ref() else { return Err("no mixer".into()) };
        let id = ParticipantId(self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let (sender, outgoing) = mpsc::channel(OUTGOING_QUEUE);
        let (video_route, video_out, keyframes) = match &video {
            Some(join) => {
                let (frames, video_out) = mpsc::channel(VIDEO_QUEUE);
                let (keyframe_sender, keyframes) = mpsc::channel(1);
                let route = VideoRoute {
                    codec: join.codec,
                    frames,
                    keyframes: keyframe_sender,
                    broken: false,
                };
                (Some(route), Some(video_out), Some(keyframes))
            }
            None => (None, None, None),
        };
        running
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, Route { audio: sender, video: video_route });
        let input =
            video.as_ref().filter(|join| join.sends && !member.lobby).map(|join| join.codec);
        running
            .mixer
            .send(Command::Add { participant: id, video: input })
            .map_err(|e| e.to_string())?;
        if member.lobby {
            let _ = running.mixer.send(Command::SetMuted { participant: id, muted: true });
            let _ =
                running.mixer.send(Command::SetGain { participant: id, gain_db: LOBBY_GAIN_DB });
            info!(room = %self.room, participant = id.0, caller_account = %member.caller, "waiting in the lobby");
        }
        if let Some(join) = &video {
            // The newcomer's decoder starts at a keyframe.
            let _ = running.mixer.send(Command::RequestKeyframe(join.codec));
        }
        let count = {
            let mut members = self.members();
            let state = MemberState {
                member: member.clone(),
                since: std::time::Instant::now(),
                local_muted: false,
                moderator_muted: false,
                hand_raised: false,
                in_lobby: member.lobby,
            };
            members.insert(id, state);
            members.len()
        };
        self.members_changed.notify_one();
        info!(
            room = %self.room,
            participant = id.0,
            caller_account = %member.caller,
            call_id = %member.call_id,
            codecs = %member.codecs,
            participants = count,
            "participant joined"
        );
        Ok(Participant {
            id,
            mixer: Arc::clone(&running.mixer),
            outgoing: Some(outgoing),
            video: video_out,
            keyframes,
            owner: Arc::clone(self),
        })
    }

    fn members(&self) -> std::sync::MutexGuard<'_, HashMap<ParticipantId, MemberState>> {
        self.members.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a participant off the member list, at once: the room's head count is right
    /// before anything else happens.
    fn forget(&self, id: ParticipantId) {
        let (left, count) = {
            let mut members = self.members();
            (members.remove(&id), members.len())
        };
        if let Some(MemberState { member, since, .. }) = left {
            info!(
                room = %self.room,
                participant = id.0,
                caller_account = %member.caller,
                call_id = %member.call_id,
                seconds = since.elapsed().as_secs(),
                participants = count,
                "participant left"
            );
            self.members_changed.notify_one();
        }
    }

    /// Takes the room's policy as it stands: the layout of the next mixer, and whether the
    /// big tile follows the speakers.
    pub(super) fn apply_policy(&self, policy: &crate::room::RoomPolicy) {
        let layout = match policy.layout {
            crate::room::Layout::Grid => Layout::Grid,
            crate::room::Layout::OneBigWithSmall => Layout::OneBigWithSmall,
            crate::room::Layout::OneBig => Layout::OneBig,
        };
        *self.policy.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            (layout, policy.active_speaker);
    }

    fn active_speaker_mode(&self) -> bool {
        self.policy.lock().unwrap_or_else(std::sync::PoisonError::into_inner).1
    }

    /// Shows `participant` big (active-speaker mode).
    fn show_speaker(&self, mixer: &MediaRoom, participant: ParticipantId) {
        self.layout.lock().unwrap_or_else(std::sync::PoisonError::into_inner).1 = Some(participant);
        let _ = mixer.send(Command::SetActive(Some(participant)));
        info!(room = %self.room, participant = participant.0, "the big tile follows the speaker");
    }

    /// Lets a participant in from the lobby: heard, hearing, and shown with `video`.
    pub(super) async fn admit_from_lobby(&self, id: ParticipantId, video: Option<VideoCodec>) {
        let force_muted = {
            let mut members = self.members();
            let Some(state) = members.get_mut(&id) else { return };
            state.in_lobby = false;
            info!(room = %self.room, participant = id.0, caller_account = %state.member.caller, "admitted from the lobby");
            state.moderator_muted
        };
        if let Some(running) = self.active.lock().await.as_ref() {
            let _ = running.mixer.send(Command::SetMuted { participant: id, muted: force_muted });
            let _ = running.mixer.send(Command::SetGain { participant: id, gain_db: 0.0 });
            let _ = running.mixer.send(Command::SetVideo { participant: id, video });
        }
        self.members_changed.notify_one();
    }

    /// How many participants are in.
    pub(super) fn participant_count(&self) -> usize {
        self.members().len()
    }

    /// The caller of `call_id` muted or unmuted its own microphone.
    pub(super) fn set_local_muted(&self, call_id: &str, muted: bool) {
        let mut members = self.members();
        if let Some(state) = members.values_mut().find(|state| state.member.call_id == call_id) {
            state.local_muted = muted;
            self.members_changed.notify_one();
        }
    }

    /// Carries out the confOrder `orders` that came on call `call_id`: moderators may order
    /// anything; anyone may raise or lower their own hand. Refused orders are logged.
    pub(super) async fn apply_orders(self: Arc<Self>, call_id: String, orders: Vec<Order>) {
        let Some((sender, moderator)) = self
            .members()
            .values()
            .find(|state| state.member.call_id == call_id)
            .map(|state| (state.member.caller, state.member.moderator))
        else {
            return;
        };
        let mixer = self.active.lock().await.as_ref().map(|running| Arc::clone(&running.mixer));
        let Some(mixer) = mixer else { return };
        for order in orders {
            let own_hand =
                matches!(&order, Order::RaiseHand { target, .. } if target.account == sender);
            if !moderator && !own_hand {
                info!(room = %self.room, caller_account = %sender, ?order, "order refused: not a moderator");
                continue;
            }
            info!(room = %self.room, caller_account = %sender, ?order, "order carried out");
            self.apply_order(&mixer, order);
        }
        self.members_changed.notify_one();
    }

    fn apply_order(&self, mixer: &MediaRoom, order: Order) {
        let targets = |target: &Target| -> Vec<(ParticipantId, Member)> {
            self.members()
                .iter()
                .filter(|(_, state)| {
                    state.member.caller == target.account
                        && target
                            .device
                            .as_ref()
                            .is_none_or(|device| *device == state.member.device)
                })
                .map(|(id, state)| (*id, state.member.clone()))
                .collect()
        };
        let mut layout = self.layout.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match order {
            Order::Layout(number) => {
                let chosen = Layout::from_number(number).unwrap_or_default();
                layout.0 = chosen;
                let _ = mixer.send(Command::SetLayout(chosen));
            }
            Order::Active(target) => {
                let id = target.and_then(|target| targets(&target).first().map(|(id, _)| *id));
                layout.1 = id;
                let _ = mixer.send(Command::SetActive(id));
            }
            Order::MuteAudio { target, muted } => {
                for (id, _) in targets(&target) {
                    let _ = mixer.send(Command::SetMuted { participant: id, muted });
                    if let Some(state) = self.members().get_mut(&id) {
                        state.moderator_muted = muted;
                    }
                }
            }
            Order::Hangup(target) => {
                for (_, member) in targets(&target) {
                    let _ = member.events.try_send(CallEvent::Hangup(member.call_id.clone()));
                }
            }
            Order::RaiseHand { target, raised } => {
                for (id, _) in targets(&target) {
                    if let Some(state) = self.members().get_mut(&id) {
                        state.hand_raised = raised;
                    }
                }
            }
        }
    }

    /// The confInfo of the room now: each member's entry, in joining order, and where it goes.
    fn conference(&self, view: &ConferenceView) -> ConfInfoRound {
        let (layout, active) =
            *self.layout.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let members = self.members();
        let mut entries: Vec<_> = members
            .iter()
            .filter(|(_, state)| !state.in_lobby)
            .map(|(id, state)| {
                let member = &state.member;
                let tile = view.tiles.get(id);
                let rect = tile.map(|tile| tile.rect).unwrap_or_default();
                let stream = if member.video { "video" } else { "audio" };
                let info = ParticipantInfo {
                    uri: format!("{}@ring.dht", member.caller),
                    device: member.device.clone(),
                    sink_id: format!("{}_{stream}_0", member.call_id),
                    active: active == Some(*id),
                    x: rect.x,
                    y: rect.y,
                    w: rect.w,
                    h: rect.h,
                    video_muted: !tile.is_some_and(|tile| tile.has_video),
                    audio_local_muted: state.local_muted,
                    audio_moderator_muted: state.moderator_muted,
                    is_moderator: member.moderator,
                    hand_raised: state.hand_raised,
                    voice_activity: view.speaking.contains(id),
                    recording: false,
                };
                (id.0, info, (member.call_id.clone(), member.events.clone()))
            })
            .collect();
        entries.sort_by_key(|(id, _, _)| *id);
        let (entries, recipients) =
            entries.into_iter().map(|(_, info, recipient)| (info, recipient)).unzip();
        ConfInfoRound { entries, recipients, layout }
    }

    /// Removes a participant from the mix; the last one stops the mixer.
    async fn leave(&self, id: ParticipantId) {
        let mut active = self.active.lock().await;
        let Some(running) = active.as_ref() else { return };
        let _ = running.mixer.send(Command::Remove(id));
        let empty = {
            let mut routes =
                running.routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            routes.remove(&id);
            routes.is_empty()
        };
        if empty && let Some(stopped) = active.take() {
            stopped.router.abort();
            // Joining the mixer's thread blocks: off the async executor.
            let mixer = stopped.mixer;
            let _ = tokio::task::spawn_blocking(move || drop(mixer)).await;
            info!(room = %self.room, "mixer stopped: the room is empty");
        }
    }
}

impl Drop for Participant {
    fn drop(&mut self) {
        let (owner, id) = (Arc::clone(&self.owner), self.id);
        owner.forget(id);
        // The last reference to the mixer may be ours: let `leave` drop it off the executor.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { owner.leave(id).await });
        }
    }
}

/// Hands the mixer's output to the participants it is for.
async fn route(
    mut outputs: mpsc::Receiver<Output>,
    routes: Routes,
    mixer: std::sync::Weak<MediaRoom>,
    room_media: std::sync::Weak<RoomMedia>,
    room: RoomName,
) {
    let Some(members_changed) =
        room_media.upgrade().map(|media| Arc::clone(&media.members_changed))
    else {
        return;
    };
    let mut view = ConferenceView::default();
    let mut pacer = Pacer::new(CONF_INFO_INTERVAL);
    let mut speakers = SpeakerPicker::new(Hysteresis::default());
    let mut dropped = 0u64;
    let mut dropped_video = 0u64;
    loop {
        let wake = [pacer.poll_timeout(), speakers.poll_timeout()].into_iter().flatten().min();
        let output = tokio::select! {
            output = outputs.recv() => match output {
                Some(output) => Some(output),
                None => break,
            },
            () = members_changed.notified() => {
                pacer.changed();
                pacer.resend_at(std::time::Instant::now() + CONF_INFO_RESEND);
                None
            }
            () = sleep_until_some(wake) => None,
        };
        if let Some(output) = &output
            && view.apply(output)
        {
            pacer.changed();
        }
        if let Some(Output::AudioEvent(AudioEvent::VoiceActivity { participant, active })) = &output
        {
            speakers.voice(*participant, *active, std::time::Instant::now());
        }
        if let Some(speaker) = speakers.poll(std::time::Instant::now())
            && let (Some(room_media), Some(mixer)) = (room_media.upgrade(), mixer.upgrade())
            && room_media.active_speaker_mode()
            && room_media.members().contains_key(&speaker)
        {
            room_media.show_speaker(&mixer, speaker);
            pacer.changed();
        }
        if pacer.poll_due(std::time::Instant::now())
            && let Some(room_media) = room_media.upgrade()
        {
            send_conf_info(&room, &room_media.conference(&view));
        }
        let Some(output) = output else { continue };
        match output {
            Output::Audio(packet) => {
                let routes = routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                for listener in &packet.listeners {
                    let Some(route) = routes.get(listener) else { continue };
                    let outgoing =
                        Outgoing::Audio { index: packet.index, payload: packet.payload.clone() };
                    if route.audio.try_send(outgoing).is_err() {
                        dropped += 1;
                    }
                }
            }
            Output::Video(frame) => {
                let codec = frame.codec;
                let newly_broken = route_video(&routes, frame);
                dropped_video += newly_broken;
                if newly_broken > 0
                    && let Some(mixer) = mixer.upgrade()
                {
                    let _ = mixer.send(Command::RequestKeyframe(codec));
                }
            }
            Output::VideoEvent(VideoEvent::KeyframeNeeded(participant)) => {
                let routes = routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(video) = routes.get(&participant).and_then(|r| r.video.as_ref()) {
                    let _ = video.keyframes.try_send(());
                }
            }
            Output::VideoEvent(VideoEvent::InputFailed { participant, error }) => {
                warn!(room = %room, participant = participant.0, %error, "video input failed");
            }
            Output::VideoEvent(VideoEvent::TilesChanged(tiles)) => {
                debug!(room = %room, tiles = tiles.len(), "composite layout changed");
            }
            Output::Failed(error) => warn!(room = %room, %error, "mixer failure"),
            Output::AudioEvent(AudioEvent::VoiceActivity { participant, active }) => {
                debug!(room = %room, participant = participant.0, active, "voice activity");
            }
            Output::AudioEvent(AudioEvent::Levels(levels)) => {
                let levels: Vec<String> =
                    levels.iter().map(|(id, level)| format!("{}:{level:.0}", id.0)).collect();
                trace!(room = %room, levels = %levels.join(" "), "audio levels (dBFS)");
            }
            Output::AudioEvent(AudioEvent::InputFailed { participant, error }) => {
                warn!(room = %room, participant = participant.0, %error, "audio input failed");
            }
            Output::AudioEvent(AudioEvent::OutputFailed { listeners, error }) => {
                warn!(room = %room, ?listeners, %error, "audio output failed");
            }
        }
    }
    if dropped > 0 || dropped_video > 0 {
        info!(room = %room, dropped, dropped_video, "packets dropped for slow calls");
    }
}

/// Hands a composite frame to the participants that receive its codec; a participant whose
/// queue is full loses frames until the next keyframe. Returns how many participants fell
/// behind with this frame (each then needs a keyframe).
fn route_video(routes: &Routes, frame: EncodedVideo) -> u64 {
    let frame = Arc::new(frame);
    let mut routes = routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut newly_broken = 0;
    for video in routes.values_mut().filter_map(|route| route.video.as_mut()) {
        if video.codec != frame.codec || (video.broken && !frame.keyframe) {
            continue;
        }
        if video.frames.try_send(Arc::clone(&frame)).is_ok() {
            video.broken = false;
        } else if !video.broken {
            video.broken = true;
            newly_broken += 1;
        }
    }
    newly_broken
}

/// What the mixer says of the conference: where the tiles are, who speaks.
#[derive(Debug, Default)]
struct ConferenceView {
    tiles: HashMap<ParticipantId, ParticipantTile>,
    speaking: std::collections::HashSet<ParticipantId>,
}

impl ConferenceView {
    /// Takes in a mixer output; whether participants see a change.
    fn apply(&mut self, output: &Output) -> bool {
        match output {
            Output::VideoEvent(VideoEvent::TilesChanged(tiles)) => {
                self.tiles = tiles.iter().map(|tile| (tile.participant, *tile)).collect();
                true
            }
            Output::AudioEvent(AudioEvent::VoiceActivity { participant, active }) => {
                if *active {
                    self.speaking.insert(*participant)
                } else {
                    self.speaking.remove(participant)
                }
            }
            _ => false,
        }
    }
}

/// One confInfo for everyone in the room.
struct ConfInfoRound {
    /// The participants, in joining order.
    entries: Vec<ParticipantInfo>,
    /// Each member's call and the link that carries it.
    recipients: Vec<(String, mpsc::Sender<CallEvent>)>,
    layout: Layout,
}

/// Sends the same confInfo to every member's call.
fn send_conf_info(room: &RoomName, round: &ConfInfoRound) {
    let size = video_config().size;
    let body = conf_info::conf_info(&round.entries, size.width, size.height, round.layout.number());
    debug!(room = %room, recipients = round.recipients.len(), bytes = body.len(), "confInfo sent");
    for (call_id, events) in &round.recipients {
        let event = CallEvent::ConfInfo { call_id: call_id.clone(), body: body.clone() };
        if events.try_send(event).is_err() {
            debug!(room = %room, call_id = %call_id, "confInfo dropped: the call's link is behind");
        }
    }
}

/// Sleeps until `at`, or forever.
async fn sleep_until_some(at: Option<std::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}
