//! rdv-mixer benchmark: prints figures, asserts nothing.
//! Run: `cargo bench -p rdv-mixer --bench mixer` (add `audio` or `video` to run one half).
//!
//! The figure is CPU time of this process (every GStreamer thread included) per second of
//! media, run as fast as the machine goes. Each row is measured twice in the same run: with
//! rdv's design (each input decoded once, one total mix with mix-minus derived from it, the
//! listeners who are not heard sharing one encode; one composite encoded once) and with the
//! naive design (a mixer and an encoder per listener), and the ratio is printed.
//!
//! - Audio: N participants, three of them talking (tones) and the rest sending silence, 20 ms
//!   Opus packets at 48 kbit/s, complexity 10 out; 4 seconds of media.
//! - Video: N participants sending 640×360 H.264 at 30 fps (a moving pattern); a 1280×720
//!   composite at 30 fps encoded as H.264 (x264 ultrafast, zero latency); 2 seconds of media.
//!   The naive design decodes each input once too, then composes and encodes per listener.

#![allow(clippy::unwrap_used)] // a measuring tool: a failed unwrap is a failed measurement

#[path = "../tests/support/video_source.rs"]
mod video_source;

use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use rdv_mixer::audio::{FRAME_SAMPLES, ParticipantId, accumulate, minus};
use rdv_mixer::audio_room::{AudioRoom, AudioRoomConfig};
use rdv_mixer::opus::{OpusDecoder, OpusEncoder, OpusSettings};
use rdv_mixer::video::{VideoCodec, VideoConfig, VideoMixer};

const AUDIO_SIZES: [usize; 4] = [4, 16, 64, 128];
const AUDIO_FRAMES: usize = 200;
const VIDEO_SIZES: [usize; 3] = [4, 9, 16];
const VIDEO_FRAMES: usize = 60;
const TALKERS: usize = 3;
const WAIT: Duration = Duration::from_secs(10);

/// CPU seconds used by this process so far (`/proc/self/stat`, in USER_HZ = 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

/// CPU seconds per second of media for `run`, which processes `media_seconds` of media.
fn measure(media_seconds: f64, run: impl FnOnce()) -> f64 {
    let before = cpu_seconds();
    run();
    (cpu_seconds() - before) / media_seconds
}

fn tone(freq: f32, frame: usize) -> Vec<f32> {
    (frame * FRAME_SAMPLES..(frame + 1) * FRAME_SAMPLES)
        .map(|i| 0.3 * (std::f32::consts::TAU * freq * i as f32 / 48_000.0).sin())
        .collect()
}

/// `frames` Opus packets of a tone (`Some(freq)`) or of silence.
fn packets(freq: Option<f32>, frames: usize) -> Vec<Vec<u8>> {
    let mut encoder = OpusEncoder::new(32_000).unwrap();
    (0..frames)
        .map(|frame| {
            let samples = freq.map_or_else(|| vec![0.0; FRAME_SAMPLES], |f| tone(f, frame));
            encoder.encode(&samples).unwrap()
        })
        .collect()
}

fn output_settings() -> OpusSettings {
    OpusSettings { bitrate: 48_000, complexity: 10, fec_loss_percent: 0 }
}

/// Each participant's packets: the first [`TALKERS`] talk, the others are silent.
fn audio_inputs(n: usize) -> Vec<Vec<Vec<u8>>> {
    let silence = packets(None, AUDIO_FRAMES);
    (0..n)
        .map(|i| {
            if i < TALKERS {
                packets(Some(300.0 + 200.0 * i as f32), AUDIO_FRAMES)
            } else {
                silence.clone()
            }
        })
        .collect()
}

fn audio_rdv(inputs: &[Vec<Vec<u8>>]) {
    let config = AudioRoomConfig { encoder: output_settings(), fec: false, ..Default::default() };
    let mut room = AudioRoom::new(config);
    for id in 0..inputs.len() {
        room.add(ParticipantId(id as u64)).unwrap();
    }
    for frame in 0..AUDIO_FRAMES {
        for (id, packets) in inputs.iter().enumerate() {
            let packet = packets[frame.min(packets.len() - 1)].clone();
            let timestamp = (frame * FRAME_SAMPLES) as u32;
            let _ = room.push(ParticipantId(id as u64), timestamp, packet);
        }
        room.tick();
    }
}

