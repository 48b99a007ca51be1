//! A room's conference owner task: the one place that holds who is in the room and what
//! state each participant is in. Calls, participants' Jami clients (confOrder), the door and
//! the admin API all talk to it with [`RoomCommand`]s over one bounded channel; it runs the
//! mixer, routes the mixer's output to the calls, sends every participant the confInfo, and
//! tells the room's event stream what happened.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use rdv_admin_api::BotLink;
use rdv_mixer::audio::ParticipantId;
use rdv_mixer::engine::AudioEvent;
use rdv_mixer::layout::Layout;
use rdv_mixer::media_room::{Command, CpuClock, Output};
use rdv_mixer::video::{ParticipantTile, VideoCodec, VideoEvent};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, info, trace, warn};

use super::call::CallEvent;
use super::mix_routes::{Mixer, Participant, VideoJoin, video_config};
use super::playback::{PlayRequest, Player};
use super::recording::Recorder;
use crate::conference::action::{Action, Who};
use crate::conference::event::{PlaybackEnd, RecordingEnd, RoomEvent};
use crate::conference::info::{self as conf_info, Pacer, ParticipantInfo};
use crate::conference::order::Order;
use crate::conference::speaker::{Hysteresis, SpeakerPicker};
use crate::identity::AccountId;
use crate::media::media_file::MediaInfo;
use crate::room::{RoomName, RoomPolicy};
use crate::telemetry::metrics::{CallOutcome, Metrics};

/// Commands waiting for the owner task; senders from the network never wait for room in it
/// (their command is dropped and logged), calls joining and the admin API do.
const COMMAND_QUEUE: usize = 256;
/// Events kept for slow subscribers of the room's event stream.
const EVENT_BUFFER: usize = 1024;
/// What a participant in the lobby hears of the room: nothing.
const LOBBY_GAIN_DB: f32 = -120.0;
/// Fewest time between two confInfo messages to a participant.
const CONF_INFO_INTERVAL: Duration = Duration::from_millis(250);
/// A newcomer gets the confInfo again this long after it joined: jamid 13.7 can lose the
/// first one while it merges its call (interop/README.md §5.8).
const CONF_INFO_RESEND: Duration = Duration::from_millis(1500);

/// Who a call's participant is.
#[derive(Debug, Clone)]
pub(super) struct Member {
    /// The caller's account.
    pub(super) caller: AccountId,
    /// The calling device's id.
    pub(super) device: String,
    /// The caller is a moderator of the room.
    pub(super) moderator: bool,
    /// The call.
    pub(super) call_id: String,
    /// Negotiated codecs, e.g. `opus/48000/2 + H264/90000`.
    pub(super) codecs: String,
    /// Where the call's confInfo goes: the link that carries its dialog.
    pub(super) events: mpsc::Sender<CallEvent>,
    /// It joins in the lobby: neither heard nor shown, hearing nothing.
    pub(super) lobby: bool,
}

/// A member and what the room knows of it besides the mix.
struct MemberState {
    member: Member,
    /// The call has a video stream.
    video: bool,
    /// The video it sends into the composite, when it sends any.
    video_input: Option<VideoCodec>,
    since: Instant,
    joined_at: SystemTime,
    /// It muted its own microphone (INFO mute_state).
    local_muted: bool,
    /// A moderator muted its audio.
    moderator_muted: bool,
    /// A moderator took its picture off its tile.
    video_moderator_muted: bool,
    /// Its hand is raised.
    hand_raised: bool,
    /// It waits in the lobby.
    in_lobby: bool,
}

/// A participant as the admin API lists it.
#[derive(Debug, Clone)]
pub(crate) struct ParticipantView {
    /// Its id in the room.
    pub(crate) id: ParticipantId,
    /// Its account.
    pub(crate) account: AccountId,
    /// Its device.
    pub(crate) device: String,
    /// Its call.
    pub(crate) call_id: String,
    /// A moderator.
    pub(crate) moderator: bool,
    /// Muted by itself.
    pub(crate) audio_local_muted: bool,
    /// Muted by a moderator.
    pub(crate) audio_moderator_muted: bool,
    /// No picture on its tile.
    pub(crate) video_muted: bool,
    /// Its picture taken off by a moderator.
    pub(crate) video_moderator_muted: bool,
    /// Its hand is up.
    pub(crate) hand_raised: bool,
    /// It speaks.
    pub(crate) voice_activity: bool,
    /// It waits in the lobby.
    pub(crate) in_lobby: bool,
    /// It is shown big.
    pub(crate) active: bool,
    /// When it joined.
    pub(crate) joined_at: SystemTime,
}

/// The room's conference as it stands.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    /// Jami's layout number.
    pub(crate) layout: u8,
    /// The participants, in joining order.
    pub(crate) participants: Vec<ParticipantView>,
}

/// Why an action was not carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ActionError {
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

