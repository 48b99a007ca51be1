//! The audio side of a room in real time: Opus packets in (with RTP timestamps, in any order,
//! with losses and gaps), one Opus stream out per distinct output, one tick per 20 ms.
//!
//! Per participant a [`JitterBuffer`] puts packets back in order and tells losses from
//! silence, and one decoder decodes each packet once, in the tick that plays it (concealing
//! a loss, or recovering it from the next packet's in-band FEC when that packet is already
//! buffered). The [`AudioMixer`] mixes one total and derives each listener's mix-minus from
//! it; the listeners that are not heard share one encode.
//!
//! Time is an input (the caller ticks). Decoders and encoders are libopus, synchronous in the
//! caller's thread (see [`crate::opus`]), so a tick never waits on another thread and a
//! frame's tick is the one its RTP timestamp gives; run it on the room's media thread, not on
//! the async executor.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use crate::audio::{FRAME_SAMPLES, OutputKey, ParticipantId, VoiceActivityConfig};
use crate::engine::{AudioEvent, AudioMixer};
use crate::jitter::{JitterBuffer, JitterConfig, Rejected, Slot};
use crate::opus::{MediaError, OpusDecoder, OpusEncoder, OpusSettings};

/// Ticks an unused encoder is kept before it is released (1 s).
const ENCODER_IDLE_TICKS: u64 = 50;

/// How a room's audio is processed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudioRoomConfig {
    /// Voice-activity thresholds.
    pub vad: VoiceActivityConfig,
    /// Jitter buffer depth and loss concealment.
    pub jitter: JitterConfig,
    /// The outputs' encoder settings.
    pub encoder: OpusSettings,
    /// Recover a lost packet from the next packet's in-band FEC when that packet is already
    /// in the jitter buffer (no added delay).
    pub fec: bool,
}

impl Default for AudioRoomConfig {
    fn default() -> Self {
        Self {
            vad: VoiceActivityConfig::default(),
            jitter: JitterConfig::default(),
            encoder: OpusSettings { bitrate: 48_000, complexity: 10, fec_loss_percent: 5 },
            fec: true,
        }
    }
}

/// One encoded 20 ms packet of an output, and the listeners it goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioPacket {
    /// The mix frame it encodes (each listener's RTP timestamp follows it).
    pub index: u64,
    /// Who receives it.
    pub listeners: Vec<ParticipantId>,
    /// The Opus packet.
    pub payload: Vec<u8>,
}

/// What one tick produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AudioTick {
    /// Packets to send.
    pub packets: Vec<AudioPacket>,
    /// Voice activity, levels and failures.
    pub events: Vec<AudioEvent>,
}

struct Input {
    jitter: JitterBuffer,
    decoder: OpusDecoder,
    /// The first frame not covered by the last decoded packet (longer than 20 ms packets
    /// cover several).
    covered_until: u64,
}

struct Output {
    encoder: OpusEncoder,
    last_used: u64,
}

/// One room's real-time audio.
pub struct AudioRoom {
    config: AudioRoomConfig,
    mixer: AudioMixer,
    inputs: BTreeMap<ParticipantId, Input>,
    outputs: BTreeMap<OutputKey, Output>,
    tick: u64,
}

impl AudioRoom {
    /// An empty room at tick 0.
    pub fn new(config: AudioRoomConfig) -> Self {
        Self {
            mixer: AudioMixer::new(config.vad, 0),
            config,
            inputs: BTreeMap::new(),
            outputs: BTreeMap::new(),
            tick: 0,
        }
    }

    /// Adds a participant (no effect if present).
    pub fn add(&mut self, id: ParticipantId) -> Result<(), MediaError> {
        if !self.inputs.contains_key(&id) {
            let input = Input {
                jitter: JitterBuffer::new(self.config.jitter),
                decoder: OpusDecoder::new()?,
                covered_until: 0,
            };
            self.inputs.insert(id, input);
            self.mixer.add(id);
        }
        Ok(())
    }

    /// Removes a participant; the others hear no glitch.
    pub fn remove(&mut self, id: ParticipantId) -> bool {
        self.mixer.remove(id);
        self.inputs.remove(&id).is_some()
    }

