use rtc_rtp::packet::Packet as RtpPacket;
use shared::marshal::Marshal as _;

use super::*;

fn rtp(sequence: u16, timestamp: u32) -> Vec<u8> {
    let header = Header {
        version: 2,
        payload_type: 104,
        sequence_number: sequence,
        timestamp,
        ssrc: 0xcafe,
        ..Header::default()
    };
    RtpPacket { header, payload: Bytes::from_static(b"opus") }.marshal().unwrap().to_vec()
}

fn parse(bytes: &[u8]) -> Vec<Box<dyn Packet>> {
    rtc_rtcp::packet::unmarshal(&mut Bytes::copy_from_slice(bytes)).unwrap()
}

#[test]
fn nothing_sent_or_received_means_no_report() {
    let start = Instant::now();
    let mut rtcp = RtcpSession::new(1, 48_000, "room".into(), start);
    assert_eq!(rtcp.poll_report(start + REPORT_INTERVAL, SystemTime::now()), None);
}

#[test]
fn a_sender_report_counts_what_we_sent_and_reports_the_callers_losses() {
    let start = Instant::now();
    let mut rtcp = RtcpSession::new(1, 48_000, "room@rdv".into(), start);
    for frame in 0..10u32 {
        let at = start + Duration::from_millis(u64::from(frame) * 20);
        rtcp.on_rtp_sent(frame * 960, 100, at);
        // Packet 65535 + 5 is lost, and the sequence wraps.
        if frame != 5 {
            rtcp.on_rtp_received(&rtp(65530u16.wrapping_add(frame as u16), frame * 960), at);
        }
    }
    assert_eq!(rtcp.poll_report(start + Duration::from_secs(1), SystemTime::now()), None);
    let report = rtcp.poll_report(start + REPORT_INTERVAL, SystemTime::now()).unwrap();
    let packets = parse(&report);
    let sender = packets[0].as_any().downcast_ref::<SenderReport>().unwrap();
    assert_eq!((sender.ssrc, sender.packet_count, sender.octet_count), (1, 10, 1000));
    let block = &sender.reports[0];
    assert_eq!(block.ssrc, 0xcafe);
    assert_eq!(block.total_lost, 1);
    assert_eq!(block.fraction_lost, 25, "1 of 10, in 1/256");
    assert_eq!(block.last_sequence_number, (1 << 16) | 3, "one wrap, then 3");
    let description = packets[1].as_any().downcast_ref::<SourceDescription>().unwrap();
    assert_eq!(description.chunks[0].items[0].text, Bytes::from_static(b"room@rdv"));
    // The next interval lost nothing.
    rtcp.on_rtp_received(&rtp(4, 10 * 960), start + REPORT_INTERVAL);
    let report = rtcp.poll_report(start + 2 * REPORT_INTERVAL, SystemTime::now()).unwrap();
    let sender = parse(&report)[0].as_any().downcast_ref::<SenderReport>().unwrap().clone();
    assert_eq!((sender.reports[0].fraction_lost, sender.reports[0].total_lost), (0, 1));
}

#[test]
fn a_receiver_answers_the_callers_sender_report_with_lsr_and_dlsr() {
    let start = Instant::now();
    let mut rtcp = RtcpSession::new(7, 48_000, "room".into(), start);
    rtcp.on_rtp_received(&rtp(1, 960), start);
    let their_report: Box<dyn Packet> = Box::new(SenderReport {
        ssrc: 0xcafe,
        ntp_time: 0x1122_3344_5566_7788,
        ..SenderReport::default()
    });
    let bytes = rtc_rtcp::packet::marshal(&[their_report]).unwrap();
    assert_eq!(rtcp.on_rtcp_received(&bytes, start + Duration::from_secs(3)), Ok(Vec::new()));
    let report = rtcp.poll_report(start + REPORT_INTERVAL, SystemTime::now()).unwrap();
    let receiver = parse(&report)[0].as_any().downcast_ref::<ReceiverReport>().unwrap().clone();
    assert_eq!(receiver.ssrc, 7);
    assert_eq!(receiver.reports[0].last_sender_report, 0x3344_5566);
    assert_eq!(receiver.reports[0].delay, 2 * 65536, "two seconds, in 1/65536 s");
}

