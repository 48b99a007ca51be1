//! A search for the nodes closest to a key, and what is done there once they are found:
//! gets, announces (puts) and listens (opendht-wire.md §6.2, §6.4, §9.4).
//!
//! Up to 14 candidate nodes, closest first, at most 4 requests in flight. A node is *synced*
//! when it answered a get or find with a token within the last 10 minutes. The search has
//! converged when the 8 closest live nodes are synced: then gets are complete, values are
//! put on those 8 nodes (again before they would expire, for permanent announces), and
//! listens are (re)sent to the 4 closest every 20 seconds. Pure: it returns actions.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::{Event, OperationId};
use crate::dht::InfoHash;
use crate::dht::value::Value;
use crate::dht::wire::{NodeInfo, ValueQuery};

/// Candidates kept (`SEARCH_NODES`).
const SEARCH_NODES: usize = 14;
/// Nodes that must be synced for convergence, and that values are put on (`TARGET_NODES`).
pub(super) const TARGET_NODES: usize = 8;
/// Nodes listened to (`LISTEN_NODES`).
const LISTEN_NODES: usize = 4;
/// Requests in flight (`MAX_REQUESTED_SEARCH_NODES`).
const MAX_IN_FLIGHT: usize = 4;
/// A token is good for this long (`SearchNode::isSynced`).
const SYNC_TIME: Duration = Duration::from_secs(10 * 60);
/// Listens are renewed this often (`LISTEN_EXPIRE_TIME - REANNOUNCE_MARGIN`).
pub(super) const LISTEN_RENEWAL: Duration = Duration::from_secs(20);
/// Permanent values are put again this long before they would expire.
const REANNOUNCE_MARGIN: Duration = Duration::from_secs(60);

/// Something to send on behalf of a search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Action {
    /// Ask `node` for values at the key (and closer nodes, and a token).
    Get(NodeInfo, Option<ValueQuery>),
    /// Ask `node` for closer nodes and a token.
    Find(NodeInfo),
    /// Store `value` on `node`.
    Put { node: NodeInfo, token: Vec<u8>, value: Value, permanent: bool },
    /// Listen on `node` with socket id `socket`.
    Listen { node: NodeInfo, token: Vec<u8>, socket: u32, query: Option<ValueQuery> },
}

#[derive(Debug)]
struct SearchNode {
    info: NodeInfo,
    token: Option<Vec<u8>>,
    synced_at: Option<Instant>,
    requesting: bool,
    failed: bool,
    listened: HashMap<u32, Instant>,
    acked: HashMap<u64, Instant>,
    putting: HashSet<u64>,
}

impl SearchNode {
    fn new(info: NodeInfo) -> Self {
        Self {
            info,
            token: None,
            synced_at: None,
            requesting: false,
            failed: false,
            listened: HashMap::new(),
            acked: HashMap::new(),
            putting: HashSet::new(),
        }
    }

    fn is_synced(&self, now: Instant) -> bool {
        !self.failed
            && self.token.is_some()
            && self.synced_at.is_some_and(|at| now.saturating_duration_since(at) < SYNC_TIME)
    }
}

#[derive(Debug)]
pub(super) struct GetOp {
    pub(super) id: OperationId,
    pub(super) query: Option<ValueQuery>,
    seen: HashSet<u64>,
}

#[derive(Debug)]
pub(super) struct AnnounceOp {
    pub(super) id: OperationId,
    pub(super) value: Value,
    pub(super) permanent: bool,
    reported: bool,
}

#[derive(Debug)]
pub(super) struct ListenOp {
    pub(super) id: OperationId,
    pub(super) socket: u32,
    pub(super) query: Option<ValueQuery>,
    seen: HashSet<u64>,
}

/// A search and the operations riding on it.
#[derive(Debug)]
pub(super) struct Search {
    pub(super) key: InfoHash,
    nodes: Vec<SearchNode>,
    pub(super) gets: Vec<GetOp>,
    pub(super) announces: Vec<AnnounceOp>,
    pub(super) listens: Vec<ListenOp>,
    /// A search with no operation that stops once converged (own id, bucket refresh).
    maintenance: bool,
}

impl Search {
    pub(super) fn new(key: InfoHash, maintenance: bool) -> Self {
        Self {
            key,
            nodes: Vec::new(),
            gets: Vec::new(),
            announces: Vec::new(),
            listens: Vec::new(),
            maintenance,
        }
    }

    pub(super) fn add_get(&mut self, id: OperationId, query: Option<ValueQuery>) {
        self.gets.push(GetOp { id, query, seen: HashSet::new() });
    }

