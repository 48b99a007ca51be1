//! Active-speaker mode, sans-IO: which participant the big tile shows, following voice
//! activity with hysteresis so that it does not flap. A participant takes the big tile once it
//! has spoken for [`Hysteresis::take_after`]; the one shown keeps it for at least
//! [`Hysteresis::hold`], and keeps it while no one else speaks.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdv_mixer::audio::ParticipantId;

/// How quickly the big tile follows the speakers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hysteresis {
    /// Continuous speech needed to take the big tile.
    pub take_after: Duration,
    /// Least time the big tile stays on someone.
    pub hold: Duration,
}

impl Default for Hysteresis {
    fn default() -> Self {
        Self { take_after: Duration::from_millis(1500), hold: Duration::from_secs(3) }
    }
}

/// Picks the active speaker.
#[derive(Debug, Clone)]
pub struct SpeakerPicker {
    hysteresis: Hysteresis,
    /// Who speaks now, since when.
    speaking: HashMap<ParticipantId, Instant>,
    shown: Option<(ParticipantId, Instant)>,
}

impl SpeakerPicker {
    /// A picker with no one shown.
    pub fn new(hysteresis: Hysteresis) -> Self {
        Self { hysteresis, speaking: HashMap::new(), shown: None }
    }

    /// A participant's voice activity changed at `now`.
    pub fn voice(&mut self, participant: ParticipantId, active: bool, now: Instant) {
        if active {
            self.speaking.entry(participant).or_insert(now);
        } else {
            self.speaking.remove(&participant);
        }
    }

    /// A participant left.
    pub fn remove(&mut self, participant: ParticipantId) {
        self.speaking.remove(&participant);
        if self.shown.is_some_and(|(shown, _)| shown == participant) {
            self.shown = None;
        }
    }

    /// The participant to show now, when it changes.
    pub fn poll(&mut self, now: Instant) -> Option<ParticipantId> {
        if let Some((_, since)) = self.shown
            && now < since + self.hysteresis.hold
        {
            return None;
        }
        // The longest continuous speaker who has spoken long enough.
        let candidate = self
            .contenders()?
            .filter(|(_, ready)| now >= *ready)
            .min_by_key(|(id, ready)| (*ready, id.0))
            .map(|(id, _)| id)?;
        self.shown = Some((candidate, now));
        Some(candidate)
    }

    /// When [`Self::poll`] may next change its answer without a new voice activity; `None`
    /// while nothing can change (the one shown speaks, or no one else does). After a `poll`
    /// at `now` it is never `now` or earlier, so a loop sleeping until it does not spin.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let ready = self.contenders()?.map(|(_, ready)| ready).min()?;
        let hold_ends = self.shown.map(|(_, since)| since + self.hysteresis.hold);
        Some(hold_ends.map_or(ready, |hold| hold.max(ready)))
    }

    /// Who could take the big tile, and from when: `None` while the one shown speaks.
    fn contenders(&self) -> Option<impl Iterator<Item = (ParticipantId, Instant)> + '_> {
        let current = self.shown.map(|(shown, _)| shown);
        if current.is_some_and(|shown| self.speaking.contains_key(&shown)) {
            return None;
        }
        let take_after = self.hysteresis.take_after;
        Some(
            self.speaking
                .iter()
                .filter(move |(id, _)| Some(**id) != current)
                .map(move |(id, since)| (*id, *since + take_after)),
        )
    }
}

#[cfg(test)]
mod tests;
