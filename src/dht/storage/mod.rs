//! Values this node stores for the network, with their listeners (opendht-wire.md §4.4–4.8,
//! §6.3, §7.6, §9.7). Pure and clock-free: every operation takes `now`.
//!
//! Policies, as OpenDHT 2.4.12 applies them: a value lives for its type's lifetime after its
//! creation or last refresh; an unsigned value cannot be edited; a signed value can be
//! replaced only by the same owner with a higher sequence number, or the same one and the
//! same signed content; an unsigned value never replaces a signed one. Signatures are
//! checked by the caller before [`Storage::store`]. Quotas bound memory: a total size, a
//! number of values per key and per source address; when full, the source using the most
//! space loses its oldest value.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::InfoHash;
use super::value::{Content, Value};
use super::wire::{Filter, ValueQuery};

/// How long a remote listener lasts after its last `listen` (`NODE_EXPIRE_TIME`).
pub const LISTENER_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// Storage bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageLimits {
    /// Total bytes of stored values (OpenDHT: 64 MiB).
    pub total_bytes: usize,
    /// Values per key.
    pub values_per_key: usize,
    /// Bytes stored on behalf of one source address.
    pub bytes_per_source: usize,
    /// Listeners per key.
    pub listeners_per_key: usize,
    /// Listeners in all.
    pub listeners_total: usize,
}

impl Default for StorageLimits {
    fn default() -> Self {
        Self {
            total_bytes: 64 << 20,
            values_per_key: 1024,
            bytes_per_source: 4 << 20,
            listeners_per_key: 1024,
            listeners_total: 65536,
        }
    }
}

/// A value held for the network.
#[derive(Debug, Clone)]
pub struct StoredValue {
    /// The value.
    pub value: Value,
    /// When it goes, unless refreshed.
    pub expires: Instant,
    /// Who sent it.
    pub source: IpAddr,
    /// Its size as OpenDHT counts it.
    pub size: usize,
    /// When it was stored (for eviction order).
    pub stored: Instant,
}

/// A remote node listening to a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// The listening node.
    pub node: InfoHash,
    /// Where to send notifications.
    pub address: SocketAddr,
    /// The listener's socket id.
    pub socket: u32,
    /// Listener protocol version (1 for OpenDHT 2.x).
    pub version: Option<u32>,
    /// Which values it wants.
    pub query: Option<ValueQuery>,
    /// When it lapses unless renewed.
    pub expires: Instant,
}

/// A change listeners must hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A value was stored or replaced.
    Stored(Value),
    /// Values were refreshed, by id.
    Refreshed(Vec<u64>),
    /// Values expired or were evicted, by id.
    Expired(Vec<u64>),
}

/// A notification to send: `change` at `key` for `listener`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The key.
    pub key: InfoHash,
    /// Who to tell.
    pub listener: Listener,
    /// What happened.
    pub change: Change,
}

/// What [`Storage::store`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreOutcome {
    /// New value stored.
    Stored,
    /// Replaced a value with the same id (allowed edit).
    Edited,
    /// Same value again: refreshed.
    Refreshed,
    /// Refused by the edit policy.
    EditRefused,
    /// Already expired at arrival.
    Expired,
    /// No room within the quotas.
    OverQuota,
}

#[derive(Debug, Default)]
struct KeyStorage {
    values: Vec<StoredValue>,
    listeners: Vec<Listener>,
}

/// The node's storage.
#[derive(Debug, Default)]
pub struct Storage {
    keys: HashMap<InfoHash, KeyStorage>,
    limits: StorageLimits,
    total_bytes: usize,
    bytes_by_source: HashMap<IpAddr, usize>,
    listener_count: usize,
}

impl Storage {
    /// Empty storage with these limits.
    pub fn new(limits: StorageLimits) -> Self {
        Self { limits, ..Self::default() }
    }

    /// Stores `value` at `key`, created `age` ago, from `source`. Returns what happened and the
    /// notifications for the key's listeners.
    pub fn store(
        &mut self,
        key: InfoHash,
        value: Value,
        age: Duration,
        source: IpAddr,
        now: Instant,
    ) -> (StoreOutcome, Vec<Notification>) {
        let lifetime = value.value_type().lifetime();
        let Some(remaining) = lifetime.checked_sub(age).filter(|d| !d.is_zero()) else {
            return (StoreOutcome::Expired, Vec::new());
        };
        let expires = now + remaining;
        let size = value.size();
        let storage = self.keys.entry(key).or_default();
        if let Some(index) = storage.values.iter().position(|stored| stored.value.id == value.id) {
            let old = &storage.values[index];
            if old.value == value {
                let stored = &mut storage.values[index];
                stored.expires = stored.expires.max(expires);
                let id = value.id;
                return (
                    StoreOutcome::Refreshed,
                    notify(key, &storage.listeners, &Change::Refreshed(vec![id])),
                );
            }
            if !edit_allowed(&old.value, &value) {
                return (StoreOutcome::EditRefused, Vec::new());
            }
            let old = storage.values.remove(index);
            self.release(old.source, old.size);
            let (outcome, notifications) = self.insert(key, value, expires, source, size, now);
            let outcome =
                if outcome == StoreOutcome::Stored { StoreOutcome::Edited } else { outcome };
            return (outcome, notifications);
        }
        self.insert(key, value, expires, source, size, now)
    }

