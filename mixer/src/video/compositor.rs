//! The composite pipeline of a room: one `appsrc` per participant with a picture, feeding
//! GStreamer's `compositor` at the rectangles of the layout, and the composite encoded once
//! per codec (`x264enc`, `vp8enc`) into an `appsink` each.
//!
//! The pipeline is not live: every tick pushes exactly one buffer into every input (a
//! participant's latest picture, repeated while it sends nothing new, and a tiny black
//! "clock" input that exists even in an empty room), so the compositor emits exactly one
//! picture per tick and no stalled sender can hold it back.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::{EncodedVideo, VideoCodec, VideoConfig};
use crate::audio::ParticipantId;
use crate::layout::Rect;
use crate::pipeline::{MediaError, bus_error, by_name, clock_time, sample_bytes};

/// Side of the black clock input, in pixels.
const CLOCK_SIDE: i32 = 16;

/// x264enc shifts every timestamp by 1000 hours (its minimum PTS, so that DTS is never
/// negative); the tick of an H.264 frame is computed without it.
const X264_PTS_OFFSET: gst::ClockTime = gst::ClockTime::from_seconds(3_600_000);

/// Encoded frames kept per codec for a consumer that is late; older ones are dropped.
const OUTPUT_QUEUE: u32 = 60;

/// One participant's input to the compositor.
struct Input {
    source: gst_app::AppSrc,
    pad: gst::Pad,
    caps: Option<gst::Caps>,
}

/// The composite pipeline.
pub(crate) struct Compositor {
    pipeline: gst::Pipeline,
    compositor: gst::Element,
    clock: gst_app::AppSrc,
    clock_buffer: gst::Buffer,
    outputs: Vec<(VideoCodec, gst_app::AppSink)>,
    inputs: Vec<(ParticipantId, Input)>,
    composed: Arc<(Mutex<Option<gst::ClockTime>>, Condvar)>,
    frame_duration: gst::ClockTime,
    framerate: u32,
}

impl Compositor {
    pub(crate) fn new(config: &VideoConfig) -> Result<Self, MediaError> {
        let VideoConfig { size, framerate, bitrate_kbps, keyframe_interval, ref codecs } = *config;
        let (width, height) = (size.width, size.height);
        let mut description = format!(
            "appsrc name=clock format=time \
               caps=\"video/x-raw,format=I420,width={CLOCK_SIDE},height={CLOCK_SIDE},framerate={framerate}/1\" \
             ! compositor name=compositor background=black \
             ! video/x-raw,format=I420,width={width},height={height},framerate={framerate}/1 \
             ! tee name=tee allow-not-linked=true"
        );
        for codec in codecs {
            let encoder = match codec {
                VideoCodec::H264 => format!(
                    "x264enc tune=zerolatency speed-preset=ultrafast bitrate={bitrate_kbps} \
                       key-int-max={keyframe_interval} threads=2 \
                     ! video/x-h264,profile=constrained-baseline,stream-format=byte-stream,alignment=au"
                ),
                VideoCodec::Vp8 => format!(
                    "vp8enc deadline=1 cpu-used=16 end-usage=cbr target-bitrate={} \
                       lag-in-frames=0 keyframe-max-dist={keyframe_interval} threads=2",
                    u64::from(bitrate_kbps) * 1000
                ),
            };
            description.push_str(&format!(
                " tee. ! queue ! {encoder} ! appsink name={} sync=false max-buffers={OUTPUT_QUEUE} drop=true",
                codec.name()
            ));
        }
        crate::pipeline::init()?;
        let pipeline = gst::parse::launch(&description)
            .map_err(|e| MediaError::Setup(format!("compositor: {e}")))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| MediaError::Setup("compositor: not a pipeline".into()))?;
        let compositor = by_name::<gst::Element>(&pipeline, "compositor", "compositor")?;
        let clock = by_name::<gst_app::AppSrc>(&pipeline, "compositor", "clock")?;
        let outputs = codecs
            .iter()
            .map(|codec| Ok((*codec, by_name(&pipeline, "compositor", codec.name())?)))
            .collect::<Result<Vec<_>, MediaError>>()?;

