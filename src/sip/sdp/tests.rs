use super::*;

/// An offer shaped like jamid 13.7's (jami-protocol.md §6.4), audio and video.
const OFFER: &str = "v=0\r\n\
o=caller 3997654301 0 IN IP4 198.18.0.1\r\n\
s=Call ID 1234\r\n\
c=IN IP4 198.18.0.1\r\n\
t=0 0\r\n\
a=ice-ufrag:7c9a1b2f\r\n\
a=ice-pwd:4b3a0e5d2c1f7a8b9c0d1e2f\r\n\
m=audio 40000 RTP/SAVP 104 101\r\n\
a=rtpmap:104 opus/48000/2\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=rtcp:40001 IN IP4 198.18.0.1\r\n\
a=sendrecv\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\r\n\
a=candidate:Hc6120001 1 UDP 2130706431 198.18.0.1 40000 typ host\r\n\
a=candidate:Hc6120001 2 UDP 2130706430 198.18.0.1 40001 typ host\r\n\
m=video 40002 RTP/SAVP 96 97\r\n\
a=rtpmap:96 H264/90000\r\n\
a=fmtp:96 profile-level-id=428029\r\n\
a=rtpmap:97 VP8/90000\r\n\
a=rtcp:40003 IN IP4 198.18.0.1\r\n\
a=recvonly\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:HRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgEA|2^31\r\n\
a=candidate:Hc6120001 3 UDP 2130706431 198.18.0.1 40002 typ host\r\n\
a=candidate:Hc6120001 4 UDP 2130706430 198.18.0.1 40003 typ host\r\n";

fn local(port: u16, byte: u8) -> LocalStream {
    LocalStream {
        rtp: SocketAddr::new("198.18.0.1".parse().unwrap(), port),
        rtcp: SocketAddr::new("198.18.0.1".parse().unwrap(), port + 1),
        key: SrtpKey { suite: "AES_CM_128_HMAC_SHA1_80".into(), key_salt: [byte; KEY_SALT_LEN] },
    }
}

#[test]
fn jamis_offer_parses_with_codecs_keys_and_normalised_components() {
    let offer = parse_offer(OFFER).unwrap();
    assert_eq!(
        (offer.ice_ufrag.as_str(), offer.ice_pwd.as_str()),
        ("7c9a1b2f", "4b3a0e5d2c1f7a8b9c0d1e2f")
    );
    let [audio, video] = offer.streams.as_slice() else { panic!("two streams") };
    assert_eq!(audio.kind, MediaKind::Audio);
    let opus = audio.codec.as_ref().unwrap();
    assert_eq!(
        (opus.payload_type, opus.name.as_str(), opus.channels.as_deref()),
        (104, "opus", Some("2"))
    );
    assert_eq!(audio.telephone_event, Some(101));
    assert_eq!(audio.key.as_ref().unwrap().key_salt[..4], [0, 1, 2, 3]);
    assert_eq!(audio.candidates.iter().map(|c| c.component).collect::<Vec<_>>(), [1, 2]);
    let h264 = video.codec.as_ref().unwrap();
    assert_eq!(
        (h264.payload_type, h264.name.as_str(), h264.fmtp.as_str()),
        (96, "H264", "profile-level-id=428029")
    );
    assert_eq!(video.direction, Direction::RecvOnly);
    assert_eq!(video.key.as_ref().unwrap().key_salt[0], 29, "lifetime after | ignored");
    assert_eq!(
        video.candidates.iter().map(|c| c.component).collect::<Vec<_>>(),
        [1, 2],
        "3/4 are video's 1/2"
    );
    assert!(video.accepted());
}

#[test]
fn the_answer_mirrors_the_offer_with_our_keys_and_candidates() {
    let offer = parse_offer(OFFER).unwrap();
    let answer = write_answer(
        &offer,
        &[Some(local(50000, 1)), Some(local(50002, 2))],
        "ourufrag",
        "ourpassword0123456789abc",
        42,
    );
    let parsed = SessionDescription::unmarshal(&mut Cursor::new(answer.as_bytes())).unwrap();
    assert_eq!(parsed.attribute("ice-ufrag").map(String::as_str), Some("ourufrag"));
    let [audio, video] = parsed.media_descriptions.as_slice() else { panic!("{answer}") };
    assert_eq!(audio.media_name.formats, ["104", "101"]);
    assert_eq!(audio.media_name.protos, ["RTP", "SAVP"]);
    assert!(audio.has_attribute("sendrecv"));
    assert!(answer.contains("a=rtpmap:104 opus/48000/2\r\n"), "{answer}");
    assert!(answer.contains("a=rtcp:50001 IN IP4 198.18.0.1\r\n"));
    assert!(answer.contains(&format!("inline:{}", BASE64.encode([1u8; 30]))));
    assert_eq!(video.media_name.formats, ["96"]);
    assert!(video.has_attribute("sendonly"), "the caller only receives video");
    assert!(answer.contains("a=fmtp:96 profile-level-id=428029\r\n"));
    // Global component numbering, like Jami's: video on 3 and 4.
    assert!(answer.contains(" 3 UDP ") && answer.contains(" 4 UDP "), "{answer}");
    // Our answer parses back as an offer would: the codecs and keys survive.
    let reparsed = parse_offer(&answer).unwrap();
    assert_eq!(reparsed.streams[1].candidates[0].address.port(), 50002);
    assert_eq!(reparsed.streams[0].key.as_ref().unwrap().key_salt, [1u8; 30]);
}

