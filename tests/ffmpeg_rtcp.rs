//! What a Jami client's RTP demuxer makes of the RTCP a call sends it. jamid 13.7 passes every
//! packet of its RTCP socket to FFmpeg's RTP demuxer as it came, undecrypted
//! (`media/socket_pair.cpp`), and FFmpeg ends the stream for good at the first RTCP BYE it
//! reads (`rtsp.c`: `nb_byes == nb_rtsp_streams`). SRTCP-protected reports, read header by
//! header, now and then say BYE, and the caller heard nothing more for the rest of the call.
//!
//! This runs the same FFmpeg demuxer (the `ffmpeg` command reading an SDP) on an Opus stream
//! with the reports a call sends interleaved, and checks that it decodes the whole stream
//! and stops only at a real BYE.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::io::Read as _;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::{prerequisite, runs};
use rdv::media::rtcp::{REPORT_INTERVAL, RtcpSession};
use rdv::media::rtp::{Packetizer, PayloadFormat};
use rdv_mixer::audio::FRAME_SAMPLES;
use rdv_mixer::opus::OpusEncoder;

/// 20 ms frames sent: 60 s of audio.
const FRAMES: u32 = 3000;
/// A report after every so many frames: 299 reports. With SRTCP-protected reports instead,
/// FFmpeg read a BYE in 17 of 30 runs (about 1 report in 300), ending the stream early.
const FRAMES_PER_REPORT: u32 = 10;

#[test]
fn ffmpeg_decodes_a_whole_stream_with_our_reports_in_it() {
    if !prerequisite("ffmpeg", runs("ffmpeg", &["-version"])) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (rtp_port, rtcp_port) = free_port_pair();
    let sdp = dir.path().join("call.sdp");
    std::fs::write(
        &sdp,
        format!(
            "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {rtp_port} RTP/AVP 104\r\na=rtpmap:104 opus/48000/2\r\n"
        ),
    )
    .unwrap();
    let mut ffmpeg = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-protocol_whitelist", "file,udp,rtp", "-i"])
        .arg(&sdp)
        .args(["-f", "s16le", "-ac", "1", "-ar", "48000", "pipe:1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = ffmpeg.stdout.take().unwrap();
    let decoded = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        stdout.read_to_end(&mut bytes).unwrap();
        bytes.len() / 2
    });
    wait_bound(rtcp_port);

    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let to_rtp = SocketAddr::from((Ipv4Addr::LOCALHOST, rtp_port));
    let to_rtcp = SocketAddr::from((Ipv4Addr::LOCALHOST, rtcp_port));
    let mut packetizer = Packetizer::new(PayloadFormat::Opus, 104);
    let mut caller = Packetizer::new(PayloadFormat::Opus, 104);
    let mut encoder = OpusEncoder::new(48_000).unwrap();
    let start = Instant::now();
    let mut reports = RtcpSession::new(packetizer.ssrc(), 48_000, "lobby@rdv".into(), start);
    let mut sent_reports = 0;
    for frame in 0..FRAMES {
        // Reports fall due on the session's clock: one report interval per report.
        let now = start + REPORT_INTERVAL * (frame / FRAMES_PER_REPORT) + Duration::from_millis(1);
        let tone: Vec<f32> = (0..FRAME_SAMPLES)
            .map(|i| {
                let t = (frame as usize * FRAME_SAMPLES + i) as f32 / 48_000.0;
                0.5 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()
            })
            .collect();
        let timestamp = frame * 960;
        let payload = encoder.encode(&tone).unwrap();
        for packet in packetizer.packetize(&payload, timestamp) {
            socket.send_to(&packet, to_rtp).unwrap();
            reports.on_rtp_sent(timestamp, payload.len(), now);
        }
        // What the caller sends us, for the reception report block.
        for packet in caller.packetize(&payload, timestamp) {
            reports.on_rtp_received(&packet, now);
        }
        if let Some(report) = reports.poll_report(now, SystemTime::now()) {
            socket.send_to(&report, to_rtcp).unwrap();
            sent_reports += 1;
        }
        // Paced so that FFmpeg's socket buffer never overflows.
        std::thread::sleep(Duration::from_micros(500));
    }
    assert!(sent_reports >= 250, "{sent_reports} reports sent");
    // A real BYE ends the stream: an empty receiver report and a BYE (V=2, one source,
    // PT 203, one word), as a compound packet (FFmpeg skips RTCP shorter than 12 bytes).
    let ssrc = packetizer.ssrc().to_be_bytes();
    let bye = [&[0x80, 201, 0, 1][..], &ssrc, &[0x81, 203, 0, 1], &ssrc].concat();
    socket.send_to(&bye, to_rtcp).unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = ffmpeg.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            ffmpeg.kill().unwrap();
            panic!("ffmpeg did not stop at the BYE");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut errors = String::new();
    ffmpeg.stderr.take().unwrap().read_to_string(&mut errors).unwrap();
    let samples = decoded.join().unwrap();
    let expected = FRAMES as usize * FRAME_SAMPLES;
    eprintln!("ffmpeg decoded {samples} of {expected} samples; {sent_reports} reports; {errors}");
    assert!(status.success(), "ffmpeg: {status} {errors}");
    assert!(!errors.contains("timed out"), "ffmpeg stopped without a BYE: {errors}");
    assert!(
        samples * 100 >= expected * 99,
        "the stream ended early: {samples} of {expected} samples decoded"
    );
}

/// An even UDP port whose successor is free too (RTP and RTCP).
fn free_port_pair() -> (u16, u16) {
    for _ in 0..100 {
        let probe = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = probe.local_addr().unwrap().port() & !1;
        drop(probe);
        if port < 65534
            && UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
            && UdpSocket::bind((Ipv4Addr::LOCALHOST, port + 1)).is_ok()
        {
            return (port, port + 1);
        }
    }
    panic!("no free UDP port pair");
}

/// Waits (10 s at most) until FFmpeg listens on `port`: binding it ourselves fails.
fn wait_bound(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
        assert!(Instant::now() < deadline, "ffmpeg never listened on udp/{port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
