//! Small GStreamer pipelines fed through an `appsrc` named `source` and drained through an
//! `appsink` named `sink`, with their errors as [`MediaError`]. Every call blocks for at most
//! the timeout it is given (or [`WAIT`]); run them off the async executor.

use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// Longest wait for a pipeline to produce or finish.
pub const WAIT: Duration = Duration::from_secs(5);

/// Media processing failed: a pipeline or a codec.
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
    /// Nothing came out in time.
    #[error("the {0} pipeline produced nothing in time")]
    Timeout(&'static str),
    /// A codec refused its input or could not be set up.
    #[error("{what}: {message}")]
    Codec {
        /// Which codec.
        what: &'static str,
        /// What it reported.
        message: String,
    },
}

/// Initialises GStreamer once.
pub fn init() -> Result<(), MediaError> {
    gst::init().map_err(|e| MediaError::Setup(e.to_string()))
}

/// A pipeline from a launch description, playing until dropped.
pub(crate) struct Pipeline {
    pub(crate) pipeline: gst::Pipeline,
    source: gst_app::AppSrc,
    pub(crate) sink: gst_app::AppSink,
    name: &'static str,
}

impl Pipeline {
    /// Parses and starts `description`, which names its ends `source` and `sink`.
    pub(crate) fn launch(name: &'static str, description: &str) -> Result<Self, MediaError> {
        init()?;
        let pipeline = gst::parse::launch(description)
            .map_err(|e| MediaError::Setup(format!("{name}: {e}")))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| MediaError::Setup(format!("{name}: not a pipeline")))?;
        let source = by_name::<gst_app::AppSrc>(&pipeline, name, "source")?;
        let sink = by_name::<gst_app::AppSink>(&pipeline, name, "sink")?;
        pipeline.set_state(gst::State::Playing).map_err(|_| bus_error(&pipeline, name))?;
        Ok(Self { pipeline, source, sink, name })
    }

    /// Pushes `data` with the given timestamps (none when `None`).
    pub(crate) fn push(
        &self,
        data: Vec<u8>,
        pts: Option<gst::ClockTime>,
        duration: Option<gst::ClockTime>,
    ) -> Result<(), MediaError> {
        let mut buffer = gst::Buffer::from_mut_slice(data);
        if let Some(buffer) = buffer.get_mut() {
            buffer.set_pts(pts);
            buffer.set_duration(duration);
        }
        self.push_buffer(buffer)
    }

    /// Pushes a ready buffer.
    pub(crate) fn push_buffer(&self, buffer: gst::Buffer) -> Result<(), MediaError> {
        self.source.push_buffer(buffer).map(|_| ()).map_err(|_| self.error())
    }

    /// The next sample, waiting at most `timeout`; `Ok(None)` when none came in time.
    pub(crate) fn pull(&self, timeout: Duration) -> Result<Option<gst::Sample>, MediaError> {
        match self.sink.try_pull_sample(clock_time(timeout)) {
            Some(sample) => Ok(Some(sample)),
            None => match bus_error(&self.pipeline, self.name) {
                MediaError::Setup(_) => Ok(None),
                error => Err(error),
            },
        }
    }

    /// The first error the pipeline reported, or a setup error naming it.
    pub(crate) fn error(&self) -> MediaError {
        bus_error(&self.pipeline, self.name)
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// The element `id` of `pipeline`, as type `T`.
pub(crate) fn by_name<T: IsA<gst::Element>>(
    pipeline: &gst::Pipeline,
    name: &str,
    id: &str,
) -> Result<T, MediaError> {
    pipeline
        .by_name(id)
        .ok_or_else(|| MediaError::Setup(format!("{name}: no element {id}")))?
        .downcast::<T>()
        .map_err(|_| MediaError::Setup(format!("{name}: {id} has the wrong type")))
}

/// A [`Duration`] as a GStreamer clock time.
pub(crate) fn clock_time(duration: Duration) -> gst::ClockTime {
    gst::ClockTime::from_nseconds(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX))
}

/// The first error on the pipeline's bus, with the element's path.
pub(crate) fn bus_error(pipeline: &gst::Pipeline, name: &str) -> MediaError {
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

/// The bytes of a sample's buffer.
pub(crate) fn sample_bytes(sample: &gst::Sample) -> Vec<u8> {
    sample
        .buffer()
        .and_then(|buffer| buffer.map_readable().ok().map(|map| map.as_slice().to_vec()))
        .unwrap_or_default()
}
