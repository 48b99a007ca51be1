//! A room's door: publishes the room on the DHT and takes its connection requests.
//! A verified and admitted request gets an ICE answer and a device link task; TLS and SIP on
//! that link come next.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::room_owner::{AdmitError, RoomHandle};
use super::{link, session};
use crate::conference::event::RoomEvent;
use crate::config::LinkConfig;
use crate::dht::InfoHash;
use crate::dht::crypto::{PrivateKey, PublicKey};
use crate::dht::driver::{DhtHandle, Operation};
use crate::dht::node::Event;
use crate::dht::value::{Content, ValueType, certificate_chain};
use crate::dht::wire::{Filter, ValueQuery};
use crate::identity::{AccountId, verify_device_chain};
use crate::net::tls::{ExpectedPeer, client_config};
use crate::presence::{
    PeerConnectionRequest, ProtocolEra, announcement_value, certificate_value, open_request,
};
use crate::room::Room;
use crate::telemetry::metrics::CallOutcome;

/// Request ids remembered to drop re-deliveries (values live up to 10 minutes).
const TREATED_MEMORY: usize = 4096;
/// Callers' verified accounts kept, by device.
const CHAIN_CACHE: usize = 1024;
/// How long links get to close cleanly when the server stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Calls being verified, set up or served at once per room; more are dropped.
const MAX_REQUEST_TASKS: usize = 512;
/// How long to look for a caller's certificate on the DHT.
const CERTIFICATE_TIMEOUT: Duration = Duration::from_secs(10);

/// What happened to values at a room's `peer:` key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounters {
    /// Requests decrypted, signed, and from a verified chain.
    pub verified: u64,
    /// Values dropped: not for us, undecryptable, unsigned, badly signed, malformed.
    pub dropped: u64,
    /// Requests whose sender's chain could not be found or verified.
    pub unverified_sender: u64,
    /// Re-deliveries of requests already handled.
    pub duplicates: u64,
    /// Verified requests refused by the room's admission policy (banned, not allowed).
    pub refused: u64,
    /// Requests dropped because too many calls were being set up at once.
    pub overloaded: u64,
}

/// What the room task shares with its request tasks.
struct Shared {
    dht: DhtHandle,
    room: Room,
    device_key: PrivateKey,
    link: Arc<LinkConfig>,
    /// Turns true when the server stops: links close cleanly.
    stop: watch::Receiver<bool>,
    chains: Mutex<HashMap<InfoHash, AccountId>>,
    counters: Mutex<RequestCounters>,
    conference: RoomHandle,
}

/// The room's door task: takes values at the peer key, drops junk and re-deliveries, and
/// hands each new request to a task of its own (verification can wait on the DHT for
/// seconds; the room must not).
struct RoomTask {
    shared: Arc<Shared>,
    requests: JoinSet<()>,
    treated: HashSet<u64>,
    treated_order: VecDeque<u64>,
}

/// Serves `room` until `stop` turns true.
pub(super) async fn serve(
    dht: DhtHandle,
    room: Room,
    link: Arc<LinkConfig>,
    conference: RoomHandle,
    mut stop: watch::Receiver<bool>,
) {
    let name = room.name.clone();
    let device_key = match PrivateKey::from_pem(room.identity.device().private_key.expose()) {
        Ok(key) => key,
        Err(error) => return warn!(room = %name, %error, "the room's device key is unusable"),
    };
    let shared = Arc::new(Shared {
        dht,
        room,
        device_key,
        link,
        stop: stop.clone(),
        chains: Mutex::new(HashMap::new()),
        counters: Mutex::new(RequestCounters::default()),
        conference,
    });
    let mut task = RoomTask {
        shared: Arc::clone(&shared),
        requests: JoinSet::new(),
        treated: HashSet::new(),
        treated_order: VecDeque::new(),
    };
    if let Err(error) = task.run(&mut stop).await {
        warn!(room = %name, %error, "the room stopped serving");
    }
    // Bots and playbacks hold the conference too: it ends now, not when they go.
    shared.conference.close().await;
    info!(room = %name, counters = ?shared.counters(), "room stopped");
}

