//! Opus encoding and decoding with libopus in the caller's thread (the `opus` crate, which
//! bundles libopus 1.6). Every call is synchronous and one packet is exactly one decoded
//! frame, so a frame's place in the mix is known from its RTP timestamp alone: nothing is
//! held back or re-timed behind the caller's back.

use crate::audio::{FRAME_SAMPLES, SAMPLE_RATE};
pub use crate::pipeline::MediaError;

/// The longest Opus packet, 120 ms, in samples.
const MAX_PACKET_SAMPLES: usize = FRAME_SAMPLES * 6;

/// The largest packet an encoder may produce (RFC 6716's limit for one frame).
const MAX_PACKET_BYTES: usize = 1275;

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

fn codec_error(what: &'static str) -> impl Fn(opus::Error) -> MediaError {
    move |error| MediaError::Codec { what, message: error.to_string() }
}

/// Encodes 20 ms frames of 48 kHz mono `f32` into Opus packets.
pub struct OpusEncoder {
    encoder: opus::Encoder,
}

impl OpusEncoder {
    /// An encoder at `bitrate` bits per second, otherwise with the default settings.
    pub fn new(bitrate: u32) -> Result<Self, MediaError> {
        Self::with_settings(OpusSettings { bitrate, ..OpusSettings::default() })
    }

    /// An encoder with the given settings.
    pub fn with_settings(settings: OpusSettings) -> Result<Self, MediaError> {
        let error = codec_error("Opus encoder");
        let mut encoder =
            opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Audio)
                .map_err(&error)?;
        let bitrate = i32::try_from(settings.bitrate).unwrap_or(i32::MAX);
        encoder.set_bitrate(opus::Bitrate::Bits(bitrate)).map_err(&error)?;
        encoder.set_complexity(i32::from(settings.complexity.min(10))).map_err(&error)?;
        encoder.set_inband_fec(settings.fec_loss_percent > 0).map_err(&error)?;
        encoder
            .set_packet_loss_perc(i32::from(settings.fec_loss_percent.min(100)))
            .map_err(&error)?;
        Ok(Self { encoder })
    }

    /// Encodes one frame of [`FRAME_SAMPLES`] samples into its packet.
    pub fn encode(&mut self, frame: &[f32]) -> Result<Vec<u8>, MediaError> {
        if frame.len() != FRAME_SAMPLES {
            return Err(MediaError::Codec {
                what: "Opus encoder",
                message: format!("a frame has {FRAME_SAMPLES} samples, not {}", frame.len()),
            });
        }
        self.encoder.encode_vec_float(frame, MAX_PACKET_BYTES).map_err(codec_error("Opus encoder"))
    }
}

/// Decodes Opus packets (mono or stereo, any duration) into 48 kHz mono `f32` samples, with
/// packet-loss concealment and recovery of a lost frame from the next packet's in-band FEC.
pub struct OpusDecoder {
    decoder: opus::Decoder,
    buffer: Vec<f32>,
}

impl OpusDecoder {
    /// A decoder.
    pub fn new() -> Result<Self, MediaError> {
        Ok(Self {
            decoder: opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono)
                .map_err(codec_error("Opus decoder"))?,
            buffer: vec![0.0; MAX_PACKET_SAMPLES],
        })
    }

    /// Decodes a packet: its whole duration, a multiple of 2.5 ms (20 ms from Jami).
    pub fn decode(&mut self, packet: &[u8]) -> Result<Vec<f32>, MediaError> {
        if packet.is_empty() {
            return Err(MediaError::Codec {
                what: "Opus decoder",
                message: "an empty packet".into(),
            });
        }
        self.run(packet, MAX_PACKET_SAMPLES, false)
    }

    /// One frame in place of a lost packet (packet-loss concealment).
    pub fn conceal(&mut self) -> Result<Vec<f32>, MediaError> {
        self.run(&[], FRAME_SAMPLES, false)
    }

    /// One frame in place of a lost packet, recovered from the in-band FEC data of the packet
    /// that follows it (concealed if that packet carries none). Decode `next` normally after.
    pub fn recover(&mut self, next: &[u8]) -> Result<Vec<f32>, MediaError> {
        self.run(next, FRAME_SAMPLES, true)
    }

    fn run(&mut self, packet: &[u8], samples: usize, fec: bool) -> Result<Vec<f32>, MediaError> {
        let output = &mut self.buffer[..samples];
        let decoded =
            self.decoder.decode_float(packet, output, fec).map_err(codec_error("Opus decoder"))?;
        Ok(output[..decoded.min(samples)].to_vec())
    }
}
