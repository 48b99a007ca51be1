//! Mix-minus arithmetic on 20 ms frames of 48 kHz mono `f32` samples, kept apart from the
//! GStreamer glue.
//!
//! Each period, only audible participants (voice activity on, not moderator-muted) enter one
//! total mix. A listener who contributed hears `total − own`; every other listener hears the
//! total itself. Outputs that are equal (same excluded contribution, same gain) are encoded
//! once and shared, so a room costs one encode per current speaker plus one for everyone
//! else, instead of one per participant.

use std::collections::BTreeMap;

/// Samples per second.
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples in one 20 ms frame.
pub const FRAME_SAMPLES: usize = 960;
/// The level reported for silence, in dBFS.
pub const SILENCE_DBFS: f32 = -127.0;

/// A participant of the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(pub u64);

/// RMS level of `samples` in dBFS (a full-scale sine is about −3 dBFS).
pub fn level_dbfs(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return SILENCE_DBFS;
    }
    let mean_square =
        samples.iter().map(|s| f64::from(*s) * f64::from(*s)).sum::<f64>() / samples.len() as f64;
    if mean_square <= 0.0 {
        return SILENCE_DBFS;
    }
    (10.0 * mean_square.log10()).max(f64::from(SILENCE_DBFS)) as f32
}

/// Thresholds of a [`VoiceActivity`] detector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VoiceActivityConfig {
    /// Level at or above which a frame counts as voice, dBFS.
    pub on_dbfs: f32,
    /// Level below which a frame counts as silence, dBFS (below `on_dbfs`: hysteresis).
    pub off_dbfs: f32,
    /// Consecutive voice frames before activity turns on.
    pub attack_frames: u32,
    /// Consecutive silent frames before activity turns off.
    pub release_frames: u32,
}

impl Default for VoiceActivityConfig {
    /// On after 40 ms at −45 dBFS or more; off after 400 ms below −55 dBFS.
    fn default() -> Self {
        Self { on_dbfs: -45.0, off_dbfs: -55.0, attack_frames: 2, release_frames: 20 }
    }
}

/// Voice activity with hysteresis, from frame levels.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceActivity {
    config: VoiceActivityConfig,
    active: bool,
    run: u32,
}

impl VoiceActivity {
    /// A detector, initially inactive.
    pub fn new(config: VoiceActivityConfig) -> Self {
        Self { config, active: false, run: 0 }
    }

    /// Whether voice is active.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Feeds one frame's level; returns the new state when it changes.
    pub fn update(&mut self, level_dbfs: f32) -> Option<bool> {
        let toward_change = if self.active {
            level_dbfs < self.config.off_dbfs
        } else {
            level_dbfs >= self.config.on_dbfs
        };
        if !toward_change {
            self.run = 0;
            return None;
        }
        self.run += 1;
        let needed =
            if self.active { self.config.release_frames } else { self.config.attack_frames };
        if self.run < needed.max(1) {
            return None;
        }
        self.active = !self.active;
        self.run = 0;
        Some(self.active)
    }

    /// Forgets activity (a muted or vanished participant).
    pub fn reset(&mut self) -> Option<bool> {
        self.run = 0;
        std::mem::replace(&mut self.active, false).then_some(false)
    }
}

/// Adds `samples` (scaled by `gain`) into `total`.
pub fn accumulate(total: &mut [f32], samples: &[f32], gain: f32) {
    for (sum, sample) in total.iter_mut().zip(samples) {
        *sum += sample * gain;
    }
}

/// `out = gain × (total − own)`, clipped to [−1, 1].
pub fn minus(total: &[f32], own: Option<&[f32]>, gain: f32, out: &mut [f32]) {
    match own {
        Some(own) => {
            for ((out, sum), own) in out.iter_mut().zip(total).zip(own) {
                *out = ((sum - own) * gain).clamp(-1.0, 1.0);
            }
        }
        None => {
            for (out, sum) in out.iter_mut().zip(total) {
                *out = (sum * gain).clamp(-1.0, 1.0);
            }
        }
    }
}

/// What distinguishes one listener's output from another's: whose contribution is taken out
/// (or, for a tap, the one participant heard), and the listener's gain (in hundredths of a
/// dB, so equal gains compare equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutputKey {
    /// The contributor removed from the total, if the listener contributed.
    pub excluded: Option<ParticipantId>,
    /// The only participant heard (a tap on one participant's audio), instead of the mix.
    pub only: Option<ParticipantId>,
    /// Listener gain, centibels.
    pub gain_centibels: i32,
}

impl OutputKey {
    /// The linear gain.
    pub fn gain(&self) -> f32 {
        10f32.powf(self.gain_centibels as f32 / 2000.0)
    }
}

/// A listener this period: whether its audio is in the total, what it hears, and its gain in
/// dB.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Listener {
    /// Who.
    pub id: ParticipantId,
    /// Its audio is in the total this period.
    pub contributes: bool,
    /// It hears only this participant (a tap), not the mix.
    pub only: Option<ParticipantId>,
    /// Gain applied to what it hears, dB.
    pub gain_db: f32,
}

/// Groups listeners by identical output: each key needs one mix and one encode, shared by the
/// listeners under it.
pub fn plan_outputs(listeners: &[Listener]) -> BTreeMap<OutputKey, Vec<ParticipantId>> {
    let mut plan: BTreeMap<OutputKey, Vec<ParticipantId>> = BTreeMap::new();
    for listener in listeners {
        let key = OutputKey {
            excluded: (listener.contributes && listener.only.is_none()).then_some(listener.id),
            only: listener.only,
            gain_centibels: (listener.gain_db * 100.0).round() as i32,
        };
        plan.entry(key).or_default().push(listener.id);
    }
    plan
}

#[cfg(test)]
pub(crate) mod tests;
