//! The rooms being served, kept in step with the store: a room created (by the CLI or the
//! admin API) starts being served, a deleted one stops, and policy changes reach running
//! conferences, all without a restart.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdv_admin_api::types::Event as ApiEvent;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::api::api_event;
use super::conference::RoomHandle;
use crate::config::LinkConfig;
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
}

impl Registry {
    /// An empty registry; [`Registry::sync`] starts the stored rooms.
    pub(super) fn new(
        dht: DhtHandle,
        store: Store,
        link: Arc<LinkConfig>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            dht,
            store,
            link,
            running: Mutex::new(HashMap::new()),
            syncing: tokio::sync::Mutex::new(HashSet::new()),
            all_events: broadcast::channel(EVENT_BUFFER).0,
            ready: AtomicBool::new(false),
            metrics,
        }
    }

    /// The store the rooms live in.
    pub(super) fn store(&self) -> &Store {
        &self.store
    }

    /// Brings the served rooms in line with the store: starts new rooms, stops deleted ones,
    /// and hands each running conference its stored policy.
    pub(super) async fn sync(&self) -> Result<(), StoreError> {
        let mut unservable = self.syncing.lock().await;
        let stored = self.store.room_outlines().await?;
        let stale: Vec<(String, Running)> = {
            let mut running = self.running();
            let keys: Vec<String> = running
                .iter()
                .filter(|(key, entry)| {
                    !stored.iter().any(|room| room.id == entry.id && key_of(&room.name) == **key)
                })
                .map(|(key, _)| key.clone())
                .collect();
            keys.into_iter().filter_map(|key| running.remove_entry(&key)).collect()
        };
        for (key, entry) in stale {
            info!(room = %key, "the room was deleted: it stops");
            stop(entry).await;
        }
        for outline in stored {
            let key = key_of(&outline.name);
            if let Some(entry) = self.running().get(&key) {
                entry.conference.set_policy(outline.policy);
                continue;
            }
            if unservable.contains(&outline.id) {
                continue;
            }
            // New: its identity is loaded (and checked) once, to start it.
            let room = match self.store.room(&outline.name).await {
                Ok(Some(room)) => room,
                Ok(None) => continue,
                Err(error @ StoreError::DamagedRoom { .. }) => {
                    warn!(room = %outline.name, %error, "the room cannot be served");
                    unservable.insert(outline.id);
                    continue;
                }
                Err(error) => return Err(error),
            };
            let entry = self.start(room);
            entry.conference.set_policy(outline.policy);
            self.running().insert(key, entry);
        }
        Ok(())
    }

    /// Starts serving `room`.
    fn start(&self, room: Room) -> Running {
        let conference = RoomHandle::spawn(room.name.clone(), Arc::clone(&self.metrics));
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        tokio::spawn(forward_events(
            room.name.clone(),
            conference.subscribe(),
            events.clone(),
            self.all_events.clone(),
        ));
        let (stop, stopped) = watch::channel(false);
        let (id, name) = (room.id, room.name.clone());
        let task = tokio::spawn(super::room::serve(
            self.dht.clone(),
            self.store.clone(),
            room,
            Arc::clone(&self.link),
            conference.clone(),
            stopped,
        ));
        Running { id, name, conference, events, stop, task }
    }

    /// Stops serving the room named `name` (in any case), ending its calls; false when it was
    /// not being served.
    pub(super) async fn stop_room(&self, name: &RoomName) -> bool {
        let _one_at_a_time = self.syncing.lock().await;
        let entry = self.running().remove(&key_of(name));
        match entry {
            Some(entry) => {
                stop(entry).await;
                true
            }
            None => false,
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
    }

    /// The conference of the room named `name` (in any case), if it is being served.
    pub(super) fn conference(&self, name: &str) -> Option<RoomHandle> {
        self.running().get(&name.to_ascii_lowercase()).map(|entry| entry.conference.clone())
    }

    /// Participants in the room named `name` now (0 when it is not served).
    pub(super) fn participant_count(&self, name: &str) -> usize {
        self.conference(name).map_or(0, |conference| conference.participant_count())
    }

    /// Events of one room (`None` when it is not served), or of all rooms.
    pub(super) fn events(&self, name: Option<&str>) -> Option<broadcast::Receiver<ApiEvent>> {
        match name {
            None => Some(self.all_events.subscribe()),
            Some(name) => {
                self.running().get(&name.to_ascii_lowercase()).map(|entry| entry.events.subscribe())
            }
        }
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
                let at_ms = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
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