/// What the owner task is asked to do.
pub(super) enum RoomCommand {
    /// A call joins the room.
    Join {
        member: Member,
        video: Option<VideoJoin>,
        reply: oneshot::Sender<Result<Participant, String>>,
    },
    /// A participant left (its call ended).
    Leave(ParticipantId),
    /// The caller of `call_id` muted or unmuted its own microphone.
    LocalMute { call_id: String, muted: bool },
    /// confOrders that came on call `call_id`, checked against its rights.
    Orders { call_id: String, orders: Vec<Order> },
    /// The caller of `call_id` sent a text message in its call.
    Chat { call_id: String, text: String },
    /// An action from the operator (admin API, CLI): always permitted.
    Act { action: Action, reply: oneshot::Sender<Result<(), ActionError>> },
    /// The room's stored policy, as read at the last admission.
    Policy(RoomPolicy),
    /// The conference as it stands.
    Snapshot(oneshot::Sender<Snapshot>),
    /// A bot joins the room's audio, hearing the mix or only participant `listen`.
    AttachBot { listen: Option<ParticipantId>, reply: oneshot::Sender<Result<BotLink, SeatError>> },
    /// Start recording (`Some`) or stop (`None`).
    Record {
        target: Option<RecordTarget>,
        reply: oneshot::Sender<Result<RecordingState, RecordError>>,
    },
    /// Play a file (opened and checked already).
    Play { request: Box<PlayRequest>, reply: oneshot::Sender<Result<PlaybackView, SeatError>> },
    /// The files playing.
    Playbacks(oneshot::Sender<Vec<PlaybackView>>),
    /// Pause, resume or change the volume of a playback (`None`: no such playback).
    ChangePlayback {
        id: ParticipantId,
        paused: Option<bool>,
        volume: Option<f32>,
        reply: oneshot::Sender<Option<PlaybackView>>,
    },
    /// Stop a playback; whether there was one.
    StopPlayback { id: ParticipantId, reply: oneshot::Sender<bool> },
    /// A playback's thread ended.
    PlaybackEnded { id: ParticipantId, end: PlaybackEnd },
    /// The recording whose listener is `id` could not be written any further.
    RecordingFailed { id: ParticipantId },
    /// The room stops: the mixer, bots, playbacks and the recording end now.
    Close,
}

/// What to record, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordTarget {
    /// The new file.
    pub(crate) file: PathBuf,
    /// The composite too (WebM), not only the mix (Ogg Opus).
    pub(crate) video: bool,
}

/// Why a participant without a call (a bot, a playback) could not be seated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SeatError {
    /// Nobody is in the room (the requester's mistake).
    #[error("nobody is in the room")]
    Empty,
    /// The room already plays as many files as it may (the requester's mistake).
    #[error("the room already plays {0} files: stop one first")]
    TooManyPlaybacks(usize),
    /// The room already has as many bots as it may (the requester's mistake).
    #[error("the room already has {0} bots")]
    TooManyBots(usize),
    /// The participant to listen to is not in the room (the requester's mistake).
    #[error("no participant {0} in the room")]
    NoSuchParticipant(u64),
    /// The room or its mixer could not take it (the server's).
    #[error("{0}")]
    Failed(String),
}

/// A file playing, as the API shows it.
#[derive(Debug, Clone)]
pub(crate) struct PlaybackView {
    /// Its participant id in the mix.
    pub(crate) id: ParticipantId,
    /// The file, as asked.
    pub(crate) name: String,
    /// Starts again at the end.
    pub(crate) looped: bool,
    /// Paused now.
    pub(crate) paused: bool,
    /// Linear gain.
    pub(crate) volume: f32,
    /// Time played in this round.
    pub(crate) position: Duration,
    /// What the file holds.
    pub(crate) info: MediaInfo,
}

/// A room's recording, as the API reports it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RecordingState {
    /// Recording now.
    pub(crate) recording: bool,
    /// The current file, or the one just finished.
    pub(crate) file: Option<PathBuf>,
    /// With the composite (WebM).
    pub(crate) video: bool,
    /// Seconds in the file just finished.
    pub(crate) seconds: Option<f64>,
}

/// Why a recording did not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RecordError {
    /// Nobody is in the room (the operator's mistake).
    #[error("nobody is in the room")]
    Empty,
    /// The file could not be created or written (the server's configuration).
    #[error("the recording cannot be written: {0}")]
    Unwritable(String),
    /// The room's owner task has stopped.
    #[error("the room is not running")]
    NotRunning,
}

/// A room's conference: cheap to clone, one per call and per API request.
#[derive(Clone)]
pub(crate) struct RoomHandle {
    room: RoomName,
    commands: mpsc::Sender<RoomCommand>,
    head_count: Arc<AtomicUsize>,
    events: broadcast::Sender<RoomEvent>,
    metrics: Arc<Metrics>,
    /// The running mixer's CPU clock, for the metrics.
    mixer_cpu: Arc<Mutex<Option<CpuClock>>>,
    /// The server is draining: no new callers.
    draining: Arc<AtomicBool>,
}

