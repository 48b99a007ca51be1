//! The audio mixing engine of a room, clock-free: decoded 20 ms frames go in keyed by their
//! frame index (RTP timestamp / 960); each [`AudioMixer::mix`] call, one per 20 ms tick, takes
//! every participant's frame for that index and returns the distinct outputs to encode, with
//! the listeners that share each one, and the voice-activity and level events.
//!
//! A participant without a frame for the tick (loss, DTX, a stalled sender) simply does not
//! contribute: nothing waits for it. Late frames are dropped; each queue holds at most one
//! second, so a flood cannot grow memory.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::audio::{
    FRAME_SAMPLES, Listener, OutputKey, ParticipantId, VoiceActivity, VoiceActivityConfig,
    accumulate, level_dbfs, minus, plan_outputs,
};

/// Frames kept per participant ahead of the mix (1 s).
const MAX_QUEUED_FRAMES: usize = 50;

/// Ticks between two level reports (200 ms).
pub const LEVEL_INTERVAL: u64 = 10;

/// Something listeners of the room may want to know.
#[derive(Debug, Clone, PartialEq)]
pub enum AudioEvent {
    /// A participant started or stopped talking.
    VoiceActivity {
        /// Who.
        participant: ParticipantId,
        /// Talking now.
        active: bool,
    },
    /// Every participant's loudest 20 ms level (dBFS) over the last [`LEVEL_INTERVAL`]
    /// ticks, moderator-muted ones included.
    Levels(Vec<(ParticipantId, f32)>),
    /// An output's encoder failed; its listeners miss this frame.
    OutputFailed {
        /// Who.
        listeners: Vec<ParticipantId>,
        /// What failed.
        error: String,
    },
    /// A participant's decoder failed and was restarted.
    InputFailed {
        /// Whose.
        participant: ParticipantId,
        /// What failed.
        error: String,
    },
}

/// One output to encode this tick, and who receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct MixOutput {
    /// What distinguishes it.
    pub key: OutputKey,
    /// Who hears it.
    pub listeners: Vec<ParticipantId>,
    /// 20 ms of 48 kHz mono samples.
    pub samples: Vec<f32>,
}

#[derive(Debug)]
struct Participant {
    queue: VecDeque<(u64, Vec<f32>)>,
    vad: VoiceActivity,
    muted: bool,
    gain_db: f32,
    /// A tap: the participant hears only this one, not the mix.
    only: Option<ParticipantId>,
    level_dbfs: f32,
    peak_dbfs: f32,
}

/// One room's audio mix.
#[derive(Debug)]
pub struct AudioMixer {
    participants: BTreeMap<ParticipantId, Participant>,
    vad_config: VoiceActivityConfig,
    next_index: u64,
}

impl AudioMixer {
    /// An empty mix whose first tick is frame `first_index`.
    pub fn new(vad_config: VoiceActivityConfig, first_index: u64) -> Self {
        Self { participants: BTreeMap::new(), vad_config, next_index: first_index }
    }

    /// Adds a participant (no effect if present).
    pub fn add(&mut self, id: ParticipantId) {
        self.participants.entry(id).or_insert_with(|| Participant {
            queue: VecDeque::new(),
            vad: VoiceActivity::new(self.vad_config),
            muted: false,
            gain_db: 0.0,
            only: None,
            level_dbfs: crate::audio::SILENCE_DBFS,
            peak_dbfs: crate::audio::SILENCE_DBFS,
        });
    }

    /// Removes a participant; the others are not affected.
    pub fn remove(&mut self, id: ParticipantId) -> bool {
        self.participants.remove(&id).is_some()
    }

    /// Moderator mute: the participant leaves the mix (but still hears it).
    pub fn set_muted(&mut self, id: ParticipantId, muted: bool) {
        if let Some(participant) = self.participants.get_mut(&id) {
            participant.muted = muted;
        }
    }

    /// Gain of what `id` hears, dB.
    pub fn set_gain(&mut self, id: ParticipantId, gain_db: f32) {
        if let Some(participant) = self.participants.get_mut(&id) {
            participant.gain_db = gain_db;
        }
    }