    fn insert(
        &mut self,
        key: InfoHash,
        value: Value,
        expires: Instant,
        source: IpAddr,
        size: usize,
        now: Instant,
    ) -> (StoreOutcome, Vec<Notification>) {
        let mut notifications = Vec::new();
        let source_bytes = self.bytes_by_source.get(&source).copied().unwrap_or(0);
        let per_key_full =
            self.keys.get(&key).is_some_and(|s| s.values.len() >= self.limits.values_per_key);
        if per_key_full
            || source_bytes + size > self.limits.bytes_per_source
            || size > self.limits.total_bytes
        {
            return (StoreOutcome::OverQuota, notifications);
        }
        while self.total_bytes + size > self.limits.total_bytes {
            match self.evict_one() {
                Some(evicted) => notifications.extend(evicted),
                None => return (StoreOutcome::OverQuota, notifications),
            }
        }
        let storage = self.keys.entry(key).or_default();
        notifications.extend(notify(key, &storage.listeners, &Change::Stored(value.clone())));
        storage.values.push(StoredValue { value, expires, source, size, stored: now });
        self.total_bytes += size;
        *self.bytes_by_source.entry(source).or_default() += size;
        (StoreOutcome::Stored, notifications)
    }

    /// Removes the oldest value of the source using the most space.
    fn evict_one(&mut self) -> Option<Vec<Notification>> {
        let (&source, _) = self
            .bytes_by_source
            .iter()
            .filter(|(_, bytes)| **bytes > 0)
            .max_by_key(|(_, bytes)| **bytes)?;
        let (key, index) = self
            .keys
            .iter()
            .flat_map(|(key, s)| s.values.iter().enumerate().map(move |(i, v)| (*key, i, v)))
            .filter(|(_, _, stored)| stored.source == source)
            .min_by_key(|(_, _, stored)| stored.stored)
            .map(|(key, index, _)| (key, index))?;
        Some(self.remove(key, index))
    }

    fn remove(&mut self, key: InfoHash, index: usize) -> Vec<Notification> {
        let Some(storage) = self.keys.get_mut(&key) else { return Vec::new() };
        let removed = storage.values.remove(index);
        let notifications =
            notify(key, &storage.listeners, &Change::Expired(vec![removed.value.id]));
        self.release(removed.source, removed.size);
        notifications
    }

    /// Gives back the bytes of a value that left the storage.
    fn release(&mut self, source: IpAddr, size: usize) {
        self.total_bytes -= size;
        *self.bytes_by_source.entry(source).or_default() -= size;
    }

    /// Refreshes value `id` at `key`: `None` when the key has no storage at all (error 404),
    /// else the notifications (empty when that id is not stored, which OpenDHT still
    /// acknowledges).
    pub fn refresh(&mut self, key: &InfoHash, id: u64, now: Instant) -> Option<Vec<Notification>> {
        let storage = self.keys.get_mut(key)?;
        let Some(stored) = storage.values.iter_mut().find(|stored| stored.value.id == id) else {
            return Some(Vec::new());
        };
        stored.expires = stored.expires.max(now + stored.value.value_type().lifetime());
        Some(notify(*key, &storage.listeners, &Change::Refreshed(vec![id])))
    }

