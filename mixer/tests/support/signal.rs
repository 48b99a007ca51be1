//! Test signals and their analysis: sine tones in 20 ms frames, and the level of one
//! frequency in a recording.

#![allow(dead_code, unreachable_pub)]

use std::f32::consts::TAU;

use rdv_mixer::audio::{FRAME_SAMPLES, SAMPLE_RATE};

/// `frames` 20 ms frames of a `freq` Hz sine of amplitude 0.3, starting at frame `first`.
pub fn tone_frames(freq: f32, first: usize, frames: usize) -> Vec<Vec<f32>> {
    (first..first + frames)
        .map(|frame| {
            (frame * FRAME_SAMPLES..(frame + 1) * FRAME_SAMPLES)
                .map(|i| 0.3 * (TAU * freq * i as f32 / SAMPLE_RATE as f32).sin())
                .collect()
        })
        .collect()
}

/// Level of `freq` in `samples`, in dB relative to full scale, with a Hann window so that
/// neighbouring tones do not leak into the measurement.
pub fn tone_dbfs(samples: &[f32], freq: f32) -> f32 {
    let n = samples.len() as f64;
    let (mut re, mut im, mut window_sum) = (0.0f64, 0.0f64, 0.0f64);
    for (i, s) in samples.iter().enumerate() {
        let window = 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n).cos();
        let phase = f64::from(TAU * freq) * i as f64 / f64::from(SAMPLE_RATE);
        re += f64::from(*s) * window * phase.cos();
        im += f64::from(*s) * window * phase.sin();
        window_sum += window;
    }
    let amplitude = 2.0 * (re * re + im * im).sqrt() / window_sum;
    (20.0 * amplitude.max(1e-9).log10()) as f32
}

/// The steady middle half of a recording.
pub fn middle(samples: &[f32]) -> &[f32] {
    &samples[samples.len() / 4..samples.len() * 3 / 4]
}
