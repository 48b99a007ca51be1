//! Opus encoding and decoding through GStreamer (`opusenc`, `opusdec` from
//! gst-plugins-base): one small pipeline per encoder or decoder, run in the caller's thread
//! (an Opus frame is far cheaper than a thread hand-off) and drained through an appsink. Calls block for at most the timeout given or [`WAIT`]; run them off
//! the async executor.

use std::time::Duration;

use gstreamer as gst;

use crate::audio::{FRAME_SAMPLES, SAMPLE_RATE};
pub use crate::pipeline::{MediaError, WAIT};
use crate::pipeline::{Pipeline, sample_bytes};

/// One 20 ms frame.
pub const FRAME: gst::ClockTime = gst::ClockTime::from_mseconds(20);

/// How an encoder encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusSettings {
    /// Bits per second.
    pub bitrate: u32,
    /// 0 (fastest) to 10 (best).
    pub complexity: u8,
    /// In-band forward error correction, tuned for this expected loss (percent); 0 is off.
    pub fec_loss_percent: u8,
}

impl Default for OpusSettings {
    fn default() -> Self {
        Self { bitrate: 64_000, complexity: 10, fec_loss_percent: 0 }
    }
}

/// Encodes 20 ms frames of 48 kHz mono `f32` into Opus packets.
pub struct OpusEncoder {
    pipeline: Pipeline,
    frames: u64,
}

impl OpusEncoder {
    /// An encoder at `bitrate` bits per second, otherwise with the default settings.
    pub fn new(bitrate: u32) -> Result<Self, MediaError> {
        Self::with_settings(OpusSettings { bitrate, ..OpusSettings::default() })
    }

    /// An encoder with the given settings.
    pub fn with_settings(settings: OpusSettings) -> Result<Self, MediaError> {
        let OpusSettings { bitrate, complexity, fec_loss_percent } = settings;
        let fec = fec_loss_percent > 0;
        let description = format!(
            "opusenc name=head bitrate={bitrate} frame-size=20 complexity={complexity} \
               inband-fec={fec} packet-loss-percentage={fec_loss_percent} \
             ! appsink name=sink sync=false async=false wait-on-eos=false"
        );
        let caps =
            format!("audio/x-raw,format=S16LE,rate={SAMPLE_RATE},channels=1,layout=interleaved");
        Ok(Self {
            pipeline: Pipeline::launch_inline("Opus encoder", &caps, &description)?,
            frames: 0,
        })
    }

    /// Queues one frame of [`FRAME_SAMPLES`] samples.
    pub fn push(&mut self, frame: &[f32]) -> Result<(), MediaError> {
        debug_assert_eq!(frame.len(), FRAME_SAMPLES);
        let bytes: Vec<u8> = frame
            .iter()
            .flat_map(|s| ((s.clamp(-1.0, 1.0) * f32::from(i16::MAX)).round() as i16).to_le_bytes())
            .collect();
        let pts = FRAME * self.frames;
        self.frames += 1;
        self.pipeline.push(bytes, Some(pts), Some(FRAME))
    }

    /// The next packet, waiting at most `timeout`.
    pub fn pull(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, MediaError> {
        Ok(self.pipeline.pull(timeout)?.map(|sample| sample_bytes(&sample)))
    }

    /// Encodes one frame and returns its packet (opusenc has no look-ahead at 20 ms).
    pub fn encode(&mut self, frame: &[f32]) -> Result<Vec<u8>, MediaError> {
        self.push(frame)?;
        self.pull(WAIT)?.ok_or(MediaError::Timeout("Opus encoder"))
    }

    /// Ends the stream; returns every packet not pulled yet.
    pub fn finish(self) -> Result<Vec<Vec<u8>>, MediaError> {
        self.pipeline.finish()
    }
}

/// Decoded audio: 48 kHz mono samples starting at frame `index`.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// Frame index of the first sample (timestamp / 20 ms).
    pub index: u64,
    /// The samples.
    pub samples: Vec<f32>,
}

/// Decodes Opus packets into 48 kHz mono `f32` samples, with packet-loss concealment and,
/// when `fec` is on, recovery of a lost packet from the next one's in-band FEC data (which
/// delays the output by one packet).
pub struct OpusDecoder {
    pipeline: Pipeline,
    next_index: u64,
}

impl OpusDecoder {
    /// A decoder with packet-loss concealment on and in-band FEC off.
    pub fn new() -> Result<Self, MediaError> {
        Self::with_fec(false)
    }

    /// A decoder with packet-loss concealment on and in-band FEC as given.
    pub fn with_fec(fec: bool) -> Result<Self, MediaError> {
        let description = format!(
            "opusdec name=head plc=true use-inband-fec={fec} \
             ! audio/x-raw,format=S16LE,rate={SAMPLE_RATE},channels=1 \
             ! appsink name=sink sync=false async=false wait-on-eos=false"
        );
        let caps = format!("audio/x-opus,rate={SAMPLE_RATE},channels=1,channel-mapping-family=0");
        Ok(Self {
            pipeline: Pipeline::launch_inline("Opus decoder", &caps, &description)?,
            next_index: 0,
        })
    }

    /// Queues the packet of frame `index`. Indices grow; frames skipped without
    /// [`conceal`](Self::conceal) are silence (DTX, a pause), not losses.
    pub fn push_at(&mut self, index: u64, packet: &[u8]) -> Result<(), MediaError> {
        let discont = index != self.next_index || index == 0;
        self.next_index = index + 1;
        let mut buffer = gst::Buffer::from_mut_slice(packet.to_vec());
        if let Some(buffer) = buffer.get_mut() {
            buffer.set_pts(FRAME * index);
            buffer.set_duration(FRAME);
            if discont {
                buffer.set_flags(gst::BufferFlags::DISCONT);
            }
        }
        self.pipeline.push_buffer(buffer)
    }

    /// Queues the next 20 ms packet.
    pub fn push(&mut self, packet: &[u8]) -> Result<(), MediaError> {
        self.push_at(self.next_index, packet)
    }

    /// Marks `frames` frames from `index` as lost: the decoder conceals them (or recovers
    /// them from the next packet's FEC data).
    pub fn conceal(&mut self, index: u64, frames: u64) -> Result<(), MediaError> {
        let gap = gst::event::Gap::builder(FRAME * index).duration(FRAME * frames).build();
        self.pipeline.push_event(gap)?;
        self.next_index = self.next_index.max(index + frames);
        Ok(())
    }

    /// Decoded audio, waiting at most `timeout`.
    pub fn pull(&mut self, timeout: Duration) -> Result<Option<Decoded>, MediaError> {
        Ok(self.pipeline.pull(timeout)?.map(|sample| {
            let index = sample
                .buffer()
                .and_then(gst::BufferRef::pts)
                .map_or(0, |pts| (pts.nseconds() + FRAME.nseconds() / 2) / FRAME.nseconds());
            Decoded { index, samples: f32_samples(&sample_bytes(&sample)) }
        }))
    }

    /// Ends the stream; returns every decoded sample not pulled yet.
    pub fn finish(self) -> Result<Vec<f32>, MediaError> {
        let chunks = self.pipeline.finish()?;
        Ok(chunks.iter().flat_map(|chunk| f32_samples(chunk)).collect())
    }
}

/// Signed 16-bit little-endian samples (what opusdec produces) as `f32` in [−1, 1).
fn f32_samples(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(2).map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0).collect()
}