    /// The values at `key` that match `query`.
    pub fn get(&self, key: &InfoHash, query: Option<&ValueQuery>) -> Vec<&Value> {
        self.keys
            .get(key)
            .map(|storage| {
                storage
                    .values
                    .iter()
                    .map(|stored| &stored.value)
                    .filter(|value| matches(value, query))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether anything (values or listeners) is kept at `key`.
    pub fn has_key(&self, key: &InfoHash) -> bool {
        self.keys.contains_key(key)
    }

    /// Adds or renews a listener. A new listener is sent the matching values at once.
    pub fn listen(
        &mut self,
        key: InfoHash,
        listener: Listener,
    ) -> Result<Vec<Notification>, StoreOutcome> {
        let storage = self.keys.entry(key).or_default();
        if let Some(existing) = storage
            .listeners
            .iter_mut()
            .find(|l| l.node == listener.node && l.socket == listener.socket)
        {
            *existing = listener;
            return Ok(Vec::new());
        }
        if storage.listeners.len() >= self.limits.listeners_per_key
            || self.listener_count >= self.limits.listeners_total
        {
            if storage.values.is_empty() && storage.listeners.is_empty() {
                self.keys.remove(&key);
            }
            return Err(StoreOutcome::OverQuota);
        }
        self.listener_count += 1;
        let initial = storage
            .values
            .iter()
            .filter(|stored| matches(&stored.value, listener.query.as_ref()))
            .map(|stored| Notification {
                key,
                listener: listener.clone(),
                change: Change::Stored(stored.value.clone()),
            })
            .collect();
        storage.listeners.push(listener);
        Ok(initial)
    }

    /// Drops expired values and listeners, returning the expiry notifications.
    pub fn expire(&mut self, now: Instant) -> Vec<Notification> {
        let mut notifications = Vec::new();
        let mut freed: Vec<(IpAddr, usize)> = Vec::new();
        for (key, storage) in &mut self.keys {
            let listeners = storage.listeners.len();
            storage.listeners.retain(|listener| listener.expires > now);
            self.listener_count -= listeners - storage.listeners.len();
            let (expired, kept): (Vec<_>, Vec<_>) =
                storage.values.drain(..).partition(|stored| stored.expires <= now);
            storage.values = kept;
            if !expired.is_empty() {
                let ids = expired.iter().map(|stored| stored.value.id).collect();
                notifications.extend(notify(*key, &storage.listeners, &Change::Expired(ids)));
                freed.extend(expired.iter().map(|stored| (stored.source, stored.size)));
            }
        }
        for (source, size) in freed {
            self.release(source, size);
        }
        self.bytes_by_source.retain(|_, bytes| *bytes > 0);
        self.keys.retain(|_, storage| !storage.values.is_empty() || !storage.listeners.is_empty());
        notifications
    }

    /// The next time something expires.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.keys
            .values()
            .flat_map(|s| {
                s.values.iter().map(|v| v.expires).chain(s.listeners.iter().map(|l| l.expires))
            })
            .min()
    }

    /// Number of stored values.
    pub fn value_count(&self) -> usize {
        self.keys.values().map(|storage| storage.values.len()).sum()
    }

    /// Total size of the stored values.
    pub fn total_bytes(&self) -> usize {
        self.total_bytes
    }
}

fn owner_and_seq(value: &Value) -> Option<(&[u8], u16, Vec<u8>)> {
    match &value.content {
        Content::Clear { body, signature: Some(_) } => {
            Some((body.owner.as_deref()?, body.seq?, body.to_sign()))
        }
        _ => None,
    }
}

/// OpenDHT's edit policy for a value id that is already stored.
fn edit_allowed(old: &Value, new: &Value) -> bool {
    let Some((old_owner, old_seq, old_signed)) = owner_and_seq(old) else {
        return false; // unsigned (or encrypted) values cannot be edited
    };
    let Some((new_owner, new_seq, new_signed)) = owner_and_seq(new) else {
        return false; // never replace a signed value with an unsigned one
    };
    old_owner == new_owner
        && (new_seq > old_seq || (new_seq == old_seq && new_signed == old_signed))
}

/// Whether `value` satisfies every condition of `query`.
pub fn matches(value: &Value, query: Option<&ValueQuery>) -> bool {
    let Some(query) = query else { return true };
    query.filters.iter().all(|filter| match (filter, &value.content) {
        (Filter::Id(id), _) => value.id == *id,
        (Filter::ValueType(t), _) => value.value_type().0 == *t,
        (Filter::Owner(owner), Content::Clear { body, .. }) => {
            body.owner.as_deref().is_some_and(|der| InfoHash::from_spki_der(der) == *owner)
        }
        (Filter::UserType(user_type), Content::Clear { body, .. }) => {
            body.user_type.as_deref().map(str::as_bytes) == Some(user_type.as_slice())
        }
        (Filter::Owner(_) | Filter::UserType(_), Content::Encrypted(_)) => false,
    })
}

fn notify(key: InfoHash, listeners: &[Listener], change: &Change) -> Vec<Notification> {
    listeners
        .iter()
        .filter(|listener| match change {
            Change::Stored(value) => matches(value, listener.query.as_ref()),
            Change::Refreshed(_) | Change::Expired(_) => true,
        })
        .map(|listener| Notification { key, listener: listener.clone(), change: change.clone() })
        .collect()
}

#[cfg(test)]
mod tests;