#[test]
fn a_pli_is_a_keyframe_request_and_garbage_is_an_error() {
    let start = Instant::now();
    let mut rtcp = RtcpSession::new(7, 90_000, "room".into(), start);
    assert_eq!(rtcp.keyframe_request(), None, "no source to ask yet");
    rtcp.on_rtp_received(&rtp(1, 0), start);
    let pli = rtcp.keyframe_request().unwrap();
    let mut other = RtcpSession::new(9, 90_000, "caller".into(), start);
    assert_eq!(other.on_rtcp_received(&pli, start), Ok(vec![RtcpEvent::KeyframeRequested]));
    assert!(other.on_rtcp_received(&[0x80, 200, 0], start).is_err());
    assert!(other.on_rtcp_received(&[], start).is_err());
}

#[test]
fn plain_reports_give_lsr_and_plain_feedback_asks_nothing() {
    let start = Instant::now();
    let mut rtcp = RtcpSession::new(7, 48_000, "room".into(), start);
    rtcp.on_rtp_received(&rtp(1, 960), start);
    // A sender report and its CNAME, in the clear, as jamid sends them.
    let report: Box<dyn Packet> = Box::new(SenderReport {
        ssrc: 0xcafe,
        ntp_time: 0x1122_3344_5566_7788,
        ..SenderReport::default()
    });
    let description: Box<dyn Packet> = Box::new(SourceDescription {
        chunks: vec![SourceDescriptionChunk {
            source: 0xcafe,
            items: vec![SourceDescriptionItem {
                sdes_type: SdesType::SdesCname,
                text: Bytes::from_static(b"alice"),
            }],
        }],
    });
    let plain = rtc_rtcp::packet::marshal(&[report, description]).unwrap();
    assert!(rtcp.on_plain_rtcp_received(&plain, start));
    let sent = rtcp.poll_report(start + REPORT_INTERVAL, SystemTime::now()).unwrap();
    let receiver = parse(&sent)[0].as_any().downcast_ref::<ReceiverReport>().unwrap().clone();
    assert_eq!(receiver.reports[0].last_sender_report, 0x3344_5566);

    let mut with_trailer = plain.to_vec();
    with_trailer.extend([0; 14]);
    assert!(!rtcp.on_plain_rtcp_received(&with_trailer, start), "an SRTCP packet that failed");
    assert!(!rtcp.on_plain_rtcp_received(&[0x80], start));
    // A plain PLI is well-formed RTCP, and that is all: only on_rtcp_received (authenticated
    // packets) reports keyframe requests.
    let mut caller = RtcpSession::new(9, 90_000, "caller".into(), start);
    caller.on_rtp_received(&rtp(1, 0), start);
    let pli = caller.keyframe_request().unwrap();
    assert!(rtcp.on_plain_rtcp_received(&pli, start));
    assert_eq!(rtcp.on_rtcp_received(&pli, start), Ok(vec![RtcpEvent::KeyframeRequested]));
}

#[test]
fn random_bytes_never_panic() {
    let start = Instant::now();
    let mut rtcp = RtcpSession::new(7, 48_000, "room".into(), start);
    for length in 0..200usize {
        for _ in 0..50 {
            let mut packet: Vec<u8> = (0..length).map(|_| rand::random::<u8>()).collect();
            if let Some(first) = packet.first_mut() {
                *first = 0x80 | (*first & 0x3f);
            }
            if length > 1 {
                packet[1] = 200 + rand::random::<u8>() % 8;
            }
            let _ = rtcp.on_rtcp_received(&packet, start);
            let _ = rtcp.on_plain_rtcp_received(&packet, start);
            rtcp.on_rtp_received(&packet, start);
        }
    }
}
