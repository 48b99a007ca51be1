//! Mix-minus through real Opus: three participants send 440, 1000 and 1500 Hz tones encoded
//! by GStreamer's opusenc; their packets are decoded by opusdec, mixed, each listener's
//! output re-encoded and decoded again; each output must hold the others' tones and not its
//! own, checked on the spectrum.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "support/signal.rs"]
mod signal;

use rdv_mixer::audio::{FRAME_SAMPLES, SAMPLE_RATE, accumulate, level_dbfs, minus};
use rdv_mixer::opus::{OpusDecoder, OpusEncoder};
use signal::{middle, tone_dbfs, tone_frames};

const TONES: [f32; 3] = [440.0, 1000.0, 1500.0];
const SECONDS: usize = 1;
const FRAMES: usize = SAMPLE_RATE as usize * SECONDS / FRAME_SAMPLES;

fn through_opus(frames: &[Vec<f32>]) -> Vec<f32> {
    let mut encoder = OpusEncoder::new(64_000).unwrap();
    let packets: Vec<Vec<u8>> = frames.iter().map(|f| encoder.encode(f).unwrap()).collect();
    let mut decoder = OpusDecoder::new().unwrap();
    packets.iter().flat_map(|packet| decoder.decode(packet).unwrap()).collect()
}

#[test]
fn each_listener_hears_the_others_through_real_opus() {
    // Each participant's tone, sent through Opus as a Jami client would send it.
    let received: Vec<Vec<f32>> =
        TONES.iter().map(|f| through_opus(&tone_frames(*f, 0, FRAMES))).collect();
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
            let level = tone_dbfs(middle(&heard), *freq);
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
