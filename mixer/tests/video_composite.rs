//! The composite through real codecs: participants send solid frames of distinct colours as
//! H.264 (x264enc) and VP8 (vp8enc); the mixer decodes them, composes them in each of Jami's
//! layouts and encodes the composite as H.264 and VP8; the test decodes each output with
//! GStreamer and finds every participant's colour at the centre of the rectangle the mixer
//! reports for it.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "support/video_source.rs"]
mod video_source;

use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use rdv_mixer::audio::ParticipantId;
use rdv_mixer::layout::{Layout, Rect};
use rdv_mixer::video::{
    EncodedVideo, ParticipantTile, RawPicture, VideoCodec, VideoConfig, VideoEvent, VideoMixer,
};

const COLOURS: [[u8; 3]; 9] = [
    [230, 30, 30],
    [30, 200, 30],
    [40, 40, 230],
    [230, 230, 30],
    [230, 30, 230],
    [30, 220, 220],
    [240, 240, 240],
    [240, 140, 20],
    [120, 20, 160],
];

/// Input sizes, varied so that fitting and centring are exercised (16:9, 4:3, portrait).
const INPUT_SIZES: [(i32, i32); 3] = [(640, 360), (320, 240), (240, 320)];

const WAIT: Duration = Duration::from_secs(10);

fn launch(description: &str) -> gst::Pipeline {
    gst::init().unwrap();
    gst::parse::launch(description).unwrap().downcast::<gst::Pipeline>().unwrap()
}

/// The caps and decoder of `codec`.
fn decoder(codec: VideoCodec) -> (&'static str, &'static str) {
    match codec {
        VideoCodec::H264 => ("video/x-h264,stream-format=byte-stream,alignment=au", "avdec_h264"),
        VideoCodec::Vp8 => ("video/x-vp8", "vp8dec"),
    }
}

/// `frames` access units of a solid `colour` picture of `size`, encoded as `codec`.
fn solid(codec: VideoCodec, colour: [u8; 3], size: (i32, i32), frames: usize) -> Vec<Vec<u8>> {
    let argb = u32::from_be_bytes([0xff, colour[0], colour[1], colour[2]]);
    video_source::encoded(
        codec,
        &format!("pattern=solid-color foreground-color={argb}"),
        size,
        frames,
    )
}

/// A decoded RGB picture.
struct Rgb {
    width: usize,
    height: usize,
    stride: usize,
    data: Vec<u8>,
}

impl Rgb {
    fn at(&self, x: i32, y: i32) -> [u8; 3] {
        let (x, y) = (x as usize, y as usize);
        assert!(x < self.width && y < self.height, "({x}, {y}) outside the picture");
        let i = y * self.stride + x * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }
}

/// Decodes `frames` (which start with a keyframe) and returns the last picture.
fn decode_last(codec: VideoCodec, frames: &[EncodedVideo]) -> Rgb {
    let (caps, decoder) = decoder(codec);
    let pipeline = launch(&format!(
        "appsrc name=source format=time caps=\"{caps}\" ! {decoder} ! videoconvert \
         ! video/x-raw,format=RGB ! appsink name=sink sync=false"
    ));
    let source = pipeline.by_name("source").unwrap().downcast::<gst_app::AppSrc>().unwrap();
    let sink = pipeline.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    for frame in frames {
        source.push_buffer(gst::Buffer::from_slice(frame.data.clone())).unwrap();
    }
    source.end_of_stream().unwrap();
    let mut last = None;
    while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(10)) {
        last = Some(sample);
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let sample = last.expect("the composite decodes");
    let structure = sample.caps().unwrap().structure(0).unwrap().to_owned();
    let width = structure.get::<i32>("width").unwrap() as usize;
    let height = structure.get::<i32>("height").unwrap() as usize;
    let data = sample.buffer().unwrap().map_readable().unwrap().to_vec();
    Rgb { width, height, stride: (width * 3).div_ceil(4) * 4, data }
}

fn close(actual: [u8; 3], expected: [u8; 3]) -> bool {
    actual.iter().zip(expected).all(|(a, e)| a.abs_diff(e) <= 40)
}

/// A room of `n` participants (alternately H.264 and VP8), each sending its colour.
fn room(n: usize, layout: Layout, active: Option<usize>) -> VideoMixer {
    let mut mixer = VideoMixer::new(VideoConfig::default()).unwrap();
    for i in 0..n {
        let codec = if i % 2 == 0 { VideoCodec::H264 } else { VideoCodec::Vp8 };
        let id = ParticipantId(i as u64);
        mixer.add(id, Some(codec)).unwrap();
        for unit in solid(codec, COLOURS[i], INPUT_SIZES[i % INPUT_SIZES.len()], 2) {
            mixer.push(id, &unit);
        }
    }
    mixer.set_layout(layout);
    mixer.set_active(active.map(|a| ParticipantId(a as u64)));
    assert!(mixer.wait_for_pictures(WAIT), "every input decodes");
    mixer
}

