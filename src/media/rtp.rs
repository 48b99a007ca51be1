//! RTP framing of a call's media with webrtc-rs's rtc-rtp: incoming packets reassembled into
//! Opus packets, H.264 access units (Annex B) and VP8 frames for the mixer, and the mixer's
//! output split back into packets (MTU 1200).
//!
//! Input is hostile: headers are parsed by rtc-rtp, and H.264 aggregation packets are walked
//! here before rtc-rtp's depacketizer sees them (it indexes past the end of a truncated
//! STAP-A). A frame with a missing packet is dropped and reported, so that the caller asks
//! for a keyframe.

use bytes::Bytes;
use rtc_rtp::codec::h264::{H264Packet, H264Payloader};
use rtc_rtp::codec::opus::OpusPacket;
use rtc_rtp::codec::vp8::{Vp8Packet, Vp8Payloader};
use rtc_rtp::header::Header;
use rtc_rtp::packet::Packet;
use rtc_rtp::packetizer::{Depacketizer as _, Payloader};
use shared::marshal::{Marshal as _, Unmarshal as _};

/// Largest RTP payload we send (fits a 1280-byte path MTU with SRTP and headers).
pub const MTU: usize = 1200;
/// Largest frame we reassemble; anything bigger is dropped.
const MAX_FRAME: usize = 4 * 1024 * 1024;

/// The payload formats a call carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    /// Opus: one packet per frame.
    Opus,
    /// H.264, RFC 6184 (single NAL, STAP-A, FU-A).
    H264,
    /// VP8, RFC 7741.
    Vp8,
}

/// Why a packet was dropped (the sender's fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Not an RTP packet.
    #[error("malformed RTP: {0}")]
    Malformed(String),
    /// The payload does not follow its format.
    #[error("malformed {0:?} payload: {1}")]
    Payload(PayloadFormat, String),
}

/// A reassembled frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// RTP timestamp.
    pub timestamp: u32,
    /// Sequence number of its last packet.
    pub sequence: u16,
    /// The bytes: an Opus packet, an Annex B access unit, or a VP8 frame.
    pub data: Vec<u8>,
}

/// What a packet completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Nothing yet (the frame continues).
    Pending,
    /// A whole frame.
    Frame(Frame),
    /// A frame was lost in part and dropped: ask the sender for a keyframe.
    Lost,
}

/// Reassembles one incoming stream.
#[derive(Debug)]
pub struct Depacketizer {
    format: PayloadFormat,
    h264: H264Packet,
    vp8: Vp8Packet,
    frame: Vec<u8>,
    timestamp: Option<u32>,
    next_sequence: Option<u16>,
    broken: bool,
}

impl Depacketizer {
    /// A depacketizer for `format`.
    pub fn new(format: PayloadFormat) -> Self {
        Self {
            format,
            h264: H264Packet::default(),
            vp8: Vp8Packet::default(),
            frame: Vec::new(),
            timestamp: None,
            next_sequence: None,
            broken: false,
        }
    }

    /// Feeds one RTP packet (already decrypted), in arrival order.
    pub fn push(&mut self, raw: &[u8]) -> Result<Received, RtpError> {
        let packet = Packet::unmarshal(&mut &raw[..])
            .map_err(|error| RtpError::Malformed(error.to_string()))?;
        let Header { sequence_number: sequence, timestamp, marker, .. } = packet.header;
        if self.format == PayloadFormat::Opus {
            let data =
                OpusPacket.depacketize(&packet.payload).map_err(|e| self.payload_error(e))?;
            return Ok(Received::Frame(Frame { timestamp, sequence, data: data.to_vec() }));
        }
        let mut lost = false;
        if self.timestamp != Some(timestamp) {
            // A new frame; the previous one never got its marker.
            lost = !self.frame.is_empty() || self.broken;
            self.start(timestamp);
        } else if self.next_sequence != Some(sequence) {
            self.broken = true;
        }
        self.next_sequence = Some(sequence.wrapping_add(1));
        if !self.broken {
            match self.depacketize(&packet.payload) {
                Ok(data) => self.frame.extend_from_slice(&data),
                Err(error) => {
                    self.broken = true;
                    return Err(error);
                }
            }
            if self.frame.len() > MAX_FRAME {
                self.broken = true;
            }
        }
        if !marker {
            return Ok(if lost { Received::Lost } else { Received::Pending });
        }
        let complete = !self.broken && !self.frame.is_empty();
        let data = std::mem::take(&mut self.frame);
        self.timestamp = None;
        self.broken = false;
        Ok(if complete && !lost {
            Received::Frame(Frame { timestamp, sequence, data })
        } else {
            Received::Lost
        })
    }

