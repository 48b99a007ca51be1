//! A room's owner task: the one place that holds who is in the room. Calls, participants'
//! Jami clients (confOrder), the door and the admin API all talk to it with [`RoomCommand`]s
//! over one bounded channel. The decisions are the sans-IO [`ConferenceCore`]'s; this task
//! carries out its effects: it runs the mixer, routes the mixer's output to the calls, sends
//! each call what the core has for it, and tells the room's event stream.

mod seats;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdv_admin_api::BotLink;
use rdv_mixer::audio::ParticipantId;
use rdv_mixer::engine::AudioEvent;
use rdv_mixer::media_room::{Command, CpuClock, MediaRoom, Output};
use rdv_mixer::video::VideoEvent;
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{Instrument as _, debug, info, trace, warn};

use super::call::CallEvent;
use super::mix_routes::{Mixer, Receivers, video_config};
use super::playback::{PlayRequest, Player};
use super::recording::Recorder;
use crate::conference::action::Action;
use crate::conference::core::{
    ActionError, Admission, CallOrder, ConferenceCore, Effect, JoinError, JoinRequest, MediaShape,
    Roles, Snapshot,
};
use crate::conference::event::{PlaybackEnd, RecordingEnd, RoomEvent};
use crate::conference::order::Order;
use crate::identity::AccountId;
use crate::media::media_file::MediaInfo;
use crate::room::{Refusal, RoomName, RoomPolicy};
use crate::sip::CallId;
use crate::telemetry::metrics::{CallOutcome, Metrics};

/// Commands waiting for the owner task; senders from the network never wait for room in it
/// (their command is dropped and logged), calls joining and the admin API do.
const COMMAND_QUEUE: usize = 256;
/// Events kept for slow subscribers of the room's event stream.
const EVENT_BUFFER: usize = 1024;

