use rtc_stun::attributes::{ATTR_ICE_CONTROLLED, ATTR_XORMAPPED_ADDRESS};
use rtc_stun::error_code::CODE_ROLE_CONFLICT;
use rtc_stun::message::{BINDING_ERROR, BINDING_SUCCESS};
use rtc_stun::xoraddr::XorMappedAddress;

use super::*;
use crate::net::ice::framing::{Frame, FrameDecoder};

fn room() -> Credentials {
    Credentials { ufrag: "room".into(), pwd: "roompassword0123456789ab".into() }
}

fn caller() -> Credentials {
    Credentials { ufrag: "call".into(), pwd: "callerpassword0123456789".into() }
}

fn peer_address() -> SocketAddr {
    "10.1.2.3:40000".parse().unwrap()
}

/// Every STUN message the connection wrote, parsed.
fn written(connection: &mut IceTcpConnection) -> Vec<Message> {
    let mut decoder = FrameDecoder::default();
    std::iter::from_fn(|| connection.poll_transmit())
        .flat_map(|bytes| decoder.push(&bytes))
        .map(|frame| match frame {
            Frame::Stun(raw) => {
                let mut message = Message::new();
                message.unmarshal_binary(&raw).unwrap();
                message
            }
            Frame::Data(data) => panic!("unexpected data {data:?}"),
        })
        .collect()
}

/// The caller's answer to our check, as pjnath builds it.
fn answer(request: &Message, class: MessageType) -> Vec<u8> {
    let crypto = RingCrypto;
    let mut response = Message::new();
    response.build(&[Box::new(request.transaction_id), Box::new(class)]).unwrap();
    if class == BINDING_ERROR {
        CODE_ROLE_CONFLICT.add_to(&mut response).unwrap();
    }
    MessageIntegrity::new_short_term_integrity_with_provider(caller().pwd, &crypto)
        .add_to(&mut response)
        .unwrap();
    FINGERPRINT.add_to(&mut response).unwrap();
    frame(&response.raw)
}

/// A check from the caller (controlled), signed with `pwd`.
fn caller_check(pwd: &str) -> Vec<u8> {
    let crypto = RingCrypto;
    let mut request = Message::new();
    request
        .build(&[
            Box::new(TransactionId::new()),
            Box::new(BINDING_REQUEST),
            Box::new(TextAttribute::new(ATTR_USERNAME, "room:call".into())),
        ])
        .unwrap();
    request.add(ATTR_ICE_CONTROLLED, &7u64.to_be_bytes());
    request.add(ATTR_PRIORITY, &1u32.to_be_bytes());
    MessageIntegrity::new_short_term_integrity_with_provider(pwd.into(), &crypto)
        .add_to(&mut request)
        .unwrap();
    FINGERPRINT.add_to(&mut request).unwrap();
    frame(&request.raw)
}

fn check_is_valid_for_caller(check: &mut Message) {
    let crypto = RingCrypto;
    assert_eq!(check.typ, BINDING_REQUEST);
    let username = TextAttribute::get_from_as(check, ATTR_USERNAME).unwrap();
    assert_eq!(username.text, "call:room");
    assert!(check.contains(ATTR_ICE_CONTROLLING));
    assert!(check.contains(ATTR_PRIORITY));
    FINGERPRINT.check(check).unwrap();
    MessageIntegrity::check(check, caller().pwd.as_bytes(), &crypto).unwrap();
}

