//! Encoded test video: `videotestsrc` pictures encoded by a real H.264 or VP8 encoder.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use rdv_mixer::video::VideoCodec;

/// The encoder of `codec` as a launch fragment, with caps that make H.264 Annex B access units.
pub fn encoder(codec: VideoCodec) -> &'static str {
    match codec {
        VideoCodec::H264 => {
            "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 \
             ! video/x-h264,stream-format=byte-stream,alignment=au"
        }
        VideoCodec::Vp8 => "vp8enc deadline=1 lag-in-frames=0",
    }
}

/// `frames` access units of `videotestsrc` with `properties` (e.g. `pattern=ball`), at
/// `width` × `height` and 30 fps, encoded as `codec`.
pub fn encoded(
    codec: VideoCodec,
    properties: &str,
    (width, height): (i32, i32),
    frames: usize,
) -> Vec<Vec<u8>> {
    gst::init().unwrap();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc {properties} num-buffers={frames} \
         ! video/x-raw,format=I420,width={width},height={height},framerate=30/1 ! {} \
         ! appsink name=sink sync=false",
        encoder(codec)
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = pipeline.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut units = Vec::new();
    while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(10)) {
        units.push(sample.buffer().unwrap().map_readable().unwrap().to_vec());
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(units.len(), frames, "{properties}");
    units
}
