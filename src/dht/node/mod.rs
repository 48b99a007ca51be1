//! The OpenDHT node as a sans-IO state machine (style: quinn-proto, str0m).
//!
//! Inputs: [`Node::handle_datagram`], [`Node::handle_timeout`] and commands ([`Node::bootstrap`],
//! [`Node::get`], [`Node::announce`], [`Node::listen`], [`Node::cancel`]), each with `now`.
//! Outputs: [`Node::poll_transmit`] (datagrams to send), [`Node::poll_event`] (results) and
//! [`Node::poll_timeout`] (when to call `handle_timeout` next). No clock, no socket: the driver
//! calls the inputs, then drains transmits and events, then sleeps until the timeout.

mod fragments;
mod policy;
mod rate;
mod requests;
mod search;
mod token;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use tracing::debug;

use self::requests::{Due, Purpose, Requests};
use self::search::{Action, Search};
use self::token::TokenSecrets;
use super::InfoHash;
use super::routing::{BUCKET_SIZE, Heard, RoutingTable};
use super::storage::{
    Change, LISTENER_LIFETIME, Listener, Notification, Storage, StorageLimits, StoreOutcome,
};
use super::value::Value;
use super::wire::{
    Field, FieldValue, FieldsReply, Message, MessageKind, NodeInfo, Query, Reply, Tid,
    UpdateChange, ValueQuery, ValueSlot, Want,
};
pub use policy::{ValueRefusal, certificate_keys, check as check_value};

/// Bootstrap pings repeat this long after the first, doubling up to a day (`BOOTSTRAP_PERIOD`).
const BOOTSTRAP_PERIOD: Duration = Duration::from_secs(10);
const BOOTSTRAP_PERIOD_MAX: Duration = Duration::from_secs(24 * 3600);
/// Routing-table maintenance period.
const MAINTENANCE_PERIOD: Duration = Duration::from_secs(60);
/// How often searches are stepped when nothing else happens.
const SEARCH_TICK: Duration = Duration::from_secs(1);

/// Node settings.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Our node id.
    pub id: InfoHash,
    /// Network id; Jami's is 0.
    pub network: u32,
    /// Storage quotas.
    pub storage: StorageLimits,
    /// Requests accepted per second in all (an eighth of it per source).
    pub max_requests_per_second: u32,
}

impl NodeConfig {
    /// Defaults for `id` on network 0.
    pub fn new(id: InfoHash) -> Self {
        Self { id, network: 0, storage: StorageLimits::default(), max_requests_per_second: 8192 }
    }
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub to: SocketAddr,
    /// Payload.
    pub datagram: Vec<u8>,
}

/// Identifies a get, announce or listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OperationId(pub u64);

/// What the node reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A first node answered: we are on the network.
    Connected,
    /// Values for a get or a listen (each value once per operation; signatures checked).
    Values {
        /// The get or listen.
        operation: OperationId,
        /// The key.
        key: InfoHash,
        /// The values.
        values: Vec<Value>,
    },
    /// A listened key lost values.
    Expired {
        /// The listen.
        operation: OperationId,
        /// The key.
        key: InfoHash,
        /// Ids of the values gone.
        ids: Vec<u64>,
    },
    /// A get has asked the closest nodes.
    GetDone {
        /// The get.
        operation: OperationId,
        /// The key.
        key: InfoHash,
    },
    /// An announced value is stored on the closest nodes (reported once).
    Announced {
        /// The announce.
        operation: OperationId,
        /// The key.
        key: InfoHash,
        /// How many nodes acknowledged it.
        nodes: usize,
    },
}

/// Counters of what the node did and dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Datagrams received.
    pub received: u64,
    /// Datagrams that did not decode.
    pub undecodable: u64,
    /// Messages for another network id.
    pub wrong_network: u64,
    /// Requests over the rate limit.
    pub rate_limited: u64,
    /// Replies matching no request of ours.
    pub unmatched_replies: u64,
    /// Values refused (bad signature, bad structure, certificate at a foreign key).
    pub refused_values: u64,
    /// Requests that got no reply.
    pub failed_requests: u64,
}

