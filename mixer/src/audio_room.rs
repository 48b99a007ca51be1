//! The audio side of a room in real time: Opus packets in (with RTP timestamps, in any order,
//! with losses and gaps), one Opus stream out per distinct output, one tick per 20 ms.
//!
//! Per participant a [`JitterBuffer`] puts packets back in order and tells losses from
//! silence, and one decoder decodes each packet once (concealing losses, or recovering them
//! from the next packet's in-band FEC). The [`AudioMixer`] mixes one total and derives each
//! listener's mix-minus from it; the listeners that are not heard share one encode.
//!
//! Time is an input (the caller ticks). Decoders and encoders run in the caller's thread
//! (see [`crate::opus`]), so a tick never waits on another thread; run it on the room's
//! media thread, not on the async executor.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::audio::{FRAME_SAMPLES, OutputKey, ParticipantId, VoiceActivityConfig};
use crate::engine::{AudioEvent, AudioMixer};
use crate::jitter::{JitterBuffer, JitterConfig, Rejected, Slot};
use crate::opus::{Decoded, MediaError, OpusDecoder, OpusEncoder, OpusSettings};

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
    /// Recover lost packets from the next packet's in-band FEC (adds 20 ms of delay).
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
    /// Packets and gaps given to the decoder, and frames it returned.
    fed: u64,
    decoded: u64,
}

struct Output {
    encoder: OpusEncoder,
    /// Mix indices of the frames pushed and not yet pulled, oldest first (the encoder
    /// returns one packet per frame, in order).
    pending: VecDeque<u64>,
    last_used: u64,
    listeners: Vec<ParticipantId>,
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

    /// Frames between decoding and mixing: one with FEC (the decoder holds a packet back).
    fn decode_lag(&self) -> u64 {
        u64::from(self.config.fec)
    }

    /// Adds a participant (no effect if present).
    pub fn add(&mut self, id: ParticipantId) -> Result<(), MediaError> {
        if !self.inputs.contains_key(&id) {
            let input = Input {
                jitter: JitterBuffer::new(self.config.jitter),
                decoder: OpusDecoder::with_fec(self.config.fec)?,
                fed: 0,
                decoded: 0,
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
        let Some(mix_index) = index.checked_sub(self.decode_lag()) else {
            // The first tick with FEC only primes the decoders.
            return AudioTick { packets: Vec::new(), events };
        };
        let (mixed, mix_events) = self.mixer.mix();
        events.extend(mix_events);
        for output in mixed {
            let slot = match self.outputs.entry(output.key) {
                Entry::Occupied(slot) => slot.into_mut(),
                Entry::Vacant(slot) => match OpusEncoder::with_settings(self.config.encoder) {
                    Ok(encoder) => slot.insert(Output {
                        encoder,
                        pending: VecDeque::new(),
                        last_used: mix_index,
                        listeners: Vec::new(),
                    }),
                    Err(error) => {
                        events.push(encoder_failed(&output.listeners, &error));
                        continue;
                    }
                },
            };
            slot.last_used = mix_index;
            slot.listeners = output.listeners;
            match slot.encoder.push(&output.samples) {
                Ok(()) => slot.pending.push_back(mix_index),
                Err(error) => events.push(encoder_failed(&slot.listeners, &error)),
            }
        }
        let packets = self.collect_packets(mix_index, &mut events);
        AudioTick { packets, events }
    }

    /// Feeds each decoder this frame (a packet, or a gap to conceal) and hands what comes
    /// out to the mixer.
    fn decode(&mut self, index: u64, events: &mut Vec<AudioEvent>) {
        let fec = self.config.fec;
        for (id, input) in &mut self.inputs {
            let fed = match input.jitter.take(index) {
                Slot::Packet(packet) => input.decoder.push_at(index, &packet),
                Slot::Lost => input.decoder.conceal(index, 1),
                Slot::Silent => continue,
            };
            match fed {
                Ok(()) => input.fed += 1,
                Err(error) => restart_decoder(*id, input, fec, &error, events),
            }
        }
        let lag = self.decode_lag();
        for (id, input) in &mut self.inputs {
            while input.decoded + lag < input.fed {
                match input.decoder.pull(Duration::ZERO) {
                    Ok(Some(Decoded { index, samples })) => {
                        for (offset, frame) in samples.chunks_exact(FRAME_SAMPLES).enumerate() {
                            self.mixer.push(*id, index + offset as u64, frame.to_vec());
                            input.decoded += 1;
                        }
                    }
                    Ok(None) => break,
                    Err(error) => {
                        restart_decoder(*id, input, fec, &error, events);
                        break;
                    }
                }
            }
        }
    }

    /// Pulls every encoder's packets and releases encoders idle for a second.
    fn collect_packets(
        &mut self,
        mix_index: u64,
        events: &mut Vec<AudioEvent>,
    ) -> Vec<AudioPacket> {
        let mut packets = Vec::new();
        for output in self.outputs.values_mut().filter(|o| o.last_used == mix_index) {
            while let Some(index) = output.pending.front().copied() {
                match output.encoder.pull(Duration::ZERO) {
                    Ok(Some(payload)) => {
                        output.pending.pop_front();
                        packets.push(AudioPacket {
                            index,
                            listeners: output.listeners.clone(),
                            payload,
                        });
                    }
                    Ok(None) => break,
                    Err(error) => {
                        events.push(encoder_failed(&output.listeners, &error));
                        break;
                    }
                }
            }
        }
        self.outputs.retain(|_, output| output.last_used + ENCODER_IDLE_TICKS >= mix_index);
        packets
    }
}

/// Replaces a failed decoder; the participant is heard again from its next packet.
fn restart_decoder(
    id: ParticipantId,
    input: &mut Input,
    fec: bool,
    error: &MediaError,
    events: &mut Vec<AudioEvent>,
) {
    events.push(AudioEvent::InputFailed { participant: id, error: error.to_string() });
    if let Ok(decoder) = OpusDecoder::with_fec(fec) {
        input.decoder = decoder;
    }
    input.fed = 0;
    input.decoded = 0;
}

fn encoder_failed(listeners: &[ParticipantId], error: &MediaError) -> AudioEvent {
    AudioEvent::OutputFailed { listeners: listeners.to_vec(), error: error.to_string() }
}