fn audio_naive(inputs: &[Vec<Vec<u8>>]) {
    let n = inputs.len();
    let mut decoders: Vec<OpusDecoder> = (0..n).map(|_| OpusDecoder::new().unwrap()).collect();
    let mut encoders: Vec<OpusEncoder> =
        (0..n).map(|_| OpusEncoder::with_settings(output_settings()).unwrap()).collect();
    let mut decoded = vec![vec![0.0f32; FRAME_SAMPLES]; n];
    for frame in 0..AUDIO_FRAMES {
        for ((decoder, packets), samples) in decoders.iter_mut().zip(inputs).zip(&mut decoded) {
            let out = decoder.decode(&packets[frame.min(packets.len() - 1)]).unwrap();
            samples.copy_from_slice(&out[..FRAME_SAMPLES]);
        }
        // One mixer per listener, summing the N-1 others.
        for (listener, encoder) in encoders.iter_mut().enumerate() {
            let mut mix = vec![0.0f32; FRAME_SAMPLES];
            for (other, samples) in decoded.iter().enumerate() {
                if other != listener {
                    accumulate(&mut mix, samples, 1.0);
                }
            }
            let mut out = vec![0.0f32; FRAME_SAMPLES];
            minus(&mix, None, 1.0, &mut out);
            encoder.encode(&out).unwrap();
        }
    }
}

/// `frames` access units of a moving 640×360 pattern, encoded as H.264.
fn video_input(pattern: usize, frames: usize) -> Vec<Vec<u8>> {
    let patterns = ["ball", "smpte", "pinwheel", "spokes", "gamut", "zone-plate"];
    let properties = format!("pattern={}", patterns[pattern % patterns.len()]);
    video_source::encoded(VideoCodec::H264, &properties, (640, 360), frames)
}

fn video_rdv(inputs: &[Vec<Vec<u8>>], codecs: &[VideoCodec]) {
    let config = VideoConfig { codecs: codecs.to_vec(), ..VideoConfig::default() };
    let mut mixer = VideoMixer::new(config).unwrap();
    for id in 0..inputs.len() {
        mixer.add(ParticipantId(id as u64), Some(VideoCodec::H264)).unwrap();
    }
    for frame in 0..VIDEO_FRAMES {
        for (id, units) in inputs.iter().enumerate() {
            mixer.push(ParticipantId(id as u64), &units[frame]);
        }
        // Paced like a live room: this frame of everyone is decoded before the tick.
        mixer.wait_for_pictures(WAIT);
        mixer.tick().unwrap();
    }
    for codec in codecs {
        let mut last = 0;
        while last + 1 < VIDEO_FRAMES as u64 {
            last = mixer.pull(*codec, WAIT).unwrap().expect("every frame is encoded").tick;
        }
    }
}

