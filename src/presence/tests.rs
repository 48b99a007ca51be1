use std::sync::OnceLock;
use std::time::SystemTime;

use super::*;
use crate::dht::crypto::PublicKey;
use crate::dht::node::{certificate_keys, check_value};
use crate::identity::DeviceLongId;

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
fn peer_keys_are_sha1_of_peer_and_the_device_id_of_each_era() {
    let (room, _) = identities();
    let key = device_key(room);
    let (id, long) = (room.device_id(), room.device_long_id());
    assert_eq!(id.to_string().len(), 40);
    assert_eq!(long.to_string().len(), 64);
    // dhtnet: InfoHash::get("peer:" + pk.getId().to_view()) and ... getLongId().to_view().
    assert_eq!(
        ProtocolEra::Legacy.peer_key(key.public_key()),
        InfoHash::of(format!("peer:{id}").as_bytes())
    );
    assert_eq!(
        ProtocolEra::Current.peer_key(key.public_key()),
        InfoHash::of(format!("peer:{long}").as_bytes())
    );
}

#[test]
fn certificate_keys_follow_opendht_2_and_4() {
    // OpenDHT's InfoHash::get(PkId): SHA-1 over the long id's 32 raw bytes.
    let long: DeviceLongId =
        "5757c743fcac3e32c0cf7ed6c233f108630f77d3a482fa10d7c6b3078bf54cb4".parse().unwrap();
    assert_eq!(InfoHash::from(long), InfoHash::of(long.as_bytes()));
    let (room, _) = identities();
    let key = device_key(room);
    assert_eq!(
        ProtocolEra::Legacy.certificate_key(key.public_key()),
        InfoHash::from(room.device_id())
    );
    assert_eq!(
        ProtocolEra::Current.certificate_key(key.public_key()),
        InfoHash::from(room.device_long_id())
    );
}

#[test]
fn certificate_value_is_stored_at_both_of_the_devices_keys_only() {
    let (room, caller) = identities();
    let value = certificate_value(room);
    let Content::Clear { body, signature: None } = &value.content else { panic!("unsigned") };
    let pem: serde_bytes::ByteBuf = rmp_serde::from_slice(&body.data).unwrap();
    assert_eq!(pem.as_slice(), room.certificate_chain_pem().as_bytes());
    let keys = [InfoHash::from(room.device_id()), InfoHash::from(room.device_long_id())];
    assert_eq!(certificate_keys(&body.data), Some(keys));
    for key in keys {
        check_value(&key, &value).unwrap();
    }
    // Anywhere else is refused: a key of the text, the long id's hex, another device's keys.
    let long_hex = room.device_long_id().to_string();
    for elsewhere in [
        InfoHash::of(b"elsewhere"),
        InfoHash::of(long_hex.as_bytes()),
        InfoHash::from(caller.device_id()),
        InfoHash::from(caller.device_long_id()),
        InfoHash::from(room.account_id()),
    ] {
        assert!(check_value(&elsewhere, &value).is_err(), "not at {elsewhere}");
    }
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
    let request = open_request(&room_key, &sealed, ProtocolEra::Current).unwrap();
    assert_eq!(
        (request.id, request.ice_message.as_str(), request.is_answer),
        (4242, "ufrag\npwd\n", false)
    );
    assert_eq!(request.connection_type, "videoCall");
    assert_eq!(request.sender_id(), InfoHash::from(caller.device_id()));

    // For another device: that device's key cannot open it, ours sees it is not for us.
    let for_caller =
        seal(&caller_key, caller_key.public_key(), 1, request_body("peer_request")).unwrap();
    assert!(matches!(
        open_request(&room_key, &for_caller, ProtocolEra::Legacy),
        Err(RequestError::Undecryptable(_))
    ));
    let mut body = request_body("peer_request");
    body.set_recipient(Some(caller_key.public_key().id()));
    let Value { content, .. } = sign(&caller_key, 1, body);
    let misaddressed = Value::new(
        1,
        Content::Encrypted(serde_bytes::ByteBuf::from(
            room_key.public_key().encrypt(&crate::dht::value::encode(&content)).unwrap(),
        )),
    );
    assert_eq!(
        open_request(&room_key, &misaddressed, ProtocolEra::Legacy),
        Err(RequestError::NotForUs)
    );

    let other_type =
        seal(&caller_key, room_key.public_key(), 2, request_body("text/plain")).unwrap();
    assert_eq!(
        open_request(&room_key, &other_type, ProtocolEra::Legacy),
        Err(RequestError::NotARequest)
    );

    let plain = certificate_value(caller);
    assert_eq!(
        open_request(&room_key, &plain, ProtocolEra::Legacy),
        Err(RequestError::NotEncrypted)
    );
    let garbage = Value::new(3, Content::Encrypted(serde_bytes::ByteBuf::from(vec![7u8; 600])));
    assert!(open_request(&room_key, &garbage, ProtocolEra::Legacy).is_err());

    // A signature that does not match the body.
    let mut body = request_body("peer_request");
    body.set_recipient(Some(room_key.public_key().id()));
    let Value { content, .. } = sign(&caller_key, 4, body);
    let Content::Clear { mut body, signature } = content else { unreachable!() };
    body.data = serde_bytes::ByteBuf::from(b"tampered".to_vec());
    let tampered = Content::Clear { body, signature };
    let cypher = room_key.public_key().encrypt(&crate::dht::value::encode(&tampered)).unwrap();
    let forged = Value::new(4, Content::Encrypted(serde_bytes::ByteBuf::from(cypher)));
    assert_eq!(
        open_request(&room_key, &forged, ProtocolEra::Legacy),
        Err(RequestError::BadSignature)
    );
}

#[test]
fn the_answer_carries_the_requests_id_and_opens_only_for_the_caller() {
    let (room, caller) = identities();
    let room_key = device_key(room);
    let caller_key = device_key(caller);
    let sealed =
        seal(&caller_key, room_key.public_key(), 99, request_body("peer_request")).unwrap();
    let request = open_request(&room_key, &sealed, ProtocolEra::Current).unwrap();
    let answer = answer_value(
        &room_key,
        &request,
        "r\np\nH1 1 TCP 1 10.0.0.1 5 typ host tcptype passive\n".into(),
    )
    .unwrap();
    let opened = open_request(&caller_key, &answer, ProtocolEra::Legacy).unwrap();
    assert!(opened.is_answer);
    assert_eq!(opened.id, 4242);
    assert!(opened.ice_message.ends_with("tcptype passive\n"));
    assert_eq!(opened.connection_type, "");
    assert_eq!(opened.sender_id(), InfoHash::from(room.device_id()));
    assert!(
        open_request(&room_key, &answer, ProtocolEra::Legacy).is_err(),
        "sealed to the caller only"
    );
}
