//! One room's owner task: publishes the room on the DHT and takes its connection requests.
//! A verified and admitted request gets an ICE answer and a device link task; TLS and SIP on
//! that link come next.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::{link, session};
use crate::dht::InfoHash;
use crate::dht::crypto::PrivateKey;
use crate::dht::driver::{DhtHandle, Operation};
use crate::dht::node::Event;
use crate::dht::value::{Content, ValueType, certificate_chain};
use crate::dht::wire::{Filter, ValueQuery};
use crate::identity::{AccountId, verify_device_chain};
use crate::net::tls::client_config;
use crate::presence::{
    PeerConnectionRequest, announcement_value, certificate_value, open_request, peer_key,
};
use crate::room::{Refusal, Room, admit};
use crate::store::{Store, StoreError};

/// Request ids remembered to drop re-deliveries (values live up to 10 minutes).
const TREATED_MEMORY: usize = 4096;
/// Callers' verified chains kept.
const CHAIN_CACHE: usize = 1024;
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
}

struct RoomTask {
    dht: DhtHandle,
    store: Store,
    room: Room,
    device_key: Arc<PrivateKey>,
    link_addresses: Arc<[IpAddr]>,
    links: JoinSet<()>,
    treated: HashSet<u64>,
    treated_order: VecDeque<u64>,
    chains: HashMap<InfoHash, Caller>,
    counters: RequestCounters,
}

/// Serves `room` until `stop` turns true.
pub(super) async fn serve(
    dht: DhtHandle,
    store: Store,
    room: Room,
    link_addresses: Arc<[IpAddr]>,
    mut stop: watch::Receiver<bool>,
) {
    let name = room.name.clone();
    let device_key = match PrivateKey::from_pem(room.identity.device().private_key.expose()) {
        Ok(key) => Arc::new(key),
        Err(error) => return warn!(room = %name, %error, "the room's device key is unusable"),
    };
    let mut task = RoomTask {
        dht,
        store,
        room,
        device_key,
        link_addresses,
        links: JoinSet::new(),
        treated: HashSet::new(),
        treated_order: VecDeque::new(),
        chains: HashMap::new(),
        counters: RequestCounters::default(),
    };
    if let Err(error) = task.run(&mut stop).await {
        warn!(room = %name, %error, "the room stopped serving");
    }
    info!(room = %name, counters = ?task.counters, "room stopped");
}

impl RoomTask {
    async fn run(
        &mut self,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let identity = &self.room.identity;
        let (device, account) = (identity.device_id(), identity.account_id());
        let mut certificate =
            self.dht.announce(device.into(), certificate_value(identity), true).await?;
        let mut announcement =
            self.dht.announce(account.into(), announcement_value(identity)?, true).await?;
        let mut requests = self.dht.listen(peer_key(device), None).await?;
        info!(room = %self.room.name, jami_id = %account, device_id = %device, "room listening for calls on the DHT");
        loop {
            tokio::select! {
                event = requests.events.recv() => match event {
                    Some(Event::Values { values, .. }) => {
                        for value in values {
                            self.on_value(&value).await;
                        }
                    }
                    Some(_) => {}
                    None => break,
                },
                Some(_) = self.links.join_next(), if !self.links.is_empty() => {}
                Some(event) = certificate.events.recv() => self.on_announced("device certificate", &event),
                Some(event) = announcement.events.recv() => self.on_announced("device announcement", &event),
                _ = stop.changed() => break,
            }
        }
        self.links.abort_all();
        for operation in [certificate, announcement, requests] {
            let _ = self.dht.cancel(operation.id).await;
        }
        Ok(())
    }

    fn on_announced(&self, what: &str, event: &Event) {
        if let Event::Announced { nodes, .. } = event {
            info!(room = %self.room.name, nodes, "{what} stored on the DHT");
        }
    }

