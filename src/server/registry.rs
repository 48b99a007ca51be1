//! The rooms being served, kept in step with the store: a room created (by the CLI or the
//! admin API) starts being served, a deleted one stops, and policy changes reach running
//! conferences, all without a restart.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rdv_admin_api::types::Event as ApiEvent;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::api::api_event;
use super::room_owner::RoomHandle;
use crate::clock::unix_now_ms;
use crate::conference::core::Roles;
use crate::config::{ClusterConfig, LinkConfig, MediaConfig};
use crate::dht::driver::DhtHandle;
use crate::room::{Room, RoomId, RoomName};
use crate::store::{Store, StoreError};
use crate::telemetry::metrics::Metrics;

/// Events kept for slow readers of the event streams.
const EVENT_BUFFER: usize = 1024;

/// A room being served.
struct Running {
    /// Its store key: a room deleted and created again under the same name is a new room.
    id: RoomId,
    /// Its name as created.
    name: RoomName,
    conference: RoomHandle,
    /// The room's events as the API tells them.
    events: broadcast::Sender<ApiEvent>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// When its lease was last renewed.
    renewed: Instant,
}

/// Every room being served. Shared by the server's run loop and the admin API.
pub(crate) struct Registry {
    dht: DhtHandle,
    store: Store,
    link: Arc<LinkConfig>,
    /// By lower-cased name (names are unique regardless of case).
    running: Mutex<HashMap<String, Running>>,
    /// Serialises [`Registry::sync`] runs; holds the rooms that could not be loaded, so
    /// that each is reported once rather than at every sync.
    syncing: tokio::sync::Mutex<HashSet<RoomId>>,
    /// Every room's events.
    all_events: broadcast::Sender<ApiEvent>,
    /// The DHT answered and the stored rooms are being served.
    ready: AtomicBool,
    metrics: Arc<Metrics>,
    /// This replica's name in the room leases.
    replica: String,
    /// How long a lease lasts without renewal.
    lease: Duration,
    /// Draining: no new rooms, no new callers, empty rooms handed over.
    draining: Arc<AtomicBool>,
    /// Where recordings go, and where played files are found.
    media: MediaConfig,
}

impl Registry {
    /// An empty registry; [`Registry::sync`] starts the stored rooms.
    pub(super) fn new(
        dht: DhtHandle,
        store: Store,
        link: Arc<LinkConfig>,
        metrics: Arc<Metrics>,
        cluster: &ClusterConfig,
        media: MediaConfig,
    ) -> Self {
        let replica = if cluster.replica.is_empty() {
            default_replica_name()
        } else {
            cluster.replica.clone()
        };
        info!(%replica, lease_seconds = cluster.lease_seconds, "replica");
        Self {
            dht,
            store,
            link,
            running: Mutex::new(HashMap::new()),
            syncing: tokio::sync::Mutex::new(HashSet::new()),
            all_events: broadcast::channel(EVENT_BUFFER).0,
            ready: AtomicBool::new(false),
            metrics,
            replica,
            lease: Duration::from_secs(cluster.lease_seconds),
            draining: Arc::default(),
            media,
        }
    }

    /// The store the rooms live in.
    pub(super) fn store(&self) -> &Store {
        &self.store
    }

