//! One ICE-TCP connection of a device link, sans-IO, with the room as the controlling agent
//! (jami-protocol.md §3.1): bytes from the socket in, framed bytes to write and events out,
//! time as an input.
//!
//! Whoever opened the TCP connection, the room checks the pair (a Binding request with
//! ICE-CONTROLLING); once it is valid, the owner nominates it with
//! [`nominate`](IceTcpConnection::nominate), a second check carrying USE-CANDIDATE (regular
//! nomination, as Jami's pjnath expects). A link nominates exactly one of its connections:
//! pjnath sends on its best nominated pair, so a second nomination on a connection that is
//! then closed breaks the link. The peer's checks are answered on the same connection. Once nominated, RFC 4571 data frames are the application's byte stream;
//! keep-alive indications are sent and received outside it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtc_crypto::providers::RingCrypto;
use rtc_stun::attributes::{
    ATTR_ICE_CONTROLLING, ATTR_PRIORITY, ATTR_USE_CANDIDATE, ATTR_USERNAME,
};
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{
    BINDING_REQUEST, CLASS_ERROR_RESPONSE, CLASS_INDICATION, CLASS_REQUEST, CLASS_SUCCESS_RESPONSE,
    METHOD_BINDING, Message, MessageType, Setter, TransactionId,
};
use rtc_stun::textattrs::TextAttribute;

use super::candidate::{CandidateKind, priority};
use super::framing::{Frame, FrameDecoder, frame};
use super::stun::{Role, answer_check};

/// A connection not nominated within this is given up (pjnath's controlled side waits 10 s
/// for a nomination).
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// Interval of keep-alive indications once connected.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// Application bytes kept while the connection is not nominated yet.
const MAX_EARLY_DATA: usize = 64 * 1024;

/// ICE credentials of one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Username fragment.
    pub ufrag: String,
    /// Password.
    pub pwd: String,
}

impl Credentials {
    /// Fresh random credentials (ufrag of 8 and password of 24 characters, as pjnath makes).
    pub fn random() -> Self {
        Self { ufrag: random_text(8), pwd: random_text(24) }
    }
}

fn random_text(length: usize) -> String {
    use rand::RngExt;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";
    let mut rng = rand::rng();
    (0..length).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect()
}

/// Where the connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Checking the pair.
    Checking,
    /// The check succeeded: the pair is valid and may be nominated.
    Checked,
    /// The nomination is on its way.
    Nominating,
    /// Nominated: the application's bytes flow.
    Connected,
    /// Given up.
    Failed,
}

/// Why a connection failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IceError {
    /// No nomination within [`CHECK_TIMEOUT`].
    #[error("no ICE nomination within {0:?}")]
    Timeout(Duration),
    /// The peer refused our check.
    #[error("the peer refused the ICE check with error {0}")]
    Refused(u16),
    /// The peer sent more application data before the nomination than we hold.
    #[error("application data before the ICE nomination")]
    EarlyData,
}

/// What the owner must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IceEvent {
    /// The pair is nominated: start TLS.
    Connected,
    /// Application bytes.
    Data(Vec<u8>),
    /// The connection failed.
    Failed(IceError),
}

/// Counts of what was dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IceCounters {
    /// STUN messages that failed to parse or to authenticate.
    pub bad_stun: u64,
    /// Responses that matched no check of ours.
    pub stray_responses: u64,
}

/// One ICE-TCP connection, controlling side.
pub struct IceTcpConnection {
    local: Credentials,
    remote: Credentials,
    tie_breaker: u64,
    peer: SocketAddr,
    state: State,
    check: Option<(TransactionId, bool)>,
    decoder: FrameDecoder,
    output: VecDeque<Vec<u8>>,
    early_data: Vec<u8>,
    deadline: Instant,
    next_keepalive: Option<Instant>,
    counters: IceCounters,
}

impl IceTcpConnection {
    /// A connection with `peer` (the TCP peer address) that has queued its first check.
    pub fn new(
        local: Credentials,
        remote: Credentials,
        tie_breaker: u64,
        peer: SocketAddr,
        now: Instant,
    ) -> Self {
        let mut connection = Self {
            local,
            remote,
            tie_breaker,
            peer,
            state: State::Checking,
            check: None,
            decoder: FrameDecoder::default(),
            output: VecDeque::new(),
            early_data: Vec::new(),
            deadline: now + CHECK_TIMEOUT,
            next_keepalive: None,
            counters: IceCounters::default(),
        };
        connection.send_check(false);
        connection
    }

    /// Where the connection stands.
    pub fn state(&self) -> State {
        self.state
    }

    /// What was dropped so far.
    pub fn counters(&self) -> IceCounters {
        self.counters
    }

