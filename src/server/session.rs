//! A device link once ICE-TCP is nominated: TLS (the room is the client) over the framed
//! stream, the multiplexed socket inside it, and SIP on the `sip` channels. One task per
//! link; it ends when the caller closes, a timeout fires or the peer breaks a protocol, and
//! every resource goes with it.

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ClientConnection;
use sipx_sip::{Limits, Message, Method, StreamParser};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::call::{CallEvent, CallLabel, CallMedia};
use super::link::IceLink;
use super::room_owner::{JoinFailure, Membership, RoomHandle};
use crate::conference::core::{Caller, JoinError, JoinRequest};
use crate::conference::event::RoomEvent;
use crate::conference::info as conf_info;
use crate::conference::order;
use crate::identity::{AccountId, DeviceId, DeviceLongId};
use crate::net::ice::tcp::IceEvent;
use crate::net::message_channel::{self, MessageReader};
use crate::net::mux::{ChannelId, Multiplexer, MuxEvent};
use crate::net::tls::peer_name;
use crate::room::RoomName;
use crate::sip::CallId;
use crate::sip::dialog::{self, Dialog};
use crate::sip::sdp;
use crate::sip::uas;
use crate::telemetry::metrics::CallOutcome;

/// Longest TLS handshake (Jami allows 40 s; a live peer needs well under one).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// A link with no traffic at all for this long is closed, at the least (Jami's keep-alives
/// come every 20–30 s; our beacons probe it in between).
const MIN_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Longest wait to write our close when the link ends.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// `sip` channels open at once on one link.
const MAX_SIP_CHANNELS: usize = 4;
/// `msg:` channels open at once on one link (today's clients open one per link).
const MAX_MESSAGE_CHANNELS: usize = 2;
/// Calls at once on one link.
const MAX_CALLS: usize = 4;
/// Events from the calls' media queued for the link.
const CALL_EVENTS: usize = 16;
/// Content type of an in-call text message, as Jami sends and shows it.
const CHAT_CONTENT_TYPE: &str = "text/plain";
/// Longest in-call message passed on, in characters (longer ones are cut).
const MAX_CHAT_CHARS: usize = 4096;

/// Why a link ended.
#[derive(Debug, thiserror::Error)]
enum SessionEnd {
    #[error("the caller closed the connection")]
    Closed,
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("TLS handshake not done within {0:?}")]
    HandshakeTimeout(Duration),
    #[error("ICE: {0}")]
    Ice(crate::net::ice::tcp::IceError),
    #[error("multiplexer: {0}")]
    Mux(#[from] crate::net::mux::MuxError),
    #[error("no traffic for {0:?}")]
    Idle(Duration),
    #[error("the caller stopped answering beacons")]
    BeaconTimeout,
    #[error("the server is stopping")]
    Shutdown,
}

/// What a link needs of its room.
pub(super) struct LinkContext {
    /// The room's name.
    pub(super) room: RoomName,
    /// Its device id (our SIP Contact).
    pub(super) device: DeviceId,
    /// Its long id (the name of the `msg:` channel callers open to it).
    pub(super) device_long_id: DeviceLongId,
    /// Its conference.
    pub(super) conference: RoomHandle,
    /// The calling device's long id (confInfo's `device`).
    pub(super) caller_device: DeviceLongId,
    /// Silence after which the link is probed with a beacon.
    pub(super) beacon_interval: Duration,
    /// When the caller's connection request was verified: its first call's setup time
    /// counts from there.
    pub(super) requested_at: Instant,
}