    /// Brings the served rooms in line with the store: renews the leases of the rooms served
    /// here (stopping any whose lease was lost), stops deleted rooms, starts the rooms whose
    /// lease this replica gets, and hands each running conference its stored policy. While
    /// draining, starts nothing and hands over every room that is empty.
    pub(super) async fn sync(&self) -> Result<(), StoreError> {
        let mut unservable = self.syncing.lock().await;
        let stored = self.store.room_outlines().await?;
        let now = Instant::now();
        let draining = self.draining.load(Ordering::Relaxed);
        let mut leaving: Vec<(String, Running, &'static str)> = Vec::new();
        {
            let mut running = self.running();
            let keys: Vec<String> = running.keys().cloned().collect();
            for key in keys {
                let Some(entry) = running.get(&key) else { continue };
                let reason = if !stored.iter().any(|room| room.id == entry.id) {
                    Some("the room was deleted: it stops")
                } else if now.duration_since(entry.renewed) > self.lease {
                    Some("the room's lease could not be renewed: it stops")
                } else if draining && entry.conference.participant_count() == 0 {
                    Some("draining: the empty room is handed over")
                } else {
                    None
                };
                if let Some(reason) = reason
                    && let Some(entry) = running.remove(&key)
                {
                    leaving.push((key, entry, reason));
                }
            }
        }
        for (key, entry, reason) in leaving {
            info!(room = %key, replica = %self.replica, "{reason}");
            self.retire(entry).await;
        }
        for outline in stored {
            let key = key_of(&outline.name);
            let serving = self.running().contains_key(&key);
            if !serving && (draining || unservable.contains(&outline.id)) {
                continue;
            }
            match self.lease(outline.id).await {
                Ok(true) => {}
                Ok(false) if serving => {
                    let entry = self.running().remove(&key);
                    if let Some(entry) = entry {
                        warn!(room = %key, replica = %self.replica, "another replica took the room's lease: it stops here");
                        stop(entry).await;
                    }
                    continue;
                }
                Ok(false) => continue,
                Err(error) => {
                    warn!(room = %key, %error, "cannot renew the room's lease");
                    continue;
                }
            }
            if self.running().contains_key(&key) {
                // The roles are read before the lock is taken again (a store query waits).
                let roles = self.roles(outline.id).await;
                if let Some(entry) = self.running().get_mut(&key) {
                    entry.renewed = now;
                    entry.conference.set_policy(outline.policy);
                    if let Some(roles) = roles {
                        entry.conference.set_roles(roles);
                    }
                }
                continue;
            }
            // New here: its identity is loaded (and checked) once, to start it.
            let room = match self.store.room(&outline.name).await {
                Ok(Some(room)) => room,
                Ok(None) => continue,
                Err(error @ StoreError::DamagedRoom { .. }) => {
                    warn!(room = %outline.name, %error, "the room cannot be served");
                    unservable.insert(outline.id);
                    let _ = self.store.release_lease(outline.id, &self.replica).await;
                    continue;
                }
                Err(error) => return Err(error),
            };
            let roles = self.store.roles(outline.id).await?;
            info!(room = %outline.name, replica = %self.replica, "room lease taken: serving it");
            let entry = self.start(room, roles, now);
            self.running().insert(key, entry);
        }
        Ok(())
    }

    /// Takes or renews this replica's lease of room `room`.
    async fn lease(&self, room: RoomId) -> Result<bool, StoreError> {
        let now = unix_now_ms();
        let until = now.saturating_add(i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX));
        self.store.take_lease(room, &self.replica, now, until).await
    }

    /// Stops taking rooms and new callers; each room is handed over once empty (see
    /// [`Registry::sync`]).
    pub(super) fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// How many rooms are served here.
    pub(super) fn serving(&self) -> usize {
        self.running().len()
    }

    /// The stored roles of room `room`; `None` (logged) when the store cannot say, and the
    /// room keeps the roles it had.
    async fn roles(&self, room: RoomId) -> Option<Roles> {
        match self.store.roles(room).await {
            Ok(roles) => Some(roles),
            Err(error) => {
                warn!(%error, "cannot read a room's roles: it keeps the ones it had");
                None
            }
        }
    }

    /// Pushes room `name`'s stored roles to its conference now (after a change through the
    /// admin API), rather than at the next sync.
    pub(super) async fn refresh_roles(&self, name: &RoomName) {
        let Some((id, conference)) =
            self.running().get(&key_of(name)).map(|entry| (entry.id, entry.conference.clone()))
        else {
            return;
        };
        if let Some(roles) = self.roles(id).await {
            conference.set_roles(roles);
        }
    }

    /// Starts serving `room` with its stored `roles`, its lease renewed at `renewed`.
    fn start(&self, room: Room, roles: Roles, renewed: Instant) -> Running {
        let conference = RoomHandle::spawn(
            room.name.clone(),
            Arc::clone(&self.metrics),
            Arc::clone(&self.draining),
            (room.policy.clone(), roles),
        );
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        tokio::spawn(forward_events(
            room.name.clone(),
            conference.subscribe(),
            events.clone(),
            self.all_events.clone(),
        ));
        let (stop, stopped) = watch::channel(false);
        let (id, name) = (room.id, room.name.clone());
        let task = tokio::spawn(super::door::serve(
            self.dht.clone(),
            room,
            Arc::clone(&self.link),
            conference.clone(),
            stopped,
        ));
        Running { id, name, conference, events, stop, task, renewed }
    }

    /// Stops serving the room named `name` (in any case), ending its calls; false when it was
    /// not being served.
    pub(super) async fn stop_room(&self, name: &RoomName) -> bool {
        let _one_at_a_time = self.syncing.lock().await;
        let entry = self.running().remove(&key_of(name));
        match entry {
            Some(entry) => {
                self.retire(entry).await;
                true
            }
            None => false,
        }
    }