impl RoomTask {
    async fn run(
        &mut self,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let shared = Arc::clone(&self.shared);
        let (dht, identity) = (&shared.dht, &shared.room.identity);
        let (device, account) = (identity.device_id(), identity.account_id());
        let device_key = shared.device_key.public_key();
        // Both eras at once: the certificate at both keys, requests taken at both.
        let certificate_key = ProtocolEra::Current.certificate_key(device_key);
        let mut certificate =
            dht.announce(certificate_key, certificate_value(identity), true).await?;
        let legacy_certificate_key = ProtocolEra::Legacy.certificate_key(device_key);
        let mut legacy_certificate =
            dht.announce(legacy_certificate_key, certificate_value(identity), true).await?;
        let mut announcement =
            dht.announce(account.into(), announcement_value(identity)?, true).await?;
        let mut requests = dht.listen(ProtocolEra::Current.peer_key(device_key), None).await?;
        let mut legacy_requests =
            dht.listen(ProtocolEra::Legacy.peer_key(device_key), None).await?;
        info!(room = %shared.room.name, jami_id = %account, device_id = %device, device_long_id = %identity.device_long_id(), "room listening for calls on the DHT");
        loop {
            tokio::select! {
                event = requests.events.recv() => match event {
                    Some(event) => self.on_request_event(event, ProtocolEra::Current),
                    None => break,
                },
                event = legacy_requests.events.recv() => match event {
                    Some(event) => self.on_request_event(event, ProtocolEra::Legacy),
                    None => break,
                },
                Some(_) = self.requests.join_next(), if !self.requests.is_empty() => {}
                Some(event) = certificate.events.recv() => self.on_announced("device certificate", Some(ProtocolEra::Current), &event),
                Some(event) = legacy_certificate.events.recv() => self.on_announced("device certificate", Some(ProtocolEra::Legacy), &event),
                Some(event) = announcement.events.recv() => self.on_announced("device announcement", None, &event),
                _ = stop.changed() => break,
            }
        }
        // Links close cleanly on the stop signal; give them a moment, then cut what is left.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while self.requests.join_next().await.is_some() {}
        })
        .await;
        self.requests.abort_all();
        for operation in [certificate, legacy_certificate, announcement, requests, legacy_requests]
        {
            let _ = dht.cancel(operation.id).await;
        }
        Ok(())
    }

    fn on_request_event(&mut self, event: Event, era: ProtocolEra) {
        if let Event::Values { values, .. } = event {
            for value in values {
                self.on_value(&value, era);
            }
        }
    }

    /// Logs a publication; `era` tells which of a certificate's two keys it went to.
    fn on_announced(&self, what: &str, era: Option<ProtocolEra>, event: &Event) {
        if let Event::Announced { nodes, .. } = event {
            let key = era.map(|era| format!(" ({era} key)")).unwrap_or_default();
            info!(room = %self.shared.room.name, nodes, "{what} stored on the DHT{key}");
        }
    }

    fn on_value(&mut self, value: &crate::dht::value::Value, era: ProtocolEra) {
        let shared = Arc::clone(&self.shared);
        let request = match open_request(&shared.device_key, value, era) {
            Ok(request) if !request.is_answer => request,
            Ok(_) => return debug!(room = %shared.room.name, "ignored an answer at our peer key"),
            Err(error) => {
                shared.count(|c| c.dropped += 1);
                return debug!(room = %shared.room.name, value_id = value.id, key = %era, %error, "dropped a value at our peer key");
            }
        };
        if !self.remember(request.id) {
            shared.count(|c| c.duplicates += 1);
            return;
        }
        if self.requests.len() >= MAX_REQUEST_TASKS {
            shared.count(|c| c.overloaded += 1);
            return warn!(room = %shared.room.name, caller_device = %request.sender_id(), "too many calls being set up: request dropped");
        }
        self.requests.spawn(shared.handle(request));
    }

    fn remember(&mut self, id: u64) -> bool {
        if !self.treated.insert(id) {
            return false;
        }
        self.treated_order.push_back(id);
        if self.treated_order.len() > TREATED_MEMORY
            && let Some(oldest) = self.treated_order.pop_front()
        {
            self.treated.remove(&oldest);
        }
        true
    }
}

impl Shared {
    /// Updates the counters.
    fn count(&self, update: impl FnOnce(&mut RequestCounters)) -> RequestCounters {
        let mut counters = self.counters.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        update(&mut counters);
        *counters
    }

    fn counters(&self) -> RequestCounters {
        self.count(|_| {})
    }