    pub(super) fn add_announce(&mut self, id: OperationId, value: Value, permanent: bool) {
        for node in &mut self.nodes {
            node.acked.remove(&value.id);
        }
        self.announces.retain(|op| op.value.id != value.id);
        self.announces.push(AnnounceOp { id, value, permanent, reported: false });
    }

    pub(super) fn add_listen(&mut self, id: OperationId, socket: u32, query: Option<ValueQuery>) {
        self.listens.push(ListenOp { id, socket, query, seen: HashSet::new() });
    }

    /// Removes an operation; true if it was there.
    pub(super) fn cancel(&mut self, id: OperationId) -> bool {
        let before = self.gets.len() + self.announces.len() + self.listens.len();
        self.gets.retain(|op| op.id != id);
        self.announces.retain(|op| op.id != id);
        self.listens.retain(|op| op.id != id);
        before != self.gets.len() + self.announces.len() + self.listens.len()
    }

    /// Nothing left to do: the search can go.
    pub(super) fn is_finished(&self, now: Instant) -> bool {
        let idle = self.gets.is_empty() && self.announces.is_empty() && self.listens.is_empty();
        idle && (!self.maintenance || self.converged(now))
    }

    /// Whether the search has fewer than 14 live candidates and should be offered more from the
    /// routing table (closer nodes also come in replies).
    pub(super) fn wants_candidates(&self) -> bool {
        self.nodes.iter().filter(|node| !node.failed).count() < SEARCH_NODES
    }

    /// Offers nodes (from the routing table or from replies); keeps the 14 best.
    pub(super) fn add_candidates(&mut self, candidates: &[NodeInfo]) {
        for candidate in candidates {
            if candidate.id == self.key || self.nodes.iter().any(|n| n.info.id == candidate.id) {
                continue;
            }
            self.nodes.push(SearchNode::new(*candidate));
        }
        let key = self.key;
        self.nodes.sort_by_key(|node| (node.failed, node.info.id.distance(&key)));
        self.nodes.truncate(SEARCH_NODES);
        self.nodes.sort_by_key(|node| node.info.id.distance(&key));
    }

    /// A node answered our get or find.
    pub(super) fn on_reply(&mut self, node: &InfoHash, token: Option<Vec<u8>>, now: Instant) {
        if let Some(entry) = self.nodes.iter_mut().find(|n| n.info.id == *node) {
            entry.requesting = false;
            entry.failed = false;
            if token.is_some() {
                entry.token = token;
                entry.synced_at = Some(now);
            }
        }
    }

    /// A node did not answer, or refused our token: it needs a fresh get.
    pub(super) fn on_failure(&mut self, node: &InfoHash, unreachable: bool) {
        if let Some(entry) = self.nodes.iter_mut().find(|n| n.info.id == *node) {
            entry.requesting = false;
            entry.putting.clear();
            entry.synced_at = None;
            entry.failed |= unreachable;
        }
    }

    /// Values arrived (from a get reply): the ones new to each get, as events.
    pub(super) fn on_values(&mut self, values: &[Value]) -> Vec<Event> {
        let key = self.key;
        self.gets
            .iter_mut()
            .filter_map(|op| values_event(op.id, key, op.query.as_ref(), &mut op.seen, values))
            .collect()
    }

    /// Values in our own storage at this key, new or already there: each get and listen gets
    /// the ones it has not seen, as OpenDHT answers a search from its own storage too.
    pub(super) fn on_local_values(&mut self, values: &[Value]) -> Vec<Event> {
        let mut events = self.on_values(values);
        let key = self.key;
        events.extend(
            self.listens
                .iter_mut()
                .filter_map(|op| values_event(op.id, key, op.query.as_ref(), &mut op.seen, values)),
        );
        events
    }

    /// A listened node pushed values for `socket`.
    pub(super) fn on_listen_values(&mut self, socket: u32, values: &[Value]) -> Option<Event> {
        let key = self.key;
        let op = self.listens.iter_mut().find(|op| op.socket == socket)?;
        values_event(op.id, key, op.query.as_ref(), &mut op.seen, values)
    }

    /// A listened node reports values expired for `socket`.
    pub(super) fn on_listen_expired(&mut self, socket: u32, ids: &[u64]) -> Option<Event> {
        let key = self.key;
        let op = self.listens.iter_mut().find(|op| op.socket == socket)?;
        for id in ids {
            op.seen.remove(id);
        }
        Some(Event::Expired { operation: op.id, key, ids: ids.to_vec() })
    }

