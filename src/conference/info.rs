//! confInfo, sans-IO: the JSON a participant receives ([`conf_info`]) and the pacing of its
//! sends ([`Pacer`]): a change is sent at once unless one went out less than an interval
//! ago, and then at the end of that interval, with every change made meanwhile. Voice
//! activity flipping in a room of N thus costs at most N messages per interval, never N per
//! flip.

use std::time::{Duration, Instant};

use serde::Serialize;

/// The confInfo protocol version we speak: participants may send v1 orders.
pub const VERSION: u32 = 1;

/// The MIME type of confInfo messages (exactly this: a parameter would make Jami treat the
/// message as chat).
pub const CONTENT_TYPE: &str = "application/confInfo+json";

/// One participant, as every other participant sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfInfoEntry {
    /// `<account id>@ring.dht`.
    pub uri: String,
    /// The calling device's id.
    pub device: String,
    /// The stream's id on the room: `<call id>_video_0`, or `<call id>_audio_0` for an
    /// audio-only call.
    pub sink_id: String,
    /// Shown big.
    pub active: bool,
    /// Tile rectangle in the composite, pixels.
    pub x: i32,
    /// Top edge.
    pub y: i32,
    /// Width.
    pub w: i32,
    /// Height.
    pub h: i32,
    /// No picture of it is drawn.
    pub video_muted: bool,
    /// It muted its own microphone.
    pub audio_local_muted: bool,
    /// A moderator muted it.
    pub audio_moderator_muted: bool,
    /// It is a moderator of the room.
    pub is_moderator: bool,
    /// Its hand is raised.
    pub hand_raised: bool,
    /// It is speaking.
    pub voice_activity: bool,
    /// It is recording.
    pub recording: bool,
}

#[derive(Serialize)]
struct ConfInfo<'a> {
    p: &'a [ConfInfoEntry],
    w: i32,
    h: i32,
    v: u32,
    layout: u8,
}

/// The confInfo JSON for `participants` in a composite of `width` × `height` in `layout`
/// (Jami's number).
pub fn conf_info(participants: &[ConfInfoEntry], width: i32, height: i32, layout: u8) -> String {
    let info = ConfInfo { p: participants, w: width, h: height, v: VERSION, layout };
    serde_json::to_string(&info).unwrap_or_else(|_| "{}".to_owned())
}

/// When confInfo is due.
#[derive(Debug, Clone)]
pub struct Pacer {
    interval: Duration,
    /// Something changed since the last send.
    dirty: bool,
    last_sent: Option<Instant>,
    /// Sends due whatever changed (a newcomer's jamid may miss its first confInfo).
    resends: Vec<Instant>,
}

impl Pacer {
    /// A pacer sending at most once per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self { interval, dirty: false, last_sent: None, resends: Vec::new() }
    }

    /// Something participants see changed.
    pub fn changed(&mut self) {
        self.dirty = true;
    }

    /// Asks for a send at `at` even if nothing changes by then.
    pub fn resend_at(&mut self, at: Instant) {
        self.resends.push(at);
    }

    /// When the next send is due, if one is pending.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let earliest = self.last_sent.map(|sent| sent + self.interval);
        let change = self.dirty.then(|| earliest.unwrap_or_else(Instant::now));
        let resend = self.resends.iter().min().map(|at| earliest.map_or(*at, |e| e.max(*at)));
        match (change, resend) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether confInfo should go out now; if so, it counts as sent.
    pub fn poll_due(&mut self, now: Instant) -> bool {
        if self.last_sent.is_some_and(|sent| now < sent + self.interval) {
            return false;
        }
        let resend = self.resends.iter().any(|at| *at <= now);
        if !self.dirty && !resend {
            return false;
        }
        self.resends.retain(|at| *at > now);
        self.dirty = false;
        self.last_sent = Some(now);
        true
    }
}

#[cfg(test)]
mod tests;
