use super::*;

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

/// Everything the multiplexer wants to write.
fn written(mux: &mut Multiplexer) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| mux.poll_transmit()).collect()
}

/// A message as Jami writes it: `[channel, bin(payload)]`.
fn message(channel: u16, payload: &[u8]) -> Vec<u8> {
    rmp_serde::to_vec(&(channel, serde_bytes::Bytes::new(payload))).unwrap()
}

fn request(name: &str, channel: u16) -> Vec<u8> {
    message(CONTROL_CHANNEL, &rmp_serde::to_vec(&(name, channel, 0u8)).unwrap())
}

#[test]
fn the_version_goes_out_first_as_jami_encodes_it() {
    let mut mux = Multiplexer::new();
    assert_eq!(written(&mut mux), [hex("92 cd ff ff c4 04 81 a1 76 01")]);
    let events = mux.receive(&hex("92 cd ff ff c4 04 81 a1 76 01")).unwrap();
    assert_eq!(events, [MuxEvent::PeerVersion(1)]);
}

#[test]
fn a_sip_request_is_accepted_with_jamis_bytes_and_data_flows() {
    let mut mux = Multiplexer::new();
    written(&mut mux);
    let events = mux.receive(&request("sip", 1234)).unwrap();
    assert_eq!(
        events,
        [MuxEvent::ChannelRequested { channel: ChannelId(1234), name: "sip".into() }]
    );
    mux.accept(ChannelId(1234));
    assert_eq!(written(&mut mux), [hex("92 00 c4 09 93 a3 73 69 70 cd 04 d2 01")]);

    let events = mux.receive(&message(1234, b"OPTIONS sip:x SIP/2.0\r\n")).unwrap();
    assert_eq!(
        events,
        [MuxEvent::Data { channel: ChannelId(1234), data: b"OPTIONS sip:x SIP/2.0\r\n".to_vec() }]
    );
    assert!(mux.send(ChannelId(1234), b"SIP/2.0 200 OK\r\n"));
    assert_eq!(written(&mut mux), [message(1234, b"SIP/2.0 200 OK\r\n")]);
}

#[test]
fn messages_split_anywhere_and_glued_together_are_reassembled() {
    let mut mux = Multiplexer::new();
    let mut stream = request("sip", 7);
    stream.extend(hex("92 cd ff ff c4 04 81 a1 76 01"));
    let mut events = Vec::new();
    for byte in &stream {
        events.extend(mux.receive(std::slice::from_ref(byte)).unwrap());
    }
    assert_eq!(
        events,
        [
            MuxEvent::ChannelRequested { channel: ChannelId(7), name: "sip".into() },
            MuxEvent::PeerVersion(1)
        ]
    );
    mux.accept(ChannelId(7));
    let big = vec![0x42; 70_000];
    let mut stream = message(7, &big[..65_535]);
    stream.extend(message(7, &big[65_535..]));
    let events = mux.receive(&stream).unwrap();
    assert_eq!(events.len(), 2);
}

#[test]
fn unknown_channels_are_declined_by_the_owner_and_duplicates_automatically() {
    let mut mux = Multiplexer::new();
    written(&mut mux);
    mux.receive(&request("git://abc/def", 9)).unwrap();
    mux.decline(ChannelId(9));
    let declined = rmp_serde::to_vec(&("git://abc/def", 9u16, 2u8)).unwrap();
    assert_eq!(written(&mut mux), [message(CONTROL_CHANNEL, &declined)]);
    // Data for a declined channel is ignored and counted.
    assert!(mux.receive(&message(9, b"x")).unwrap().is_empty());
    assert_eq!(mux.counters().unknown_channel, 1);

    mux.receive(&request("sip", 3)).unwrap();
    mux.accept(ChannelId(3));
    written(&mut mux);
    assert!(mux.receive(&request("sip", 3)).unwrap().is_empty(), "a channel already open");
    let declined = rmp_serde::to_vec(&("sip", 3u16, 2u8)).unwrap();
    assert_eq!(written(&mut mux), [message(CONTROL_CHANNEL, &declined)]);
}

#[test]
fn an_empty_payload_closes_a_channel_both_ways() {
    let mut mux = Multiplexer::new();
    mux.receive(&request("sip", 5)).unwrap();
    mux.accept(ChannelId(5));
    assert_eq!(mux.receive(&message(5, &[])).unwrap(), [MuxEvent::ChannelClosed(ChannelId(5))]);
    assert!(!mux.send(ChannelId(5), b"late"));

    mux.receive(&request("sip", 6)).unwrap();
    mux.accept(ChannelId(6));
    written(&mut mux);
    mux.close(ChannelId(6));
    assert_eq!(written(&mut mux), [message(6, &[])]);
}

#[test]
fn beacons_are_answered_and_ours_time_out_when_unanswered() {
    let mut mux = Multiplexer::new();
    written(&mut mux);
    let beacon = |p: bool| {
        message(PROTOCOL_CHANNEL, &rmp_serde::to_vec_named(&BeaconMessage { p }).unwrap())
    };
    // Jami's beacon, and the version inside the control channel (both are accepted there).
    mux.receive(&beacon(true)).unwrap();
    assert_eq!(written(&mut mux), [beacon(false)]);

    let start = Instant::now();
    mux.send_beacon(start);
    assert!(written(&mut mux).is_empty(), "no beacon before the peer announced version 1");
    mux.receive(&message(
        CONTROL_CHANNEL,
        &rmp_serde::to_vec_named(&VersionMessage { v: 1 }).unwrap(),
    ))
    .unwrap();
    mux.send_beacon(start);
    assert_eq!(written(&mut mux), [beacon(true)]);
    assert_eq!(mux.poll_timeout(), Some(start + BEACON_TIMEOUT));
    mux.receive(&beacon(false)).unwrap();
    assert_eq!(mux.poll_timeout(), None, "answered");

    mux.send_beacon(start);
    assert_eq!(mux.handle_timeout(start + Duration::from_secs(1)), None);
    assert_eq!(mux.handle_timeout(start + BEACON_TIMEOUT), Some(MuxEvent::BeaconTimeout));
}

#[test]
fn garbage_is_an_error_and_junk_control_objects_are_counted() {
    let mut mux = Multiplexer::new();
    assert!(mux.receive(&hex("c1")).is_err(), "a reserved msgpack marker");
    let mut mux = Multiplexer::new();
    assert!(matches!(mux.receive(&hex("92 a3 61 62 63 c4 00")), Err(MuxError::Malformed(_))));
    let mut mux = Multiplexer::new();
    // A bin header announcing 100 kB: waits for the bytes, then refuses to buffer past the limit.
    let mut huge = hex("92 01 c6 00 01 86 a0");
    assert!(mux.receive(&huge).unwrap().is_empty());
    huge = vec![0; 70_000];
    assert_eq!(mux.receive(&huge), Err(MuxError::Oversized));

    let mut mux = Multiplexer::new();
    mux.receive(&message(CONTROL_CHANNEL, b"\x93\xa1x")).unwrap();
    mux.receive(&message(
        PROTOCOL_CHANNEL,
        &rmp_serde::to_vec_named(&VersionMessage { v: 1 }).unwrap()[..2],
    ))
    .unwrap();
    mux.receive(&request("sip", 0)).unwrap();
    assert_eq!(mux.counters().bad_control, 3);
}
