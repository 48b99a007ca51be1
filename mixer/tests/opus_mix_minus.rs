//! Mix-minus through real Opus: three participants send 440, 1000 and 1500 Hz tones encoded
//! by GStreamer's opusenc; their packets are decoded by opusdec, mixed, each listener's
//! output re-encoded and decoded again; each output must hold the others' tones and not its
//! own, checked on the spectrum.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::f32::consts::TAU;

use rdv_mixer::audio::{FRAME_SAMPLES, SAMPLE_RATE, accumulate, level_dbfs, minus};
use rdv_mixer::opus::{OpusDecoder, OpusEncoder};

const TONES: [f32; 3] = [440.0, 1000.0, 1500.0];
const SECONDS: usize = 1;

fn tone_frames(freq: f32) -> Vec<Vec<f32>> {
    let total = SAMPLE_RATE as usize * SECONDS;
    let samples: Vec<f32> =
        (0..total).map(|i| 0.3 * (TAU * freq * i as f32 / SAMPLE_RATE as f32).sin()).collect();
    samples.chunks(FRAME_SAMPLES).map(<[f32]>::to_vec).collect()
}

fn through_opus(frames: &[Vec<f32>]) -> Vec<f32> {
    let mut encoder = OpusEncoder::new(64_000).unwrap();
    for frame in frames {
        encoder.push(frame).unwrap();
    }
    let packets = encoder.finish().unwrap();
    assert!(
        packets.len() >= frames.len() - 2,
        "{} packets for {} frames",
        packets.len(),
        frames.len()
    );
    let mut decoder = OpusDecoder::new().unwrap();
    for packet in &packets {
        decoder.push(packet).unwrap();
    }
    decoder.finish().unwrap()
}

/// Level of `freq` in the steady middle of `samples`, in dB relative to full scale, with a
/// Hann window so that neighbouring tones do not leak into the measurement.
fn tone_dbfs(samples: &[f32], freq: f32) -> f32 {
    let segment = &samples[samples.len() / 4..samples.len() * 3 / 4];
    let n = segment.len() as f64;
    let (mut re, mut im, mut window_sum) = (0.0f64, 0.0f64, 0.0f64);
    for (i, s) in segment.iter().enumerate() {
        let window = 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n).cos();
        let phase = f64::from(TAU * freq) * i as f64 / f64::from(SAMPLE_RATE);
        re += f64::from(*s) * window * phase.cos();
        im += f64::from(*s) * window * phase.sin();
        window_sum += window;
    }
    let amplitude = 2.0 * (re * re + im * im).sqrt() / window_sum;
    (20.0 * amplitude.max(1e-9).log10()) as f32
}

#[test]
fn each_listener_hears_the_others_through_real_opus() {
    // Each participant's tone, sent through Opus as a Jami client would send it.
    let received: Vec<Vec<f32>> = TONES.iter().map(|f| through_opus(&tone_frames(*f))).collect();
    let length = received.iter().map(Vec::len).min().unwrap();
    assert!(
        length >= SAMPLE_RATE as usize * SECONDS - 2 * FRAME_SAMPLES,
        "decoded {length} samples"
    );

    // The mix: one total, minus each listener's own decoded signal.
    let mut total = vec![0.0; length];
    for samples in &received {
        accumulate(&mut total, &samples[..length], 1.0);
    }
    for (listener, own) in received.iter().enumerate() {
        let mut output = vec![0.0; length];
        minus(&total, Some(&own[..length]), 1.0, &mut output);
        let frames: Vec<Vec<f32>> =
            output.chunks_exact(FRAME_SAMPLES).map(<[f32]>::to_vec).collect();
        let heard = through_opus(&frames);
        assert!(level_dbfs(&heard) > -20.0, "listener {listener} hears something");
        for (speaker, freq) in TONES.iter().enumerate() {
            let level = tone_dbfs(&heard, *freq);
            if speaker == listener {
                assert!(
                    level < -40.0,
                    "listener {listener} hears its own {freq} Hz at {level:.1} dBFS"
                );
            } else {
                assert!(
                    level > -16.0,
                    "listener {listener} hears {freq} Hz at only {level:.1} dBFS"
                );
            }
        }
    }
}
