//! A room's real-time audio through real Opus: participants send tones as Opus packets with
//! RTP timestamps (with loss, reordering, duplicates, a muted one, one that stops sending,
//! one that leaves and one that joins); every listener's packets are decoded the way a Jami
//! client would decode them and checked on the spectrum.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "support/signal.rs"]
mod signal;

use std::collections::BTreeMap;

use rdv_mixer::audio::{FRAME_SAMPLES, ParticipantId};
use rdv_mixer::audio_room::{AudioRoom, AudioRoomConfig, AudioTick};
use rdv_mixer::engine::AudioEvent;
use rdv_mixer::opus::{OpusDecoder, OpusEncoder, OpusSettings};
use signal::{tone_dbfs, tone_frames};

/// A participant sending a tone: its packets, encoded up front by a real Opus encoder.
struct Sender {
    id: ParticipantId,
    freq: f32,
    first_timestamp: u32,
    packets: Vec<Vec<u8>>,
}

impl Sender {
    fn new(id: u64, freq: f32, frames: usize) -> Self {
        let settings = OpusSettings { bitrate: 48_000, complexity: 5, fec_loss_percent: 10 };
        let mut encoder = OpusEncoder::with_settings(settings).unwrap();
        let packets =
            tone_frames(freq, 0, frames).iter().map(|f| encoder.encode(f).unwrap()).collect();
        let first_timestamp = 0x8000_0000u32.wrapping_mul(id as u32 + 1) ^ 0x1234_5678;
        Self { id: ParticipantId(id), freq, first_timestamp, packets }
    }

    /// Frame `k`'s RTP timestamp and packet.
    fn packet(&self, k: usize) -> (u32, Vec<u8>) {
        let timestamp = self.first_timestamp.wrapping_add((k * FRAME_SAMPLES) as u32);
        (timestamp, self.packets[k % self.packets.len()].clone())
    }
}

/// What each listener received, by mix index, and every event.
#[derive(Default)]
struct Received {
    packets: BTreeMap<ParticipantId, BTreeMap<u64, Vec<u8>>>,
    events: Vec<AudioEvent>,
}

impl Received {
    fn record(&mut self, tick: AudioTick) {
        for packet in tick.packets {
            for listener in &packet.listeners {
                let previous = self
                    .packets
                    .entry(*listener)
                    .or_default()
                    .insert(packet.index, packet.payload.clone());
                assert!(previous.is_none(), "{listener:?} got frame {} twice", packet.index);
            }
        }
        self.events.extend(tick.events);
    }

    /// Asserts that `listener` got one packet for every frame in `range`.
    fn assert_continuous(&self, listener: u64, range: std::ops::Range<u64>) {
        let packets = &self.packets[&ParticipantId(listener)];
        let missing: Vec<u64> = range.filter(|i| !packets.contains_key(i)).collect();
        assert!(missing.is_empty(), "listener {listener} missed frames {missing:?}");
    }

    /// `listener`'s audio for the frames in `range`, decoded by a fresh decoder.
    fn audio(&self, listener: u64, range: std::ops::Range<u64>) -> Vec<f32> {
        let packets = &self.packets[&ParticipantId(listener)];
        let mut decoder = OpusDecoder::new().unwrap();
        // A frame that was not sent is silence to the listener.
        range
            .flat_map(|index| match packets.get(&index) {
                Some(payload) => decoder.decode(payload).unwrap(),
                None => vec![0.0; FRAME_SAMPLES],
            })
            .collect()
    }

    fn voice_activity(&self, participant: u64) -> Vec<bool> {
        self.events
            .iter()
            .filter_map(|e| match e {
                AudioEvent::VoiceActivity { participant: p, active } if p.0 == participant => {
                    Some(*active)
                }
                _ => None,
            })
            .collect()
    }

    fn last_level(&self, participant: u64) -> f32 {
        self.events
            .iter()
            .rev()
            .find_map(|e| match e {
                AudioEvent::Levels(levels) => {
                    levels.iter().find(|(p, _)| p.0 == participant).map(|(_, l)| *l)
                }
                _ => None,
            })
            .unwrap()
    }
}

fn assert_hears(audio: &[f32], freq: f32, what: &str) {
    let level = tone_dbfs(audio, freq);
    assert!(level > -20.0, "{what}: {freq} Hz only at {level:.1} dBFS");
}

fn assert_not_hears(audio: &[f32], freq: f32, what: &str) {
    let level = tone_dbfs(audio, freq);
    assert!(level < -40.0, "{what}: {freq} Hz at {level:.1} dBFS");
}

fn room(senders: &[Sender]) -> AudioRoom {
    let mut room = AudioRoom::new(AudioRoomConfig::default());
    for sender in senders {
        room.add(sender.id).unwrap();
    }
    room
}

