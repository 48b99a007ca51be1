//! One participant's audio jitter buffer, clock-free: Opus packets go in with their RTP
//! timestamps and come out by frame index (the mix's tick), a fixed playout delay after the
//! first packet. Reordered packets are put back in order, duplicates and late packets are
//! dropped, and a missing packet is told apart from silence: a gap shortly after a packet is
//! a loss (to conceal), a longer one is DTX or a sender that stopped (nothing to decode).

use std::collections::BTreeMap;

use crate::audio::FRAME_SAMPLES;

/// RTP timestamp units per 20 ms frame (Opus's RTP clock is always 48 kHz).
const TIMESTAMP_STEP: i64 = FRAME_SAMPLES as i64;

/// How far from the playout point a packet may land before the stream is re-anchored (a
/// sender that jumped its timestamps, e.g. after a re-INVITE).
const MAX_AHEAD_FRAMES: u64 = 50;

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
}

impl JitterBuffer {
    /// An empty buffer.
    pub fn new(config: JitterConfig) -> Self {
        Self { config, anchor: None, packets: BTreeMap::new(), last_packet: None }
    }

    /// Stores a packet with RTP `timestamp`, arriving while frame `now` is being mixed.
    pub fn insert(&mut self, timestamp: u32, payload: Vec<u8>, now: u64) -> Result<u64, Rejected> {
        let playout = now + self.config.delay_frames;
        let index = match self.anchor {
            Some((anchor_timestamp, anchor_index)) => {
                let delta = i64::from(timestamp.wrapping_sub(anchor_timestamp) as i32);
                let frames = (delta + TIMESTAMP_STEP / 2).div_euclid(TIMESTAMP_STEP);
                anchor_index.checked_add_signed(frames)
            }
            None => None,
        };
        let index = match index {
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
                playout
            }
        };
        if index < now {
            return Err(Rejected::Late);
        }
        if self.packets.contains_key(&index) {
            return Err(Rejected::Duplicate);
        }
        self.packets.insert(index, payload);
        Ok(index)
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

#[cfg(test)]
mod tests;
