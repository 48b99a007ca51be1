use super::*;

/// An H.264 access unit in Annex B: SPS, PPS and an IDR slice bigger than one packet.
fn access_unit() -> Vec<u8> {
    let mut unit = Vec::new();
    for nal in [vec![0x67, 0x42, 0x80, 0x29], vec![0x68, 0xce, 0x06, 0xe2], {
        let mut idr = vec![0x65];
        idr.extend((0..3000u32).map(|i| (i % 251) as u8 | 1));
        idr
    }] {
        unit.extend([0, 0, 0, 1]);
        unit.extend(nal);
    }
    unit
}

fn run(format: PayloadFormat, packets: &[Vec<u8>]) -> Vec<Received> {
    let mut depacketizer = Depacketizer::new(format);
    packets.iter().map(|p| depacketizer.push(p).unwrap()).collect()
}

#[test]
fn h264_access_units_survive_packetization() {
    let mut packetizer = Packetizer::new(PayloadFormat::H264, 96);
    let packets = packetizer.packetize(&access_unit(), 90_000);
    assert!(packets.len() >= 3, "FU-A fragments: {}", packets.len());
    assert!(packets.iter().all(|p| p.len() <= MTU + 12));
    let received = run(PayloadFormat::H264, &packets);
    let Some(Received::Frame(frame)) = received.last() else { panic!("{received:?}") };
    assert_eq!(frame.timestamp, 90_000);
    assert_eq!(frame.data, access_unit());
}

#[test]
fn vp8_frames_survive_packetization_and_a_lost_packet_drops_the_frame() {
    let frame: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 256) as u8).collect();
    let mut packetizer = Packetizer::new(PayloadFormat::Vp8, 97);
    let packets = packetizer.packetize(&frame, 3000);
    assert!(packets.len() >= 5);
    let received = run(PayloadFormat::Vp8, &packets);
    assert_eq!(
        received.last(),
        Some(&Received::Frame(Frame {
            timestamp: 3000,
            sequence: u16::from_be_bytes([
                packets[packets.len() - 1][2],
                packets[packets.len() - 1][3]
            ]),
            data: frame.clone(),
        }))
    );

    let mut lossy = packets.clone();
    lossy.remove(2);
    let received = run(PayloadFormat::Vp8, &lossy);
    assert_eq!(received.last(), Some(&Received::Lost));
    // The next frame comes through whole.
    let next = packetizer.packetize(&frame, 6000);
    let mut depacketizer = Depacketizer::new(PayloadFormat::Vp8);
    for packet in &lossy {
        depacketizer.push(packet).unwrap();
    }
    let results: Vec<Received> = next.iter().map(|p| depacketizer.push(p).unwrap()).collect();
    assert!(matches!(results.last(), Some(Received::Frame(f)) if f.data == frame));
}

#[test]
fn opus_packets_are_frames_of_their_own() {
    let mut packetizer = Packetizer::new(PayloadFormat::Opus, 104);
    let packets = packetizer.packetize(b"\xfc opus frame", 960);
    assert_eq!(packets.len(), 1);
    assert_eq!(packets[0][1] & 0x7f, 104);
    let received = run(PayloadFormat::Opus, &packets);
    assert!(matches!(&received[0], Received::Frame(f) if f.data == b"\xfc opus frame"));
}

#[test]
fn hostile_packets_are_errors_not_panics() {
    let header = |payload: &[u8]| {
        let mut packet = vec![0x80, 0x80 | 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9];
        packet.extend_from_slice(payload);
        packet
    };
    // Truncated STAP-As that rtc-rtp's depacketizer would index past.
    for payload in [&[0x18, 0, 0, 0][..], &[0x18, 0, 5, 1][..], &[0x18, 0][..]] {
        let mut depacketizer = Depacketizer::new(PayloadFormat::H264);
        assert!(depacketizer.push(&header(payload)).is_err(), "{payload:?}");
        // The rest of that frame is dropped; the caller asks for a keyframe.
        assert_eq!(depacketizer.push(&header(&[0x65, 1, 2])), Ok(Received::Lost));
    }
    let mut depacketizer = Depacketizer::new(PayloadFormat::H264);
    assert!(depacketizer.push(&[0x80]).is_err(), "not RTP");
    assert!(depacketizer.push(&[]).is_err());
    for payload in [&[0x90][..], &[0x90, 0x80][..], &[0x90, 0x80, 0x80][..]] {
        let mut vp8 = Depacketizer::new(PayloadFormat::Vp8);
        assert!(vp8.push(&header(payload)).is_err(), "{payload:?}");
    }
}

#[test]
fn random_payloads_never_panic() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for format in [PayloadFormat::H264, PayloadFormat::Vp8, PayloadFormat::Opus] {
        let mut depacketizer = Depacketizer::new(format);
        for round in 0..20_000u32 {
            let length = (next() % 40) as usize;
            let mut packet = vec![0x80, if round % 3 == 0 { 0xe0 } else { 0x60 }];
            packet.extend(((round / 4) as u16).to_be_bytes());
            packet.extend((round / 8).to_be_bytes());
            packet.extend([0, 0, 0, 7]);
            packet.extend((0..length).map(|_| next() as u8));
            let _ = depacketizer.push(&packet);
        }
    }
}