/// Serves one device link until it ends, probing it with a beacon after the context's
/// beacon interval without traffic, and closing it cleanly when `stop` turns true.
pub(super) async fn serve(
    link: IceLink,
    tls: Arc<rustls::ClientConfig>,
    caller: AccountId,
    context: LinkContext,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let started = Instant::now();
    let LinkContext {
        room,
        device,
        device_long_id,
        conference,
        caller_device,
        beacon_interval,
        requested_at,
    } = context;
    let room = &room;
    let caller_info = Caller { account: caller, device: caller_device };
    let ids = (device, device_long_id);
    match Session::new(link, tls, room.clone(), ids, caller_info, conference.clone()) {
        Ok(mut session) => {
            session.requested_at = Some(requested_at);
            let end = tokio::select! {
                end = session.run(beacon_interval) => end,
                _ = stop.wait_for(|stopping| *stopping) => SessionEnd::Shutdown,
            };
            session.close().await;
            info!(
                room = %room,
                caller_account = %caller,
                reason = %end,
                seconds = started.elapsed().as_secs(),
                "device link closed"
            );
        }
        Err(error) => {
            warn!(room = %room, caller_account = %caller, %error, "TLS setup failed");
            conference.call_failed(caller, format!("TLS: {error}"));
        }
    }
}

struct Session {
    link: IceLink,
    tls: ClientConnection,
    mux: Multiplexer,
    sip: HashMap<ChannelId, StreamParser>,
    /// Open `msg:` channels: where today's clients send, and get, text messages.
    messages: HashMap<ChannelId, MessageReader>,
    /// `msg:` and our long id: the one `msg:` channel name we accept.
    message_channel_name: String,
    room: RoomName,
    device: DeviceId,
    caller_info: Caller,
    to_tag: String,
    established: bool,
    /// Calls by Call-ID (unique on the link, and in the room).
    calls: HashMap<CallId, Call>,
    conference: RoomHandle,
    /// What the calls' media asks of the link.
    call_events: (mpsc::Sender<CallEvent>, mpsc::Receiver<CallEvent>),
    /// INVITEs and re-INVITEs waiting for the room's answer, with their channel.
    pending_invites: Vec<(ChannelId, sipx_sip::Request)>,
    /// When the connection request was verified, until the link's first call is answered.
    requested_at: Option<Instant>,
}

/// An answered call on this link.
struct Call {
    /// Its participant in the room (it leaves when the call is dropped).
    membership: Membership,
    media: CallMedia,
    dialog: Option<Dialog>,
    /// The `sip` channel its INVITE came on.
    channel: ChannelId,
}

impl Session {
    fn new(
        link: IceLink,
        config: Arc<rustls::ClientConfig>,
        room: RoomName,
        (device, device_long_id): (DeviceId, DeviceLongId),
        caller_info: Caller,
        conference: RoomHandle,
    ) -> Result<Self, rustls::Error> {
        let tls = ClientConnection::new(config, peer_name(link.remote.ip()))?;
        Ok(Self {
            link,
            tls,
            mux: Multiplexer::new(),
            sip: HashMap::new(),
            messages: HashMap::new(),
            message_channel_name: format!("{}{device_long_id}", message_channel::SCHEME),
            room,
            device,
            caller_info,
            to_tag: format!("{:016x}", rand::random::<u64>()),
            established: false,
            calls: HashMap::new(),
            conference,
            call_events: mpsc::channel(CALL_EVENTS),
            pending_invites: Vec::new(),
            requested_at: None,
        })
    }