#[test]
fn unusable_streams_are_refused_with_port_zero_and_hopeless_offers_are_errors() {
    let h265_only = OFFER
        .replace("m=video 40002 RTP/SAVP 96 97", "m=video 40002 RTP/SAVP 98")
        .replace("a=rtpmap:96 H264/90000", "a=rtpmap:98 H265/90000")
        .replace("a=rtpmap:97 VP8/90000\r\n", "");
    let offer = parse_offer(&h265_only).unwrap();
    assert!(!offer.streams[1].accepted());
    let answer = write_answer(&offer, &[Some(local(50000, 1)), Some(local(50002, 2))], "u", "p", 1);
    assert!(answer.contains("m=video 0 RTP/SAVP"), "{answer}");

    let no_crypto = OFFER.replace(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\r\n",
        "",
    );
    assert_eq!(parse_offer(&no_crypto), Err(SdpError::NothingAcceptable));
    let bad_key =
        OFFER.replace("inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd", "inline:c2hvcnQ=");
    assert_eq!(parse_offer(&bad_key), Err(SdpError::NothingAcceptable));
    assert!(matches!(parse_offer("garbage"), Err(SdpError::Syntax(_))));
    assert!(parse_offer("").is_err());
}

/// Today's client sharing its screen with sound (daemon 63eb659bb0, 2117847382): camera and
/// screen video, microphone and screen audio, on an IPv6-only host: `c=IN IP6`, IPv6 host
/// candidates, numbered globally per stream.
const OFFER_2026_SCREEN_SHARE: &str = "v=0\r\n\
o=- 1 0 IN IP6 2001:db8::1\r\n\
s=-\r\n\
c=IN IP6 2001:db8::1\r\n\
t=0 0\r\n\
a=ice-ufrag:u2026\r\n\
a=ice-pwd:p2026p2026p2026p2026p2026\r\n\
m=audio 40000 RTP/SAVP 111\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\r\n\
a=candidate:H1 1 UDP 2130706431 2001:db8::1 40000 typ host\r\n\
a=candidate:H1 2 UDP 2130706430 2001:db8::1 40001 typ host\r\n\
a=label:audio_0\r\n\
m=video 40002 RTP/SAVP 96\r\n\
a=rtpmap:96 H264/90000\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\r\n\
a=candidate:H1 3 UDP 2130706431 2001:db8::1 40002 typ host\r\n\
a=candidate:H1 4 UDP 2130706430 2001:db8::1 40003 typ host\r\n\
a=label:video_0\r\n\
m=video 40004 RTP/SAVP 96\r\n\
a=rtpmap:96 H264/90000\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\r\n\
a=candidate:H1 5 UDP 2130706431 2001:db8::1 40004 typ host\r\n\
a=label:video_1\r\n\
m=audio 40006 RTP/SAVP 111\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\r\n\
a=candidate:H1 7 UDP 2130706431 2001:db8::1 40006 typ host\r\n\
a=label:audio_1\r\n";

#[test]
fn a_screen_share_offer_from_todays_client_keeps_one_audio_and_one_video() {
    let offer = parse_offer(OFFER_2026_SCREEN_SHARE).unwrap();
    let taken: Vec<_> = offer.streams.iter().map(|s| (s.kind, s.accepted())).collect();
    assert_eq!(
        taken,
        [
            (MediaKind::Audio, true),
            (MediaKind::Video, true),
            (MediaKind::Video, false),
            (MediaKind::Audio, false)
        ]
    );
    let first = &offer.streams[0].candidates;
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|c| c.address.is_ipv6()), "{first:?}");
    assert_eq!(offer.streams[2].candidates[0].component, 1, "stream 2's component 5 is its RTP");
    // Refused in place, with port 0, in the offer's order.
    let answer = write_answer(
        &offer,
        &[Some(local(50000, 1)), Some(local(50002, 2)), None, None],
        "ours",
        "ourpasswordourpassword",
        1,
    );
    let lines: Vec<&str> = answer.lines().filter(|line| line.starts_with("m=")).collect();
    assert_eq!(
        lines,
        [
            "m=audio 50000 RTP/SAVP 111",
            "m=video 50002 RTP/SAVP 96",
            "m=video 0 RTP/SAVP 96",
            "m=audio 0 RTP/SAVP 111"
        ]
    );
}