/// What the owner task is asked to do.
pub(super) enum RoomCommand {
    /// Whether an account may call the room now (a connection request at the door).
    Admit { account: AccountId, reply: oneshot::Sender<Result<Admission, Refusal>> },
    /// A call joins the room (admitted by the policy as it stands).
    Join {
        request: JoinRequest,
        events: mpsc::Sender<CallEvent>,
        reply: oneshot::Sender<Result<JoinedCall, JoinFailure>>,
    },
    /// A participant's call sent a new offer (hold, resume, video on or off).
    Renegotiate {
        participant: ParticipantId,
        media: MediaShape,
        reply: oneshot::Sender<Result<CallRoutes, JoinFailure>>,
    },
    /// A participant left (its call ended).
    Leave(ParticipantId),
    /// A participant muted or unmuted its own microphone.
    LocalMute { participant: ParticipantId, muted: bool },
    /// confOrders that came on a participant's call, checked against its rights.
    Orders { participant: ParticipantId, orders: Vec<Order> },
    /// A participant sent a text message in its call.
    Chat { participant: ParticipantId, text: String },
    /// An action from the operator (admin API, CLI): always permitted.
    Act { action: Action, reply: oneshot::Sender<Result<(), ActionError>> },
    /// The room's stored policy.
    Policy(RoomPolicy),
    /// The room's accounts' stored roles.
    Roles(Roles),
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

/// Why a call could not join the room, or go on after a new offer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum JoinFailure {
    /// The room refuses it (the caller's account or the room's state; see [`JoinError`]).
    #[error("{0}")]
    Refused(#[from] JoinError),
    /// The call's participant is no longer in the room (hung up meanwhile).
    #[error("the call's participant has left the room")]
    Gone,
    /// The mixer could not start (the server's fault).
    #[error("the mixer cannot start: {0}")]
    Mixer(String),
    /// The room has stopped.
    #[error("the room is not running")]
    NotRunning,
}

/// A call's membership of the room: it leaves the room when this is dropped.
pub(super) struct Membership {
    id: ParticipantId,
    owner: RoomHandle,
}

impl Membership {
    /// The participant's id in the room.
    pub(super) fn id(&self) -> ParticipantId {
        self.id
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.owner.leave(self.id);
    }
}

/// Where a call's media goes in the mix, and what the mix sends it.
pub(super) struct CallRoutes {
    /// The participant.
    pub(super) id: ParticipantId,
    /// The running mixer.
    pub(super) mixer: Arc<MediaRoom>,
    /// Its mix-minus and composite.
    pub(super) receivers: Receivers,
}

/// A call that joined.
pub(super) struct JoinedCall {
    /// Its membership (held by the call for as long as it lasts).
    pub(super) membership: Membership,
    /// Its media's routes.
    pub(super) routes: CallRoutes,
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
    commands: mpsc::Sender<RoomCommand>,
    shared: Arc<Shared>,
}

/// What the handles and the owner task share besides the command channel.
struct Shared {
    room: RoomName,
    /// Participants with a call, as the owner last counted them.
    head_count: AtomicUsize,
    events: broadcast::Sender<RoomEvent>,
    metrics: Arc<Metrics>,
    /// The running mixer's CPU clock, for the metrics.
    mixer_cpu: Mutex<Option<CpuClock>>,
    /// The server is draining: no new callers.
    draining: Arc<AtomicBool>,
}

impl RoomHandle {
    /// Starts the room's owner task with the room's stored `policy` and `roles`; it ends
    /// when every handle is dropped.
    pub(super) fn spawn(
        room: RoomName,
        metrics: Arc<Metrics>,
        draining: Arc<AtomicBool>,
        (policy, roles): (RoomPolicy, Roles),
    ) -> Self {
        let (commands, inbox) = mpsc::channel(COMMAND_QUEUE);
        let shared = Arc::new(Shared {
            room: room.clone(),
            head_count: AtomicUsize::new(0),
            events: broadcast::channel(EVENT_BUFFER).0,
            metrics,
            mixer_cpu: Mutex::new(None),
            draining,
        });
        let size = video_config().size;
        let owner = RoomOwner {
            room: room.clone(),
            core: ConferenceCore::new(policy, roles, (size.width, size.height)),
            calls: HashMap::new(),
            bots: HashSet::new(),
            recording: None,
            players: BTreeMap::new(),
            mixer: None,
            commands: commands.downgrade(),
            shared: Arc::clone(&shared),
        };
        let span = tracing::info_span!("room_owner", room = %room);
        tokio::spawn(owner.run(inbox).instrument(span));
        Self { commands, shared }
    }

    /// Whether `account` may call the room now, and how it would join.
    pub(super) async fn admit(&self, account: AccountId) -> Result<Admission, AdmitError> {
        if self.is_draining() {
            return Err(AdmitError::Refused(Refusal::Draining));
        }
        self.ask(|reply| RoomCommand::Admit { account, reply })
            .await
            .ok_or(AdmitError::NotRunning)?
            .map_err(AdmitError::Refused)
    }

    /// Joins a call to the room, starting the mixer if it is the first; `events` reaches the
    /// link that carries the call.
    pub(super) async fn join(
        &self,
        request: JoinRequest,
        events: mpsc::Sender<CallEvent>,
    ) -> Result<JoinedCall, JoinFailure> {
        if self.is_draining() {
            return Err(JoinError::Refused(Refusal::Draining).into());
        }
        self.ask(|reply| RoomCommand::Join { request, events, reply })
            .await
            .ok_or(JoinFailure::NotRunning)?
    }

    /// A participant's call has a new offer: its media change, nothing else; refused when
    /// its caller was banned meanwhile.
    pub(super) async fn renegotiate(
        &self,
        participant: ParticipantId,
        media: MediaShape,
    ) -> Result<CallRoutes, JoinFailure> {
        self.ask(|reply| RoomCommand::Renegotiate { participant, media, reply })
            .await
            .ok_or(JoinFailure::NotRunning)?
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
            warn!(room = %self.shared.room, "the room is overloaded: a participant's command was dropped");
        }
    }