    async fn run(&mut self, beacon_interval: Duration) -> SessionEnd {
        let idle_timeout = MIN_IDLE_TIMEOUT.max(beacon_interval * 3);
        let handshake_deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        let mut last_traffic = Instant::now();
        let mut next_beacon = Instant::now() + beacon_interval;
        let mut buffer = vec![0; 32 * 1024];
        if !self.link.early_data.is_empty() {
            let early = std::mem::take(&mut self.link.early_data);
            if let Err(end) = self.on_tls_bytes(&early) {
                return end;
            }
            self.answer_invites().await;
        }
        loop {
            if let Err(end) = self.flush().await {
                return end;
            }
            let now = Instant::now();
            let mut wake = (last_traffic + idle_timeout).min(next_beacon);
            if !self.established {
                wake = wake.min(handshake_deadline);
            }
            for timer in
                [self.link.ice.poll_timeout(), self.mux.poll_timeout()].into_iter().flatten()
            {
                wake = wake.min(timer);
            }
            tokio::select! {
                read = self.link.stream.read(&mut buffer) => {
                    let count = match read {
                        Ok(0) => return SessionEnd::Closed,
                        Ok(count) => count,
                        Err(error) => return SessionEnd::Io(error),
                    };
                    last_traffic = Instant::now();
                    for event in self.link.ice.receive(&buffer[..count], last_traffic) {
                        match event {
                            IceEvent::Data(data) => {
                                if let Err(end) = self.on_tls_bytes(&data) {
                                    return end;
                                }
                            }
                            IceEvent::Failed(error) => return SessionEnd::Ice(error),
                            IceEvent::Connected => {}
                        }
                    }
                    if !self.pending_invites.is_empty() {
                        // Channel answers first: the admission check below reads the store,
                        // and today's clients drop the link when one waits 3 s.
                        if let Err(end) = self.flush().await {
                            return end;
                        }
                        self.answer_invites().await;
                    }
                }
                Some(event) = self.call_events.1.recv() => self.on_call_event(event),
                () = tokio::time::sleep(wake.saturating_duration_since(now)) => {
                    let now = Instant::now();
                    if !self.established && now >= handshake_deadline {
                        return SessionEnd::HandshakeTimeout(HANDSHAKE_TIMEOUT);
                    }
                    if now >= last_traffic + idle_timeout {
                        return SessionEnd::Idle(idle_timeout);
                    }
                    if let Some(IceEvent::Failed(error)) = self.link.ice.handle_timeout(now) {
                        return SessionEnd::Ice(error);
                    }
                    if let Some(MuxEvent::BeaconTimeout) = self.mux.handle_timeout(now) {
                        return SessionEnd::BeaconTimeout;
                    }
                    if now >= next_beacon {
                        next_beacon = now + beacon_interval;
                        if now >= last_traffic + beacon_interval {
                            self.mux.send_beacon(now);
                        }
                    }
                }
            }
        }
    }

    /// TLS records from the caller: decrypt, then hand the plaintext to the multiplexer.
    fn on_tls_bytes(&mut self, mut data: &[u8]) -> Result<(), SessionEnd> {
        while !data.is_empty() {
            self.tls.read_tls(&mut data)?;
            let state = self.tls.process_new_packets()?;
            if !self.established && !self.tls.is_handshaking() {
                self.established = true;
                info!(
                    room = %self.room,
                    caller_account = %self.caller_info.account,
                    version = ?self.tls.protocol_version(),
                    suite = ?self.tls.negotiated_cipher_suite().map(|s| s.suite()),
                    "TLS established with the caller's published chain"
                );
            }
            let mut plaintext = vec![0; state.plaintext_bytes_to_read()];
            if !plaintext.is_empty() {
                self.tls.reader().read_exact(&mut plaintext)?;
                let events = self.mux.receive(&plaintext)?;
                self.on_mux_events(events);
            }
        }
        Ok(())
    }

    fn on_mux_events(&mut self, events: Vec<MuxEvent>) {
        for event in events {
            match event {
                MuxEvent::ChannelRequested { channel, name } => {
                    self.on_channel_request(channel, &name)
                }
                MuxEvent::Data { channel, data } => {
                    if self.messages.contains_key(&channel) {
                        self.on_message_channel_bytes(channel, &data);
                    } else {
                        self.on_sip_bytes(channel, &data);
                    }
                }
                MuxEvent::ChannelClosed(channel) => {
                    self.sip.remove(&channel);
                    self.messages.remove(&channel);
                }
                MuxEvent::PeerVersion(_) | MuxEvent::BeaconTimeout => {}
            }
        }
    }

    /// Answers a channel request at once (today's clients tear the link down when a request
    /// waits 3 s): `sip` and our `msg:` are accepted up to their caps; everything else
    /// (`svcdisc://query`, `swarm://…`, `git://…`, `data-transfer://…`, another device's
    /// `msg:`) is declined.
    fn on_channel_request(&mut self, channel: ChannelId, name: &str) {
        let accepted = if name == "sip" && self.sip.len() < MAX_SIP_CHANNELS {
            self.sip.insert(channel, StreamParser::new(Limits::stream()));
            true
        } else if name == self.message_channel_name && self.messages.len() < MAX_MESSAGE_CHANNELS {
            self.messages.insert(channel, MessageReader::default());
            true
        } else {
            false
        };
        if accepted {
            self.mux.accept(channel);
            debug!(room = %self.room, caller_account = %self.caller_info.account, channel = channel.0, %name, "channel open");
        } else {
            self.mux.decline(channel);
            debug!(room = %self.room, caller_account = %self.caller_info.account, %name, "declined a channel");
        }
    }