/// The node.
#[derive(Debug)]
pub struct Node {
    config: NodeConfig,
    table4: RoutingTable,
    table6: RoutingTable,
    storage: Storage,
    tokens: TokenSecrets,
    rate: rate::RateLimiter,
    reassembly: fragments::Reassembly,
    requests: Requests,
    searches: HashMap<InfoHash, Search>,
    bootstrap_addresses: Vec<SocketAddr>,
    next_bootstrap: Option<Instant>,
    bootstrap_period: Duration,
    next_maintenance: Instant,
    next_search_tick: Option<Instant>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    rng: StdRng,
    clock_base: (Instant, i64),
    next_tid: u32,
    next_operation: u64,
    next_socket: u32,
    connected: bool,
    stats: NodeStats,
}

impl Node {
    /// A node that has not talked to anyone yet. `unix_now` is the wall-clock time at `now`,
    /// in Unix seconds (values carry creation times); `seed` feeds its randomness.
    pub fn new(config: NodeConfig, now: Instant, unix_now: i64, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let tokens = TokenSecrets::new(now, &mut rng);
        Self {
            table4: RoutingTable::new(config.id, false, now),
            table6: RoutingTable::new(config.id, true, now),
            storage: Storage::new(config.storage),
            rate: rate::RateLimiter::new(config.max_requests_per_second, now),
            tokens,
            reassembly: fragments::Reassembly::default(),
            requests: Requests::default(),
            searches: HashMap::new(),
            bootstrap_addresses: Vec::new(),
            next_bootstrap: None,
            bootstrap_period: BOOTSTRAP_PERIOD,
            next_maintenance: now + MAINTENANCE_PERIOD,
            next_search_tick: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_tid: rng.random::<u32>() | 1,
            next_operation: 1,
            next_socket: rng.random::<u32>() | 1,
            rng,
            clock_base: (now, unix_now),
            connected: false,
            stats: NodeStats::default(),
            config,
        }
    }

    /// Our node id.
    pub fn id(&self) -> InfoHash {
        self.config.id
    }

    /// Counters.
    pub fn stats(&self) -> NodeStats {
        self.stats
    }

    /// Whether a node has answered us.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Good nodes known, IPv4 and IPv6.
    pub fn good_nodes(&self, now: Instant) -> (usize, usize) {
        (self.table4.good_count(now), self.table6.good_count(now))
    }

    /// The storage, for inspection.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Joins the network through `address`: pings it now, and again with backoff while no node
    /// has answered.
    pub fn bootstrap(&mut self, address: SocketAddr, now: Instant) {
        if !self.bootstrap_addresses.contains(&address) {
            self.bootstrap_addresses.push(address);
        }
        self.ping(address, None, now);
        self.next_bootstrap.get_or_insert(now + self.bootstrap_period);
    }

    /// Looks for values at `key`: [`Event::Values`] as they come, then [`Event::GetDone`].
    pub fn get(&mut self, key: InfoHash, query: Option<ValueQuery>, now: Instant) -> OperationId {
        let id = self.operation_id();
        self.search(key).add_get(id, query);
        self.deliver_local(key, None);
        self.step_searches(now);
        id
    }

    /// Stores `value` at `key` on the closest nodes ([`Event::Announced`] once they have it).
    /// A permanent value is put again before it expires, until cancelled.
    pub fn announce(
        &mut self,
        key: InfoHash,
        value: Value,
        permanent: bool,
        now: Instant,
    ) -> OperationId {
        let id = self.operation_id();
        self.search(key).add_announce(id, value, permanent);
        self.step_searches(now);
        id
    }