    /// Participant `participant` muted or unmuted its own microphone.
    pub(super) fn set_local_muted(&self, participant: ParticipantId, muted: bool) {
        self.offer(RoomCommand::LocalMute { participant, muted });
    }

    /// confOrders that came on participant `participant`'s call.
    pub(super) fn orders(&self, participant: ParticipantId, orders: Vec<Order>) {
        self.offer(RoomCommand::Orders { participant, orders });
    }

    /// A text message that came on participant `participant`'s call.
    pub(super) fn chat_from(&self, participant: ParticipantId, text: String) {
        self.offer(RoomCommand::Chat { participant, text });
    }

    /// The room's stored policy, as it stands.
    pub(super) fn set_policy(&self, policy: RoomPolicy) {
        self.offer(RoomCommand::Policy(policy));
    }

    /// The room's accounts' stored roles, as they stand.
    pub(super) fn set_roles(&self, roles: Roles) {
        self.offer(RoomCommand::Roles(roles));
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
        &self.shared.room
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
        self.shared.head_count.load(Ordering::Relaxed)
    }

    /// The room's events from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<RoomEvent> {
        self.shared.events.subscribe()
    }

    /// Whether the server is draining (new callers are refused).
    pub(super) fn is_draining(&self) -> bool {
        self.shared.draining.load(Ordering::Relaxed)
    }

    /// The server's metrics.
    pub(super) fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    /// CPU time of the room's running mixer (zero when none runs).
    pub(super) fn mixer_cpu(&self) -> Duration {
        let clock = self.shared.mixer_cpu.lock().unwrap_or_else(PoisonError::into_inner);
        clock.as_ref().and_then(CpuClock::elapsed).unwrap_or_default()
    }

    /// Counts a call that could not be set up and tells the event stream why.
    pub(super) fn call_failed(&self, account: AccountId, reason: String) {
        self.shared.metrics.call(CallOutcome::Failed);
        self.publish(RoomEvent::CallFailed { account, reason });
    }

    /// Tells the room's event stream about something seen outside the owner task.
    pub(super) fn publish(&self, event: RoomEvent) {
        let _ = self.shared.events.send(event);
    }
}

/// Why a caller may not call the room.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum AdmitError {
    /// The room's policy refuses it.
    #[error("{0}")]
    Refused(Refusal),
    /// The room has stopped.
    #[error("the room is not running")]
    NotRunning,
}

/// Where a participant's calls get what the core has for them.
struct CallLink {
    call_id: CallId,
    events: mpsc::Sender<CallEvent>,
}

/// The owner task's state.
struct RoomOwner {
    room: RoomName,
    /// Who is in the room and what it decided: the decisions are all the core's.
    core: ConferenceCore,
    /// The links of the participants with a call.
    calls: HashMap<ParticipantId, CallLink>,
    /// Bots in the audio (not members: no call, not in confInfo).
    bots: HashSet<ParticipantId>,
    /// The recording, if any: its listener in the mix and its file.
    recording: Option<(ParticipantId, Recorder)>,
    /// Files playing into the room (participants without a call).
    players: BTreeMap<ParticipantId, Player>,
    mixer: Option<Mixer>,
    /// For participants' handles, without keeping the task alive.
    commands: mpsc::WeakSender<RoomCommand>,
    shared: Arc<Shared>,
}