    /// Closes a channel whose caller broke its protocol (SIP or `msg:` that does not parse);
    /// the link and its other channels go on.
    fn give_up_channel(&mut self, channel: ChannelId, error: &dyn std::fmt::Display) {
        let kind = if self.messages.remove(&channel).is_some() { "msg:" } else { "sip" };
        self.sip.remove(&channel);
        self.mux.close(channel);
        warn!(room = %self.room, caller_account = %self.caller_info.account, channel = channel.0, kind = %kind, %error, "unreadable channel closed");
    }

    /// Bytes on a `msg:` channel: text messages from a caller in a call become its chat in
    /// the room; other types (read receipts, invitations) are not for a room.
    fn on_message_channel_bytes(&mut self, channel: ChannelId, data: &[u8]) {
        let Some(reader) = self.messages.get_mut(&channel) else { return };
        let messages = match reader.push(data) {
            Ok(messages) => messages,
            Err(error) => return self.give_up_channel(channel, &error),
        };
        for message in messages {
            if message.content_type != message_channel::TEXT_PLAIN {
                debug!(room = %self.room, caller_account = %self.caller_info.account, content_type = %message.content_type, "ignored a message");
                continue;
            }
            // A link's calls all come from one device: its first call speaks for it.
            let Some(participant) = self.calls.values().next().map(|c| c.membership.id()) else {
                info!(room = %self.room, caller_account = %self.caller_info.account, "text message from a caller not in a call: dropped");
                continue;
            };
            let text = chat_text(message.content.as_bytes());
            if !text.trim().is_empty() {
                self.conference.chat_from(participant, text);
            }
        }
    }

    fn on_sip_bytes(&mut self, channel: ChannelId, data: &[u8]) {
        let Some(parser) = self.sip.get_mut(&channel) else { return };
        let messages = match parser.push(data) {
            Ok(messages) => messages,
            Err(error) => return self.give_up_channel(channel, &error),
        };
        for message in messages {
            let Message::Request(request) = message else { continue };
            info!(
                room = %self.room,
                caller_account = %self.caller_info.account,
                method = %request.method,
                "SIP request"
            );
            let responses = match request.method {
                Method::Invite => {
                    // Answered once the room has taken it in (answer_invites).
                    self.pending_invites.push((channel, request));
                    continue;
                }
                Method::Bye | Method::Cancel => {
                    if let Some(call) = uas::call_id(&request).and_then(|id| self.calls.remove(&id))
                    {
                        info!(room = %self.room, caller_account = %self.caller_info.account, streams = call.media.streams.len(), "call ended by the caller");
                    }
                    uas::respond(&request, &self.to_tag)
                }
                Method::Info => {
                    self.on_info(&request);
                    uas::respond(&request, &self.to_tag)
                }
                Method::Message => {
                    self.on_message(&request);
                    uas::respond(&request, &self.to_tag)
                }
                _ => uas::respond(&request, &self.to_tag),
            };
            for response in responses {
                self.mux.send(channel, &response);
            }
        }
    }

    /// Answers the INVITEs received: each goes to the room, which applies its policy as it
    /// stands now (the caller may have been banned, or the room locked, since its link
    /// opened).
    async fn answer_invites(&mut self) {
        for (channel, request) in std::mem::take(&mut self.pending_invites) {
            let responses = self.on_invite(&request, channel).await;
            for response in responses {
                self.mux.send(channel, &response);
            }
        }
    }

