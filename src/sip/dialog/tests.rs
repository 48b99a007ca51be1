use sipx_sip::{Limits, Message, StreamParser};

use super::*;

const INVITE: &str = "INVITE sips:198.18.0.1:40000;transport=tls SIP/2.0\r\n\
    Via: SIP/2.0/TLS 198.18.0.1:41000;rport;branch=z9hG4bKPjabc\r\n\
    Max-Forwards: 70\r\n\
    From: <sip:5942a65f5d12c0944733f7227bec89d872f5e491@ring.dht>;tag=xyz\r\n\
    To: <sips:0f106bf56b3b56c4f345514d2cebdd5774758dfd@198.18.0.1:40000;transport=tls>\r\n\
    Contact: \"\" <sips:aaaa@198.18.0.1:41000;transport=tls>\r\n\
    Call-ID: call-1\r\n\
    CSeq: 7 INVITE\r\n\
    Content-Length: 0\r\n\r\n";

fn parse(bytes: &[u8]) -> Request {
    match StreamParser::new(Limits::stream()).push(bytes).unwrap().remove(0) {
        Message::Request(request) => request,
        Message::Response(_) => panic!("a response"),
    }
}

#[test]
fn a_keyframe_request_goes_to_the_callers_contact_in_the_dialog() {
    let mut dialog = Dialog::answered(&parse(INVITE.as_bytes()), "room1").unwrap();
    let local: SocketAddr = "198.18.0.1:40000".parse().unwrap();
    let first = dialog.request(Method::Info, local, MEDIA_CONTROL, KEYFRAME_REQUEST).unwrap();
    let second =
        parse(&dialog.request(Method::Info, local, MEDIA_CONTROL, KEYFRAME_REQUEST).unwrap());
    let info = parse(&first);
    assert_eq!(info.method, Method::Info);
    assert_eq!(info.uri.to_string(), "sips:aaaa@198.18.0.1:41000;transport=tls");
    let value = |request: &Request, name| {
        String::from_utf8(request.headers.value(&name).unwrap().to_vec()).unwrap()
    };
    assert!(value(&info, HeaderName::From).ends_with(";tag=room1"));
    assert_eq!(
        value(&info, HeaderName::To),
        "<sip:5942a65f5d12c0944733f7227bec89d872f5e491@ring.dht>;tag=xyz"
    );
    assert_eq!(value(&info, HeaderName::CallId), "call-1");
    assert_eq!(value(&info, HeaderName::CSeq), "1 INFO");
    assert_eq!(value(&second, HeaderName::CSeq), "2 INFO");
    assert_eq!(MediaControl::parse(info.body()), Some(MediaControl::KeyframeRequest));
}

#[test]
fn a_re_invite_keeps_our_cseq_going() {
    let invite = parse(INVITE.as_bytes());
    let mut dialog = Dialog::answered(&invite, "room1").unwrap();
    let local: SocketAddr = "198.18.0.1:40000".parse().unwrap();
    for _ in 0..5 {
        dialog.request(Method::Message, local, "text/plain", "hi").unwrap();
    }
    let reinvite = INVITE
        .replace("CSeq: 7", "CSeq: 8")
        .replace("41000;transport=tls>", "41002;transport=tls>");
    let mut dialog = dialog.refreshed(&parse(reinvite.as_bytes()), "room1").unwrap();
    let bye = parse(&dialog.request(Method::Bye, local, "", "").unwrap());
    let value = |name| String::from_utf8(bye.headers.value(&name).unwrap().to_vec()).unwrap();
    assert_eq!(value(HeaderName::CSeq), "6 BYE");
    assert_eq!(bye.uri.to_string(), "sips:aaaa@198.18.0.1:41002;transport=tls");
}

#[test]
fn an_invite_without_a_from_tag_makes_no_dialog() {
    let invite = INVITE.replace(";tag=xyz", "");
    assert!(Dialog::answered(&parse(invite.as_bytes()), "room1").is_none());
}

#[test]
fn media_control_bodies_as_jami_writes_them() {
    let body = |inner: &str| {
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\" ?><media_control><vc_primitive>\
             <to_encoder>{inner}</to_encoder></vc_primitive></media_control>"
        )
    };
    let parse = |inner: &str| MediaControl::parse(body(inner).as_bytes());
    assert_eq!(parse("<mute_state=1/>"), Some(MediaControl::MuteState(true)));
    assert_eq!(parse("<mute_state=0/>"), Some(MediaControl::MuteState(false)));
    assert_eq!(parse("<voice_activity=1/>"), Some(MediaControl::VoiceActivity(true)));
    assert_eq!(parse("<recording_state=1/>"), None);
    assert_eq!(parse("<mute_state=x/>"), None);
    assert_eq!(MediaControl::parse(b"mute_state="), None);
    assert_eq!(MediaControl::parse(&[0xff, 0xfe]), None);
}
