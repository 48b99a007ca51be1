//! One participant's audio jitter buffer, clock-free: Opus packets go in with their RTP
//! timestamps and come out by frame index (the mix's tick), a playout delay after they
//! arrive. Reordered packets are put back in order, duplicates and stragglers are dropped,
//! and a missing packet is told apart from silence: a gap shortly after a packet is a loss
//! (to conceal), a longer one is DTX or a sender that stopped (nothing to decode).
//!
//! The delay adapts to the sender's clock: Jami clients drop captured samples when their
//! sound card overflows, so their timestamps fall behind the wall clock. When the newest
//! packet arrives too late to play, the stream is re-anchored so that it plays after the
//! delay again (a short gap, concealed); when packets have arrived well ahead of their
//! playout for a while, the stream is moved closer (a few frames skipped), so the latency
//! does not grow either.

use std::collections::BTreeMap;

use crate::audio::FRAME_SAMPLES;

/// RTP timestamp units per 20 ms frame (Opus's RTP clock is always 48 kHz).
const TIMESTAMP_STEP: i64 = FRAME_SAMPLES as i64;

/// How far from the playout point a packet may land before the stream is re-anchored (a
/// sender that jumped its timestamps, e.g. after a re-INVITE).
const MAX_AHEAD_FRAMES: u64 = 50;

/// Frames over which the smallest lead of arriving packets is watched before the delay is
/// shortened (one second).
const LEAD_WINDOW_FRAMES: u64 = 50;

/// Frames of lead beyond the configured delay that are tolerated before it is shortened.
const LEAD_SLACK_FRAMES: u64 = 2;

/// How the buffer behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// Frames between a packet's arrival slot and its playout (absorbs jitter and reordering).
    pub delay_frames: u64,
    /// Missing frames concealed after a packet; longer gaps are silence.
    pub max_concealed_frames: u64,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self { delay_frames: 3, max_concealed_frames: 5 }
    }
}

/// What frame `index` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// Its packet.
    Packet(Vec<u8>),
    /// Its packet is missing shortly after others: conceal it.
    Lost,
    /// Nothing is being sent: no audio.
    Silent,
}

/// Why a packet was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Its frame was already played out.
    Late,
    /// Its frame is already buffered.
    Duplicate,
    /// It is from no participant of the room.
    Unknown,
}

/// The jitter buffer of one participant.
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    config: JitterConfig,
    /// An RTP timestamp and the frame index it plays at.
    anchor: Option<(u32, u64)>,
    packets: BTreeMap<u64, Vec<u8>>,
    /// Index of the last frame that had a packet.
    last_packet: Option<u64>,
    /// The newest RTP timestamp received: a late packet older than it is a straggler.
    newest: Option<u32>,
    /// The smallest lead (frames between arrival and playout) since `window_start`.
    min_lead: Option<u64>,
    window_start: u64,
}

impl JitterBuffer {
    /// An empty buffer.
    pub fn new(config: JitterConfig) -> Self {
        Self {
            config,
            anchor: None,
            packets: BTreeMap::new(),
            last_packet: None,
            newest: None,
            min_lead: None,
            window_start: 0,
        }
    }

    /// Stores a packet with RTP `timestamp`, arriving while frame `now` is being mixed.
    pub fn insert(&mut self, timestamp: u32, payload: Vec<u8>, now: u64) -> Result<u64, Rejected> {
        let playout = now + self.config.delay_frames;
        let is_newest = self.newest.is_none_or(|newest| is_after(timestamp, newest));
        let index = match self.anchored_index(timestamp) {
            // Within a second of the playout point, either way: the stream as anchored.
            Some(index)
                if index + MAX_AHEAD_FRAMES >= now && index <= playout + MAX_AHEAD_FRAMES =>
            {
                index
            }
            // The first packet, or a jump in timestamps: this packet plays after the delay.
            _ => {
                self.anchor = Some((timestamp, playout));
                self.packets.clear();
                self.restart_lead_window(now);
                playout
            }
        };
        let index = if index < now {
            if !is_newest {
                return Err(Rejected::Late);
            }
            // The stream itself is late (the sender's clock is behind): play it after the
            // delay again, moving what is buffered along with it.
            self.shift(playout - index, now);
            playout
        } else {
            index
        };
        if self.packets.contains_key(&index) {
            return Err(Rejected::Duplicate);
        }
        self.packets.insert(index, payload);
        if is_newest {
            self.newest = Some(timestamp);
        }
        self.watch_lead(timestamp, index, now);
        Ok(index)
    }