    pub(super) fn has_socket(&self, socket: u32) -> bool {
        self.listens.iter().any(|op| op.socket == socket)
    }

    /// A node acknowledged our put.
    pub(super) fn on_put_ack(&mut self, node: &InfoHash, value_id: u64, now: Instant) {
        if let Some(entry) = self.nodes.iter_mut().find(|n| n.info.id == *node) {
            entry.putting.remove(&value_id);
            entry.acked.insert(value_id, now);
        }
    }

    fn live(&self) -> impl Iterator<Item = &SearchNode> {
        self.nodes.iter().filter(|n| !n.failed).take(TARGET_NODES)
    }

    fn converged(&self, now: Instant) -> bool {
        let mut live = self.live().peekable();
        live.peek().is_some() && live.all(|n| n.is_synced(now) && !n.requesting)
    }

    /// What to send now, and the events it completes.
    pub(super) fn step(&mut self, now: Instant) -> (Vec<Action>, Vec<Event>) {
        let mut actions = Vec::new();
        let mut events = Vec::new();
        let query = self.gets.first().and_then(|op| op.query.clone());
        let wants_values = !self.gets.is_empty();
        let mut in_flight = self.nodes.iter().filter(|n| n.requesting).count();
        for node in self.nodes.iter_mut().filter(|n| !n.failed).take(SEARCH_NODES) {
            if in_flight >= MAX_IN_FLIGHT {
                break;
            }
            if !node.requesting && !node.is_synced(now) {
                node.requesting = true;
                in_flight += 1;
                actions.push(if wants_values {
                    Action::Get(node.info, query.clone())
                } else {
                    Action::Find(node.info)
                });
            }
        }
        // Values go to each of the closest nodes as soon as it has answered with a token, as
        // OpenDHT does: an unresponsive candidate (given up only after 5 s) must not delay
        // a put that the live nodes can take now, such as a connection answer.
        let targets: Vec<usize> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| !n.failed)
            .take(TARGET_NODES)
            .map(|(i, _)| i)
            .collect();
        let converged = self.converged(now);
        for op in &mut self.announces {
            let reput = op.value.value_type().lifetime().saturating_sub(REANNOUNCE_MARGIN);
            let mut acked = 0;
            for &index in &targets {
                let node = &mut self.nodes[index];
                let fresh = node
                    .acked
                    .get(&op.value.id)
                    .is_some_and(|at| !op.permanent || now.saturating_duration_since(*at) < reput);
                acked += usize::from(node.acked.contains_key(&op.value.id));
                if fresh || node.putting.contains(&op.value.id) || !node.is_synced(now) {
                    continue;
                }
                let Some(token) = node.token.clone() else { continue };
                node.putting.insert(op.value.id);
                actions.push(Action::Put {
                    node: node.info,
                    token,
                    value: op.value.clone(),
                    permanent: op.permanent,
                });
            }
            if converged && !op.reported && acked == targets.len() {
                op.reported = true;
                events.push(Event::Announced { operation: op.id, key: self.key, nodes: acked });
            }
        }
        if !converged {
            return (actions, events);
        }
        let key = self.key;
        for op in self.gets.drain(..) {
            events.push(Event::GetDone { operation: op.id, key });
        }
        self.announces.retain(|op| op.permanent || !op.reported);
        for &index in targets.iter().take(LISTEN_NODES) {
            let node = &mut self.nodes[index];
            let Some(token) = node.token.clone() else { continue };
            for op in &self.listens {
                let due = node
                    .listened
                    .get(&op.socket)
                    .is_none_or(|at| now.saturating_duration_since(*at) >= LISTEN_RENEWAL);
                if due {
                    node.listened.insert(op.socket, now);
                    actions.push(Action::Listen {
                        node: node.info,
                        token: token.clone(),
                        socket: op.socket,
                        query: op.query.clone(),
                    });
                }
            }
        }
        (actions, events)
    }
}

/// The values matching `query` that the operation has not reported yet, as an event.
fn values_event(
    operation: OperationId,
    key: InfoHash,
    query: Option<&ValueQuery>,
    seen: &mut HashSet<u64>,
    values: &[Value],
) -> Option<Event> {
    let new: Vec<Value> = values
        .iter()
        .filter(|v| crate::dht::storage::matches(v, query) && seen.insert(v.id))
        .cloned()
        .collect();
    (!new.is_empty()).then_some(Event::Values { operation, key, values: new })
}
