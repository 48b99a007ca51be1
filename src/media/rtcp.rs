//! RTCP for one stream of a call (RFC 3550 §6), sans-IO with time as an input: what we send
//! and receive is counted, and every [`REPORT_INTERVAL`] a compound report is due: a sender
//! report when we have sent, a receiver report otherwise, with a reception report block about
//! the caller's stream (loss, extended highest sequence, interarrival jitter, LSR/DLSR) and
//! our CNAME. Incoming reports are parsed with rtc-rtcp: a sender report is remembered for
//! LSR/DLSR; a PLI or FIR is a keyframe request.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rtc_rtcp::packet::Packet;
use rtc_rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc_rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc_rtcp::receiver_report::ReceiverReport;
use rtc_rtcp::reception_report::ReceptionReport;
use rtc_rtcp::sender_report::SenderReport;
use rtc_rtcp::source_description::{
    SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem,
};
use rtc_rtp::header::Header;
use shared::marshal::Unmarshal as _;

/// Time between two of our reports (RFC 3550's minimum; Jami reports as often).
pub const REPORT_INTERVAL: Duration = Duration::from_secs(5);
/// Seconds between 1900 (NTP's epoch) and 1970.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// What an incoming RTCP packet asks of us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpEvent {
    /// A PLI or FIR: the receiver needs a keyframe.
    KeyframeRequested,
}

/// Why an RTCP packet was dropped (the sender's fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed RTCP: {0}")]
pub struct RtcpError(String);

/// What we sent.
#[derive(Debug, Clone, Copy)]
struct Sent {
    packets: u32,
    octets: u32,
    /// The last RTP timestamp and when it was sent.
    timestamp: u32,
    at: Instant,
}

/// What we received from the caller's source.
#[derive(Debug, Clone, Copy)]
struct Received {
    ssrc: u32,
    base_sequence: u16,
    max_sequence: u16,
    /// Sequence number wraps, shifted left 16 (RFC 3550 A.1).
    cycles: u32,
    packets: u32,
    expected_prior: u32,
    received_prior: u32,
    /// Interarrival jitter, in RTP units (RFC 3550 A.8).
    jitter: f64,
    last_transit: Option<f64>,
}

/// RTCP state of one stream.
#[derive(Debug)]
pub struct RtcpSession {
    local_ssrc: u32,
    cname: String,
    clock_rate: u32,
    started: Instant,
    sent: Option<Sent>,
    received: Option<Received>,
    /// The middle 32 bits of the caller's last sender report's NTP time, and when it came.
    last_sender_report: Option<(u32, Instant)>,
    next_report: Instant,
    /// What the last reception report said, until taken.
    reception: Option<ReceptionStats>,
}

/// What one reception report said about the caller's stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReceptionStats {
    /// Packets lost since the previous report.
    pub lost: u64,
    /// Interarrival jitter.
    pub jitter: Duration,
}

impl RtcpSession {
    /// A session for our source `local_ssrc` at `clock_rate` Hz, named `cname`.
    pub fn new(local_ssrc: u32, clock_rate: u32, cname: String, now: Instant) -> Self {
        Self {
            local_ssrc,
            cname,
            clock_rate,
            started: now,
            sent: None,
            received: None,
            last_sender_report: None,
            next_report: now + REPORT_INTERVAL,
            reception: None,
        }
    }

    /// What the last reception report said, once.
    pub fn take_reception(&mut self) -> Option<ReceptionStats> {
        self.reception.take()
    }

    /// Counts an RTP packet we sent.
    pub fn on_rtp_sent(&mut self, timestamp: u32, payload_len: usize, now: Instant) {
        let sent = self.sent.get_or_insert(Sent { packets: 0, octets: 0, timestamp, at: now });
        sent.packets = sent.packets.wrapping_add(1);
        sent.octets = sent.octets.wrapping_add(u32::try_from(payload_len).unwrap_or(u32::MAX));
        sent.timestamp = timestamp;
        sent.at = now;
    }

    /// Counts a decrypted RTP packet from the caller (`packet`: its plain bytes).
    pub fn on_rtp_received(&mut self, packet: &[u8], now: Instant) {
        let Ok(header) = Header::unmarshal(&mut Bytes::copy_from_slice(packet)) else { return };
        let sequence = header.sequence_number;
        let received = match &mut self.received {
            Some(received) if received.ssrc == header.ssrc => received,
            _ => self.received.insert(Received {
                ssrc: header.ssrc,
                base_sequence: sequence,
                max_sequence: sequence.wrapping_sub(1),
                cycles: 0,
                packets: 0,
                expected_prior: 0,
                received_prior: 0,
                jitter: 0.0,
                last_transit: None,
            }),
        };
        received.packets = received.packets.wrapping_add(1);
        let delta = sequence.wrapping_sub(received.max_sequence);
        if delta < 0x8000 {
            if sequence < received.max_sequence {
                received.cycles = received.cycles.wrapping_add(1 << 16);
            }
            received.max_sequence = sequence;
        }
        let arrival = now.duration_since(self.started).as_secs_f64() * f64::from(self.clock_rate);
        let transit = arrival - f64::from(header.timestamp);
        if let Some(last) = received.last_transit {
            let difference = (transit - last).abs();
            // A jump (a new timestamp base) is not jitter.
            if difference < f64::from(self.clock_rate) {
                received.jitter += (difference - received.jitter) / 16.0;
            }
        }
        received.last_transit = Some(transit);
    }