impl RoomHandle {
    /// Starts the room's conference owner task; it ends when every handle is dropped.
    pub(super) fn spawn(room: RoomName, metrics: Arc<Metrics>, draining: Arc<AtomicBool>) -> Self {
        let (commands, inbox) = mpsc::channel(COMMAND_QUEUE);
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let handle = Self {
            room: room.clone(),
            commands,
            head_count: Arc::default(),
            events: events.clone(),
            metrics,
            mixer_cpu: Arc::default(),
            draining,
        };
        let owner = Conference {
            room,
            members: BTreeMap::new(),
            bots: HashSet::new(),
            recording: None,
            players: BTreeMap::new(),
            next_id: 1,
            layout: Layout::Grid,
            active: None,
            policy: RoomPolicy::default(),
            mixer: None,
            view: ConferenceView::default(),
            pacer: Pacer::new(CONF_INFO_INTERVAL),
            speakers: SpeakerPicker::new(Hysteresis::default()),
            head_count: Arc::clone(&handle.head_count),
            events,
            commands: handle.commands.downgrade(),
            metrics: Arc::clone(&handle.metrics),
            mixer_cpu: Arc::clone(&handle.mixer_cpu),
            draining: Arc::clone(&handle.draining),
        };
        tokio::spawn(owner.run(inbox));
        handle
    }

    /// Joins a call to the room, starting the mixer if it is the first.
    pub(super) async fn join(
        &self,
        member: Member,
        video: Option<VideoJoin>,
    ) -> Result<Participant, String> {
        self.ask(|reply| RoomCommand::Join { member, video, reply })
            .await
            .ok_or_else(|| "the room is not running".to_owned())?
    }

    /// A participant left. Never waits: called when its call is dropped.
    pub(super) fn leave(&self, id: ParticipantId) {
        if let Err(mpsc::error::TrySendError::Full(command)) =
            self.commands.try_send(RoomCommand::Leave(id))
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let commands = self.commands.clone();
            runtime.spawn(async move { commands.send(command).await });
        }
    }

    /// Hands the room a command from the network; a full queue drops it.
    fn offer(&self, command: RoomCommand) {
        if self.commands.try_send(command).is_err() {
            warn!(room = %self.room, "the room is overloaded: a participant's command was dropped");
        }
    }

    /// The caller of `call_id` muted or unmuted its own microphone.
    pub(super) fn set_local_muted(&self, call_id: String, muted: bool) {
        self.offer(RoomCommand::LocalMute { call_id, muted });
    }

    /// confOrders that came on call `call_id`.
    pub(super) fn orders(&self, call_id: String, orders: Vec<Order>) {
        self.offer(RoomCommand::Orders { call_id, orders });
    }

    /// A text message that came on call `call_id`.
    pub(super) fn chat_from(&self, call_id: String, text: String) {
        self.offer(RoomCommand::Chat { call_id, text });
    }

    /// Takes the room's policy as it stands: the layout of the next mixer, whether the big
    /// tile follows the speakers.
    pub(super) fn set_policy(&self, policy: RoomPolicy) {
        self.offer(RoomCommand::Policy(policy));
    }

    /// Carries out an operator's action.
    pub(crate) async fn act(&self, action: Action) -> Result<(), ActionError> {
        self.ask(|reply| RoomCommand::Act { action, reply }).await.ok_or(ActionError::NotRunning)?
    }

    /// Starts recording `target` (`Some`), or stops (`None`, answering once the file is
    /// complete).
    pub(crate) async fn record(
        &self,
        target: Option<RecordTarget>,
    ) -> Result<RecordingState, RecordError> {
        self.ask(|reply| RoomCommand::Record { target, reply })
            .await
            .ok_or(RecordError::NotRunning)?
    }

    /// Adds a bot to the room's audio, starting the mixer if need be; it hears the mix, or
    /// only participant `listen`.
    pub(crate) async fn attach_bot(
        &self,
        listen: Option<ParticipantId>,
    ) -> Result<BotLink, SeatError> {
        self.ask(|reply| RoomCommand::AttachBot { listen, reply })
            .await
            .ok_or_else(|| SeatError::Failed("the room is not running".into()))?
    }

    /// Plays a file into the room (someone must be in it).
    pub(crate) async fn play(&self, request: PlayRequest) -> Result<PlaybackView, SeatError> {
        self.ask(|reply| RoomCommand::Play { request: Box::new(request), reply })
            .await
            .ok_or_else(|| SeatError::Failed("the room is not running".into()))?
    }

    /// The files playing; `None` once the room has stopped.
    pub(crate) async fn playbacks(&self) -> Option<Vec<PlaybackView>> {
        self.ask(RoomCommand::Playbacks).await
    }

    /// Pauses, resumes or changes the volume of playback `id`; `None` if there is none.
    pub(crate) async fn change_playback(
        &self,
        id: ParticipantId,
        paused: Option<bool>,
        volume: Option<f32>,
    ) -> Option<PlaybackView> {
        self.ask(|reply| RoomCommand::ChangePlayback { id, paused, volume, reply }).await?
    }

    /// Stops playback `id`; whether there was one.
    pub(crate) async fn stop_playback(&self, id: ParticipantId) -> bool {
        self.ask(|reply| RoomCommand::StopPlayback { id, reply }).await.unwrap_or(false)
    }

    /// A playback's thread ended (called from that thread: it may wait for room).
    pub(super) fn playback_ended(&self, id: ParticipantId, end: PlaybackEnd) {
        let _ = self.commands.blocking_send(RoomCommand::PlaybackEnded { id, end });
    }

    /// The recording whose listener is `id` failed midway.
    pub(super) async fn recording_failed(&self, id: ParticipantId) {
        let _ = self.commands.send(RoomCommand::RecordingFailed { id }).await;
    }

    /// Ends the conference (the room stops serving): the mixer stops, with it bots,
    /// playbacks and the recording (finished on its own thread).
    pub(super) async fn close(&self) {
        let _ = self.commands.send(RoomCommand::Close).await;
    }

    /// The room's name.
    pub(super) fn room(&self) -> &RoomName {
        &self.room
    }

    /// Sends the command `make` builds around a reply channel and waits for the answer;
    /// `None` when the room has stopped.
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> RoomCommand) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(make(reply)).await.ok()?;
        answer.await.ok()
    }

    /// The conference as it stands; `None` once the room has stopped.
    pub(crate) async fn snapshot(&self) -> Option<Snapshot> {
        self.ask(RoomCommand::Snapshot).await
    }

    /// How many participants are in (lobby included).
    pub(crate) fn participant_count(&self) -> usize {
        self.head_count.load(Ordering::Relaxed)
    }

    /// The room's events from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<RoomEvent> {
        self.events.subscribe()
    }

    /// Whether the server is draining (new callers are refused).
    pub(super) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// The server's metrics.
    pub(super) fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// CPU time of the room's running mixer (zero when none runs).
    pub(super) fn mixer_cpu(&self) -> Duration {
        let clock = self.mixer_cpu.lock().unwrap_or_else(PoisonError::into_inner);
        clock.as_ref().and_then(CpuClock::elapsed).unwrap_or_default()
    }

    /// Counts a call that could not be set up and tells the event stream why.
    pub(super) fn call_failed(&self, account: AccountId, reason: String) {
        self.metrics.call(CallOutcome::Failed);
        self.publish(RoomEvent::CallFailed { account, reason });
    }

    /// Tells the room's event stream about something seen outside the owner task.
    pub(super) fn publish(&self, event: RoomEvent) {
        let _ = self.events.send(event);
    }
}