/// Ticks `ticks` times and returns every encoded frame of `codec` since the mixer started.
fn run(mixer: &mut VideoMixer, ticks: u64, sink: &mut [Vec<EncodedVideo>]) {
    for _ in 0..ticks {
        mixer.tick().unwrap();
    }
    let last = mixer.next_tick() - 1;
    for (codec, frames) in mixer.config().codecs.clone().into_iter().zip(sink.iter_mut()) {
        while frames.last().is_none_or(|f| f.tick < last) {
            let frame = mixer.pull(codec, WAIT).unwrap().expect("an encoded frame per tick");
            frames.push(frame);
        }
    }
}

/// Checks that the latest composite, in every codec, shows each tile's colour at its centre.
fn assert_colours(
    mixer: &VideoMixer,
    sink: &[Vec<EncodedVideo>],
    colour_of: impl Fn(u64) -> [u8; 3],
) {
    for (codec, frames) in mixer.config().codecs.iter().zip(sink) {
        assert!(frames[0].keyframe, "{codec:?}: the first frame is a keyframe");
        let picture = decode_last(*codec, frames);
        assert_eq!((picture.width, picture.height), (1280, 720));
        for tile in mixer.tiles().iter().filter(|t| t.has_video) {
            let (x, y) = tile.rect.centre();
            let expected = colour_of(tile.participant.0);
            let actual = picture.at(x, y);
            assert!(
                close(actual, expected),
                "{codec:?} {:?}: participant {} at {:?} shows {actual:?}, not {expected:?}",
                mixer.layout(),
                tile.participant.0,
                tile.rect
            );
        }
    }
}

fn check_layout(layout: Layout) {
    for n in [1, 2, 3, 4, 5, 9] {
        let active = (layout != Layout::Grid).then_some(n - 1);
        let mut mixer = room(n, layout, active);
        let mut sink = vec![Vec::new(), Vec::new()];
        run(&mut mixer, 3, &mut sink);
        let shown: Vec<&ParticipantTile> = mixer.tiles().iter().filter(|t| t.has_video).collect();
        let expected_shown = if layout == Layout::OneBig { 1 } else { n };
        assert_eq!(shown.len(), expected_shown, "{layout:?} with {n}: {:?}", mixer.tiles());
        for (i, a) in shown.iter().enumerate() {
            assert!(a.rect.w > 0 && a.rect.h > 0, "{a:?}");
            for b in &shown[i + 1..] {
                assert!(!a.rect.overlaps(&b.rect), "{a:?} overlaps {b:?}");
            }
        }
        assert_colours(&mixer, &sink, |id| COLOURS[id as usize]);
    }
}

#[test]
fn grid_shows_each_colour_in_its_rectangle() {
    check_layout(Layout::Grid);
}

#[test]
fn one_big_with_small_shows_each_colour_in_its_rectangle() {
    check_layout(Layout::OneBigWithSmall);
}

#[test]
fn one_big_shows_the_active_participant() {
    check_layout(Layout::OneBig);
}

#[test]
fn participants_join_and_leave_while_the_composite_runs() {
    let mut mixer = room(4, Layout::Grid, None);
    let mut sink = vec![Vec::new(), Vec::new()];
    run(&mut mixer, 5, &mut sink);

    // One leaves, an audio-only one joins, then a new video participant.
    assert!(mixer.remove(ParticipantId(1)));
    mixer.add(ParticipantId(10), None).unwrap();
    let events = mixer.tick().unwrap();
    assert!(events.iter().any(|e| matches!(e, VideoEvent::TilesChanged(_))), "{events:?}");
    let joined = ParticipantId(11);
    mixer.add(joined, Some(VideoCodec::Vp8)).unwrap();
    for unit in solid(VideoCodec::Vp8, COLOURS[8], (640, 360), 2) {
        mixer.push(joined, &unit);
    }
    assert!(mixer.wait_for_picture(joined, WAIT));
    run(&mut mixer, 5, &mut sink);

    let audio_only = mixer.tiles().iter().find(|t| t.participant == ParticipantId(10)).unwrap();
    assert_eq!((audio_only.rect, audio_only.has_video), (Rect { x: 0, y: 0, w: 10, h: 10 }, false));
    assert!(mixer.tiles().iter().all(|t| t.participant != ParticipantId(1)));
    assert_eq!(mixer.tiles().iter().filter(|t| t.has_video).count(), 4);
    assert_colours(&mixer, &sink, |id| if id == 11 { COLOURS[8] } else { COLOURS[id as usize] });

    // The others' composite never stopped: one frame per tick, in order, in each codec.
    for frames in &sink {
        let ticks: Vec<u64> = frames.iter().map(|f| f.tick).collect();
        let expected: Vec<u64> = (0..mixer.next_tick()).collect();
        assert_eq!(ticks, expected);
    }
}