    /// Takes in a decrypted RTCP compound packet from the caller.
    pub fn on_rtcp_received(
        &mut self,
        packet: &[u8],
        now: Instant,
    ) -> Result<Vec<RtcpEvent>, RtcpError> {
        let packets = rtc_rtcp::packet::unmarshal(&mut Bytes::copy_from_slice(packet))
            .map_err(|error| RtcpError(error.to_string()))?;
        let mut events = Vec::new();
        for packet in &packets {
            let any = packet.as_any();
            if let Some(report) = any.downcast_ref::<SenderReport>() {
                let middle = ((report.ntp_time >> 16) & 0xffff_ffff) as u32;
                self.last_sender_report = Some((middle, now));
            } else if any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>() {
                events.push(RtcpEvent::KeyframeRequested);
            }
        }
        Ok(events)
    }

    /// Takes in an RTCP compound packet that came without SRTCP protection, as jamid sends
    /// all of its RTCP: a sender report in it gives LSR/DLSR. Feedback in it is ignored (an
    /// unauthenticated PLI must not ask for keyframes). Whether it was well-formed RTCP.
    pub fn on_plain_rtcp_received(&mut self, packet: &[u8], now: Instant) -> bool {
        let Ok(packets) = rtc_rtcp::packet::unmarshal(&mut Bytes::copy_from_slice(packet)) else {
            return false;
        };
        for packet in &packets {
            if let Some(report) = packet.as_any().downcast_ref::<SenderReport>() {
                let middle = ((report.ntp_time >> 16) & 0xffff_ffff) as u32;
                self.last_sender_report = Some((middle, now));
            }
        }
        true
    }

    /// When the next report is due.
    pub fn poll_timeout(&self) -> Instant {
        self.next_report
    }

    /// The compound report due at `now` (`wallclock`: the same instant, for the NTP time),
    /// if one is due and there is something to report.
    pub fn poll_report(&mut self, now: Instant, wallclock: SystemTime) -> Option<Vec<u8>> {
        if now < self.next_report {
            return None;
        }
        self.next_report = now + REPORT_INTERVAL;
        let reports: Vec<ReceptionReport> = self.reception_report(now).into_iter().collect();
        let first: Box<dyn Packet> = match self.sent {
            Some(sent) => {
                let elapsed = now.saturating_duration_since(sent.at).as_secs_f64();
                let advance = (elapsed * f64::from(self.clock_rate)) as u32;
                Box::new(SenderReport {
                    ssrc: self.local_ssrc,
                    ntp_time: ntp_time(wallclock),
                    rtp_time: sent.timestamp.wrapping_add(advance),
                    packet_count: sent.packets,
                    octet_count: sent.octets,
                    reports,
                    profile_extensions: Bytes::new(),
                })
            }
            None if !reports.is_empty() => Box::new(ReceiverReport {
                ssrc: self.local_ssrc,
                reports,
                profile_extensions: Bytes::new(),
            }),
            None => return None,
        };
        let description: Box<dyn Packet> = Box::new(SourceDescription {
            chunks: vec![SourceDescriptionChunk {
                source: self.local_ssrc,
                items: vec![SourceDescriptionItem {
                    sdes_type: SdesType::SdesCname,
                    text: Bytes::from(self.cname.clone()),
                }],
            }],
        });
        rtc_rtcp::packet::marshal(&[first, description]).ok().map(|bytes| bytes.to_vec())
    }

    /// A picture loss indication for the caller's video source, once we know it.
    pub fn keyframe_request(&self) -> Option<Vec<u8>> {
        let received = self.received?;
        let pli: Box<dyn Packet> = Box::new(PictureLossIndication {
            sender_ssrc: self.local_ssrc,
            media_ssrc: received.ssrc,
        });
        rtc_rtcp::packet::marshal(&[pli]).ok().map(|bytes| bytes.to_vec())
    }

    /// The reception report block about the caller's source, resetting the interval counts.
    fn reception_report(&mut self, now: Instant) -> Option<ReceptionReport> {
        let received = self.received.as_mut()?;
        let extended_max = received.cycles | u32::from(received.max_sequence);
        let expected = extended_max.wrapping_sub(u32::from(received.base_sequence)).wrapping_add(1);
        let lost = i64::from(expected) - i64::from(received.packets);
        let expected_interval = expected.wrapping_sub(received.expected_prior);
        let received_interval = received.packets.wrapping_sub(received.received_prior);
        received.expected_prior = expected;
        received.received_prior = received.packets;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        self.reception = Some(ReceptionStats {
            lost: u64::try_from(lost_interval).unwrap_or(0),
            jitter: Duration::from_secs_f64(
                received.jitter.max(0.0) / f64::from(self.clock_rate.max(1)),
            ),
        });
        let (last_sender_report, delay) = match self.last_sender_report {
            Some((middle, at)) => {
                let since = now.saturating_duration_since(at).as_secs_f64();
                (middle, (since * 65536.0) as u32)
            }
            None => (0, 0),
        };
        Some(ReceptionReport {
            ssrc: received.ssrc,
            fraction_lost,
            // 24 bits, signed, clamped.
            total_lost: lost.clamp(0, 0x7f_ffff) as u32,
            last_sequence_number: extended_max,
            jitter: received.jitter as u32,
            last_sender_report,
            delay,
        })
    }
}

/// `wallclock` as a 64-bit NTP timestamp.
fn ntp_time(wallclock: SystemTime) -> u64 {
    let since_unix = wallclock.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_unix.as_secs() + NTP_UNIX_OFFSET;
    let fraction = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
    (seconds << 32) | fraction
}

#[cfg(test)]
mod tests;