    async fn on_value(&mut self, value: &crate::dht::value::Value) {
        let request = match open_request(&self.device_key, value) {
            Ok(request) if !request.is_answer => request,
            Ok(_) => return debug!(room = %self.room.name, "ignored an answer at our peer key"),
            Err(error) => {
                self.counters.dropped += 1;
                return debug!(room = %self.room.name, value_id = value.id, %error, "dropped a value at our peer key");
            }
        };
        if !self.remember(request.id) {
            self.counters.duplicates += 1;
            return;
        }
        let Some(Caller { account: caller, chain }) = self.caller_account(&request).await else {
            self.counters.unverified_sender += 1;
            return;
        };
        self.counters.verified += 1;
        info!(
            room = %self.room.name,
            caller_account = %caller,
            caller_device = %request.sender_id(),
            request_id = request.id,
            connection_type = %request.connection_type,
            "verified connection request"
        );
        if let Err(refusal) = self.admission(caller).await {
            self.counters.refused += 1;
            info!(
                room = %self.room.name,
                caller_account = %caller,
                caller_device = %request.sender_id(),
                reason = %refusal,
                refused = self.counters.refused,
                "refused a caller: no answer sent"
            );
            return;
        }
        let tls = match client_config(&self.room.identity, chain) {
            Ok(tls) => tls,
            Err(error) => return warn!(room = %self.room.name, %error, "cannot set up TLS"),
        };
        let (dht, key) = (self.dht.clone(), Arc::clone(&self.device_key));
        let (addresses, room) = (Arc::clone(&self.link_addresses), self.room.name.clone());
        self.links.spawn(async move {
            let started = std::time::Instant::now();
            match link::open(&dht, &key, &request, &addresses).await {
                Ok(link) => {
                    info!(
                        room = %room,
                        caller_account = %caller,
                        local = %link.local,
                        remote = %link.remote,
                        elapsed_ms = started.elapsed().as_millis(),
                        "ICE-TCP link connected"
                    );
                    session::serve(link, tls, &room, caller).await;
                }
                Err(error) => {
                    warn!(room = %room, caller_account = %caller, %error, "device link failed")
                }
            }
        });
    }

    /// Applies the room's admission policy, read fresh from the store so that changes made
    /// while the server runs take effect at the next call. A store failure refuses.
    async fn admission(&self, caller: AccountId) -> Result<(), AdmissionError> {
        let room = self.store.room(&self.room.name).await?.ok_or(AdmissionError::RoomGone)?;
        let roles = self.store.roles_of(room.id, caller).await?;
        Ok(admit(&room.policy, &roles)?)
    }

    /// The caller's account id and chain, from its device chain fetched on the DHT and
    /// verified.
    async fn caller_account(&mut self, request: &PeerConnectionRequest) -> Option<Caller> {
        let sender = request.sender_id();
        if let Some(caller) = self.chains.get(&sender) {
            return Some(caller.clone());
        }
        let query = ValueQuery {
            select: vec![],
            filters: vec![Filter::ValueType(ValueType::CERTIFICATE.0)],
        };
        let Ok(Operation { id, mut events }) = self.dht.get(sender, Some(query)).await else {
            return None;
        };
        let found = tokio::time::timeout(CERTIFICATE_TIMEOUT, async {
            while let Some(event) = events.recv().await {
                match event {
                    Event::Values { values, .. } => {
                        if let Some(account) =
                            values.iter().find_map(|value| chain_account(value, request))
                        {
                            return Some(account);
                        }
                    }
                    Event::GetDone { .. } => return None,
                    _ => {}
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        let _ = self.dht.cancel(id).await;
        match found {
            Some(ref caller) => {
                if self.chains.len() >= CHAIN_CACHE {
                    self.chains.clear();
                }
                self.chains.insert(sender, caller.clone());
            }
            None => {
                warn!(room = %self.room.name, caller_device = %sender, "no valid certificate chain for a caller")
            }
        }
        found
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

/// Why a caller is not let in.
#[derive(Debug, thiserror::Error)]
enum AdmissionError {
    #[error("{0}")]
    Refused(#[from] Refusal),
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
    #[error("the room was deleted")]
    RoomGone,
}

/// A caller whose device chain was found on the DHT and verified.
#[derive(Debug, Clone)]
struct Caller {
    account: AccountId,
    /// The chain as published (DER, leaf first): the one its TLS handshake must present.
    chain: Vec<Vec<u8>>,
}

/// The caller of a certificate value's chain, if it is a valid device chain whose leaf is the
/// request's signer.
fn chain_account(
    value: &crate::dht::value::Value,
    request: &PeerConnectionRequest,
) -> Option<Caller> {
    let Content::Clear { body, .. } = &value.content else { return None };
    let chain = verify_device_chain(&certificate_chain(&body.data)?).ok()?;
    chain.check_validity(SystemTime::now()).ok()?;
    (chain.public_keys_der()[0] == request.sender.spki_der())
        .then(|| Caller { account: chain.account_id(), chain: chain.certificates_der().to_vec() })
}
