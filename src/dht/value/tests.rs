use super::*;

/// The captured vectors (opendht-wire-vectors.json), shared with the wire tests.
pub(crate) fn vectors() -> serde_json::Value {
    serde_json::from_str(include_str!("../../../../shared/spec/opendht-wire-vectors.json")).unwrap()
}

fn crypto_vector(name: &str, field: &str) -> Vec<u8> {
    hex::decode(vectors()["crypto"][name][field].as_str().unwrap()).unwrap()
}

#[test]
fn signed_value_decodes_and_re_encodes_byte_for_byte() {
    let packed = crypto_vector("signed_value", "packed_value_hex");
    let value = Value::decode(&packed).unwrap();
    assert_eq!(value.encode(), packed);
    let Content::Clear { body, signature: Some(signature) } = &value.content else {
        panic!("signed value expected: {value:?}");
    };
    assert_eq!(body.seq, Some(0));
    assert_eq!(body.to_sign(), crypto_vector("signed_value", "to_sign_hex"), "the signed bytes");
    assert_eq!(signature.to_vec(), crypto_vector("signed_value", "signature_hex"));
    let owner = body.owner.as_ref().unwrap();
    let spki = vectors()["crypto"]["k2_spki_der_hex"].as_str().unwrap().to_owned();
    assert_eq!(hex::encode(owner), spki);
}

#[test]
fn encrypted_value_decodes_and_re_encodes_byte_for_byte() {
    let packed = crypto_vector("encrypted_value", "packed_value_hex");
    let value = Value::decode(&packed).unwrap();
    assert_eq!(value.encode(), packed);
    let Content::Encrypted(cypher) = &value.content else { panic!("encrypted value expected") };
    assert!(cypher.starts_with(&crypto_vector("encrypted_value", "rsa_block_hex")));

    // The decrypted plaintext is `{"body": ..., "sig": ...}` addressed to the test key.
    let plaintext = crypto_vector("encrypted_value", "plaintext_hex");
    let clear: Content = rmp_serde::from_slice(&plaintext).unwrap();
    assert_eq!(encode(&clear), plaintext);
    let Content::Clear { body, signature: Some(_) } = clear else { panic!("signed clear content") };
    let recipient = vectors()["crypto"]["k2_infohash_sha1_spki"].as_str().unwrap().to_owned();
    assert_eq!(body.recipient().unwrap().to_string(), recipient);
}

#[test]
fn certificate_value_carries_a_pem_chain_in_a_bin() {
    let packed = crypto_vector("certificate_value", "packed_value_hex");
    let value = Value::decode(&packed).unwrap();
    assert_eq!(value.encode(), packed);
    assert_eq!(value.id, 1);
    let Content::Clear { body, signature: None } = &value.content else { panic!("unsigned") };
    assert_eq!(body.value_type, ValueType::CERTIFICATE);
    // `data` is itself a msgpack bin holding the PEM text.
    let pem: serde_bytes::ByteBuf = rmp_serde::from_slice(&body.data).unwrap();
    assert!(pem.starts_with(b"-----BEGIN CERTIFICATE-----"));
}

#[test]
fn structure_is_checked() {
    let mut value = Value::new(
        7,
        Content::Clear { body: Body::new(ValueType::USER_DATA, b"x".to_vec()), signature: None },
    );
    assert_eq!(Value::decode(&value.encode()).unwrap(), value);
    value.id = 0;
    assert_eq!(Value::decode(&value.encode()), Err(ValueError::ZeroId));
    value.id = 1;
    if let Content::Clear { body, .. } = &mut value.content {
        body.owner = Some(Blob::from(vec![1, 2, 3]));
    }
    assert_eq!(Value::decode(&value.encode()), Err(ValueError::InconsistentSignature));
    let big = Value::new(1, Content::Encrypted(Blob::from(vec![0; MAX_VALUE_SIZE + 1])));
    assert!(matches!(Value::decode(&big.encode()), Err(ValueError::TooLarge(_))));
    for junk in [
        &b""[..],
        b"\xc0",
        b"\x81\xa2id\x01",
        b"\x82\xa2id\x01\xa3dat\x05",
        b"\xdf\xff\xff\xff\xff",
    ] {
        assert!(Value::decode(junk).is_err(), "{junk:?}");
    }
}

#[test]
fn lifetimes_follow_opendht_types() {
    assert_eq!(ValueType::USER_DATA.lifetime().as_secs(), 600);
    assert_eq!(ValueType::CERTIFICATE.lifetime().as_secs(), 7 * 24 * 3600);
    assert_eq!(ValueType(5).lifetime().as_secs(), 60);
    assert_eq!(ValueType(77).lifetime().as_secs(), 600);
}

#[test]
fn opendht_4_priority_and_push_type_are_kept_as_they_came() {
    // As OpenDHT 4.3.1 packs a dhtnet connection request: {"id", "dat", "p", "pt"}.
    let mut packed =
        vec![0x84, 0xa2, b'i', b'd', 0x05, 0xa3, b'd', b'a', b't', 0xc4, 0x03, 1, 2, 3];
    packed.extend([0xa1, b'p', 0x01, 0xa2, b'p', b't', 0xa9]);
    packed.extend(b"videoCall");
    let value = Value::decode(&packed).unwrap();
    assert_eq!(value.priority, Some(1));
    assert_eq!(value.push_type.as_deref(), Some("videoCall"));
    assert_eq!(value.encode(), packed, "forwarded byte for byte");
    assert_eq!(value.size(), 3 + "videoCall".len(), "the push type counts, as in OpenDHT");
    // A 2.4-era value gains no fields on its way through.
    let plain = Value::new(5, Content::Encrypted(Blob::from(vec![1, 2, 3])));
    assert_eq!(plain.encode()[0], 0x82, "a map of two");
    assert_eq!(plain.encode()[1..], packed[1..14]);
}