    /// A caller's in-dialog MESSAGE: a confOrder is handed to the room, a text message
    /// (in-call chat) becomes a room event; anything else is only answered.
    fn on_message(&self, request: &sipx_sip::Request) {
        let content_type = request
            .headers
            .value(&sipx_sip::HeaderName::ContentType)
            .map(|value| String::from_utf8_lossy(&value).trim().to_ascii_lowercase());
        let Some(participant) =
            uas::call_id(request).and_then(|id| self.calls.get(&id)).map(|c| c.membership.id())
        else {
            return;
        };
        let media_type = content_type.as_deref().and_then(|value| value.split(';').next());
        if media_type.map(str::trim) == Some(CHAT_CONTENT_TYPE) {
            let text = chat_text(request.body());
            if !text.trim().is_empty() {
                self.conference.chat_from(participant, text);
            }
            return;
        }
        if content_type.as_deref() != Some(&order::CONTENT_TYPE.to_ascii_lowercase()) {
            return;
        }
        match order::parse(request.body()) {
            Ok(orders) => {
                self.conference.orders(participant, orders);
            }
            Err(error) => {
                warn!(room = %self.room, caller_account = %self.caller_info.account, %error, "confOrder refused");
            }
        }
    }

    /// A caller's media control INFO: a keyframe request, or its microphone's mute state.
    fn on_info(&self, request: &sipx_sip::Request) {
        let Some(call) = uas::call_id(request).and_then(|id| self.calls.get(&id)) else {
            return;
        };
        match dialog::MediaControl::parse(request.body()) {
            Some(dialog::MediaControl::KeyframeRequest) => {
                debug!(room = %self.room, caller_account = %self.caller_info.account, "the caller asks for a keyframe");
                call.media.request_keyframe();
            }
            Some(dialog::MediaControl::MuteState(muted)) => {
                info!(room = %self.room, caller_account = %self.caller_info.account, muted, "the caller's microphone mute changed");
                self.conference.set_local_muted(call.membership.id(), muted);
            }
            Some(dialog::MediaControl::VoiceActivity(_)) | None => {}
        }
    }

    /// What a call's media asks: a keyframe request to the caller, or the end of a call
    /// whose caller vanished.
    fn on_call_event(&mut self, event: CallEvent) {
        match event {
            CallEvent::KeyframeWanted(call_id) => {
                let local = self.link.local;
                let Some(call) = self.calls.get_mut(&call_id) else { return };
                let Some(dialog) = call.dialog.as_mut() else { return };
                if let Some(info) = dialog.request(
                    Method::Info,
                    local,
                    dialog::MEDIA_CONTROL,
                    dialog::KEYFRAME_REQUEST,
                ) {
                    debug!(room = %self.room, caller_account = %self.caller_info.account, call_id = %call_id, "keyframe requested from the caller");
                    self.mux.send(call.channel, &info);
                }
            }
            CallEvent::ConfInfo { call_id, body } => {
                self.send_message(&call_id, conf_info::CONTENT_TYPE, &body);
            }
            CallEvent::Chat { call_id, text } => {
                // Today's clients read texts on their msg: channel only (daemon 6dc1e47a69);
                // 13.7 opens none and reads them as in-call SIP MESSAGEs.
                let message =
                    message_channel::encode(message_channel::new_id(), CHAT_CONTENT_TYPE, &text);
                match self.messages.keys().next() {
                    Some(channel) => {
                        self.mux.send(*channel, &message);
                    }
                    None => self.send_message(&call_id, CHAT_CONTENT_TYPE, &text),
                }
            }
            CallEvent::Hangup(call_id) => {
                let local = self.link.local;
                let Some(mut call) = self.calls.remove(&call_id) else { return };
                if let Some(dialog) = call.dialog.as_mut() {
                    // Out of the conference first (an empty confInfo), then out of the call.
                    let requests = [
                        dialog.request(Method::Message, local, conf_info::CONTENT_TYPE, "{}"),
                        dialog.request(Method::Bye, local, "", ""),
                    ];
                    for request in requests.into_iter().flatten() {
                        self.mux.send(call.channel, &request);
                    }
                }
                info!(room = %self.room, caller_account = %self.caller_info.account, call_id = %call_id, "call hung up by a moderator");
            }
            CallEvent::Vanished(call_id) => {
                if self.calls.remove(&call_id).is_some() {
                    info!(room = %self.room, caller_account = %self.caller_info.account, call_id = %call_id, "call ended: the caller's media stopped");
                }
            }
        }
    }