    fn start(&mut self, timestamp: u32) {
        self.frame.clear();
        self.timestamp = Some(timestamp);
        self.broken = false;
        self.h264 = H264Packet::default();
        self.vp8 = Vp8Packet::default();
    }

    fn depacketize(&mut self, payload: &Bytes) -> Result<Bytes, RtpError> {
        match self.format {
            PayloadFormat::H264 => {
                check_stap_a(payload).map_err(|reason| RtpError::Payload(self.format, reason))?;
                self.h264.depacketize(payload).map_err(|e| self.payload_error(e))
            }
            PayloadFormat::Vp8 => self.vp8.depacketize(payload).map_err(|e| self.payload_error(e)),
            PayloadFormat::Opus => {
                OpusPacket.depacketize(payload).map_err(|e| self.payload_error(e))
            }
        }
    }

    fn payload_error(&self, error: impl std::fmt::Display) -> RtpError {
        RtpError::Payload(self.format, error.to_string())
    }
}

/// Walks a STAP-A (NAL type 24) so that every length fits; other NAL types pass.
fn check_stap_a(payload: &[u8]) -> Result<(), String> {
    const STAP_A: u8 = 24;
    if payload.first().map(|b| b & 0x1f) != Some(STAP_A) {
        return Ok(());
    }
    let mut at = 1;
    while at < payload.len() {
        let Some(length) = payload.get(at..at + 2) else {
            return Err("STAP-A length cut short".into());
        };
        let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
        at += 2;
        if length == 0 || at + length > payload.len() {
            return Err(format!("STAP-A unit of {length} bytes past the end"));
        }
        at += length;
    }
    Ok(())
}

/// Splits one outgoing stream's frames into RTP packets.
#[derive(Debug)]
pub struct Packetizer {
    payloader: Box<dyn Payloader>,
    payload_type: u8,
    ssrc: u32,
    sequence: u16,
}

impl Packetizer {
    /// A packetizer for `format` under `payload_type`, with a random SSRC and first sequence.
    pub fn new(format: PayloadFormat, payload_type: u8) -> Self {
        let payloader: Box<dyn Payloader> = match format {
            PayloadFormat::Opus => Box::new(rtc_rtp::codec::opus::OpusPayloader),
            PayloadFormat::H264 => Box::new(H264Payloader::default()),
            PayloadFormat::Vp8 => Box::new(Vp8Payloader::default()),
        };
        Self { payloader, payload_type, ssrc: rand::random(), sequence: rand::random() }
    }

    /// The stream's SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The packets of one frame at RTP `timestamp`, the last one with the marker bit.
    pub fn packetize(&mut self, frame: &[u8], timestamp: u32) -> Vec<Vec<u8>> {
        let Ok(payloads) = self.payloader.payload(MTU, &Bytes::copy_from_slice(frame)) else {
            return Vec::new();
        };
        let count = payloads.len();
        payloads
            .into_iter()
            .enumerate()
            .filter_map(|(index, payload)| {
                let header = Header {
                    version: 2,
                    marker: index + 1 == count,
                    payload_type: self.payload_type,
                    sequence_number: self.sequence,
                    timestamp,
                    ssrc: self.ssrc,
                    ..Header::default()
                };
                self.sequence = self.sequence.wrapping_add(1);
                Packet { header, payload }.marshal().ok().map(|bytes| bytes.to_vec())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