impl RoomOwner {
    async fn run(mut self, mut inbox: mpsc::Receiver<RoomCommand>) {
        let mut outputs: Option<mpsc::Receiver<Output>> = None;
        loop {
            let wake = self.core.poll_timeout();
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
            self.core.handle_timeout(Instant::now());
            self.carry_out();
            if self.mixer.is_some() && self.core.is_empty() && self.bots.is_empty() {
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

    /// A handle on this room for a participant's side (a call's, a bot's).
    fn handle(&self) -> Result<RoomHandle, String> {
        let commands = self.commands.upgrade().ok_or("the room is stopping")?;
        Ok(RoomHandle { commands, shared: Arc::clone(&self.shared) })
    }

    /// Carries out what the core decided.
    fn carry_out(&mut self) {
        while let Some(effect) = self.core.poll_effect() {
            match effect {
                Effect::Mix(Command::Remove(id)) => {
                    if let Some(mixer) = &mut self.mixer {
                        mixer.remove(id);
                    }
                    self.calls.remove(&id);
                }
                Effect::Mix(command) => {
                    if let Some(mixer) = &self.mixer {
                        mixer.send(command);
                    }
                }
                Effect::Call { participant, order } => self.to_call(participant, order),
                Effect::Event(event) => {
                    let _ = self.shared.events.send(event);
                }
            }
        }
        self.shared.head_count.store(self.core.len(), Ordering::Relaxed);
    }

    /// Hands one participant's link what the core has for its call; a link that is behind
    /// loses it (confInfo is sent again at the next change).
    fn to_call(&self, participant: ParticipantId, order: CallOrder) {
        let Some(link) = self.calls.get(&participant) else { return };
        let call_id = link.call_id.clone();
        let event = match order {
            CallOrder::ConfInfo(body) => CallEvent::ConfInfo { call_id, body },
            CallOrder::Chat(text) => CallEvent::Chat { call_id, text },
            CallOrder::Hangup => CallEvent::Hangup(call_id),
        };
        if link.events.try_send(event).is_err() {
            debug!(participant = participant.0, call_id = %link.call_id, "dropped a message for a call whose link is behind");
        }
    }

    async fn on_command(
        &mut self,
        command: RoomCommand,
        outputs: &mut Option<mpsc::Receiver<Output>>,
    ) {
        let now = Instant::now();
        match command {
            RoomCommand::Admit { account, reply } => {
                let _ = reply.send(self.core.admit(account));
            }
            RoomCommand::Join { request, events, reply } => {
                let joined = self.join(request, events, outputs).await;
                if let Err(Ok(joined)) = reply.send(joined) {
                    // The call gave up waiting: its participant leaves at once.
                    drop(joined);
                }
            }
            RoomCommand::Renegotiate { participant, media, reply } => {
                let routes = if !self.core.contains(participant) {
                    // Hung up by the room while its re-INVITE was on the way.
                    Err(JoinFailure::Gone)
                } else {
                    match self.core.renegotiate(participant, media, now) {
                        Ok(()) => self.routes(participant, media),
                        Err(refusal) => Err(JoinError::Refused(refusal).into()),
                    }
                };
                let _ = reply.send(routes);
            }
            RoomCommand::Leave(id) => self.leave(id, now),
            RoomCommand::LocalMute { participant, muted } => {
                self.core.local_mute(participant, muted);
            }
            RoomCommand::Orders { participant, orders } => self.core.orders(participant, orders),
            RoomCommand::Chat { participant, text } => self.core.chat(participant, text),
            RoomCommand::Act { action, reply } => {
                info!(?action, "operator action");
                let _ = reply.send(self.core.act(action));
            }
            RoomCommand::Policy(policy) => self.core.set_policy(policy),
            RoomCommand::Roles(roles) => self.core.set_roles(roles),
            RoomCommand::Snapshot(reply) => {
                let _ = reply.send(self.core.snapshot());
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

    /// A call joins through the core (which applies the policy as it stands), with the
    /// mixer started for it.
    async fn join(
        &mut self,
        request: JoinRequest,
        events: mpsc::Sender<CallEvent>,
        outputs: &mut Option<mpsc::Receiver<Output>>,
    ) -> Result<JoinedCall, JoinFailure> {
        let owner = self.handle().map_err(|_| JoinFailure::NotRunning)?;
        // Refused calls do not start a mixer.
        self.core.admit(request.caller.account).map_err(JoinError::Refused)?;
        self.ensure_mixer(outputs).await.map_err(JoinFailure::Mixer)?;
        let (call_id, media) = (request.call_id.clone(), request.media);
        let (id, _) = self.core.join(request, Instant::now())?;
        self.calls.insert(id, CallLink { call_id, events });
        let routes = self.routes(id, media)?;
        let membership = Membership { id, owner };
        Ok(JoinedCall { membership, routes })
    }

    /// New routes for participant `id`'s media (its earlier media's stop), after the core's
    /// effects have reached the mixer.
    fn routes(&mut self, id: ParticipantId, media: MediaShape) -> Result<CallRoutes, JoinFailure> {
        self.carry_out();
        let mixer = self.mixer.as_mut().ok_or(JoinFailure::NotRunning)?;
        let receivers = mixer.route(id, media.video);
        Ok(CallRoutes { id, mixer: Arc::clone(&mixer.room), receivers })
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
        *self.shared.mixer_cpu.lock().unwrap_or_else(PoisonError::into_inner) =
            mixer.room.cpu_clock().cloned();
        self.mixer = Some(mixer);
        *outputs = Some(started_outputs);
        self.core.mixer_started();
        info!(layout = ?self.core.layout(), "mixer started");
        self.carry_out();
        Ok(())
    }

    fn leave(&mut self, id: ParticipantId, now: Instant) {
        if self.bots.remove(&id) {
            if let Some(mixer) = &mut self.mixer {
                mixer.remove(id);
            }
            return info!(participant = id.0, bots = self.bots.len(), "bot left");
        }
        self.core.leave(id, now);
    }

    fn stop_mixer(&mut self) {
        let playing: Vec<ParticipantId> = self.players.keys().copied().collect();
        for id in playing {
            self.stop_playback(id, PlaybackEnd::Stopped);
        }
        if let Some((_, recorder)) = self.recording.take() {
            // Its route goes with the mixer: the file is finished on the recorder's thread.
            info!(file = %recorder.file.display(), "recording ends: the room is empty");
            let (room, events) = (self.room.clone(), self.shared.events.clone());
            tokio::spawn(async move {
                seats::finish_recording(recorder, &room, &events, RecordingEnd::RoomEmpty).await;
            });
            self.core.set_recording(false);
        }
        if let Some(mixer) = self.mixer.take() {
            if mixer.dropped > 0 || mixer.dropped_video > 0 {
                info!(
                    dropped = mixer.dropped,
                    dropped_video = mixer.dropped_video,
                    "packets dropped for slow calls"
                );
            }
            let clock = self.shared.mixer_cpu.lock().unwrap_or_else(PoisonError::into_inner).take();
            let cpu = clock.as_ref().and_then(CpuClock::elapsed).unwrap_or_default();
            self.shared.metrics.mixer_stopped(cpu);
            mixer.stop();
            info!(cpu_ms = cpu.as_millis(), "mixer stopped: the room is empty");
        }
    }

    fn on_output(&mut self, output: Output) {
        self.core.handle_mixer_output(&output, Instant::now());
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
                warn!(participant = participant.0, %error, "video input failed");
            }
            Output::VideoEvent(VideoEvent::TilesChanged(tiles)) => {
                debug!(tiles = tiles.len(), "composite layout changed");
            }
            Output::Failed(error) => warn!(%error, "mixer failure"),
            Output::AudioEvent(AudioEvent::VoiceActivity { participant, active }) => {
                debug!(participant = participant.0, active, "voice activity");
            }
            Output::AudioEvent(AudioEvent::Levels(levels)) => {
                let levels: Vec<String> =
                    levels.iter().map(|(id, level)| format!("{}:{level:.0}", id.0)).collect();
                trace!(levels = %levels.join(" "), "audio levels (dBFS)");
            }
            Output::AudioEvent(AudioEvent::InputFailed { participant, error }) => {
                warn!(participant = participant.0, %error, "audio input failed");
            }
            Output::AudioEvent(AudioEvent::OutputFailed { listeners, error }) => {
                warn!(?listeners, %error, "audio output failed");
            }
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
