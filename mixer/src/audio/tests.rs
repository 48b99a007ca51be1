use std::f32::consts::TAU;

use super::*;

fn tone(freq: f32, amplitude: f32) -> Vec<f32> {
    (0..FRAME_SAMPLES)
        .map(|i| amplitude * (TAU * freq * i as f32 / SAMPLE_RATE as f32).sin())
        .collect()
}

/// Amplitude of `freq` in `samples` (a single-bin DFT), relative to full scale.
pub(crate) fn amplitude_at(samples: &[f32], freq: f32) -> f32 {
    let (mut re, mut im) = (0.0f64, 0.0f64);
    for (i, s) in samples.iter().enumerate() {
        let phase = f64::from(TAU * freq) * i as f64 / f64::from(SAMPLE_RATE);
        re += f64::from(*s) * phase.cos();
        im += f64::from(*s) * phase.sin();
    }
    (2.0 * (re * re + im * im).sqrt() / samples.len() as f64) as f32
}

#[test]
fn levels_in_dbfs() {
    assert!((level_dbfs(&tone(1000.0, 1.0)) + 3.01).abs() < 0.05);
    assert!((level_dbfs(&tone(1000.0, 0.1)) + 23.01).abs() < 0.05);
    assert_eq!(level_dbfs(&[0.0; FRAME_SAMPLES]), SILENCE_DBFS);
    assert_eq!(level_dbfs(&[]), SILENCE_DBFS);
}

#[test]
fn voice_activity_has_hysteresis() {
    let mut vad = VoiceActivity::new(VoiceActivityConfig::default());
    assert_eq!(vad.update(-30.0), None, "one loud frame is not enough");
    assert_eq!(vad.update(-30.0), Some(true));
    assert_eq!(vad.update(-50.0), None, "between the thresholds: stays on");
    for _ in 0..19 {
        assert_eq!(vad.update(-80.0), None, "a pause shorter than the release keeps it on");
    }
    assert_eq!(vad.update(-30.0), None);
    for _ in 0..19 {
        vad.update(-80.0);
    }
    assert_eq!(vad.update(-80.0), Some(false), "20 silent frames turn it off");
    assert_eq!(vad.update(-50.0), None, "between the thresholds: stays off");
    assert!(!vad.is_active());
    vad.update(-20.0);
    vad.update(-20.0);
    assert_eq!(vad.reset(), Some(false));
    assert_eq!(vad.reset(), None);
}

/// Tone frequencies with a whole number of cycles in a 20 ms frame, so that a single-bin DFT
/// sees no leakage between them.
const FREQUENCIES: [f32; 3] = [450.0, 1000.0, 1500.0];

#[test]
fn mix_minus_removes_exactly_the_listeners_own_voice() {
    let voices: Vec<(ParticipantId, Vec<f32>)> = FREQUENCIES
        .iter()
        .enumerate()
        .map(|(i, f)| (ParticipantId(i as u64), tone(*f, 0.2)))
        .collect();
    let mut total = vec![0.0; FRAME_SAMPLES];
    for (_, samples) in &voices {
        accumulate(&mut total, samples, 1.0);
    }
    for (id, own) in &voices {
        let mut out = vec![0.0; FRAME_SAMPLES];
        minus(&total, Some(own), 1.0, &mut out);
        // Sample for sample, the others' sum.
        let mut others = vec![0.0; FRAME_SAMPLES];
        for (_, samples) in voices.iter().filter(|(other, _)| other != id) {
            accumulate(&mut others, samples, 1.0);
        }
        assert!(out.iter().zip(&others).all(|(a, b)| (a - b).abs() < 1e-6));
        // And in the spectrum: every tone but its own.
        for (other, _) in &voices {
            let heard = amplitude_at(&out, FREQUENCIES[other.0 as usize]);
            if other == id {
                assert!(heard < 1e-4, "{id:?} hears itself at {heard}");
            } else {
                assert!((heard - 0.2).abs() < 0.01, "{id:?} hears {other:?} at {heard}");
            }
        }
    }
    // Someone who did not contribute hears everybody.
    let mut out = vec![0.0; FRAME_SAMPLES];
    minus(&total, None, 1.0, &mut out);
    for freq in FREQUENCIES {
        assert!((amplitude_at(&out, freq) - 0.2).abs() < 0.01);
    }
}

#[test]
fn gain_and_clipping() {
    let loud = tone(450.0, 0.9);
    let mut total = vec![0.0; FRAME_SAMPLES];
    accumulate(&mut total, &loud, 1.0);
    accumulate(&mut total, &loud, 1.0);
    let mut out = vec![0.0; FRAME_SAMPLES];
    minus(&total, None, 1.0, &mut out);
    assert!(out.iter().all(|s| (-1.0..=1.0).contains(s)), "clipped to full scale");
    let key = OutputKey { excluded: None, only: None, gain_centibels: -600 };
    minus(&total, Some(&loud), key.gain(), &mut out);
    assert!((amplitude_at(&out, 450.0) - 0.9 * 0.501).abs() < 0.01, "-6 dB halves the amplitude");
}

#[test]
fn silent_listeners_share_one_output() {
    // 16 listeners, 2 of them speaking: 3 distinct outputs, not 16.
    let listeners: Vec<Listener> = (0..16)
        .map(|i| Listener { id: ParticipantId(i), contributes: i < 2, only: None, gain_db: 0.0 })
        .collect();
    let plan = plan_outputs(&listeners);
    assert_eq!(plan.len(), 3);
    let shared = &plan[&OutputKey { excluded: None, only: None, gain_centibels: 0 }];
    assert_eq!(shared.len(), 14);
    assert_eq!(
        plan[&OutputKey { excluded: Some(ParticipantId(0)), only: None, gain_centibels: 0 }],
        [ParticipantId(0)]
    );
    // A listener with its own gain needs its own output.
    let mut listeners = listeners;
    listeners[10].gain_db = -6.0;
    assert_eq!(plan_outputs(&listeners).len(), 4);
    // Nobody speaking: one output for the whole room.
    let quiet: Vec<Listener> = (0..128)
        .map(|i| Listener { id: ParticipantId(i), contributes: false, only: None, gain_db: 0.0 })
        .collect();
    assert_eq!(plan_outputs(&quiet).len(), 1);
}
