use sipx_sip::{Limits, Message, StreamParser};

use super::*;

/// An INVITE as Jami 13.7 sends it (jami-protocol.md §6.2), without its SDP.
const INVITE: &str = "INVITE sips:198.18.0.1:40000;transport=tls SIP/2.0\r\n\
    Via: SIP/2.0/TLS 198.18.0.1:41000;rport;branch=z9hG4bKPjabc\r\n\
    Max-Forwards: 70\r\n\
    From: <sip:5942a65f5d12c0944733f7227bec89d872f5e491@ring.dht>;tag=xyz\r\n\
    To: <sips:0f106bf56b3b56c4f345514d2cebdd5774758dfd@198.18.0.1:40000;transport=tls>\r\n\
    Contact: \"\" <sips:aaaa@198.18.0.1:41000;transport=tls>\r\n\
    Call-ID: call-1\r\n\
    CSeq: 7 INVITE\r\n\
    Subject: Phone call\r\n\
    User-Agent: Jami Daemon 13.7.0 (linux)\r\n\
    Content-Length: 0\r\n\r\n";

fn parse(text: &str) -> Vec<Message> {
    StreamParser::new(Limits::stream()).push(text.as_bytes()).unwrap()
}

fn request(text: &str) -> Request {
    match parse(text).remove(0) {
        Message::Request(request) => request,
        Message::Response(_) => panic!("a response"),
    }
}

fn response(bytes: &[u8]) -> Response {
    match StreamParser::new(Limits::stream()).push(bytes).unwrap().remove(0) {
        Message::Response(response) => response,
        Message::Request(_) => panic!("a request"),
    }
}

#[test]
fn an_invite_gets_trying_then_busy_with_our_tag() {
    let responses = respond(&request(INVITE), "room1");
    assert_eq!(responses.len(), 2);
    let trying = response(&responses[0]);
    assert_eq!(trying.status.code(), 100);
    let busy = response(&responses[1]);
    assert_eq!(busy.status.code(), 486);
    let to = busy.headers.value(&HeaderName::To).unwrap();
    assert!(String::from_utf8_lossy(&to).ends_with(";tag=room1"), "{to:?}");
    let text = String::from_utf8_lossy(&responses[1]);
    for expected in
        ["Call-ID: call-1", "CSeq: 7 INVITE", "Content-Length: 0", "branch=z9hG4bKPjabc"]
    {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    assert!(text.contains("MESSAGE") && text.contains("INFO"), "Allow lists them: {text}");
    assert!(!text.contains("Jami Daemon 13"), "we do not claim to be Jami: {text}");
}

#[test]
fn options_and_messages_get_200_and_ack_gets_nothing() {
    let options = INVITE.replace("INVITE sips", "OPTIONS sips").replace("7 INVITE", "8 OPTIONS");
    let responses = respond(&request(&options), "t");
    assert_eq!(response(&responses[0]).status.code(), 200);
    let message = INVITE.replace("INVITE sips", "MESSAGE sips").replace("7 INVITE", "9 MESSAGE");
    assert_eq!(response(&respond(&request(&message), "t")[0]).status.code(), 200);
    let ack = INVITE.replace("INVITE sips", "ACK sips").replace("7 INVITE", "7 ACK");
    assert!(respond(&request(&ack), "t").is_empty());
    let subscribe =
        INVITE.replace("INVITE sips", "SUBSCRIBE sips").replace("7 INVITE", "10 SUBSCRIBE");
    assert_eq!(response(&respond(&request(&subscribe), "t")[0]).status.code(), 405);
}

#[test]
fn an_answered_invite_gets_trying_ringing_and_ok_with_the_sdp() {
    let sdp = "v=0\r\no=rdv 1 0 IN IP4 198.18.0.1\r\ns=rdv\r\nt=0 0\r\n";
    let contact = "<sips:abcd@198.18.0.1:40000;transport=tls>";
    let responses = answer_invite(&request(INVITE), "room1", contact, sdp);
    let codes: Vec<u16> = responses.iter().map(|r| response(r).status.code()).collect();
    assert_eq!(codes, [100, 180, 200]);
    let ok = response(&responses[2]);
    assert_eq!(ok.body().as_ref(), sdp.as_bytes());
    let text = String::from_utf8_lossy(&responses[2]);
    assert!(text.contains("Content-Type: application/sdp"), "{text}");
    assert!(text.contains(&format!("Contact: {contact}")), "{text}");
    assert!(text.contains(&format!("Content-Length: {}", sdp.len())), "{text}");
    assert_eq!(call_id(&request(INVITE)).as_ref().map(CallId::as_str), Some("call-1"));
    let rejected = reject(&request(INVITE), 488, "Not Acceptable Here", "t");
    assert_eq!(response(&rejected[1]).status.code(), 488);
}

/// jamid's reading of a peer's User-Agent (`SIPCall::setPeerUaVersion`): the version after
/// "Jami Daemon ", cut at the first '-', else at the first ' '.
fn jamid_version(user_agent: &str) -> Option<Vec<u32>> {
    let rest = &user_agent[user_agent.find("Jami Daemon ")? + "Jami Daemon ".len()..];
    let version = match rest.find('-') {
        Some(at) => &rest[..at],
        None => &rest[..rest.find(' ')?],
    };
    version.split('.').map(|part| part.parse().ok()).collect()
}

#[test]
fn jamid_reads_a_version_below_every_ability_we_lack() {
    let version = jamid_version(USER_AGENT).expect("parsable as jamid parses it");
    assert_eq!(version, [10, 0, 1]);
    // multi-stream, ICE reuse in re-INVITE, multi-ICE, multi-audio (sipcall.cpp thresholds)
    for threshold in [[10, 0, 2], [11, 0, 2], [13, 3, 0], [13, 11, 0]] {
        assert!(version.as_slice() < threshold.as_slice(), "{threshold:?}");
    }
    assert!(USER_AGENT.contains("rdv"));
}

#[test]
fn a_transfer_is_refused_with_405_and_what_we_allow() {
    // Today's clients send REFER when their user transfers a call (daemon 1156ab9b95).
    let refer = INVITE
        .replace("INVITE sips", "REFER sips")
        .replace("7 INVITE", "11 REFER")
        .replace("Content-Length: 0", "Refer-To: <sip:someone@ring.dht>\r\nContent-Length: 0");
    let refused = response(&respond(&request(&refer), "t")[0]);
    assert_eq!(refused.status.code(), 405);
    let allow = refused.headers.value(&HeaderName::Allow).unwrap();
    assert_eq!(String::from_utf8_lossy(&allow), ALLOW);
    assert!(!ALLOW.contains("REFER"));
}