#[test]
fn a_keyframe_comes_on_request_and_garbage_input_is_survived() {
    let mut mixer = room(2, Layout::Grid, None);
    let mut sink = vec![Vec::new(), Vec::new()];
    run(&mut mixer, 4, &mut sink);
    assert!(sink.iter().all(|frames| frames[1..].iter().all(|f| !f.keyframe)));
    assert!(sink.iter().all(|frames| frames[1..].iter().all(|f| !f.keyframe)));

    // A hostile sender: random bytes as access units.
    for i in 0..20u8 {
        mixer.push(ParticipantId(0), &[0, 0, 0, 1, 0x65, i, 0xff, 0x13, 0x37]);
        mixer.push(ParticipantId(1), &[i, 0x9d, 0x01, 0x2a, 7]);
    }
    for codec in mixer.config().codecs.clone() {
        mixer.request_keyframe(codec);
    }
    run(&mut mixer, 3, &mut sink);
    for (codec, frames) in mixer.config().codecs.iter().zip(&sink) {
        assert!(frames[4..].iter().any(|f| f.keyframe), "{codec:?}: keyframe after the request");
    }
    assert_colours(&mixer, &sink, |id| COLOURS[id as usize]);
}

#[test]
fn audio_only_participants_get_tiles_without_a_composite() {
    let mut mixer = VideoMixer::new(VideoConfig::default()).unwrap();
    mixer.add(ParticipantId(1), None).unwrap();
    mixer.add(ParticipantId(2), None).unwrap();
    let events = mixer.refresh_tiles();
    let [VideoEvent::TilesChanged(tiles)] = events.as_slice() else {
        panic!("expected the tiles, got {events:?}");
    };
    assert_eq!(tiles.len(), 2);
    for tile in tiles {
        assert_eq!(
            (tile.rect.w, tile.rect.h, tile.has_video),
            (10, 10, false),
            "Jami's audio-only rectangle"
        );
    }
    assert!(mixer.refresh_tiles().is_empty(), "nothing changed");
    mixer.remove(ParticipantId(2));
    assert!(
        matches!(mixer.refresh_tiles().as_slice(), [VideoEvent::TilesChanged(tiles)] if tiles.len() == 1)
    );
}

/// A solid picture in tightly packed I420 (BT.601 studio range, what videoconvert assumes).
fn raw_solid(colour: [u8; 3], width: u32, height: u32) -> RawPicture {
    let [r, g, b] = colour.map(f32::from);
    let y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0;
    let u = 128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0;
    let v = 128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0;
    let (luma, chroma) = ((width * height) as usize, (width / 2 * height / 2) as usize);
    let mut i420 = vec![y.round() as u8; luma];
    i420.extend(std::iter::repeat_n(u.round() as u8, chroma));
    i420.extend(std::iter::repeat_n(v.round() as u8, chroma));
    RawPicture { width, height, i420 }
}

#[test]
fn ready_made_pictures_get_a_tile_beside_decoded_ones() {
    let mut mixer = VideoMixer::new(VideoConfig::default()).unwrap();
    let (sender, file) = (ParticipantId(0), ParticipantId(1));
    mixer.add(sender, Some(VideoCodec::Vp8)).unwrap();
    for unit in solid(VideoCodec::Vp8, COLOURS[0], (320, 240), 2) {
        mixer.push(sender, &unit);
    }
    mixer.add(file, None).unwrap();
    // A width that is not a multiple of 8: GStreamer pads its rows, the picture does not.
    mixer.show(file, raw_solid(COLOURS[1], 322, 180)).unwrap();
    assert!(mixer.wait_for_pictures(WAIT), "every input has a picture");
    let mut sink = vec![Vec::new(), Vec::new()];
    run(&mut mixer, 3, &mut sink);
    let shown = mixer.tiles().iter().filter(|t| t.has_video).count();
    assert_eq!(shown, 2, "{:?}", mixer.tiles());
    assert_colours(&mixer, &sink, |id| COLOURS[id as usize]);

    let wrong = RawPicture { width: 320, height: 240, i420: vec![0; 100] };
    assert!(mixer.show(file, wrong).is_err(), "a picture of the wrong size is refused");
    let odd = RawPicture { width: 3, height: 2, i420: vec![0; 9] };
    assert!(mixer.show(file, odd).is_err(), "odd sizes are refused");
    mixer.set_input(file, None).unwrap();
    run(&mut mixer, 2, &mut sink);
    assert_eq!(mixer.tiles().iter().filter(|t| t.has_video).count(), 1, "its video stopped");
}
