//! Our outstanding requests, with OpenDHT's retransmission schedule (opendht-wire.md §9.1):
//! sends at 0 s, 1 s and 3 s, given up 2 s after the last one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::dht::InfoHash;
use crate::dht::wire::Tid;

/// Delays between attempts; after the last, the request fails.
const SCHEDULE: [Duration; 3] =
    [Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(2)];

/// What a request was for, to act on its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Purpose {
    /// A bootstrap or liveness ping.
    Ping,
    /// A `find` or `get` for a search (the key) or for bucket maintenance (`None`).
    Search(Option<InfoHash>),
    /// A `put` of value `value_id` for the search on `key`.
    Put { key: InfoHash, value_id: u64 },
    /// A `listen` for the search on `key`.
    Listen { key: InfoHash },
    /// A notification to a remote listener (not retransmitted).
    Update,
}

#[derive(Debug)]
pub(super) struct Pending {
    pub(super) to: SocketAddr,
    pub(super) node: Option<InfoHash>,
    pub(super) purpose: Purpose,
    datagrams: Vec<Vec<u8>>,
    attempt: usize,
    deadline: Instant,
}

/// A request that needs action.
pub(super) enum Due {
    /// Send these datagrams again.
    Resend(SocketAddr, Vec<Vec<u8>>),
    /// It failed: no reply after every attempt.
    Failed(Pending),
}

#[derive(Debug, Default)]
pub(super) struct Requests {
    pending: HashMap<Tid, Pending>,
}

impl Requests {
    /// Records a request just sent as `datagrams` (the message and its value parts).
    pub(super) fn sent(
        &mut self,
        tid: Tid,
        to: SocketAddr,
        node: Option<InfoHash>,
        purpose: Purpose,
        datagrams: Vec<Vec<u8>>,
        now: Instant,
    ) {
        let attempt = if purpose == Purpose::Update { SCHEDULE.len() - 1 } else { 0 };
        let deadline = now + SCHEDULE[attempt];
        self.pending.insert(tid, Pending { to, node, purpose, datagrams, attempt, deadline });
    }

    /// Whether a request with tid `tid` was sent to `from` and waits for its reply.
    pub(super) fn expects(&self, tid: Tid, from: SocketAddr) -> bool {
        self.pending.get(&tid).is_some_and(|pending| pending.to == from)
    }

    /// Takes the request a reply answers: same tid, from the address it was sent to, and from
    /// the node it was sent to when that node was known.
    pub(super) fn answered(
        &mut self,
        tid: Tid,
        from: SocketAddr,
        sender: Option<InfoHash>,
    ) -> Option<Pending> {
        let pending = self.pending.get(&tid)?;
        let node_matches = match (pending.node, sender) {
            (Some(expected), Some(sender)) => expected == sender,
            _ => true,
        };
        if pending.to != from || !node_matches {
            return None;
        }
        self.pending.remove(&tid)
    }

    /// Requests whose deadline passed: resends and failures.
    pub(super) fn due(&mut self, now: Instant) -> Vec<Due> {
        let expired: Vec<Tid> =
            self.pending.iter().filter(|(_, p)| p.deadline <= now).map(|(tid, _)| *tid).collect();
        let mut due = Vec::new();
        for tid in expired {
            let Some(pending) = self.pending.get_mut(&tid) else { continue };
            pending.attempt += 1;
            if pending.attempt >= SCHEDULE.len() {
                if let Some(failed) = self.pending.remove(&tid) {
                    due.push(Due::Failed(failed));
                }
            } else {
                pending.deadline = now + SCHEDULE[pending.attempt];
                due.push(Due::Resend(pending.to, pending.datagrams.clone()));
            }
        }
        due
    }

    /// Whether a request of this purpose to `node` is in flight.
    pub(super) fn is_pending(&self, node: &InfoHash, purpose: &Purpose) -> bool {
        self.pending.values().any(|p| p.node.as_ref() == Some(node) && p.purpose == *purpose)
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }
}
