//! Jami's multiplexed socket (jami-protocol.md §5), sans-IO: the TLS plaintext of a device
//! link in, bytes to write and events out, time as an input.
//!
//! The stream is a concatenation of msgpack `[channel, bin]` pairs. Channel 0 carries channel
//! requests (`[name, channel, state]`), channel 0xFFFF the version (`{"v":1}`) and beacons
//! (`{"p":true}` / `{"p":false}`); an empty `bin` closes a channel. Both sides announce their
//! version at once; a beacon unanswered within [`BEACON_TIMEOUT`] means the peer is gone.

use std::collections::{BTreeMap, VecDeque};
use std::io::Cursor;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::msgpack_stream::take_objects;

/// The control channel: channel requests.
pub const CONTROL_CHANNEL: u16 = 0;
/// The protocol channel: version and beacons.
pub const PROTOCOL_CHANNEL: u16 = 0xFFFF;
/// Our multiplexer version (`MULTIPLEXED_SOCKET_VERSION`).
pub const VERSION: u8 = 1;
/// A beacon must be answered within this (`SEND_BEACON_TIMEOUT`).
pub const BEACON_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest payload of one message.
pub const MAX_PAYLOAD: usize = u16::MAX as usize;
/// Largest encoded message: `[u16, bin16 of MAX_PAYLOAD]` plus slack for a wasteful encoder.
const MAX_MESSAGE: usize = MAX_PAYLOAD + 16;

/// A data channel's number (1–65534).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChannelId(pub u16);

/// The peer broke the protocol; the link must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MuxError {
    /// A message could not be decoded.
    #[error("malformed multiplexer message: {0}")]
    Malformed(String),
    /// A message is larger than the protocol allows.
    #[error("multiplexer message over {MAX_MESSAGE} bytes")]
    Oversized,
}

/// Something the link's owner must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MuxEvent {
    /// The peer announced its version.
    PeerVersion(u64),
    /// The peer asks to open a channel: answer with [`Multiplexer::accept`] or
    /// [`Multiplexer::decline`].
    ChannelRequested {
        /// Its number.
        channel: ChannelId,
        /// Its name, e.g. `sip`.
        name: String,
    },
    /// Bytes on an open channel.
    Data {
        /// Which channel.
        channel: ChannelId,
        /// The bytes.
        data: Vec<u8>,
    },
    /// The peer closed a channel.
    ChannelClosed(ChannelId),
    /// Our beacon was not answered in time: the peer is gone.
    BeaconTimeout,
}

/// `ChannelRequest::state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestState {
    Request = 0,
    Accept = 1,
    Decline = 2,
}

/// `[name, channel, state]`.
#[derive(Debug, Serialize, Deserialize)]
struct ChannelRequest(String, u16, u8);

/// A protocol message: a map recognised by its key.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ControlObject {
    Request(ChannelRequest),
    Map(BTreeMap<String, Scalar>),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Scalar {
    Bool(bool),
    Int(u64),
    Other(serde::de::IgnoredAny),
}

#[derive(Serialize)]
struct VersionMessage {
    v: u8,
}

#[derive(Serialize)]
struct BeaconMessage {
    p: bool,
}

/// Counts of what was ignored (the peer's mistakes that do not end the link).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MuxCounters {
    /// Data for a channel that is not open.
    pub unknown_channel: u64,
    /// Control or protocol objects that were not understood.
    pub bad_control: u64,
}

/// One device link's multiplexer.
#[derive(Debug)]
pub struct Multiplexer {
    input: Vec<u8>,
    output: VecDeque<Vec<u8>>,
    /// Open channels (accepted by us) and their names.
    channels: BTreeMap<ChannelId, String>,
    /// Requested by the peer, not yet answered.
    pending: BTreeMap<ChannelId, String>,
    peer_version: Option<u64>,
    beacon_deadline: Option<Instant>,
    counters: MuxCounters,
}

impl Default for Multiplexer {
    fn default() -> Self {
        Self::new()
    }
}

impl Multiplexer {
    /// A multiplexer that has queued its version announcement.
    pub fn new() -> Self {
        let mut mux = Self {
            input: Vec::new(),
            output: VecDeque::new(),
            channels: BTreeMap::new(),
            pending: BTreeMap::new(),
            peer_version: None,
            beacon_deadline: None,
            counters: MuxCounters::default(),
        };
        mux.queue_protocol(&VersionMessage { v: VERSION });
        mux
    }

    /// The peer's version, once announced.
    pub fn peer_version(&self) -> Option<u64> {
        self.peer_version
    }

    /// What was ignored so far.
    pub fn counters(&self) -> MuxCounters {
        self.counters
    }

    /// The open channels.
    pub fn channels(&self) -> impl Iterator<Item = (ChannelId, &str)> {
        self.channels.iter().map(|(id, name)| (*id, name.as_str()))
    }