#[test]
fn the_room_checks_then_nominates_and_data_flows() {
    let now = Instant::now();
    let mut link = IceTcpConnection::new(room(), caller(), 42, peer_address(), now);
    let mut checks = written(&mut link);
    assert_eq!(checks.len(), 1);
    check_is_valid_for_caller(&mut checks[0]);
    assert!(!checks[0].contains(ATTR_USE_CANDIDATE), "regular nomination: check first");

    assert!(link.receive(&answer(&checks[0], BINDING_SUCCESS), now).is_empty());
    // Valid, and nominated only when the owner says so (one connection per link).
    assert_eq!(link.state(), State::Checked);
    assert!(written(&mut link).is_empty());
    assert!(link.nominate());
    assert!(!link.nominate(), "a second nomination is refused");
    assert_eq!(link.state(), State::Nominating);
    let mut nominations = written(&mut link);
    check_is_valid_for_caller(&mut nominations[0]);
    assert!(nominations[0].contains(ATTR_USE_CANDIDATE));

    // The caller's TLS bytes may race the nomination's answer: they are held, then given.
    let mut bytes = frame(b"early");
    bytes.extend(answer(&nominations[0], BINDING_SUCCESS));
    let events = link.receive(&bytes, now);
    assert_eq!(events, [IceEvent::Connected, IceEvent::Data(b"early".to_vec())]);
    assert!(link.send(b"client hello"));
    assert_eq!(link.poll_transmit(), Some(frame(b"client hello")));
    assert_eq!(
        link.receive(&frame(b"server hello"), now),
        [IceEvent::Data(b"server hello".to_vec())]
    );

    // Keep-alives once connected.
    let later = link.poll_timeout().unwrap();
    assert_eq!(later, now + KEEPALIVE_INTERVAL);
    assert_eq!(link.handle_timeout(later), None);
    let keepalive = written(&mut link);
    assert_eq!(keepalive[0].typ.class, CLASS_INDICATION);
}

#[test]
fn the_callers_checks_are_answered_and_authenticated() {
    let now = Instant::now();
    let mut link = IceTcpConnection::new(room(), caller(), 42, peer_address(), now);
    written(&mut link);
    assert!(link.receive(&caller_check(&room().pwd), now).is_empty());
    let mut responses = written(&mut link);
    assert_eq!(responses.len(), 1);
    let response = &mut responses[0];
    assert_eq!(response.typ, BINDING_SUCCESS);
    let mut mapped = XorMappedAddress::default();
    mapped.get_from_as(response, ATTR_XORMAPPED_ADDRESS).unwrap();
    assert_eq!(SocketAddr::new(mapped.ip, mapped.port), peer_address());
    MessageIntegrity::check(response, room().pwd.as_bytes(), &RingCrypto).unwrap();

    // A check signed with the wrong password: 401, counted.
    link.receive(&caller_check("wrong password"), now);
    let responses = written(&mut link);
    assert_eq!(responses[0].typ, BINDING_ERROR);
    assert_eq!(link.counters().bad_stun, 1);
}

#[test]
fn a_refusal_or_silence_fails_the_connection() {
    let now = Instant::now();
    let mut link = IceTcpConnection::new(room(), caller(), 42, peer_address(), now);
    let checks = written(&mut link);
    let events = link.receive(&answer(&checks[0], BINDING_ERROR), now);
    assert_eq!(events, [IceEvent::Failed(IceError::Refused(487))]);

    let mut link = IceTcpConnection::new(room(), caller(), 42, peer_address(), now);
    assert_eq!(link.poll_timeout(), Some(now + CHECK_TIMEOUT));
    assert_eq!(link.handle_timeout(now + Duration::from_secs(1)), None);
    assert_eq!(
        link.handle_timeout(now + CHECK_TIMEOUT),
        Some(IceEvent::Failed(IceError::Timeout(CHECK_TIMEOUT)))
    );
    assert!(!link.send(b"too early"));
}

#[test]
fn garbage_and_floods_before_nomination_are_bounded() {
    let now = Instant::now();
    let mut link = IceTcpConnection::new(room(), caller(), 42, peer_address(), now);
    written(&mut link);
    // A STUN-shaped frame that does not parse, and a response to nothing of ours.
    let mut junk = vec![0x01, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    junk.extend([0; 12]);
    link.receive(&frame(&junk), now);
    assert_eq!(link.counters().stray_responses + link.counters().bad_stun, 1);
    let events = link.receive(&frame(&vec![0x16; 65_535]), now);
    assert!(events.is_empty());
    let events = link.receive(&frame(&vec![0x16; 65_535]), now);
    assert_eq!(events, [IceEvent::Failed(IceError::EarlyData)]);
}