mod seats;

/// The owner task's state.
struct Conference {
    room: RoomName,
    /// By id: joining order.
    members: BTreeMap<ParticipantId, MemberState>,
    /// Bots in the audio (not members: no call, not in confInfo).
    bots: HashSet<ParticipantId>,
    /// The recording, if any: its listener in the mix and its file.
    recording: Option<(ParticipantId, Recorder)>,
    /// Files playing into the room (participants without a call).
    players: BTreeMap<ParticipantId, Player>,
    next_id: u64,
    layout: Layout,
    /// Who is shown big.
    active: Option<ParticipantId>,
    policy: RoomPolicy,
    mixer: Option<Mixer>,
    view: ConferenceView,
    pacer: Pacer,
    speakers: SpeakerPicker,
    head_count: Arc<AtomicUsize>,
    events: broadcast::Sender<RoomEvent>,
    /// For participants' handles, without keeping the task alive.
    commands: mpsc::WeakSender<RoomCommand>,
    metrics: Arc<Metrics>,
    mixer_cpu: Arc<Mutex<Option<CpuClock>>>,
    draining: Arc<AtomicBool>,
}

impl Conference {
    async fn run(mut self, mut inbox: mpsc::Receiver<RoomCommand>) {
        let mut outputs: Option<mpsc::Receiver<Output>> = None;
        loop {
            let wake = [self.pacer.poll_timeout(), self.speakers.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            tokio::select! {
                command = inbox.recv() => match command {
                    Some(RoomCommand::Close) | None => break,
                    Some(command) => self.on_command(command, &mut outputs).await,
                },
                output = next_output(&mut outputs) => match output {
                    Some(output) => self.on_output(output),
                    None => outputs = None,
                },
                () = sleep_until_some(wake) => {}
            }
            let now = Instant::now();
            if let Some(speaker) = self.speakers.poll(now)
                && self.policy.active_speaker
                && self.members.contains_key(&speaker)
                && self.active != Some(speaker)
            {
                info!(room = %self.room, participant = speaker.0, "the big tile follows the speaker");
                self.set_active(Some(speaker));
            }
            if self.pacer.poll_due(now) {
                self.send_conf_info();
            }
            if self.mixer.is_some() && self.members.is_empty() && self.bots.is_empty() {
                self.stop_mixer();
                outputs = None;
            }
        }
        if self.recording.is_some() {
            // The file is complete before the room is reported stopped.
            self.stop_recording(RecordingEnd::RoomStopped).await;
        }
        if self.mixer.is_some() {
            self.stop_mixer();
        }
    }

    async fn on_command(
        &mut self,
        command: RoomCommand,
        outputs: &mut Option<mpsc::Receiver<Output>>,
    ) {
        match command {
            RoomCommand::Join { member, video, reply } => {
                let joined = self.join(member, video, outputs).await;
                if let Err(Ok(participant)) = reply.send(joined) {
                    // The call gave up waiting: its participant leaves at once.
                    drop(participant);
                }
            }
            RoomCommand::Leave(id) => self.leave(id),
            RoomCommand::LocalMute { call_id, muted } => {
                if let Some((id, state)) = self.by_call(&call_id) {
                    state.local_muted = muted;
                    let _ = self.events.send(RoomEvent::Muted {
                        participant: id,
                        audio: true,
                        muted,
                        by_moderator: false,
                    });
                    self.pacer.changed();
                }
            }
            RoomCommand::Orders { call_id, orders } => self.on_orders(&call_id, orders),
            RoomCommand::Chat { call_id, text } => {
                if let Some((participant, state)) = self.by_call(&call_id) {
                    let account = state.member.caller;
                    info!(room = %self.room, participant = participant.0, caller_account = %account, chars = text.chars().count(), "in-call message");
                    let _ = self.events.send(RoomEvent::Chat { participant, account, text });
                }
            }
            RoomCommand::Act { action, reply } => {
                info!(room = %self.room, ?action, "operator action");
                let _ = reply.send(self.apply(action));
            }
            RoomCommand::Policy(policy) => self.policy = policy,
            RoomCommand::Snapshot(reply) => {
                let _ = reply.send(self.snapshot());
            }
            RoomCommand::Record { target, reply } => {
                let state = match target {
                    Some(target) => self.start_recording(target),
                    None => Ok(self.stop_recording(RecordingEnd::Stopped).await),
                };
                let _ = reply.send(state);
            }
            RoomCommand::AttachBot { listen, reply } => {
                let attached = self.attach_bot(listen, outputs).await;
                let _ = reply.send(attached);
            }
            RoomCommand::Play { request, reply } => {
                let _ = reply.send(self.play(*request));
            }
            RoomCommand::Playbacks(reply) => {
                let _ = reply.send(self.players.iter().map(|(id, p)| p.view(*id)).collect());
            }
            RoomCommand::ChangePlayback { id, paused, volume, reply } => {
                let _ = reply.send(self.change_playback(id, paused, volume));
            }
            RoomCommand::StopPlayback { id, reply } => {
                let _ = reply.send(self.stop_playback(id, PlaybackEnd::Stopped));
            }
            RoomCommand::PlaybackEnded { id, end } => {
                self.stop_playback(id, end);
            }
            RoomCommand::RecordingFailed { id } => {
                if self.recording.as_ref().is_some_and(|(listener, _)| *listener == id) {
                    // The error is the writer's: it ends the recording as failed.
                    self.stop_recording(RecordingEnd::Stopped).await;
                }
            }
            RoomCommand::Close => {}
        }
    }

    fn by_call(&mut self, call_id: &str) -> Option<(ParticipantId, &mut MemberState)> {
        self.members
            .iter_mut()
            .find(|(_, state)| state.member.call_id == call_id)
            .map(|(id, state)| (*id, state))
    }

    async fn join(
        &mut self,
        member: Member,
        video: Option<VideoJoin>,
        outputs: &mut Option<mpsc::Receiver<Output>>,
    ) -> Result<Participant, String> {
        let handle = self.handle()?;
        self.ensure_mixer(outputs).await?;
        let id = self.new_participant_id();
        let Some(mixer) = self.mixer.as_mut() else { return Err("no mixer".into()) };
        let video_input = video.as_ref().filter(|join| join.sends).map(|join| join.codec);
        let receivers = mixer.add(
            id,
            video.as_ref().map(|join| join.codec),
            video_input.filter(|_| !member.lobby),
        );
        if member.lobby {
            mixer.send(Command::SetMuted { participant: id, muted: true });
            mixer.send(Command::SetGain { participant: id, gain_db: LOBBY_GAIN_DB });
            info!(room = %self.room, participant = id.0, caller_account = %member.caller, "waiting in the lobby");
        }
        let participant = Participant {
            id,
            mixer: Arc::clone(&mixer.room),
            outgoing: Some(receivers.outgoing),
            video: receivers.video,
            keyframes: receivers.keyframes,
            owner: handle,
        };
        let _ = self.events.send(RoomEvent::Joined {
            participant: id,
            account: member.caller,
            device: member.device.clone(),
            lobby: member.lobby,
        });
        info!(
            room = %self.room,
            participant = id.0,
            caller_account = %member.caller,
            call_id = %member.call_id,
            codecs = %member.codecs,
            participants = self.members.len() + 1,
            "participant joined"
        );
        let state = MemberState {
            video: video.is_some(),
            video_input,
            since: Instant::now(),
            joined_at: SystemTime::now(),
            local_muted: false,
            moderator_muted: false,
            video_moderator_muted: false,
            hand_raised: false,
            in_lobby: member.lobby,
            member,
        };
        self.members.insert(id, state);
        self.head_count.store(self.members.len(), Ordering::Relaxed);
        self.pacer.changed();
        self.pacer.resend_at(Instant::now() + CONF_INFO_RESEND);
        Ok(participant)
    }

    /// A handle on this room for a participant's side (a call's, a bot's).
    fn handle(&self) -> Result<RoomHandle, String> {
        Ok(RoomHandle {
            room: self.room.clone(),
            commands: self.commands.upgrade().ok_or("the room is stopping")?,
            head_count: Arc::clone(&self.head_count),
            events: self.events.clone(),
            metrics: Arc::clone(&self.metrics),
            mixer_cpu: Arc::clone(&self.mixer_cpu),
            draining: Arc::clone(&self.draining),
        })
    }

    /// The id of the next participant in the mix (call, bot or recorder).
    fn new_participant_id(&mut self) -> ParticipantId {
        let id = ParticipantId(self.next_id);
        self.next_id += 1;
        id
    }

    /// Starts the mixer unless it runs.
    async fn ensure_mixer(
        &mut self,
        outputs: &mut Option<mpsc::Receiver<Output>>,
    ) -> Result<(), String> {
        if self.mixer.is_some() {
            return Ok(());
        }
        let (mixer, started_outputs) = Mixer::start().await?;
        self.layout = mixer_layout(self.policy.layout);
        self.active = None;
        mixer.send(Command::SetLayout(self.layout));
        info!(room = %self.room, layout = ?self.layout, "mixer started");
        *self.mixer_cpu.lock().unwrap_or_else(PoisonError::into_inner) =
            mixer.room.cpu_clock().cloned();
        self.mixer = Some(mixer);
        *outputs = Some(started_outputs);
        self.view = ConferenceView::default();
        Ok(())
    }

    fn leave(&mut self, id: ParticipantId) {
        if self.bots.remove(&id) {
            if let Some(mixer) = &mut self.mixer {
                mixer.remove(id);
            }
            self.speakers.remove(id);
            return info!(room = %self.room, participant = id.0, bots = self.bots.len(), "bot left");
        }
        if let Some(mixer) = &mut self.mixer {
            mixer.remove(id);
        }
        self.speakers.remove(id);
        if self.active == Some(id) {
            self.active = None;
        }
        let Some(MemberState { member, since, .. }) = self.members.remove(&id) else { return };
        self.head_count.store(self.members.len(), Ordering::Relaxed);
        let seconds = since.elapsed().as_secs();
        info!(
            room = %self.room,
            participant = id.0,
            caller_account = %member.caller,
            call_id = %member.call_id,
            seconds,
            participants = self.members.len(),
            "participant left"
        );
        let _ =
            self.events.send(RoomEvent::Left { participant: id, account: member.caller, seconds });
        self.pacer.changed();
    }

    fn stop_mixer(&mut self) {
        let playing: Vec<ParticipantId> = self.players.keys().copied().collect();
        for id in playing {
            self.stop_playback(id, PlaybackEnd::Stopped);
        }
        if let Some((_, recorder)) = self.recording.take() {
            // Its route goes with the mixer: the file is finished on the recorder's thread.
            info!(room = %self.room, file = %recorder.file.display(), "recording ends: the room is empty");
            let (room, events) = (self.room.clone(), self.events.clone());
            tokio::spawn(async move {
                seats::finish_recording(recorder, &room, &events, RecordingEnd::RoomEmpty).await;
            });
        }
        if let Some(mixer) = self.mixer.take() {
            if mixer.dropped > 0 || mixer.dropped_video > 0 {
                info!(room = %self.room, dropped = mixer.dropped, dropped_video = mixer.dropped_video, "packets dropped for slow calls");
            }
            let clock = self.mixer_cpu.lock().unwrap_or_else(PoisonError::into_inner).take();
            let cpu = clock.as_ref().and_then(CpuClock::elapsed).unwrap_or_default();
            self.metrics.mixer_stopped(cpu);
            mixer.stop();
            info!(room = %self.room, cpu_ms = cpu.as_millis(), "mixer stopped: the room is empty");
        }
    }

    /// Carries out the confOrders that came on call `call_id`: moderators may order
    /// anything; anyone may raise or lower their own hand. Refused orders are logged.
    fn on_orders(&mut self, call_id: &str, orders: Vec<Order>) {
        let Some((sender, moderator)) =
            self.by_call(call_id).map(|(_, state)| (state.member.caller, state.member.moderator))
        else {
            return;
        };
        for order in orders {
            let action = Action::from(order);
            if !action.permitted(sender, moderator) {
                info!(room = %self.room, caller_account = %sender, ?action, "order refused: not a moderator");
                continue;
            }
            match self.apply(action.clone()) {
                Ok(()) => {
                    info!(room = %self.room, caller_account = %sender, ?action, "order carried out")
                }
                Err(error) => {
                    info!(room = %self.room, caller_account = %sender, ?action, %error, "order not carried out")
                }
            }
        }
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
                .filter(|(_, state)| {
                    state.member.caller == target.account
                        && target
                            .device
                            .as_ref()
                            .is_none_or(|device| *device == state.member.device)
                })
                .map(|(id, _)| *id)
                .collect(),
        }
    }