    /// Bytes to write to the peer, one message at a time.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.output.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.beacon_deadline
    }

    /// Checks the beacon deadline.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<MuxEvent> {
        match self.beacon_deadline {
            Some(deadline) if now >= deadline => {
                self.beacon_deadline = None;
                Some(MuxEvent::BeaconTimeout)
            }
            _ => None,
        }
    }

    /// Sends a beacon (when the peer speaks version 1 or later): unanswered within
    /// [`BEACON_TIMEOUT`], [`handle_timeout`](Self::handle_timeout) reports the peer gone.
    pub fn send_beacon(&mut self, now: Instant) {
        if self.peer_version.is_some_and(|v| v >= 1) && self.beacon_deadline.is_none() {
            self.queue_protocol(&BeaconMessage { p: true });
            self.beacon_deadline = Some(now + BEACON_TIMEOUT);
        }
    }

    /// Accepts a requested channel; data may flow at once.
    pub fn accept(&mut self, channel: ChannelId) {
        if let Some(name) = self.pending.remove(&channel) {
            self.queue_request(&name, channel, RequestState::Accept);
            self.channels.insert(channel, name);
        }
    }

    /// Declines a requested channel.
    pub fn decline(&mut self, channel: ChannelId) {
        if let Some(name) = self.pending.remove(&channel) {
            self.queue_request(&name, channel, RequestState::Decline);
        }
    }

    /// Sends `data` on an open channel, split into messages of at most [`MAX_PAYLOAD`]
    /// bytes. Returns false when the channel is not open.
    pub fn send(&mut self, channel: ChannelId, data: &[u8]) -> bool {
        if !self.channels.contains_key(&channel) {
            return false;
        }
        for chunk in data.chunks(MAX_PAYLOAD) {
            self.queue(channel.0, chunk);
        }
        true
    }

    /// Closes an open channel.
    pub fn close(&mut self, channel: ChannelId) {
        if self.channels.remove(&channel).is_some() {
            self.queue(channel.0, &[]);
        }
    }

    /// Feeds TLS plaintext from the peer. An error means the link must be closed.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Vec<MuxEvent>, MuxError> {
        self.input.extend_from_slice(bytes);
        let mut events = Vec::new();
        let (messages, failure) = take_objects::<(u16, serde_bytes::ByteBuf)>(&mut self.input);
        for (channel, data) in messages {
            let data = data.into_vec();
            match channel {
                CONTROL_CHANNEL | PROTOCOL_CHANNEL => self.handle_control(&data, &mut events),
                _ => self.handle_channel(ChannelId(channel), data, &mut events),
            }
        }
        if let Some(error) = failure {
            return Err(MuxError::Malformed(error.to_string()));
        }
        if self.input.len() > MAX_MESSAGE {
            return Err(MuxError::Oversized);
        }
        Ok(events)
    }

    fn handle_channel(&mut self, channel: ChannelId, data: Vec<u8>, events: &mut Vec<MuxEvent>) {
        if !self.channels.contains_key(&channel) {
            // Jami sends a close for channels it never got an answer for: not an error.
            self.pending.remove(&channel);
            if !data.is_empty() {
                self.counters.unknown_channel += 1;
            }
            return;
        }
        if data.is_empty() {
            self.channels.remove(&channel);
            events.push(MuxEvent::ChannelClosed(channel));
        } else {
            events.push(MuxEvent::Data { channel, data });
        }
    }

    /// Control and protocol packets hold one or more msgpack objects.
    fn handle_control(&mut self, packet: &[u8], events: &mut Vec<MuxEvent>) {
        let mut cursor = Cursor::new(packet);
        while usize::try_from(cursor.position()).is_ok_and(|p| p < packet.len()) {
            let mut deserializer = rmp_serde::Deserializer::new(&mut cursor);
            match ControlObject::deserialize(&mut deserializer) {
                Ok(ControlObject::Request(request)) => self.handle_request(request, events),
                Ok(ControlObject::Map(map)) => self.handle_protocol(&map, events),
                Err(_) => {
                    self.counters.bad_control += 1;
                    return;
                }
            }
        }
    }

    fn handle_request(
        &mut self,
        ChannelRequest(name, channel, state): ChannelRequest,
        events: &mut Vec<MuxEvent>,
    ) {
        let channel = ChannelId(channel);
        let reserved = channel.0 == CONTROL_CHANNEL || channel.0 == PROTOCOL_CHANNEL;
        if state != RequestState::Request as u8 || reserved {
            // We open no channels, so accepts and declines answer nothing of ours.
            self.counters.bad_control += 1;
            return;
        }
        if self.channels.contains_key(&channel) || self.pending.contains_key(&channel) {
            self.queue_request(&name, channel, RequestState::Decline);
            return;
        }
        self.pending.insert(channel, name.clone());
        events.push(MuxEvent::ChannelRequested { channel, name });
    }

    fn handle_protocol(&mut self, map: &BTreeMap<String, Scalar>, events: &mut Vec<MuxEvent>) {
        match (map.get("v"), map.get("p")) {
            (Some(Scalar::Int(version)), _) => {
                self.peer_version = Some(*version);
                events.push(MuxEvent::PeerVersion(*version));
            }
            (_, Some(Scalar::Bool(true))) => self.queue_protocol(&BeaconMessage { p: false }),
            (_, Some(Scalar::Bool(false))) => self.beacon_deadline = None,
            _ => self.counters.bad_control += 1,
        }
    }

    fn queue_request(&mut self, name: &str, channel: ChannelId, state: RequestState) {
        let request = ChannelRequest(name.to_owned(), channel.0, state as u8);
        if let Ok(packed) = rmp_serde::to_vec(&request) {
            self.queue(CONTROL_CHANNEL, &packed);
        }
    }

    fn queue_protocol(&mut self, message: &impl Serialize) {
        if let Ok(packed) = rmp_serde::to_vec_named(message) {
            self.queue(PROTOCOL_CHANNEL, &packed);
        }
    }

    fn queue(&mut self, channel: u16, payload: &[u8]) {
        let message = (channel, serde_bytes::Bytes::new(payload));
        if let Ok(packed) = rmp_serde::to_vec(&message) {
            self.output.push_back(packed);
        }
    }
}

#[cfg(test)]
mod tests;