    /// Bytes to write to the socket.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.output.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Checking | State::Checked | State::Nominating => Some(self.deadline),
            State::Connected => self.next_keepalive,
            State::Failed => None,
        }
    }

    /// Runs the check deadline and the keep-alives.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<IceEvent> {
        match self.state {
            State::Checking | State::Checked | State::Nominating if now >= self.deadline => {
                self.state = State::Failed;
                Some(IceEvent::Failed(IceError::Timeout(CHECK_TIMEOUT)))
            }
            State::Connected if self.next_keepalive.is_some_and(|at| now >= at) => {
                self.next_keepalive = Some(now + KEEPALIVE_INTERVAL);
                let mut indication = Message::new();
                let indication_type = MessageType::new(METHOD_BINDING, CLASS_INDICATION);
                let built = indication.build(&[
                    Box::new(TransactionId::new()),
                    Box::new(indication_type),
                    Box::new(FINGERPRINT),
                ]);
                if built.is_ok() {
                    self.output.push_back(frame(&indication.raw));
                }
                None
            }
            _ => None,
        }
    }

    /// Queues application bytes (TLS records) once connected; false before.
    pub fn send(&mut self, data: &[u8]) -> bool {
        if self.state != State::Connected {
            return false;
        }
        self.output.push_back(frame(data));
        true
    }

    /// Feeds bytes read from the socket.
    pub fn receive(&mut self, bytes: &[u8], now: Instant) -> Vec<IceEvent> {
        let mut events = Vec::new();
        for received in self.decoder.push(bytes) {
            match received {
                Frame::Stun(raw) => self.handle_stun(&raw, now, &mut events),
                Frame::Data(data) if self.state == State::Connected => {
                    events.push(IceEvent::Data(data));
                }
                Frame::Data(data) => {
                    self.early_data.extend_from_slice(&data);
                    if self.early_data.len() > MAX_EARLY_DATA && self.state != State::Failed {
                        self.state = State::Failed;
                        events.push(IceEvent::Failed(IceError::EarlyData));
                    }
                }
            }
        }
        events
    }

    fn handle_stun(&mut self, raw: &[u8], now: Instant, events: &mut Vec<IceEvent>) {
        let mut message = Message::new();
        if message.unmarshal_binary(raw).is_err() || message.typ.method != METHOD_BINDING {
            self.counters.bad_stun += 1;
            return;
        }
        match message.typ.class {
            CLASS_REQUEST => self.handle_request(&mut message),
            CLASS_SUCCESS_RESPONSE | CLASS_ERROR_RESPONSE => {
                self.handle_response(&mut message, now, events);
            }
            _ => {} // keep-alive indications
        }
    }

    /// Answers the peer's check (authenticated with our password).
    fn handle_request(&mut self, request: &mut Message) {
        let Some(answer) =
            answer_check(request, &self.local, &self.remote.ufrag, Role::Controlling, self.peer)
        else {
            return;
        };
        if !answer.valid {
            self.counters.bad_stun += 1;
        }
        self.output.push_back(frame(&answer.response));
        // A check from the peer triggers ours if none is under way.
        if answer.valid && self.state == State::Checking && self.check.is_none() {
            self.send_check(false);
        }
    }

    /// Handles the answer to our check (authenticated with the peer's password).
    fn handle_response(
        &mut self,
        response: &mut Message,
        now: Instant,
        events: &mut Vec<IceEvent>,
    ) {
        let Some((transaction, nominating)) = self.check else {
            self.counters.stray_responses += 1;
            return;
        };
        if response.transaction_id != transaction {
            self.counters.stray_responses += 1;
            return;
        }
        let crypto = RingCrypto;
        if MessageIntegrity::check(response, self.remote.pwd.as_bytes(), &crypto).is_err() {
            self.counters.bad_stun += 1;
            return;
        }
        self.check = None;
        if response.typ.class == CLASS_ERROR_RESPONSE {
            let mut attribute = rtc_stun::error_code::ErrorCodeAttribute::default();
            let code = match rtc_stun::message::Getter::get_from(&mut attribute, response) {
                Ok(()) => attribute.code.0,
                Err(_) => 0,
            };
            self.state = State::Failed;
            events.push(IceEvent::Failed(IceError::Refused(code)));
            return;
        }
        if nominating {
            self.state = State::Connected;
            self.next_keepalive = Some(now + KEEPALIVE_INTERVAL);
            events.push(IceEvent::Connected);
            if !self.early_data.is_empty() {
                events.push(IceEvent::Data(std::mem::take(&mut self.early_data)));
            }
        } else {
            self.state = State::Checked;
        }
    }

    /// Nominates the pair once it is [`State::Checked`]; false in any other state.
    pub fn nominate(&mut self) -> bool {
        if self.state != State::Checked {
            return false;
        }
        self.state = State::Nominating;
        self.send_check(true);
        true
    }

    /// Queues a Binding request on this pair, nominating it when `nominate`.
    fn send_check(&mut self, nominate: bool) {
        let crypto = RingCrypto;
        let username = format!("{}:{}", self.remote.ufrag, self.local.ufrag);
        let transaction = TransactionId::new();
        let mut request = Message::new();
        let mut built = request.build(&[
            Box::new(transaction),
            Box::new(BINDING_REQUEST),
            Box::new(TextAttribute::new(ATTR_USERNAME, username)),
        ]);
        if built.is_ok() {
            // A peer-reflexive priority for this pair's local side (RFC 8445 §7.1.1).
            let prflx = priority(CandidateKind::Prflx, 0xdfff, 1);
            request.add(ATTR_PRIORITY, &prflx.to_be_bytes());
            request.add(ATTR_ICE_CONTROLLING, &self.tie_breaker.to_be_bytes());
            if nominate {
                request.add(ATTR_USE_CANDIDATE, &[]);
            }
            built = MessageIntegrity::new_short_term_integrity_with_provider(
                self.remote.pwd.clone(),
                &crypto,
            )
            .add_to(&mut request);
        }
        if built.and_then(|()| FINGERPRINT.add_to(&mut request)).is_ok() {
            self.check = Some((transaction, nominate));
            self.output.push_back(frame(&request.raw));
        }
    }
}

#[cfg(test)]
mod tests;
