//! A room's media thread in real time: a simulated client sends Opus packets every 20 ms (and
//! one of them H.264 video); the outputs are read as the server would read them, from the
//! async side, and checked: tones by listener, the tiles, the composite's frames.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "support/signal.rs"]
mod signal;
#[path = "support/video_source.rs"]
mod video_source;

use std::collections::BTreeMap;
use std::time::Duration;

use rdv_mixer::audio::{FRAME_SAMPLES, ParticipantId};
use rdv_mixer::audio_room::AudioRoomConfig;
use rdv_mixer::engine::AudioEvent;
use rdv_mixer::layout::Rect;
use rdv_mixer::media_room::{Command, MediaRoom, Output};
use rdv_mixer::opus::{OpusDecoder, OpusEncoder};
use rdv_mixer::video::{VideoCodec, VideoConfig, VideoEvent};
use signal::{tone_dbfs, tone_frames};

const TONES: [f32; 3] = [440.0, 1000.0, 1500.0];
const FRAMES: usize = 75;

fn opus_packets(freq: f32) -> Vec<Vec<u8>> {
    let mut encoder = OpusEncoder::new(48_000).unwrap();
    tone_frames(freq, 0, FRAMES).iter().map(|f| encoder.encode(f).unwrap()).collect()
}

fn h264_frames(count: usize) -> Vec<Vec<u8>> {
    video_source::encoded(VideoCodec::H264, "pattern=ball", (640, 360), count)
}

#[tokio::test(flavor = "current_thread")]
async fn commands_in_frames_and_events_out_in_real_time() {
    let video = VideoConfig { codecs: vec![VideoCodec::Vp8], ..VideoConfig::default() };
    let (room, mut outputs) = MediaRoom::spawn(AudioRoomConfig::default(), video).unwrap();
    for id in 0..3u64 {
        let video = (id == 0).then_some(VideoCodec::H264);
        room.send(Command::Add { participant: ParticipantId(id), video }).unwrap();
    }

    // The clients: a packet from everyone every 20 ms, a video frame every other tick.
    let packets: Vec<Vec<Vec<u8>>> = TONES.iter().map(|f| opus_packets(*f)).collect();
    let video_frames = h264_frames(FRAMES / 2 + 1);
    let sender = std::thread::spawn(move || {
        for frame in 0..FRAMES {
            for (id, packets) in packets.iter().enumerate() {
                let command = Command::Audio {
                    participant: ParticipantId(id as u64),
                    timestamp: (frame * FRAME_SAMPLES) as u32,
                    payload: packets[frame].clone(),
                };
                room.send(command).unwrap();
            }
            if frame % 2 == 0 {
                let data = video_frames[frame / 2].clone();
                room.send(Command::Video { participant: ParticipantId(0), data }).unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        room
    });

    let mut heard: BTreeMap<ParticipantId, BTreeMap<u64, Vec<u8>>> = BTreeMap::new();
    let mut tiles = Vec::new();
    let mut video_frames = Vec::new();
    let mut talking = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !sender.is_finished()
        || heard.get(&ParticipantId(1)).is_none_or(|h| h.len() < FRAMES - 10)
    {
        let output = tokio::time::timeout_at(deadline, outputs.recv()).await.unwrap().unwrap();
        match output {
            Output::Audio(packet) => {
                for listener in packet.listeners {
                    heard.entry(listener).or_default().insert(packet.index, packet.payload.clone());
                }
            }
            Output::Video(frame) => video_frames.push(frame),
            Output::VideoEvent(VideoEvent::TilesChanged(new)) => tiles = new,
            Output::AudioEvent(AudioEvent::VoiceActivity { participant, active: true }) => {
                talking.push(participant);
            }
            Output::Failed(error) => panic!("{error}"),
            _ => {}
        }
    }
    let room = sender.join().unwrap();
    // Mixing 1.5 s of three participants with video took some CPU time on the media thread.
    let cpu = room.cpu_clock().and_then(|clock| clock.elapsed()).unwrap();
    assert!(cpu > Duration::ZERO, "{cpu:?}");

    // Participant 1 hears 0 and 2, not itself.
    let mut decoder = OpusDecoder::new().unwrap();
    let packets = &heard[&ParticipantId(1)];
    let first = *packets.keys().next().unwrap();
    let last = *packets.keys().next_back().unwrap();
    // A frame that was not sent is silence to the listener.
    let audio: Vec<f32> = (first + 10..=last)
        .flat_map(|index| match packets.get(&index) {
            Some(payload) => decoder.decode(payload).unwrap(),
            None => vec![0.0; FRAME_SAMPLES],
        })
        .collect();
    assert!(tone_dbfs(&audio, TONES[0]) > -20.0);
    assert!(tone_dbfs(&audio, TONES[2]) > -20.0);
    assert!(tone_dbfs(&audio, TONES[1]) < -40.0);
    talking.sort();
    assert_eq!(talking, [ParticipantId(0), ParticipantId(1), ParticipantId(2)]);

    // Two audio-only tiles and participant 0's picture filling the 16:9 composite.
    let audio_only = Rect { x: 0, y: 0, w: 10, h: 10 };
    assert_eq!(tiles.len(), 3, "{tiles:?}");
    assert!(tiles.iter().any(|t| t.participant.0 == 0
        && t.has_video
        && t.rect == Rect { x: 0, y: 0, w: 1280, h: 720 }));
    assert!(tiles.iter().filter(|t| t.participant.0 != 0).all(|t| t.rect == audio_only));

    // The composite flowed (30 frames a second when the machine keeps up).
    assert!(video_frames[0].keyframe);
    assert!(video_frames.len() >= 10, "{} composite frames", video_frames.len());
    drop(room);
}