    /// Moderator mute: the participant leaves the mix (and still hears it).
    pub fn set_muted(&mut self, id: ParticipantId, muted: bool) {
        self.mixer.set_muted(id, muted);
    }

    /// Gain of what `id` hears, dB.
    pub fn set_gain(&mut self, id: ParticipantId, gain_db: f32) {
        self.mixer.set_gain(id, gain_db);
    }

    /// What `id` hears: only `source` (a tap on one participant's audio), or the mix.
    pub fn set_only(&mut self, id: ParticipantId, source: Option<ParticipantId>) {
        self.mixer.set_only(id, source);
    }

    /// The next tick's index.
    pub fn next_tick(&self) -> u64 {
        self.tick
    }

    /// Encoders running now (one per distinct output).
    pub fn encoders(&self) -> usize {
        self.outputs.len()
    }

    /// Stores a packet from `id` with its RTP timestamp. Unknown participants, late packets
    /// and duplicates are refused.
    pub fn push(
        &mut self,
        id: ParticipantId,
        timestamp: u32,
        payload: Vec<u8>,
    ) -> Result<u64, Rejected> {
        let now = self.tick;
        let input = self.inputs.get_mut(&id).ok_or(Rejected::Unknown)?;
        input.jitter.insert(timestamp, payload, now)
    }

    /// Runs one 20 ms tick: decodes this frame of every participant, mixes, encodes.
    pub fn tick(&mut self) -> AudioTick {
        let index = self.tick;
        self.tick += 1;
        let mut events = Vec::new();
        self.decode(index, &mut events);
        let (mixed, mix_events) = self.mixer.mix();
        events.extend(mix_events);
        let mut packets = Vec::new();
        for output in mixed {
            let slot = match self.outputs.entry(output.key) {
                Entry::Occupied(slot) => slot.into_mut(),
                Entry::Vacant(slot) => match OpusEncoder::with_settings(self.config.encoder) {
                    Ok(encoder) => slot.insert(Output { encoder, last_used: index }),
                    Err(error) => {
                        events.push(encoder_failed(&output.listeners, &error));
                        continue;
                    }
                },
            };
            slot.last_used = index;
            match slot.encoder.encode(&output.samples) {
                Ok(payload) => {
                    packets.push(AudioPacket { index, listeners: output.listeners, payload });
                }
                Err(error) => events.push(encoder_failed(&output.listeners, &error)),
            }
        }
        self.outputs.retain(|_, output| output.last_used + ENCODER_IDLE_TICKS >= index);
        AudioTick { packets, events }
    }

    /// Decodes frame `index` of every participant (a packet, a recovered or concealed loss)
    /// and hands it to the mixer.
    fn decode(&mut self, index: u64, events: &mut Vec<AudioEvent>) {
        for (id, input) in &mut self.inputs {
            if index < input.covered_until {
                continue;
            }
            let decoded = match input.jitter.take(index) {
                Slot::Packet(packet) => input.decoder.decode(&packet),
                Slot::Lost => match input.jitter.peek(index + 1).filter(|_| self.config.fec) {
                    Some(next) => input.decoder.recover(next),
                    None => input.decoder.conceal(),
                },
                Slot::Silent => continue,
            };
            match decoded {
                Ok(samples) => {
                    let mut frames = 0;
                    for frame in samples.chunks_exact(FRAME_SAMPLES) {
                        self.mixer.push(*id, index + frames, frame.to_vec());
                        frames += 1;
                    }
                    input.covered_until = index + frames.max(1);
                }
                Err(error) => {
                    events.push(AudioEvent::InputFailed {
                        participant: *id,
                        error: error.to_string(),
                    });
                    // A fresh decoder: the participant is heard again from its next packet.
                    if let Ok(decoder) = OpusDecoder::new() {
                        input.decoder = decoder;
                    }
                }
            }
        }
    }
}

fn encoder_failed(listeners: &[ParticipantId], error: &MediaError) -> AudioEvent {
    AudioEvent::OutputFailed { listeners: listeners.to_vec(), error: error.to_string() }
}