    /// Sends an in-dialog MESSAGE on call `call_id`, if it is still up.
    fn send_message(&mut self, call_id: &CallId, content_type: &str, body: &str) {
        let local = self.link.local;
        let Some(call) = self.calls.get_mut(call_id) else { return };
        let Some(dialog) = call.dialog.as_mut() else { return };
        match dialog.request(Method::Message, local, content_type, body) {
            Some(message) => {
                self.mux.send(call.channel, &message);
            }
            None => {
                warn!(room = %self.room, call_id = %call_id, content_type, bytes = body.len(), "message too large for one SIP message: not sent")
            }
        }
    }

    /// Answers an INVITE or a re-INVITE: the room takes the call in (a new participant, or
    /// the same one with new media), then its media start and we answer with our SDP; 488
    /// when nothing in the offer is acceptable.
    async fn on_invite(&mut self, request: &sipx_sip::Request, channel: ChannelId) -> Vec<Vec<u8>> {
        let account = self.caller_info.account;
        let Some(call_id) = uas::call_id(request) else {
            return uas::reject(request, 400, "Bad Request", &self.to_tag);
        };
        let reinvite = self.calls.contains_key(&call_id);
        if !reinvite && self.calls.len() >= MAX_CALLS {
            return uas::reject(request, 486, "Busy Here", &self.to_tag);
        }
        let body = String::from_utf8_lossy(request.body()).into_owned();
        let offer = match sdp::parse_offer(&body) {
            Ok(offer) => offer,
            Err(error) => {
                warn!(room = %self.room, caller_account = %account, %error, "offer refused");
                self.conference.call_failed(account, format!("offer: {error}"));
                return uas::reject(request, 488, "Not Acceptable Here", &self.to_tag);
            }
        };
        let shape = CallMedia::shape(&offer);
        let taken = match self.calls.get(&call_id) {
            Some(call) => {
                let participant = call.membership.id();
                self.conference.renegotiate(participant, shape).await.map(|routes| (routes, None))
            }
            None => {
                let codecs = offer
                    .streams
                    .iter()
                    .filter(|s| s.accepted())
                    .filter_map(|s| s.codec.as_ref())
                    .map(|c| format!("{}/{}", c.name, c.clock_rate))
                    .collect::<Vec<_>>()
                    .join(" + ");
                let join = JoinRequest {
                    caller: self.caller_info,
                    call_id: call_id.clone(),
                    media: shape,
                    codecs,
                    joined_at: std::time::SystemTime::now(),
                };
                let events = self.call_events.0.clone();
                self.conference
                    .join(join, events)
                    .await
                    .map(|joined| (joined.routes, Some(joined.membership)))
            }
        };
        let (routes, membership) = match taken {
            Ok(taken) => taken,
            Err(failure) => return self.refuse_invite(request, &call_id, &failure),
        };
        let label =
            CallLabel { room: self.room.clone(), caller: account, call_id: call_id.clone() };
        let events = self.call_events.0.clone();
        let metrics = Arc::clone(self.conference.metrics());
        let ip = self.link.local.ip();
        let media = match CallMedia::start(ip, &offer, label, routes, events, metrics) {
            Ok(media) => media,
            Err(error) => {
                warn!(room = %self.room, %error, "cannot open media sockets");
                self.conference.call_failed(account, format!("media: {error}"));
                self.calls.remove(&call_id);
                return uas::reject(request, 500, "Server Internal Error", &self.to_tag);
            }
        };
        let answer = sdp::write_answer(
            &offer,
            &media.streams,
            &media.ice.ufrag,
            &media.ice.pwd,
            rand::random::<u32>().into(),
        );
        let contact = format!("<sips:{}@{};transport=tls>", self.device, self.link.local);
        let accepted: Vec<_> =
            offer.streams.iter().filter(|s| s.accepted()).map(|s| s.kind).collect();
        info!(room = %self.room, caller_account = %account, call_id = %call_id, streams = ?accepted, reinvite, on_hold = shape.held, "call answered");
        match (self.calls.get_mut(&call_id), membership) {
            (Some(call), _) => {
                // Same participant, new media: the earlier media stop as they are dropped.
                call.media = media;
                call.dialog = match &call.dialog {
                    Some(dialog) => dialog.refreshed(request, &self.to_tag),
                    None => Dialog::answered(request, &self.to_tag),
                };
                call.channel = channel;
            }
            (None, Some(membership)) => {
                let setup = self.requested_at.take().map(|at| at.elapsed());
                self.conference.metrics().call_answered(setup);
                let dialog = Dialog::answered(request, &self.to_tag);
                self.calls.insert(call_id, Call { membership, media, dialog, channel });
            }
            (None, None) => {
                return uas::reject(request, 500, "Server Internal Error", &self.to_tag);
            }
        }
        uas::answer_invite(request, &self.to_tag, &contact, &answer)
    }

