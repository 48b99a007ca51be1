use super::*;

/// A message as the daemon's msgpack-c packs `MessageChannelHandler::Message`: a map of its
/// four fields in declaration order, `req` a null `unique_ptr` (nil).
fn daemon_packed(id: u8, content_type: &str, content: &str) -> Vec<u8> {
    let mut packed = vec![0x84, 0xa2, b'i', b'd', id, 0xa1, b't'];
    packed.push(0xa0 | u8::try_from(content_type.len()).unwrap());
    packed.extend(content_type.as_bytes());
    packed.extend([0xa1, b'c', 0xa0 | u8::try_from(content.len()).unwrap()]);
    packed.extend(content.as_bytes());
    packed.extend([0xa3, b'r', b'e', b'q', 0xc0]);
    packed
}

#[test]
fn messages_are_packed_as_the_daemon_packs_them() {
    assert_eq!(encode(7, TEXT_PLAIN, "hello room"), daemon_packed(7, TEXT_PLAIN, "hello room"));
}

#[test]
fn messages_are_read_in_any_cuts() {
    let mut stream = daemon_packed(1, TEXT_PLAIN, "first");
    stream.extend(daemon_packed(2, "message/imdn+xml", "<imdn/>"));
    stream.extend(encode(u64::MAX, TEXT_PLAIN, "élan"));
    for cut in 0..stream.len() {
        let mut reader = MessageReader::default();
        let mut messages = reader.push(&stream[..cut]).unwrap();
        messages.extend(reader.push(&stream[cut..]).unwrap());
        let read: Vec<_> =
            messages.iter().map(|m| (m.id, m.content_type.as_str(), m.content.as_str())).collect();
        assert_eq!(
            read,
            [
                (1, TEXT_PLAIN, "first"),
                (2, "message/imdn+xml", "<imdn/>"),
                (u64::MAX, TEXT_PLAIN, "élan")
            ],
            "cut at {cut}"
        );
    }
}

#[test]
fn a_conversation_request_inside_is_skipped() {
    // `req` set: a map the room does not read.
    let mut packed = daemon_packed(3, "application/invite+json", "{}");
    packed.truncate(packed.len() - 1);
    packed.extend([0x81, 0xa1, b'x', 0x93, 1, 2, 3]);
    let messages = MessageReader::default().push(&packed).unwrap();
    assert_eq!(messages[0].content_type, "application/invite+json");
}

#[test]
fn hostile_streams_end_the_channel_without_holding_memory() {
    for junk in [&[0x93, 1, 2, 3][..], &[0xc1], &[0x81, 0xa1, b'c', 0x05], b"GET / HTTP/1.1\r\n"] {
        assert!(
            matches!(MessageReader::default().push(junk), Err(MessageChannelError::Malformed(_))),
            "{junk:?}"
        );
    }
    // A text that claims 4 GiB: waited for, up to the largest message, then given up.
    let mut reader = MessageReader::default();
    let mut claim = vec![0x84, 0xa2, b'i', b'd', 1, 0xa1, b't', 0xdb, 0xff, 0xff, 0xff, 0xff];
    claim.extend([b'x'; 1000]);
    assert_eq!(reader.push(&claim).unwrap(), []);
    let mut result = Ok(Vec::new());
    for _ in 0..100 {
        result = reader.push(&[b'x'; 1000]);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(MessageChannelError::Oversized));
    // Invalid UTF-8 in a text is refused, not passed on.
    let mut packed = daemon_packed(4, TEXT_PLAIN, "ab");
    let at = packed.len() - 7;
    packed[at] = 0xff;
    assert!(MessageReader::default().push(&packed).is_err());
}

#[test]
fn ids_are_drawn_as_jamid_draws_them() {
    for _ in 0..1000 {
        assert!((1..=1 << 53).contains(&new_id()));
    }
}