    /// Verifies a new request's sender, applies the admission policy, and opens and serves
    /// the device link.
    async fn handle(self: Arc<Self>, request: PeerConnectionRequest) {
        let Some(caller) = self.caller_account(&request).await else {
            self.count(|c| c.unverified_sender += 1);
            return;
        };
        let verified_at = std::time::Instant::now();
        self.count(|c| c.verified += 1);
        info!(
            room = %self.room.name,
            caller_account = %caller,
            caller_device = %request.sender_id(),
            request_id = request.id,
            key = %request.era,
            connection_type = %request.connection_type,
            "verified connection request"
        );
        match self.conference.admit(caller).await {
            Ok(_) => {}
            Err(refusal) => {
                let refused = self.count(|c| c.refused += 1).refused;
                info!(
                    room = %self.room.name,
                    caller_account = %caller,
                    caller_device = %request.sender_id(),
                    reason = %refusal,
                    refused,
                    "refused a caller: no answer sent"
                );
                let reason = refusal.to_string();
                self.conference.publish(RoomEvent::CallRefused { account: caller, reason });
                let outcome = match refusal {
                    AdmitError::Refused(_) => CallOutcome::Refused,
                    AdmitError::NotRunning => CallOutcome::Failed,
                };
                self.conference.metrics().call(outcome);
                return;
            }
        };
        let expected =
            ExpectedPeer { device_key: request.sender.spki_der().to_vec(), account: caller };
        let tls = match client_config(&self.room.identity, expected) {
            Ok(tls) => tls,
            Err(error) => return warn!(room = %self.room.name, %error, "cannot set up TLS"),
        };
        let room = &self.room.name;
        let started = std::time::Instant::now();
        match link::open(&self.dht, &self.device_key, &request, &self.link.addresses).await {
            Ok(link) => {
                info!(
                    room = %room,
                    caller_account = %caller,
                    local = %link.local,
                    remote = %link.remote,
                    elapsed_ms = started.elapsed().as_millis(),
                    "ICE-TCP link connected"
                );
                let context = session::LinkContext {
                    room: room.clone(),
                    device: self.room.identity.device_id(),
                    device_long_id: self.room.identity.device_long_id(),
                    conference: self.conference.clone(),
                    caller_device: request.sender.long_id(),
                    beacon_interval: Duration::from_secs(self.link.beacon_interval),
                    requested_at: verified_at,
                };
                session::serve(link, tls, caller, context, self.stop.clone()).await;
            }
            Err(error) => {
                warn!(room = %room, caller_account = %caller, %error, "device link failed");
                self.conference.call_failed(caller, format!("device link: {error}"));
            }
        }
    }

    /// The caller's account id and chain, from its device chain fetched on the DHT and
    /// verified. Today's callers publish it only at the hash of their long id, older ones
    /// only at their id: both are asked at once, and the first valid chain wins.
    async fn caller_account(&self, request: &PeerConnectionRequest) -> Option<AccountId> {
        let sender = request.sender_id();
        if let Some(caller) = self.chains().get(&sender) {
            return Some(*caller);
        }
        let (found, mut first_found) = tokio::sync::mpsc::channel(1);
        let mut lookups = Vec::new();
        let mut searches = JoinSet::new();
        for era in ProtocolEra::ALL {
            let query = ValueQuery {
                select: vec![],
                filters: vec![Filter::ValueType(ValueType::CERTIFICATE.0)],
            };
            let key = era.certificate_key(&request.sender);
            let Ok(Operation { id, mut events }) = self.dht.get(key, Some(query)).await else {
                continue;
            };
            lookups.push(id);
            let (found, signer) = (found.clone(), request.sender.clone());
            searches.spawn(async move {
                while let Some(event) = events.recv().await {
                    match event {
                        Event::Values { values, .. } => {
                            let valid =
                                values.iter().find_map(|value| chain_account(value, &signer));
                            if let Some(caller) = valid {
                                let _ = found.send(caller).await;
                                return;
                            }
                        }
                        Event::GetDone { .. } => return,
                        _ => {}
                    }
                }
            });
        }
        drop(found);
        let found =
            tokio::time::timeout(CERTIFICATE_TIMEOUT, first_found.recv()).await.ok().flatten();
        searches.abort_all();
        for id in lookups {
            let _ = self.dht.cancel(id).await;
        }
        match found {
            Some(ref caller) => {
                let mut chains = self.chains();
                if chains.len() >= CHAIN_CACHE {
                    chains.clear();
                }
                chains.insert(sender, *caller);
            }
            None => {
                warn!(room = %self.room.name, caller_device = %sender, caller_device_long = %request.sender.long_id(), "no valid certificate chain for a caller at either key")
            }
        }
        found
    }

    fn chains(&self) -> std::sync::MutexGuard<'_, HashMap<InfoHash, AccountId>> {
        self.chains.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The caller's account of a certificate value's chain, if it is a valid device chain whose
/// leaf is `signer`, the key that signed the connection request.
fn chain_account(value: &crate::dht::value::Value, signer: &PublicKey) -> Option<AccountId> {
    let Content::Clear { body, .. } = &value.content else { return None };
    let chain = verify_device_chain(&certificate_chain(&body.data)?).ok()?;
    chain.check_validity(SystemTime::now()).ok()?;
    (chain.public_keys_der()[0] == signer.spki_der()).then(|| chain.account_id())
}
