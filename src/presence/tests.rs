use std::sync::OnceLock;
use std::time::SystemTime;

use super::*;
use crate::dht::crypto::PublicKey;
use crate::dht::node::{certificate_id, check_value};

fn identities() -> &'static (RoomIdentity, RoomIdentity) {
    static IDENTITIES: OnceLock<(RoomIdentity, RoomIdentity)> = OnceLock::new();
    IDENTITIES.get_or_init(|| {
        let generate = || RoomIdentity::generate_blocking(SystemTime::now()).unwrap();
        (generate(), generate())
    })
}

fn device_key(identity: &RoomIdentity) -> PrivateKey {
    PrivateKey::from_pem(identity.device().private_key.expose()).unwrap()
}

/// A request from `caller` to `room`, built as jamid builds it.
fn request_body(user_type: &str) -> Body {
    let mut body = PeerConnectionData {
        id: 4242,
        ice_msg: "ufrag\npwd\n".into(),
        is_answer: false,
        connection_type: "videoCall".into(),
    }
    .into_body();
    body.user_type = Some(user_type.to_owned());
    body
}

#[test]
fn peer_key_is_sha1_of_peer_and_the_device_id() {
    let device: DeviceId = "0123456789abcdef0123456789abcdef01234567".parse().unwrap();
    assert_eq!(peer_key(device), InfoHash::of(b"peer:0123456789abcdef0123456789abcdef01234567"));
}

#[test]
fn certificate_value_is_stored_at_the_device_id() {
    let (room, _) = identities();
    let value = certificate_value(room);
    let Content::Clear { body, signature: None } = &value.content else { panic!("unsigned") };
    let pem: serde_bytes::ByteBuf = rmp_serde::from_slice(&body.data).unwrap();
    assert_eq!(pem.as_slice(), room.certificate_chain_pem().as_bytes());
    assert_eq!(certificate_id(&body.data), Some(InfoHash::from(room.device_id())));
    check_value(&InfoHash::from(room.device_id()), &value).unwrap();
    assert!(check_value(&InfoHash::of(b"elsewhere"), &value).is_err(), "only at its own key");
}

#[test]
fn announcement_is_signed_by_the_account() {
    let (room, _) = identities();
    let value = announcement_value(room).unwrap();
    assert_eq!(announcement_value(room).unwrap(), value, "stable across restarts");
    let Content::Clear { body, signature: Some(_) } = &value.content else { panic!("signed") };
    let owner = PublicKey::from_spki_der(body.owner.as_ref().unwrap()).unwrap();
    assert_eq!(owner.id(), InfoHash::from(room.account_id()), "owner id is the Jami ID");
    check_value(&InfoHash::from(room.account_id()), &value).unwrap();
    #[derive(serde::Deserialize)]
    struct Announcement {
        dev: serde_bytes::ByteBuf,
        pk: serde_bytes::ByteBuf,
    }
    let announcement: Announcement = rmp_serde::from_slice(&body.data).unwrap();
    assert_eq!(announcement.dev.as_slice(), room.device_id().as_bytes());
    assert_eq!(announcement.pk.as_slice(), room.chain().public_keys_der()[0].as_slice());
}

#[test]
fn requests_open_only_when_sealed_for_us_and_signed() {
    let (room, caller) = identities();
    let room_key = device_key(room);
    let caller_key = device_key(caller);
    let sealed =
        seal(&caller_key, room_key.public_key(), 99, request_body("peer_request")).unwrap();
    let request = open_request(&room_key, &sealed).unwrap();
    assert_eq!(
        (request.id, request.ice_message.as_str(), request.is_answer),
        (4242, "ufrag\npwd\n", false)
    );
    assert_eq!(request.connection_type, "videoCall");
    assert_eq!(request.sender_id(), InfoHash::from(caller.device_id()));

    // For another device: that device's key cannot open it, ours sees it is not for us.
    let for_caller =
        seal(&caller_key, caller_key.public_key(), 1, request_body("peer_request")).unwrap();
    assert!(matches!(open_request(&room_key, &for_caller), Err(RequestError::Undecryptable(_))));
    let mut body = request_body("peer_request");
    body.set_recipient(Some(caller_key.public_key().id()));
    let Value { content, .. } = sign(&caller_key, 1, body);
    let misaddressed = Value::new(
        1,
        Content::Encrypted(serde_bytes::ByteBuf::from(
            room_key.public_key().encrypt(&crate::dht::value::encode(&content)).unwrap(),
        )),
    );
    assert_eq!(open_request(&room_key, &misaddressed), Err(RequestError::NotForUs));

    let other_type =
        seal(&caller_key, room_key.public_key(), 2, request_body("text/plain")).unwrap();
    assert_eq!(open_request(&room_key, &other_type), Err(RequestError::NotARequest));

    let plain = certificate_value(caller);
    assert_eq!(open_request(&room_key, &plain), Err(RequestError::NotEncrypted));
    let garbage = Value::new(3, Content::Encrypted(serde_bytes::ByteBuf::from(vec![7u8; 600])));
    assert!(open_request(&room_key, &garbage).is_err());

    // A signature that does not match the body.
    let mut body = request_body("peer_request");
    body.set_recipient(Some(room_key.public_key().id()));
    let Value { content, .. } = sign(&caller_key, 4, body);
    let Content::Clear { mut body, signature } = content else { unreachable!() };
    body.data = serde_bytes::ByteBuf::from(b"tampered".to_vec());
    let tampered = Content::Clear { body, signature };
    let cypher = room_key.public_key().encrypt(&crate::dht::value::encode(&tampered)).unwrap();
    let forged = Value::new(4, Content::Encrypted(serde_bytes::ByteBuf::from(cypher)));
    assert_eq!(open_request(&room_key, &forged), Err(RequestError::BadSignature));
}

#[test]
fn the_answer_carries_the_requests_id_and_opens_only_for_the_caller() {
    let (room, caller) = identities();
    let room_key = device_key(room);
    let caller_key = device_key(caller);
    let sealed =
        seal(&caller_key, room_key.public_key(), 99, request_body("peer_request")).unwrap();
    let request = open_request(&room_key, &sealed).unwrap();
    let answer = answer_value(
        &room_key,
        &request,
        "r\np\nH1 1 TCP 1 10.0.0.1 5 typ host tcptype passive\n".into(),
    )
    .unwrap();
    let opened = open_request(&caller_key, &answer).unwrap();
    assert!(opened.is_answer);
    assert_eq!(opened.id, 4242);
    assert!(opened.ice_message.ends_with("tcptype passive\n"));
    assert_eq!(opened.connection_type, "");
    assert_eq!(opened.sender_id(), InfoHash::from(room.device_id()));
    assert!(open_request(&room_key, &answer).is_err(), "sealed to the caller only");
}