    fn anchored_index(&self, timestamp: u32) -> Option<u64> {
        let (anchor_timestamp, anchor_index) = self.anchor?;
        let delta = i64::from(timestamp.wrapping_sub(anchor_timestamp) as i32);
        let frames = (delta + TIMESTAMP_STEP / 2).div_euclid(TIMESTAMP_STEP);
        anchor_index.checked_add_signed(frames)
    }

    /// Notes a packet's lead; after a window in which every packet arrived well ahead of its
    /// playout, moves the stream closer by the excess.
    fn watch_lead(&mut self, timestamp: u32, index: u64, now: u64) {
        let lead = index - now;
        let min_lead = self.min_lead.map_or(lead, |min| min.min(lead));
        self.min_lead = Some(min_lead);
        if now < self.window_start + LEAD_WINDOW_FRAMES {
            return;
        }
        if min_lead > self.config.delay_frames + LEAD_SLACK_FRAMES {
            let excess = min_lead - self.config.delay_frames;
            self.shift_back(excess, timestamp, index, now);
        }
        self.restart_lead_window(now);
    }

    /// Plays the stream `frames` later.
    fn shift(&mut self, frames: u64, now: u64) {
        if let Some((_, index)) = &mut self.anchor {
            *index += frames;
        }
        let packets = std::mem::take(&mut self.packets);
        self.packets =
            packets.into_iter().map(|(index, packet)| (index + frames, packet)).collect();
        self.restart_lead_window(now);
    }

    /// Plays the stream `frames` earlier (re-anchored on the packet of `timestamp` at `index`,
    /// at least `frames` ahead of `now`); frames that would then be in the past are dropped.
    fn shift_back(&mut self, frames: u64, timestamp: u32, index: u64, now: u64) {
        self.anchor = Some((timestamp, index - frames));
        let packets = std::mem::take(&mut self.packets);
        self.packets = packets
            .into_iter()
            .filter_map(|(index, packet)| {
                index.checked_sub(frames).filter(|index| *index >= now).map(|index| (index, packet))
            })
            .collect();
    }

    fn restart_lead_window(&mut self, now: u64) {
        self.min_lead = None;
        self.window_start = now;
    }

    /// Takes what frame `index` holds; older frames are discarded.
    pub fn take(&mut self, index: u64) -> Slot {
        let newer = self.packets.split_off(&index);
        self.packets = newer;
        if let Some(packet) = self.packets.remove(&index) {
            self.last_packet = Some(index);
            return Slot::Packet(packet);
        }
        match self.last_packet {
            Some(last) if index > last && index - last <= self.config.max_concealed_frames => {
                Slot::Lost
            }
            _ => Slot::Silent,
        }
    }

    /// Whether the packet of frame `index` is already here (for FEC: the next packet).
    pub fn has(&self, index: u64) -> bool {
        self.packets.contains_key(&index)
    }

    /// The packet of frame `index`, if already here, left in place.
    pub fn peek(&self, index: u64) -> Option<&[u8]> {
        self.packets.get(&index).map(Vec::as_slice)
    }
}

/// Whether RTP timestamp `a` is after `b`, across the 32-bit wrap.
fn is_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

#[cfg(test)]
mod tests;