    /// Carries out an action. A participant named by id must be in the room; orders about
    /// an account that is not in are no-ops, as in Jami.
    fn apply(&mut self, action: Action) -> Result<(), ActionError> {
        let targets = |who: &Who| {
            let ids = self.targets(who);
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
                if let Some(mixer) = &self.mixer {
                    mixer.send(Command::SetLayout(layout));
                }
                self.layout_changed();
            }
            Action::SetActive(who) => {
                let id = match who {
                    Some(who) => targets(&who)?.first().copied(),
                    None => None,
                };
                self.set_active(id);
            }
            Action::MuteAudio { who, muted } => {
                for id in targets(&who)? {
                    self.force_mute(id, muted);
                }
            }
            Action::MuteAll => {
                let ids: Vec<_> = self
                    .members
                    .iter()
                    .filter(|(_, state)| !state.member.moderator)
                    .map(|(id, _)| *id)
                    .collect();
                for id in ids {
                    self.force_mute(id, true);
                }
            }
            Action::MuteVideo { who, muted } => {
                for id in targets(&who)? {
                    self.mute_video(id, muted);
                }
            }
            Action::Hangup(who) => {
                for id in targets(&who)? {
                    if let Some(state) = self.members.get(&id) {
                        let call = state.member.call_id.clone();
                        let _ = state.member.events.try_send(CallEvent::Hangup(call));
                    }
                }
            }
            Action::RaiseHand { who, raised } => {
                for id in targets(&who)? {
                    if let Some(state) = self.members.get_mut(&id)
                        && state.hand_raised != raised
                    {
                        state.hand_raised = raised;
                        let _ = self.events.send(RoomEvent::HandRaised { participant: id, raised });
                    }
                }
            }
            Action::Admit(who) => {
                for id in targets(&who)? {
                    self.admit(id);
                }
            }
            Action::SetModerator { who, moderator } => {
                for id in targets(&who)? {
                    if let Some(state) = self.members.get_mut(&id) {
                        state.member.moderator = moderator;
                    }
                }
            }
            Action::Chat(text) => {
                for state in self.members.values().filter(|state| !state.in_lobby) {
                    let call_id = state.member.call_id.clone();
                    let event = CallEvent::Chat { call_id, text: text.clone() };
                    if state.member.events.try_send(event).is_err() {
                        debug!(room = %self.room, call_id = %state.member.call_id, "chat message dropped: the call's link is behind");
                    }
                }
            }
        }
        self.pacer.changed();
        Ok(())
    }

    fn set_active(&mut self, id: Option<ParticipantId>) {
        self.active = id;
        if let Some(mixer) = &self.mixer {
            mixer.send(Command::SetActive(id));
        }
        self.layout_changed();
        self.pacer.changed();
    }

    fn layout_changed(&self) {
        let _ = self
            .events
            .send(RoomEvent::LayoutChanged { layout: self.layout.number(), active: self.active });
    }

    fn force_mute(&mut self, id: ParticipantId, muted: bool) {
        let Some(state) = self.members.get_mut(&id) else { return };
        state.moderator_muted = muted;
        if !state.in_lobby
            && let Some(mixer) = &self.mixer
        {
            mixer.send(Command::SetMuted { participant: id, muted });
        }
        let _ = self.events.send(RoomEvent::Muted {
            participant: id,
            audio: true,
            muted,
            by_moderator: true,
        });
    }

    fn mute_video(&mut self, id: ParticipantId, muted: bool) {
        let Some(state) = self.members.get_mut(&id) else { return };
        state.video_moderator_muted = muted;
        if !state.in_lobby
            && let Some(mixer) = &self.mixer
        {
            let video = if muted { None } else { state.video_input };
            mixer.send(Command::SetVideo { participant: id, video });
        }
        let _ = self.events.send(RoomEvent::Muted {
            participant: id,
            audio: false,
            muted,
            by_moderator: true,
        });
    }

    /// Lets a participant in from the lobby: heard (unless force-muted), hearing, shown.
    fn admit(&mut self, id: ParticipantId) {
        let Some(state) = self.members.get_mut(&id).filter(|state| state.in_lobby) else {
            return;
        };
        state.in_lobby = false;
        info!(room = %self.room, participant = id.0, caller_account = %state.member.caller, "admitted from the lobby");
        if let Some(mixer) = &self.mixer {
            mixer.send(Command::SetMuted { participant: id, muted: state.moderator_muted });
            mixer.send(Command::SetGain { participant: id, gain_db: 0.0 });
            let video = state.video_input.filter(|_| !state.video_moderator_muted);
            mixer.send(Command::SetVideo { participant: id, video });
        }
        let _ = self.events.send(RoomEvent::Admitted { participant: id });
    }

    fn on_output(&mut self, output: Output) {
        if self.view.apply(&output, |id| self.members.contains_key(&id)) {
            self.pacer.changed();
        }
        let Some(mixer) = self.mixer.as_mut() else { return };
        match output {
            Output::Audio(packet) => {
                mixer.route_audio(&packet.listeners, packet.index, &packet.payload)
            }
            Output::Video(frame) => mixer.route_video(frame),
            Output::VideoEvent(VideoEvent::KeyframeNeeded(participant)) => {
                mixer.keyframe_needed(participant);
            }
            Output::VideoEvent(VideoEvent::InputFailed { participant, error }) => {
                warn!(room = %self.room, participant = participant.0, %error, "video input failed");
            }
            Output::VideoEvent(VideoEvent::TilesChanged(tiles)) => {
                debug!(room = %self.room, tiles = tiles.len(), "composite layout changed");
            }
            Output::Failed(error) => warn!(room = %self.room, %error, "mixer failure"),
            Output::AudioEvent(AudioEvent::VoiceActivity { participant, active }) => {
                debug!(room = %self.room, participant = participant.0, active, "voice activity");
                self.speakers.voice(participant, active, Instant::now());
                let _ =
                    self.events.send(RoomEvent::VoiceActivity { participant, speaking: active });
            }
            Output::AudioEvent(AudioEvent::Levels(levels)) => {
                let levels: Vec<String> =
                    levels.iter().map(|(id, level)| format!("{}:{level:.0}", id.0)).collect();
                trace!(room = %self.room, levels = %levels.join(" "), "audio levels (dBFS)");
            }
            Output::AudioEvent(AudioEvent::InputFailed { participant, error }) => {
                warn!(room = %self.room, participant = participant.0, %error, "audio input failed");
            }
            Output::AudioEvent(AudioEvent::OutputFailed { listeners, error }) => {
                warn!(room = %self.room, ?listeners, %error, "audio output failed");
            }
        }
    }

    fn snapshot(&self) -> Snapshot {
        let participants = self
            .members
            .iter()
            .map(|(id, state)| ParticipantView {
                id: *id,
                account: state.member.caller,
                device: state.member.device.clone(),
                call_id: state.member.call_id.clone(),
                moderator: state.member.moderator,
                audio_local_muted: state.local_muted,
                audio_moderator_muted: state.moderator_muted,
                video_muted: !self.view.tiles.get(id).is_some_and(|tile| tile.has_video),
                video_moderator_muted: state.video_moderator_muted,
                hand_raised: state.hand_raised,
                voice_activity: self.view.speaking.contains(id),
                in_lobby: state.in_lobby,
                active: self.active == Some(*id),
                joined_at: state.joined_at,
            })
            .collect();
        Snapshot { layout: self.layout.number(), participants }
    }

    /// Sends every member (lobby included: it sees who is in) the confInfo of the room now:
    /// everyone but the lobby, in joining order.
    fn send_conf_info(&self) {
        let entries: Vec<ParticipantInfo> = self
            .members
            .iter()
            .filter(|(_, state)| !state.in_lobby)
            .map(|(id, state)| {
                let member = &state.member;
                let tile = self.view.tiles.get(id);
                let rect = tile.map(|tile| tile.rect).unwrap_or_default();
                let stream = if state.video { "video" } else { "audio" };
                ParticipantInfo {
                    uri: format!("{}@ring.dht", member.caller),
                    device: member.device.clone(),
                    sink_id: format!("{}_{stream}_0", member.call_id),
                    active: self.active == Some(*id),
                    x: rect.x,
                    y: rect.y,
                    w: rect.w,
                    h: rect.h,
                    video_muted: !tile.is_some_and(|tile| tile.has_video),
                    audio_local_muted: state.local_muted,
                    audio_moderator_muted: state.moderator_muted,
                    is_moderator: member.moderator,
                    hand_raised: state.hand_raised,
                    voice_activity: self.view.speaking.contains(id),
                    recording: self.recording.is_some(),
                }
            })
            .collect();
        let size = video_config().size;
        let body = conf_info::conf_info(&entries, size.width, size.height, self.layout.number());
        debug!(room = %self.room, recipients = self.members.len(), bytes = body.len(), "confInfo sent");
        for state in self.members.values() {
            let call_id = state.member.call_id.clone();
            let event = CallEvent::ConfInfo { call_id, body: body.clone() };
            if state.member.events.try_send(event).is_err() {
                debug!(room = %self.room, call_id = %state.member.call_id, "confInfo dropped: the call's link is behind");
            }
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

/// What the mixer says of the conference: where the tiles are, who speaks.
#[derive(Debug, Default)]
struct ConferenceView {
    tiles: BTreeMap<ParticipantId, ParticipantTile>,
    speaking: HashSet<ParticipantId>,
}

impl ConferenceView {
    /// Takes in a mixer output; whether participants see a change: one in a member's tile or
    /// voice activity (bots and played files are in the mix, not in confInfo).
    fn apply(&mut self, output: &Output, is_member: impl Fn(ParticipantId) -> bool) -> bool {
        match output {
            Output::VideoEvent(VideoEvent::TilesChanged(tiles)) => {
                let tiles: BTreeMap<ParticipantId, ParticipantTile> =
                    tiles.iter().map(|tile| (tile.participant, *tile)).collect();
                let members_of = |tiles: &BTreeMap<ParticipantId, ParticipantTile>| {
                    tiles
                        .iter()
                        .filter(|(id, _)| is_member(**id))
                        .map(|(_, t)| *t)
                        .collect::<Vec<_>>()
                };
                let changed = members_of(&self.tiles) != members_of(&tiles);
                self.tiles = tiles;
                changed
            }
            Output::AudioEvent(AudioEvent::VoiceActivity { participant, active }) => {
                let changed = if *active {
                    self.speaking.insert(*participant)
                } else {
                    self.speaking.remove(participant)
                };
                changed && is_member(*participant)
            }
            _ => false,
        }
    }
}

/// The mixer's next output; pending while there is no mixer.
async fn next_output(outputs: &mut Option<mpsc::Receiver<Output>>) -> Option<Output> {
    match outputs {
        Some(outputs) => outputs.recv().await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `at`, or forever.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}