    /// What `id` hears: only `source` (a tap on one participant), or the mix (`None`).
    pub fn set_only(&mut self, id: ParticipantId, source: Option<ParticipantId>) {
        if let Some(participant) = self.participants.get_mut(&id) {
            participant.only = source;
        }
    }

    /// The participant's level in the last tick, dBFS.
    pub fn level(&self, id: ParticipantId) -> Option<f32> {
        self.participants.get(&id).map(|p| p.level_dbfs)
    }

    /// Queues a decoded frame for tick `index`. Late frames, duplicates and frames of unknown
    /// participants are dropped; a full queue drops its oldest frame.
    pub fn push(&mut self, id: ParticipantId, index: u64, samples: Vec<f32>) {
        let Some(participant) = self.participants.get_mut(&id) else { return };
        if index < self.next_index
            || samples.len() != FRAME_SAMPLES
            || participant.queue.iter().any(|(i, _)| *i == index)
        {
            return;
        }
        let at = participant.queue.partition_point(|(i, _)| *i < index);
        participant.queue.insert(at, (index, samples));
        if participant.queue.len() > MAX_QUEUED_FRAMES {
            participant.queue.pop_front();
        }
    }

    /// Mixes the next tick.
    pub fn mix(&mut self) -> (Vec<MixOutput>, Vec<AudioEvent>) {
        let index = self.next_index;
        self.next_index += 1;
        let mut events = Vec::new();
        // Everyone's unmuted frame (what a tap hears), and which of them are in the mix.
        let mut frames: BTreeMap<ParticipantId, Vec<f32>> = BTreeMap::new();
        let mut in_mix: BTreeSet<ParticipantId> = BTreeSet::new();
        for (id, participant) in &mut self.participants {
            while participant.queue.front().is_some_and(|(i, _)| *i < index) {
                participant.queue.pop_front();
            }
            let frame = match participant.queue.front() {
                Some((i, _)) if *i == index => participant.queue.pop_front().map(|(_, f)| f),
                _ => None,
            };
            participant.level_dbfs =
                frame.as_deref().map_or(crate::audio::SILENCE_DBFS, level_dbfs);
            participant.peak_dbfs = participant.peak_dbfs.max(participant.level_dbfs);
            let change = if participant.muted {
                participant.vad.reset()
            } else {
                participant.vad.update(participant.level_dbfs)
            };
            if let Some(active) = change {
                events.push(AudioEvent::VoiceActivity { participant: *id, active });
            }
            if let Some(frame) = frame
                && !participant.muted
            {
                if participant.vad.is_active() {
                    in_mix.insert(*id);
                }
                frames.insert(*id, frame);
            }
        }
        if (index + 1).is_multiple_of(LEVEL_INTERVAL) && !self.participants.is_empty() {
            let levels = self
                .participants
                .iter_mut()
                .map(|(id, p)| {
                    (*id, std::mem::replace(&mut p.peak_dbfs, crate::audio::SILENCE_DBFS))
                })
                .collect();
            events.push(AudioEvent::Levels(levels));
        }
        let mut total = vec![0.0; FRAME_SAMPLES];
        for id in &in_mix {
            if let Some(frame) = frames.get(id) {
                accumulate(&mut total, frame, 1.0);
            }
        }
        let listeners: Vec<Listener> = self
            .participants
            .iter()
            .map(|(id, p)| Listener {
                id: *id,
                contributes: in_mix.contains(id),
                only: p.only,
                gain_db: p.gain_db,
            })
            .collect();
        let outputs = plan_outputs(&listeners)
            .into_iter()
            .map(|(key, listeners)| {
                let mut samples = vec![0.0; FRAME_SAMPLES];
                match key.only {
                    Some(source) => {
                        if let Some(frame) = frames.get(&source) {
                            minus(frame, None, key.gain(), &mut samples);
                        }
                    }
                    None => {
                        let own = key.excluded.and_then(|id| frames.get(&id)).map(Vec::as_slice);
                        minus(&total, own, key.gain(), &mut samples);
                    }
                }
                MixOutput { key, listeners, samples }
            })
            .collect();
        (outputs, events)
    }
}

#[cfg(test)]
mod tests;