    /// Listens to `key` on the closest nodes: [`Event::Values`] and [`Event::Expired`] as
    /// values come and go, until cancelled.
    pub fn listen(
        &mut self,
        key: InfoHash,
        query: Option<ValueQuery>,
        now: Instant,
    ) -> OperationId {
        let id = self.operation_id();
        let socket = self.next_socket;
        self.next_socket = self.next_socket.wrapping_add(2);
        self.search(key).add_listen(id, socket, query);
        self.deliver_local(key, None);
        self.step_searches(now);
        id
    }

    /// Hands our own gets and listens at `key` what our storage holds there (`value` alone
    /// when it has just been stored): a value put on our node by another is found by a search
    /// of ours even when no other node keeps it (a 2.4 node refuses a certificate at its long
    /// id's key, which a 4.x caller publishes only there).
    fn deliver_local(&mut self, key: InfoHash, value: Option<&Value>) {
        let Some(search) = self.searches.get_mut(&key) else { return };
        let values: Vec<Value> = match value {
            Some(value) => vec![value.clone()],
            None => self.storage.get(&key, None).into_iter().cloned().collect(),
        };
        if !values.is_empty() {
            self.events.extend(search.on_local_values(&values));
        }
    }

    /// Stops a get, announce or listen.
    pub fn cancel(&mut self, operation: OperationId) {
        for search in self.searches.values_mut() {
            if search.cancel(operation) {
                break;
            }
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Node::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.requests.next_deadline(),
            self.storage.next_expiry(),
            self.reassembly.next_expiry(),
            Some(self.tokens.next_rotation()),
            self.next_bootstrap.filter(|_| !self.connected),
            Some(self.next_maintenance),
            self.next_search_tick,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Advances time: retransmissions, expiries, bootstrap, maintenance, searches.
    pub fn handle_timeout(&mut self, now: Instant) {
        for due in self.requests.due(now) {
            match due {
                Due::Resend(to, datagrams) => {
                    self.transmits
                        .extend(datagrams.into_iter().map(|datagram| Transmit { to, datagram }));
                }
                Due::Failed(failed) => self.request_failed(failed.node, failed.to, now),
            }
        }
        let notifications = self.storage.expire(now);
        self.send_notifications(notifications, now);
        self.reassembly.expire(now);
        self.tokens.rotate(now, &mut self.rng);
        if !self.connected && self.next_bootstrap.is_some_and(|at| at <= now) {
            self.bootstrap_period = (self.bootstrap_period * 2).min(BOOTSTRAP_PERIOD_MAX);
            self.next_bootstrap = Some(now + self.bootstrap_period);
            for address in self.bootstrap_addresses.clone() {
                self.ping(address, None, now);
            }
        }
        if now >= self.next_maintenance {
            self.next_maintenance = now + MAINTENANCE_PERIOD;
            self.maintain(now);
        }
        self.step_searches(now);
    }

    /// Processes one received datagram.
    pub fn handle_datagram(&mut self, from: SocketAddr, datagram: &[u8], now: Instant) {
        self.stats.received += 1;
        if is_martian(&from) {
            return;
        }
        let message = match Message::decode(datagram) {
            Ok(message) => message,
            Err(error) => {
                self.stats.undecodable += 1;
                debug!(peer = %from, %error, "dropped an undecodable datagram");
                return;
            }
        };
        if message.network != self.config.network {
            self.stats.wrong_network += 1;
            return;
        }
        match message.kind {
            MessageKind::ValueParts(parts) => {
                if let Some(complete) = self.reassembly.add(message.tid, from, parts, now) {
                    self.process(from, complete, now);
                }
            }
            _ if fragments::needs_parts(&message) => {
                let expected = self.expects(from, &message);
                if !expected && matches!(message.kind, MessageKind::Reply(_)) {
                    debug!(peer = %from, "dropped parts of a reply nobody asked for");
                    return;
                }
                if !expected && !self.rate.allow(from.ip(), now) {
                    self.stats.rate_limited += 1;
                    return;
                }
                if !self.reassembly.start(from, message, expected, now) {
                    debug!(peer = %from, expected, "refused a fragmented message");
                }
            }
            _ => self.process(from, message, now),
        }
        self.step_searches(now);
    }

    /// Whether `message` is one this node waits for: a reply to a request it sent to `from`,
    /// or an update for one of its listens. A fragmented reply nobody asked for is refused.
    fn expects(&self, from: SocketAddr, message: &Message) -> bool {
        match &message.kind {
            MessageKind::Reply(_) => self.requests.expects(message.tid, from),
            MessageKind::Query { query: Query::Update { socket, .. }, .. } => {
                self.searches.values().any(|search| search.has_socket(*socket))
            }
            _ => false,
        }
    }

    fn process(&mut self, from: SocketAddr, message: Message, now: Instant) {
        let tid = message.tid;
        match message.kind {
            MessageKind::Query { sender, query } => {
                if sender.is_zero() || sender == self.config.id {
                    return;
                }
                if !self.rate.allow(from.ip(), now) {
                    self.stats.rate_limited += 1;
                    return;
                }
                self.heard(NodeInfo { id: sender, address: from }, false, now);
                self.answer(from, tid, sender, query, now);
            }
            MessageKind::Reply(reply) => self.on_reply(from, tid, reply, now),
            MessageKind::Error { sender, code, text } => {
                let Some(pending) = self.requests.answered(tid, from, sender) else { return };
                debug!(peer = %from, code, %text, "error reply");
                if let (
                    Purpose::Search(Some(key)) | Purpose::Put { key, .. } | Purpose::Listen { key },
                    Some(node),
                ) = (&pending.purpose, pending.node)
                    && let Some(search) = self.searches.get_mut(key)
                {
                    // 401: our token is stale; a fresh get renews it. Others: try again later.
                    search.on_failure(&node, false);
                }
            }
            MessageKind::LegacyNotification { .. } | MessageKind::ValueParts(_) => {}
        }
    }

    // ---- answering requests (server side) ----

    fn answer(&mut self, from: SocketAddr, tid: Tid, sender: InfoHash, query: Query, now: Instant) {
        match query {
            Query::Ping => self.reply(from, tid, self.basic_reply(from), Vec::new()),
            Query::Find { target, want } => {
                let reply = self.nodes_reply(from, &target, want, now);
                self.reply(from, tid, reply, Vec::new());
            }
            Query::Get { key, query, want } => {
                if key.is_zero() {
                    return self.error(from, tid, 203, "Get_values with no info_hash");
                }
                let mut reply = self.nodes_reply(from, &key, want, now);
                let values: Vec<Value> =
                    self.storage.get(&key, query.as_ref()).into_iter().cloned().collect();
                let mut packed = Vec::new();
                match query.as_ref().filter(|q| !q.select.is_empty()) {
                    Some(query) => reply.fields = Some(select_fields(query, &values)),
                    None if values.is_empty() => {}
                    None => {
                        let (slots, parts) = fragments::slots_for(&values);
                        reply.values = Some(slots);
                        packed = parts;
                    }
                }
                self.reply(from, tid, reply, packed);
            }
            Query::Put { key, values, created, token } => {
                if key.is_zero() {
                    return self.error(from, tid, 203, "Put with no info_hash");
                }
                if !self.tokens.is_valid(&token, from) {
                    return self.error(from, tid, 401, "Put with wrong token");
                }
                let age = created.map_or(Duration::ZERO, |created| {
                    Duration::from_secs(u64::try_from(self.unix_now(now) - created).unwrap_or(0))
                });
                for slot in values {
                    let ValueSlot::Inline(value) = slot else { continue };
                    if value.id == 0 {
                        return self.error(from, tid, 203, "Put with invalid id");
                    }
                    let value_id = value.id;
                    self.store(from, key, value, age, now);
                    // Acknowledged whether stored or not, as OpenDHT does.
                    let mut reply = self.basic_reply(from);
                    reply.value_id = Some(value_id);
                    self.reply(from, tid, reply, Vec::new());
                }
            }
            Query::Refresh { key, value_id, token } => {
                if !self.tokens.is_valid(&token, from) {
                    return self.error(from, tid, 401, "Put with wrong token");
                }
                let Some(notifications) = self.storage.refresh(&key, value_id, now) else {
                    return self.error(from, tid, 404, "Access operation for unknown storage");
                };
                self.send_notifications(notifications, now);
                let mut reply = self.basic_reply(from);
                reply.value_id = Some(value_id);
                self.reply(from, tid, reply, Vec::new());
            }
            Query::Listen { key, token, socket, version, query } => {
                if key.is_zero() {
                    return self.error(from, tid, 203, "Listen with no info_hash");
                }
                if !self.tokens.is_valid(&token, from) {
                    return self.error(from, tid, 401, "Listen with wrong token");
                }
                let listener = Listener {
                    node: sender,
                    address: from,
                    socket,
                    version,
                    query,
                    expires: now + LISTENER_LIFETIME,
                };
                self.reply(from, tid, self.basic_reply(from), Vec::new());
                match self.storage.listen(key, listener) {
                    Ok(initial) => self.send_notifications(initial, now),
                    Err(_) => debug!(peer = %from, %key, "listener refused: quota"),
                }
            }
            Query::Update { socket, change, .. } => {
                self.reply(from, tid, self.basic_reply(from), Vec::new());
                self.on_update(from, socket, change);
            }
        }
    }

    fn store(
        &mut self,
        from: SocketAddr,
        key: InfoHash,
        value: Value,
        age: Duration,
        now: Instant,
    ) {
        if let Err(refusal) = policy::check(&key, &value) {
            self.stats.refused_values += 1;
            debug!(peer = %from, %key, %refusal, "refused a value");
            return;
        }
        let stored = self.searches.contains_key(&key).then(|| value.clone());
        let (outcome, notifications) = self.storage.store(key, value, age, from.ip(), now);
        match outcome {
            StoreOutcome::EditRefused | StoreOutcome::OverQuota => {
                debug!(peer = %from, %key, ?outcome, "value not stored");
            }
            StoreOutcome::Stored | StoreOutcome::Edited => {
                self.deliver_local(key, stored.as_ref());
            }
            _ => {}
        }
        self.send_notifications(notifications, now);
    }

    fn send_notifications(&mut self, notifications: Vec<Notification>, now: Instant) {
        for Notification { key, listener, change } in notifications {
            if listener.version.is_none() {
                continue; // version-0 listeners predate OpenDHT 2: not served
            }
            let token = self.tokens.token(listener.address);
            let (change, packed) = match change {
                Change::Stored(value) => {
                    let (slots, packed) = fragments::slots_for(std::slice::from_ref(&value));
                    (UpdateChange::Values { key, values: slots, created: None }, packed)
                }
                Change::Refreshed(ids) => (UpdateChange::Refreshed(ids), Vec::new()),
                Change::Expired(ids) => (UpdateChange::Expired(ids), Vec::new()),
            };
            let query = Query::Update { socket: listener.socket, token, change };
            self.send_request(
                listener.address,
                Some(listener.node),
                query,
                Purpose::Update,
                &packed,
                now,
            );
        }
    }

    fn basic_reply(&self, from: SocketAddr) -> Reply {
        let mut reply = Reply::new(self.config.id);
        reply.reported_address = Some(from.ip());
        reply
    }

    fn nodes_reply(
        &self,
        from: SocketAddr,
        target: &InfoHash,
        want: Option<Want>,
        now: Instant,
    ) -> Reply {
        let want = want.unwrap_or(Want { ipv4: from.is_ipv4(), ipv6: from.is_ipv6() });
        let mut reply = self.basic_reply(from);
        if want.ipv4 {
            reply.nodes4 = self.table4.closest(target, BUCKET_SIZE, now);
        }
        if want.ipv6 {
            reply.nodes6 = self.table6.closest(target, BUCKET_SIZE, now);
        }
        reply.token = Some(self.tokens.token(from));
        reply
    }

    fn reply(&mut self, to: SocketAddr, tid: Tid, reply: Reply, packed: Vec<Vec<u8>>) {
        let network = self.config.network;
        let message = Message { tid, network, kind: MessageKind::Reply(reply) };
        self.transmits.push_back(Transmit { to, datagram: message.encode() });
        for part in fragments::parts(tid, network, &packed) {
            self.transmits.push_back(Transmit { to, datagram: part.encode() });
        }
    }

    fn error(&mut self, to: SocketAddr, tid: Tid, code: u16, text: &str) {
        let kind = MessageKind::Error { sender: Some(self.config.id), code, text: text.to_owned() };
        let message = Message { tid, network: self.config.network, kind };
        self.transmits.push_back(Transmit { to, datagram: message.encode() });
    }

    // ---- our requests (client side) ----

    fn on_reply(&mut self, from: SocketAddr, tid: Tid, reply: Reply, now: Instant) {
        let Some(pending) = self.requests.answered(tid, from, Some(reply.sender)) else {
            self.stats.unmatched_replies += 1;
            return;
        };
        self.heard(NodeInfo { id: reply.sender, address: from }, true, now);
        if !self.connected {
            self.connected = true;
            self.events.push_back(Event::Connected);
            let own = self.config.id;
            self.searches.entry(own).or_insert_with(|| Search::new(own, true));
        }
        // Replies may list ourselves; we skip that, and addresses OpenDHT would drop.
        let own = self.config.id;
        let learned: Vec<NodeInfo> = reply
            .nodes4
            .iter()
            .chain(&reply.nodes6)
            .copied()
            .filter(|n| n.id != own && !n.id.is_zero() && !is_martian(&n.address))
            .collect();
        for node in &learned {
            self.heard(*node, false, now);
        }
        match pending.purpose {
            Purpose::Search(Some(key)) => {
                let values = self.verified_values(from, &key, reply.values.unwrap_or_default());
                if let Some(search) = self.searches.get_mut(&key) {
                    search.add_candidates(&learned);
                    search.on_reply(&reply.sender, reply.token, now);
                    let events = search.on_values(&values);
                    self.events.extend(events);
                }
            }
            Purpose::Put { key, value_id } => {
                if let Some(search) = self.searches.get_mut(&key) {
                    search.on_put_ack(&reply.sender, value_id, now);
                }
            }
            Purpose::Search(None) | Purpose::Ping | Purpose::Listen { .. } | Purpose::Update => {}
        }
    }

    fn on_update(&mut self, from: SocketAddr, socket: u32, change: UpdateChange) {
        let Some(key) = self
            .searches
            .values()
            .find(|search| search.has_socket(socket))
            .map(|search| search.key)
        else {
            debug!(peer = %from, socket, "update for an unknown listen");
            return;
        };
        let event = match change {
            UpdateChange::Values { values, .. } => {
                let accepted = self.verified_values(from, &key, values);
                self.searches
                    .get_mut(&key)
                    .and_then(|search| search.on_listen_values(socket, &accepted))
            }
            UpdateChange::Expired(ids) => self
                .searches
                .get_mut(&key)
                .and_then(|search| search.on_listen_expired(socket, &ids)),
            UpdateChange::Refreshed(_) => None,
        };
        self.events.extend(event);
    }

    /// The inline values that pass [`policy::check`]; refusals are counted and logged.
    fn verified_values(
        &mut self,
        from: SocketAddr,
        key: &InfoHash,
        slots: Vec<ValueSlot>,
    ) -> Vec<Value> {
        let mut values = Vec::new();
        for slot in slots {
            let ValueSlot::Inline(value) = slot else { continue };
            match policy::check(key, &value) {
                Ok(()) => values.push(value),
                Err(refusal) => {
                    self.stats.refused_values += 1;
                    debug!(peer = %from, %key, %refusal, "refused a value");
                }
            }
        }
        values
    }

    fn request_failed(&mut self, node: Option<InfoHash>, to: SocketAddr, now: Instant) {
        self.stats.failed_requests += 1;
        let Some(node) = node else { return };
        let table = if to.is_ipv4() { &mut self.table4 } else { &mut self.table6 };
        let candidate = table.failed(&node);
        for search in self.searches.values_mut() {
            search.on_failure(&node, true);
        }
        if let Some(candidate) = candidate {
            self.ping(candidate.address, Some(candidate.id), now);
        }
    }

    /// Records a node in the routing table. A node is good only once it answers one of our
    /// requests, so a newcomer that has not is pinged; so is a dubious node whose slot a
    /// newcomer wants.
    fn heard(&mut self, node: NodeInfo, replied: bool, now: Instant) {
        let table = if node.address.is_ipv4() { &mut self.table4 } else { &mut self.table6 };
        let to_ping = match table.heard(node, replied, now) {
            Heard::Added if !replied => Some(node),
            Heard::Cached { dubious: Some(dubious) } => Some(dubious),
            _ => None,
        };
        if let Some(node) = to_ping
            && !self.requests.is_pending(&node.id, &Purpose::Ping)
        {
            self.ping(node.address, Some(node.id), now);
        }
    }

    fn ping(&mut self, to: SocketAddr, node: Option<InfoHash>, now: Instant) {
        self.send_request(to, node, Query::Ping, Purpose::Ping, &[], now);
    }

    fn send_request(
        &mut self,
        to: SocketAddr,
        node: Option<InfoHash>,
        query: Query,
        purpose: Purpose,
        packed: &[Vec<u8>],
        now: Instant,
    ) {
        let tid = Tid(self.next_tid);
        self.next_tid = self.next_tid.wrapping_add(1).max(1);
        let network = self.config.network;
        let message =
            Message { tid, network, kind: MessageKind::Query { sender: self.config.id, query } };
        let mut datagrams = vec![message.encode()];
        datagrams.extend(fragments::parts(tid, network, packed).iter().map(Message::encode));
        self.transmits
            .extend(datagrams.iter().map(|datagram| Transmit { to, datagram: datagram.clone() }));
        self.requests.sent(tid, to, node, purpose, datagrams, now);
    }

    fn search(&mut self, key: InfoHash) -> &mut Search {
        self.searches.entry(key).or_insert_with(|| Search::new(key, false))
    }

    fn step_searches(&mut self, now: Instant) {
        let keys: Vec<InfoHash> = self.searches.keys().copied().collect();
        for key in keys {
            let Some(search) = self.searches.get_mut(&key) else { continue };
            if search.wants_candidates() {
                let mut candidates = self.table4.closest(&key, 14, now);
                candidates.extend(self.table6.closest(&key, 14, now));
                search.add_candidates(&candidates);
            }
            let (actions, events) = search.step(now);
            if search.is_finished(now) {
                self.searches.remove(&key);
            }
            self.events.extend(events);
            for action in actions {
                self.execute(key, action, now);
            }
        }
        self.next_search_tick = (!self.searches.is_empty()).then_some(now + SEARCH_TICK);
    }

    fn execute(&mut self, key: InfoHash, action: Action, now: Instant) {
        match action {
            Action::Get(node, query) => {
                self.search_request(node, key, Query::Get { key, query, want: None }, now)
            }
            Action::Find(node) => {
                self.search_request(node, key, Query::Find { target: key, want: None }, now)
            }
            Action::Put { node, token, value, permanent } => {
                let value_id = value.id;
                let (values, packed) = fragments::slots_for(std::slice::from_ref(&value));
                let created = (!permanent).then(|| self.unix_now(now));
                let query = Query::Put { key, values, created, token };
                self.send_request(
                    node.address,
                    Some(node.id),
                    query,
                    Purpose::Put { key, value_id },
                    &packed,
                    now,
                );
            }
            Action::Listen { node, token, socket, query } => {
                let query = Query::Listen { key, token, socket, version: Some(1), query };
                self.send_request(
                    node.address,
                    Some(node.id),
                    query,
                    Purpose::Listen { key },
                    &[],
                    now,
                );
            }
        }
    }

    /// A get or find on behalf of the search for `key`.
    fn search_request(&mut self, node: NodeInfo, key: InfoHash, query: Query, now: Instant) {
        self.send_request(node.address, Some(node.id), query, Purpose::Search(Some(key)), &[], now);
    }

    /// Refreshes stale buckets with a `find` of a random id in their range.
    fn maintain(&mut self, now: Instant) {
        self.table4.remove_dead(now);
        self.table6.remove_dead(now);
        let mut targets = self.table4.refresh_targets(now, &mut self.rng);
        targets.extend(self.table6.refresh_targets(now, &mut self.rng));
        for target in targets {
            let closest = self
                .table4
                .closest(&target, 1, now)
                .into_iter()
                .chain(self.table6.closest(&target, 1, now));
            for node in closest.collect::<Vec<_>>() {
                let query = Query::Find { target, want: None };
                self.send_request(
                    node.address,
                    Some(node.id),
                    query,
                    Purpose::Search(None),
                    &[],
                    now,
                );
            }
        }
    }

    fn operation_id(&mut self) -> OperationId {
        self.next_operation += 1;
        OperationId(self.next_operation)
    }

    fn unix_now(&self, now: Instant) -> i64 {
        let (base_instant, base_unix) = self.clock_base;
        base_unix
            + i64::try_from(now.saturating_duration_since(base_instant).as_secs())
                .unwrap_or(i64::MAX / 2)
    }
}

/// The selected fields of `values`, flattened as `fileds` carries them.
fn select_fields(query: &ValueQuery, values: &[Value]) -> FieldsReply {
    let mut fields = query.select.clone();
    fields.sort();
    fields.dedup();
    let mut flat = Vec::new();
    for value in values {
        let body = match &value.content {
            super::value::Content::Clear { body, .. } => Some(body),
            super::value::Content::Encrypted(_) => None,
        };
        for field in &fields {
            flat.push(match field {
                Field::Id => FieldValue::Uint(value.id),
                Field::ValueType => FieldValue::Uint(u64::from(value.value_type().0)),
                Field::OwnerPk => FieldValue::Bytes(
                    body.and_then(|b| b.owner.as_ref()).map_or_else(|| vec![0; 20], |o| o.to_vec()),
                ),
                Field::SeqNum => FieldValue::Uint(body.and_then(|b| b.seq).map_or(0, u64::from)),
                Field::UserType => {
                    FieldValue::Text(body.and_then(|b| b.user_type.clone()).unwrap_or_default())
                }
            });
        }
    }
    FieldsReply { fields, values: flat }
}

/// Sources and node entries OpenDHT drops (opendht-wire.md §9.6).
fn is_martian(address: &SocketAddr) -> bool {
    if address.port() == 0 {
        return true;
    }
    match address.ip() {
        IpAddr::V4(ip) => ip.octets()[0] == 0 || ip.octets()[0] >= 224,
        IpAddr::V6(ip) => {
            let segments = ip.segments();
            ip.is_unspecified()
                || ip.is_multicast()
                || (segments[0] & 0xffc0) == 0xfe80
                || ip.to_ipv4_mapped().is_some()
        }
    }
}

#[cfg(test)]
mod tests;