        let composed = Arc::new((Mutex::new(None), Condvar::new()));
        let src = compositor
            .static_pad("src")
            .ok_or_else(|| MediaError::Setup("compositor: no src pad".into()))?;
        let seen = Arc::clone(&composed);
        src.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(gst::PadProbeData::Buffer(buffer)) = &info.data
                && let Ok(mut last) = seen.0.lock()
            {
                *last = buffer.pts();
                seen.1.notify_all();
            }
            gst::PadProbeReturn::Ok
        });

        let clock_buffer = black_i420(CLOCK_SIDE);
        pipeline.set_state(gst::State::Playing).map_err(|_| bus_error(&pipeline, "compositor"))?;
        let frame_duration = tick_time(1, framerate);
        Ok(Self {
            pipeline,
            compositor,
            clock,
            clock_buffer,
            outputs,
            inputs: Vec::new(),
            composed,
            frame_duration,
            framerate,
        })
    }

    /// Whether `id` has an input.
    pub(crate) fn has_input(&self, id: ParticipantId) -> bool {
        self.inputs.iter().any(|(i, _)| *i == id)
    }

    /// The participants with an input.
    pub(crate) fn input_ids(&self) -> Vec<ParticipantId> {
        self.inputs.iter().map(|(id, _)| *id).collect()
    }

    /// Adds an input for `id` (drawn nowhere until placed).
    pub(crate) fn add_input(&mut self, id: ParticipantId) -> Result<(), MediaError> {
        if self.has_input(id) {
            return Ok(());
        }
        let source = gst_app::AppSrc::builder()
            .name(format!("participant-{}", id.0))
            .format(gst::Format::Time)
            .build();
        self.pipeline
            .add(&source)
            .map_err(|e| MediaError::Setup(format!("compositor input: {e}")))?;
        let pad = self
            .compositor
            .request_pad_simple("sink_%u")
            .ok_or_else(|| MediaError::Setup("compositor: no sink pad".into()))?;
        pad.set_property("alpha", 0.0f64);
        let linked = source
            .static_pad("src")
            .ok_or_else(|| MediaError::Setup("appsrc: no src pad".into()))
            .and_then(|src| {
                src.link(&pad).map_err(|e| MediaError::Setup(format!("compositor input: {e}")))
            });
        if let Err(error) = linked.and_then(|_| {
            source.sync_state_with_parent().map_err(|e| MediaError::Setup(e.to_string()))
        }) {
            self.compositor.release_request_pad(&pad);
            let _ = self.pipeline.remove(&source);
            return Err(error);
        }
        self.inputs.push((id, Input { source, pad, caps: None }));
        Ok(())
    }

    /// Removes `id`'s input.
    pub(crate) fn remove_input(&mut self, id: ParticipantId) {
        let Some(at) = self.inputs.iter().position(|(i, _)| *i == id) else { return };
        let (_, input) = self.inputs.remove(at);
        let _ = input.source.set_state(gst::State::Null);
        if let Some(src) = input.source.static_pad("src") {
            let _ = src.unlink(&input.pad);
        }
        self.compositor.release_request_pad(&input.pad);
        let _ = self.pipeline.remove(&input.source);
    }

    /// Draws `id`'s input at `rect` (hidden when `None`).
    pub(crate) fn place(&self, id: ParticipantId, rect: Option<Rect>) {
        let Some((_, input)) = self.inputs.iter().find(|(i, _)| *i == id) else { return };
        match rect {
            Some(rect) if rect.w > 0 && rect.h > 0 => {
                input.pad.set_property("xpos", rect.x);
                input.pad.set_property("ypos", rect.y);
                input.pad.set_property("width", rect.w);
                input.pad.set_property("height", rect.h);
                input.pad.set_property("alpha", 1.0f64);
            }
            _ => input.pad.set_property("alpha", 0.0f64),
        }
    }

    /// Waits (at most `timeout`) until the picture of tick `index` has been composed, so that
    /// a change of geometry applies exactly from the next tick.
    pub(crate) fn wait_composed(&self, index: u64, timeout: Duration) {
        let target = tick_time(index, self.framerate);
        let deadline = Instant::now() + timeout;
        let (lock, condvar) = &*self.composed;
        let Ok(mut last) = lock.lock() else { return };
        while last.is_none_or(|pts| pts < target) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match condvar.wait_timeout(last, left) {
                Ok((guard, _)) => last = guard,
                Err(_) => return,
            }
        }
    }

    /// Pushes tick `index`: each participant's picture (from `pictures`) and the clock.
    pub(crate) fn push_tick(
        &mut self,
        index: u64,
        pictures: &[(ParticipantId, gst::Sample)],
    ) -> Result<(), MediaError> {
        let pts = tick_time(index, self.framerate);
        for (id, input) in &mut self.inputs {
            let Some((_, sample)) = pictures.iter().find(|(i, _)| i == id) else { continue };
            let Some(buffer) = sample.buffer() else { continue };
            if let Some(caps) = sample.caps_owned()
                && input.caps.as_ref() != Some(&caps)
            {
                input.source.set_caps(Some(&caps));
                input.caps = Some(caps);
            }
            let mut buffer = buffer.copy();
            let stamped = buffer.make_mut();
            stamped.set_pts(pts);
            stamped.set_duration(self.frame_duration);
            if input.source.push_buffer(buffer).is_err() {
                return Err(bus_error(&self.pipeline, "compositor"));
            }
        }
        let mut clock = self.clock_buffer.copy();
        let stamped = clock.make_mut();
        stamped.set_pts(pts);
        stamped.set_duration(self.frame_duration);
        self.clock.push_buffer(clock).map_err(|_| self.error())?;
        Ok(())
    }

    /// The next encoded frame of `codec`, waiting at most `timeout`.
    pub(crate) fn pull(
        &self,
        codec: VideoCodec,
        timeout: Duration,
    ) -> Result<Option<EncodedVideo>, MediaError> {
        let Some((_, sink)) = self.outputs.iter().find(|(c, _)| *c == codec) else {
            return Ok(None);
        };
        let Some(sample) = sink.try_pull_sample(clock_time(timeout)) else {
            return match self.error() {
                MediaError::Setup(_) => Ok(None),
                error => Err(error),
            };
        };
        let Some(buffer) = sample.buffer() else { return Ok(None) };
        let mut pts = buffer.pts().unwrap_or(gst::ClockTime::ZERO);
        if codec == VideoCodec::H264 && pts >= X264_PTS_OFFSET {
            pts -= X264_PTS_OFFSET;
        }
        Ok(Some(EncodedVideo {
            codec,
            tick: (pts.nseconds() * u64::from(self.framerate) + 500_000_000) / 1_000_000_000,
            keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
            data: sample_bytes(&sample),
        }))
    }

    /// Asks `codec`'s encoder for a keyframe as soon as possible.
    pub(crate) fn request_keyframe(&self, codec: VideoCodec) {
        let Some((_, sink)) = self.outputs.iter().find(|(c, _)| *c == codec) else { return };
        let event = gstreamer_video::UpstreamForceKeyUnitEvent::builder().all_headers(true).build();
        if let Some(pad) = sink.static_pad("sink") {
            pad.push_event(event);
        }
    }

    fn error(&self) -> MediaError {
        bus_error(&self.pipeline, "compositor")
    }
}

impl Drop for Compositor {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// The timestamp of tick `index` at `framerate` frames per second.
pub(crate) fn tick_time(index: u64, framerate: u32) -> gst::ClockTime {
    let nanos = u128::from(index) * 1_000_000_000 / u128::from(framerate.max(1));
    gst::ClockTime::from_nseconds(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// A black I420 picture of `side` × `side` pixels.
fn black_i420(side: i32) -> gst::Buffer {
    let side = usize::try_from(side).unwrap_or(0);
    let luma = side * side;
    let mut bytes = vec![16u8; luma];
    bytes.resize(luma + luma / 2, 128);
    gst::Buffer::from_mut_slice(bytes)
}