    /// Answers an INVITE the room did not take: 603 when its policy refuses the caller (a
    /// call already up ends), 482 for a Call-ID another call in the room has, 481 for a call
    /// the room has ended, 500 when the room cannot serve.
    fn refuse_invite(
        &mut self,
        request: &sipx_sip::Request,
        call_id: &CallId,
        failure: &JoinFailure,
    ) -> Vec<Vec<u8>> {
        let account = self.caller_info.account;
        let ended = self.calls.remove(call_id).is_some();
        match failure {
            JoinFailure::Refused(JoinError::Refused(refusal)) => {
                info!(room = %self.room, caller_account = %account, call_id = %call_id, reason = %refusal, ended, "refused a call on an open link");
                self.conference
                    .publish(RoomEvent::CallRefused { account, reason: refusal.to_string() });
                self.conference.metrics().call(CallOutcome::Refused);
                uas::reject(request, 603, "Decline", &self.to_tag)
            }
            JoinFailure::Refused(JoinError::CallIdInUse) => {
                warn!(room = %self.room, caller_account = %account, call_id = %call_id, "refused a call: its Call-ID is already in use in the room");
                self.conference.metrics().call(CallOutcome::Refused);
                uas::reject(request, 482, "Loop Detected", &self.to_tag)
            }
            JoinFailure::Gone => {
                info!(room = %self.room, caller_account = %account, call_id = %call_id, "a re-INVITE for a call the room has ended");
                uas::reject(request, 481, "Call/Transaction Does Not Exist", &self.to_tag)
            }
            JoinFailure::Mixer(_) | JoinFailure::NotRunning => {
                warn!(room = %self.room, caller_account = %account, %failure, "the room cannot take a call");
                self.conference.call_failed(account, failure.to_string());
                uas::reject(request, 500, "Server Internal Error", &self.to_tag)
            }
        }
    }

    /// Ends the link politely: TLS close_notify, written within [`CLOSE_TIMEOUT`].
    async fn close(&mut self) {
        if self.established {
            self.tls.send_close_notify();
        }
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            let _ = self.flush().await;
            let _ = self.link.stream.shutdown().await;
        })
        .await;
    }

    /// Writes what the multiplexer and TLS have queued, through ICE's framing.
    async fn flush(&mut self) -> Result<(), SessionEnd> {
        while let Some(message) = self.mux.poll_transmit() {
            self.tls.writer().write_all(&message)?;
        }
        while self.tls.wants_write() {
            let mut records = Vec::new();
            self.tls.write_tls(&mut records)?;
            self.link.ice.send(&records);
        }
        while let Some(bytes) = self.link.ice.poll_transmit() {
            self.link.stream.write_all(&bytes).await?;
        }
        Ok(())
    }
}

/// An incoming chat text as the room passes it on: UTF-8 (invalid bytes replaced), at most
/// [`MAX_CHAT_CHARS`] characters.
fn chat_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).chars().take(MAX_CHAT_CHARS).collect()
}
