//! Opus encoding and decoding through GStreamer (`opusenc`, `opusdec` from
//! gst-plugins-base): one small pipeline per encoder or decoder, fed and drained through
//! appsrc and appsink. Calls block for at most [`WAIT`]; run them off the async executor.

use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::audio::{FRAME_SAMPLES, SAMPLE_RATE};

/// Longest wait for a pipeline to produce or finish.
pub const WAIT: Duration = Duration::from_secs(5);

/// A media pipeline failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// GStreamer could not start, or a plugin is missing.
    #[error("GStreamer setup failed: {0}")]
    Setup(String),
    /// An element reported an error on the bus.
    #[error("{element}: {message}")]
    Element {
        /// The element's path in the pipeline.
        element: String,
        /// What it reported.
        message: String,
    },
    /// Nothing came out within [`WAIT`].
    #[error("the {0} pipeline produced nothing in time")]
    Timeout(&'static str),
}

/// Initialises GStreamer once.
pub fn init() -> Result<(), MediaError> {
    gst::init().map_err(|e| MediaError::Setup(e.to_string()))
}

struct Pipeline {
    pipeline: gst::Pipeline,
    source: gst_app::AppSrc,
    sink: gst_app::AppSink,
    name: &'static str,
}

impl Pipeline {
    fn launch(name: &'static str, description: &str) -> Result<Self, MediaError> {
        init()?;
        let pipeline = gst::parse::launch(description)
            .map_err(|e| MediaError::Setup(format!("{name}: {e}")))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| MediaError::Setup(format!("{name}: not a pipeline")))?;
        let element = |id: &str| {
            pipeline.by_name(id).ok_or_else(|| MediaError::Setup(format!("{name}: no {id}")))
        };
        let source = element("source")?
            .downcast::<gst_app::AppSrc>()
            .map_err(|_| MediaError::Setup("appsrc".into()))?;
        let sink = element("sink")?
            .downcast::<gst_app::AppSink>()
            .map_err(|_| MediaError::Setup("appsink".into()))?;
        pipeline.set_state(gst::State::Playing).map_err(|_| bus_error(&pipeline, name))?;
        Ok(Self { pipeline, source, sink, name })
    }

    fn push(
        &self,
        data: Vec<u8>,
        pts: gst::ClockTime,
        duration: gst::ClockTime,
    ) -> Result<(), MediaError> {
        let mut buffer = gst::Buffer::from_mut_slice(data);
        if let Some(buffer) = buffer.get_mut() {
            buffer.set_pts(pts);
            buffer.set_duration(duration);
        }
        self.source
            .push_buffer(buffer)
            .map(|_| ())
            .map_err(|_| bus_error(&self.pipeline, self.name))
    }

    /// Ends the stream and collects everything still coming out.
    fn finish(&self) -> Result<Vec<Vec<u8>>, MediaError> {
        self.source.end_of_stream().map_err(|_| bus_error(&self.pipeline, self.name))?;
        let mut out = Vec::new();
        loop {
            match self.sink.try_pull_sample(gst::ClockTime::from_nseconds(WAIT.as_nanos() as u64)) {
                Some(sample) => {
                    if let Some(buffer) = sample.buffer()
                        && let Ok(map) = buffer.map_readable()
                    {
                        out.push(map.as_slice().to_vec());
                    }
                }
                None if self.sink.is_eos() => {
                    // An element that failed also ends the stream: report its error.
                    return match bus_error(&self.pipeline, self.name) {
                        MediaError::Setup(_) => Ok(out),
                        error => Err(error),
                    };
                }
                None => {
                    return Err(match bus_error(&self.pipeline, self.name) {
                        MediaError::Setup(_) => MediaError::Timeout(self.name),
                        error => error,
                    });
                }
            }
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// The first error on the pipeline's bus, with the element's path.
fn bus_error(pipeline: &gst::Pipeline, name: &'static str) -> MediaError {
    let Some(bus) = pipeline.bus() else { return MediaError::Setup(format!("{name}: no bus")) };
    while let Some(message) = bus.pop() {
        if let gst::MessageView::Error(error) = message.view() {
            let element =
                error.src().map(|s| s.path_string().to_string()).unwrap_or_else(|| name.to_owned());
            let message = match error.debug() {
                Some(debug) => format!("{} ({debug})", error.error()),
                None => error.error().to_string(),
            };
            return MediaError::Element { element, message };
        }
    }
    MediaError::Setup(format!("{name}: failed without a bus error"))
}

const FRAME: gst::ClockTime = gst::ClockTime::from_mseconds(20);

/// Encodes 20 ms frames of 48 kHz mono `f32` into Opus packets.
pub struct OpusEncoder {
    pipeline: Pipeline,
    frames: u64,
}

impl OpusEncoder {
    /// An encoder at `bitrate` bits per second.
    pub fn new(bitrate: u32) -> Result<Self, MediaError> {
        let description = format!(
            "appsrc name=source format=time caps=\"audio/x-raw,format=F32LE,rate={SAMPLE_RATE},channels=1,layout=interleaved\" \
             ! audioconvert ! opusenc bitrate={bitrate} frame-size=20 ! appsink name=sink sync=false"
        );
        Ok(Self { pipeline: Pipeline::launch("Opus encoder", &description)?, frames: 0 })
    }

    /// Queues one frame of [`FRAME_SAMPLES`] samples.
    pub fn push(&mut self, frame: &[f32]) -> Result<(), MediaError> {
        debug_assert_eq!(frame.len(), FRAME_SAMPLES);
        let bytes: Vec<u8> = frame.iter().flat_map(|s| s.to_le_bytes()).collect();
        let pts = FRAME * self.frames;
        self.frames += 1;
        self.pipeline.push(bytes, pts, FRAME)
    }

    /// Ends the stream; returns every packet.
    pub fn finish(self) -> Result<Vec<Vec<u8>>, MediaError> {
        self.pipeline.finish()
    }
}

/// Decodes Opus packets into 48 kHz mono `f32` samples.
pub struct OpusDecoder {
    pipeline: Pipeline,
    packets: u64,
}

impl OpusDecoder {
    /// A decoder with packet-loss concealment on.
    pub fn new() -> Result<Self, MediaError> {
        let description = format!(
            "appsrc name=source format=time caps=\"audio/x-opus,rate={SAMPLE_RATE},channels=1,channel-mapping-family=0\" \
             ! opusdec plc=true ! audioconvert ! audioresample \
             ! audio/x-raw,format=F32LE,rate={SAMPLE_RATE},channels=1 ! appsink name=sink sync=false"
        );
        Ok(Self { pipeline: Pipeline::launch("Opus decoder", &description)?, packets: 0 })
    }

    /// Queues one 20 ms packet.
    pub fn push(&mut self, packet: &[u8]) -> Result<(), MediaError> {
        let pts = FRAME * self.packets;
        self.packets += 1;
        self.pipeline.push(packet.to_vec(), pts, FRAME)
    }

    /// Ends the stream; returns every decoded sample.
    pub fn finish(self) -> Result<Vec<f32>, MediaError> {
        let chunks = self.pipeline.finish()?;
        Ok(chunks
            .iter()
            .flat_map(|chunk| {
                chunk.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            })
            .collect())
    }
}
