//! One participant's video decoder: access units in, the latest decoded picture out.

use std::time::Duration;

use gstreamer as gst;

use super::VideoCodec;
use crate::layout::Size;
use crate::pipeline::{MediaError, Pipeline};

/// A decoded picture and its size.
#[derive(Debug, Clone)]
pub(crate) struct Picture {
    pub(crate) sample: gst::Sample,
    pub(crate) size: Size,
}

/// Decodes one participant's H.264 or VP8 stream; a corrupt access unit is skipped, never an
/// error (`max-errors=-1`), so that a hostile or broken sender only loses its own picture.
pub(crate) struct VideoDecoder {
    pipeline: Pipeline,
}

impl VideoDecoder {
    pub(crate) fn new(codec: VideoCodec) -> Result<Self, MediaError> {
        let (caps, decoder) = match codec {
            VideoCodec::H264 => {
                ("video/x-h264,stream-format=byte-stream,alignment=au", "avdec_h264 max-threads=2")
            }
            VideoCodec::Vp8 => ("video/x-vp8", "vp8dec threads=2"),
        };
        let description = format!(
            "appsrc name=source format=time caps=\"{caps}\" ! {decoder} max-errors=-1 \
             ! appsink name=sink sync=false max-buffers=2 drop=true"
        );
        Ok(Self { pipeline: Pipeline::launch("video decoder", &description)? })
    }

    /// Queues one access unit (an H.264 access unit in Annex B form, or one VP8 frame).
    pub(crate) fn push(&self, access_unit: &[u8]) -> Result<(), MediaError> {
        self.pipeline.push(access_unit.to_vec(), None, None)
    }

    /// The latest picture decoded since the last call, waiting at most `timeout` for one.
    pub(crate) fn latest(&self, timeout: Duration) -> Result<Option<Picture>, MediaError> {
        let mut latest = None;
        let mut wait = timeout;
        while let Some(sample) = self.pipeline.pull(wait)? {
            wait = Duration::ZERO;
            if let Some(size) = picture_size(&sample) {
                latest = Some(Picture { sample, size });
            }
        }
        Ok(latest)
    }
}

/// The width and height a sample's caps announce.
fn picture_size(sample: &gst::Sample) -> Option<Size> {
    let structure = sample.caps()?.structure(0)?;
    let width = structure.get::<i32>("width").ok()?;
    let height = structure.get::<i32>("height").ok()?;
    (width > 0 && height > 0).then_some(Size { width, height })
}