#[test]
fn each_listener_hears_the_others_despite_loss_reordering_and_duplicates() {
    const TICKS: usize = 100;
    let senders: Vec<Sender> =
        [(0, 440.0), (1, 1000.0), (2, 1500.0)].map(|(id, f)| Sender::new(id, f, TICKS)).into();
    let mut room = room(&senders);
    let mut received = Received::default();
    let mut held_back = Vec::new();
    for k in 0..TICKS {
        for sender in &senders {
            let (timestamp, payload) = sender.packet(k);
            if k % 23 == 7 {
                continue; // lost
            }
            if k % 10 == 4 {
                held_back.push((sender.id, timestamp, payload)); // arrives a frame late
                continue;
            }
            room.push(sender.id, timestamp, payload.clone()).unwrap();
            if k % 17 == 3 {
                assert!(room.push(sender.id, timestamp, payload).is_err(), "a duplicate");
            }
        }
        if k % 10 == 5 {
            for (id, timestamp, payload) in held_back.drain(..) {
                room.push(id, timestamp, payload).unwrap();
            }
        }
        received.record(room.tick());
    }
    for sender in &senders {
        let listener = sender.id.0;
        received.assert_continuous(listener, 1..TICKS as u64 - 1);
        let audio = received.audio(listener, 20..90);
        for other in &senders {
            let what = format!("listener {listener}");
            if other.id == sender.id {
                assert_not_hears(&audio, other.freq, &what);
            } else {
                assert_hears(&audio, other.freq, &what);
            }
        }
    }
    // Everyone talks, so three outputs, each encoded once.
    assert_eq!(room.encoders(), 3);
}

#[test]
fn a_muted_participant_and_one_who_stops_sending_leave_the_mix_without_stalling_it() {
    const TICKS: usize = 150;
    let senders: Vec<Sender> =
        [(0, 440.0), (1, 1000.0), (2, 1500.0)].map(|(id, f)| Sender::new(id, f, TICKS)).into();
    let mut room = room(&senders);
    let mut received = Received::default();
    let mut level_of_muted = None;
    for k in 0..TICKS {
        if k == 50 {
            room.set_muted(ParticipantId(2), true);
        }
        for sender in &senders {
            // Participant 1 stops sending at frame 100.
            if sender.id.0 != 1 || k < 100 {
                let (timestamp, payload) = sender.packet(k);
                room.push(sender.id, timestamp, payload).unwrap();
            }
        }
        received.record(room.tick());
        if k == 95 {
            level_of_muted = Some(received.last_level(2));
        }
    }
    for listener in 0..3 {
        received.assert_continuous(listener, 1..TICKS as u64 - 1);
    }
    let listener = 0;
    let before = received.audio(listener, 15..50);
    let muted = received.audio(listener, 60..100);
    let stopped = received.audio(listener, 130..149);
    assert_hears(&before, 1500.0, "before the mute");
    assert_not_hears(&muted, 1500.0, "after the mute");
    assert_hears(&muted, 1000.0, "after the mute");
    assert_not_hears(&stopped, 1000.0, "after participant 1 stopped");
    // The muted participant still hears the others.
    assert_hears(&received.audio(2, 60..100), 1000.0, "the muted participant");

    assert_eq!(received.voice_activity(0), [true]);
    assert_eq!(received.voice_activity(1), [true, false], "on, then off once it stopped");
    assert_eq!(received.voice_activity(2), [true, false], "on, then off when muted");
    // Levels keep following a muted participant (moderators see who talks while muted); a
    // 0.3 sine is -13.5 dBFS.
    let level = level_of_muted.unwrap();
    assert!((level + 13.5).abs() < 3.0, "muted participant's level {level}");
    assert!(received.last_level(1) < -100.0, "a silent participant's level");
}

#[test]
fn participants_leave_and_join_while_the_others_keep_hearing() {
    const TICKS: usize = 120;
    let mut senders: Vec<Sender> =
        [(0, 440.0), (1, 1000.0), (2, 1500.0)].map(|(id, f)| Sender::new(id, f, TICKS)).into();
    let mut room = room(&senders);
    let mut received = Received::default();
    for k in 0..TICKS {
        if k == 40 {
            assert!(room.remove(ParticipantId(1)));
            senders.retain(|s| s.id.0 != 1);
        }
        if k == 60 {
            let joining = Sender::new(3, 2000.0, TICKS);
            room.add(joining.id).unwrap();
            senders.push(joining);
        }
        for sender in &senders {
            let (timestamp, payload) = sender.packet(k);
            room.push(sender.id, timestamp, payload).unwrap();
        }
        received.record(room.tick());
    }
    received.assert_continuous(0, 1..TICKS as u64 - 1);
    received.assert_continuous(2, 1..TICKS as u64 - 1);
    let before = received.audio(0, 10..40);
    let after = received.audio(0, 75..TICKS as u64 - 1);
    assert_hears(&before, 1000.0, "before participant 1 left");
    assert_not_hears(&after, 1000.0, "after participant 1 left");
    assert_hears(&after, 1500.0, "after the join");
    assert_hears(&after, 2000.0, "the participant who joined");
    assert_not_hears(&received.audio(3, 75..TICKS as u64 - 1), 2000.0, "the joiner's own tone");
}
