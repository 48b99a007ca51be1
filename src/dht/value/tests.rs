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
    let mut value = Value {
        id: 7,
        content: Content::Clear {
            body: Body::new(ValueType::USER_DATA, b"x".to_vec()),
            signature: None,
        },
    };
    assert_eq!(Value::decode(&value.encode()).unwrap(), value);
    value.id = 0;
    assert_eq!(Value::decode(&value.encode()), Err(ValueError::ZeroId));
    value.id = 1;
    if let Content::Clear { body, .. } = &mut value.content {
        body.owner = Some(Blob::from(vec![1, 2, 3]));
    }
    assert_eq!(Value::decode(&value.encode()), Err(ValueError::InconsistentSignature));
    let big = Value { id: 1, content: Content::Encrypted(Blob::from(vec![0; MAX_VALUE_SIZE + 1])) };
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