    /// Stops serving a room here and gives up its lease, so that another replica can take it
    /// at once.
    async fn retire(&self, entry: Running) {
        let (id, name) = (entry.id, entry.name.clone());
        stop(entry).await;
        if let Err(error) = self.store.release_lease(id, &self.replica).await {
            warn!(room = %name, %error, "cannot release the room's lease");
        }
    }

    /// Stops every room, ending all calls.
    pub(super) async fn stop_all(&self) {
        let _one_at_a_time = self.syncing.lock().await;
        let entries: Vec<Running> = self.running().drain().map(|(_, entry)| entry).collect();
        for entry in &entries {
            let _ = entry.stop.send(true);
        }
        for entry in entries {
            if let Err(error) = entry.task.await {
                warn!(%error, "a room task failed");
            }
        }
        // Another replica may take the rooms over at once rather than when the leases expire.
        if let Err(error) = self.store.release_leases(&self.replica).await {
            warn!(%error, "cannot release the room leases");
        }
    }

    /// The conference of the room named `name` (in any case), if it is being served.
    pub(super) fn conference(&self, name: &str) -> Option<RoomHandle> {
        self.running().get(&name.to_ascii_lowercase()).map(|entry| entry.conference.clone())
    }

    /// Participants in the room named `name` now (0 when it is not served).
    pub(super) fn participant_count(&self, name: &str) -> usize {
        self.conference(name).map_or(0, |conference| conference.participant_count())
    }

    /// Every room's events from now on.
    pub(super) fn all_events(&self) -> broadcast::Receiver<ApiEvent> {
        self.all_events.subscribe()
    }

    /// The events of the room named `name` (in any case); `None` when it is not served.
    pub(super) fn room_events(&self, name: &str) -> Option<broadcast::Receiver<ApiEvent>> {
        self.running().get(&name.to_ascii_lowercase()).map(|entry| entry.events.subscribe())
    }

    /// Participants per served room, and the CPU time of the mixers running now.
    pub(super) fn load(&self) -> (Vec<(String, usize)>, Duration) {
        let running = self.running();
        let rooms = running
            .values()
            .map(|entry| (entry.name.to_string(), entry.conference.participant_count()))
            .collect();
        let cpu = running.values().map(|entry| entry.conference.mixer_cpu()).sum();
        (rooms, cpu)
    }

    /// The DHT node's state; `None` once it has stopped.
    pub(super) async fn dht_status(&self) -> Option<crate::dht::driver::DhtStatus> {
        self.dht.status().await.ok()
    }

    /// A new recording file for room `name`: `<recordings>/<name>-<unix ms>.<extension>`.
    pub(super) fn recording_file(&self, name: &RoomName, extension: &str) -> std::path::PathBuf {
        self.media.recordings_dir.join(format!("{name}-{}.{extension}", unix_now_ms()))
    }

    /// The directory files are played from.
    pub(super) fn files_dir(&self) -> &std::path::Path {
        &self.media.files_dir
    }

    /// Marks the server ready (or not) to take calls.
    pub(super) fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Whether the server is ready to take calls.
    pub(super) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    fn running(&self) -> MutexGuard<'_, HashMap<String, Running>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A room's key in the registry.
fn key_of(name: &RoomName) -> String {
    name.as_str().to_ascii_lowercase()
}

/// Stops a room's task and waits for its links to close.
async fn stop(entry: Running) {
    let _ = entry.stop.send(true);
    if let Err(error) = entry.task.await {
        warn!(%error, "a room task failed");
    }
}

/// Passes a room's events on to its event stream and the all-rooms stream, until the room's
/// conference ends.
async fn forward_events(
    room: RoomName,
    mut events: broadcast::Receiver<crate::conference::event::RoomEvent>,
    room_stream: broadcast::Sender<ApiEvent>,
    all_rooms: broadcast::Sender<ApiEvent>,
) {
    loop {
        match events.recv().await {
            Ok(event) => {
                let at_ms = u64::try_from(unix_now_ms()).unwrap_or(0);
                let event = api_event(&room, at_ms, event);
                let _ = room_stream.send(event.clone());
                let _ = all_rooms.send(event);
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                warn!(room = %room, missed, "room events were lost before reaching the event streams");
            }
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}

/// This process's replica name: the host name and a random suffix.
fn default_replica_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_default();
    let host = if host.is_empty() { "rdv".to_owned() } else { host };
    format!("{host}-{:08x}", rand::random::<u32>())
}