/// The naive design as one GStreamer pipeline: every input decoded once and teed to one
/// compositor per listener (laid out in a grid of the others), each with its own encoder.
fn video_naive(inputs: &[Vec<Vec<u8>>]) {
    let n = inputs.len();
    let zoom = ((n - 1) as f64).sqrt().ceil() as i32;
    let (cell_w, cell_h) = (1280 / zoom, 720 / zoom);
    let mut description = String::new();
    for listener in 0..n {
        description.push_str(&format!(
            "compositor name=mix{listener} background=black \
             ! video/x-raw,format=I420,width=1280,height=720,framerate=30/1 \
             ! x264enc tune=zerolatency speed-preset=ultrafast bitrate=2000 key-int-max=60 threads=2 \
             ! fakesink sync=false "
        ));
    }
    for input in 0..n {
        description.push_str(&format!(
            "appsrc name=in{input} format=time \
               caps=\"video/x-h264,stream-format=byte-stream,alignment=au,width=640,height=360,framerate=30/1\" \
             ! avdec_h264 max-threads=2 ! tee name=t{input} "
        ));
        for listener in (0..n).filter(|l| *l != input) {
            description.push_str(&format!(
                "t{input}. ! queue max-size-buffers=4 ! mix{listener}.sink_{input} "
            ));
        }
    }
    let pipeline = gst::parse::launch(&description).unwrap().downcast::<gst::Pipeline>().unwrap();
    // Place each input in each listener's grid.
    for listener in 0..n {
        let mix = pipeline.by_name(&format!("mix{listener}")).unwrap();
        for (cell, input) in (0..n).filter(|i| *i != listener).enumerate() {
            let pad = mix.static_pad(&format!("sink_{input}")).unwrap();
            let cell = cell as i32;
            pad.set_property("xpos", (cell % zoom) * cell_w);
            pad.set_property("ypos", (cell / zoom) * cell_h);
            pad.set_property("width", cell_w);
            pad.set_property("height", cell_w * 9 / 16);
        }
    }
    let sources: Vec<gst_app::AppSrc> =
        (0..n).map(|i| pipeline.by_name(&format!("in{i}")).unwrap().downcast().unwrap()).collect();
    pipeline.set_state(gst::State::Playing).unwrap();
    let frame = gst::ClockTime::SECOND / 30;
    for index in 0..VIDEO_FRAMES {
        for (source, units) in sources.iter().zip(inputs) {
            let mut buffer = gst::Buffer::from_slice(units[index].clone());
            buffer.get_mut().unwrap().set_pts(frame * index as u64);
            source.push_buffer(buffer).unwrap();
        }
    }
    for source in &sources {
        source.end_of_stream().unwrap();
    }
    let bus = pipeline.bus().unwrap();
    let message = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(600),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .unwrap();
    assert!(matches!(message.view(), gst::MessageView::Eos(_)), "{message:?}");
    pipeline.set_state(gst::State::Null).unwrap();
}

fn main() {
    gst::init().unwrap();
    let only: Option<String> = std::env::args().skip(1).find(|a| a == "audio" || a == "video");
    println!("rdv-mixer: CPU seconds per second of media (lower is better; 1.0 = one core)");
    if only.as_deref() != Some("video") {
        println!("\naudio ({TALKERS} talking, the rest silent; Opus 20 ms, 48 kbit/s out)");
        println!(
            "{:>13} {:>8} {:>8} {:>11} {:>12}",
            "participants", "rdv", "naive", "naive/rdv", "rdv encoders"
        );
        let media = AUDIO_FRAMES as f64 * 0.02;
        for n in AUDIO_SIZES {
            let inputs = audio_inputs(n);
            let rdv = measure(media, || audio_rdv(&inputs));
            let naive = measure(media, || audio_naive(&inputs));
            println!(
                "{n:>13} {rdv:>8.3} {naive:>8.3} {:>11.1} {:>12}",
                naive / rdv.max(0.001),
                TALKERS.min(n) + usize::from(n > TALKERS)
            );
        }
    }
    if only.as_deref() != Some("audio") {
        println!("\nvideo (640x360 H.264 in; 1280x720 at 30 fps, H.264 out)");
        println!(
            "{:>13} {:>8} {:>8} {:>11} {:>15}",
            "participants", "rdv", "naive", "naive/rdv", "rdv H.264+VP8"
        );
        let media = VIDEO_FRAMES as f64 / 30.0;
        for n in VIDEO_SIZES {
            let inputs: Vec<Vec<Vec<u8>>> = (0..n).map(|i| video_input(i, VIDEO_FRAMES)).collect();
            let rdv = measure(media, || video_rdv(&inputs, &[VideoCodec::H264]));
            let both = measure(media, || video_rdv(&inputs, &[VideoCodec::H264, VideoCodec::Vp8]));
            let naive = measure(media, || video_naive(&inputs));
            println!(
                "{n:>13} {rdv:>8.3} {naive:>8.3} {:>11.1} {both:>15.3}",
                naive / rdv.max(0.001)
            );
        }
    }
}
