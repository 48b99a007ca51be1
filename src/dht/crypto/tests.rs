use super::*;
use crate::dht::value::tests::vectors;

fn crypto(field: &str) -> serde_json::Value {
    vectors()["crypto"][field].clone()
}

fn hex_field(value: &serde_json::Value, field: &str) -> Vec<u8> {
    hex::decode(value[field].as_str().unwrap()).unwrap()
}

fn test_key() -> PrivateKey {
    PrivateKey::from_pem(crypto("test_key_k2_private_pem_TEST_ONLY").as_str().unwrap()).unwrap()
}

/// The encrypted blob of the vector: the `dat` bin of its packed value.
fn encrypted_blob() -> Vec<u8> {
    let packed = hex_field(&crypto("encrypted_value"), "packed_value_hex");
    let value = crate::dht::value::Value::decode(&packed).unwrap();
    let crate::dht::value::Content::Encrypted(blob) = value.content else { panic!("encrypted") };
    blob.into_vec()
}

#[test]
fn key_ids_match_opendht() {
    let key = test_key();
    assert_eq!(
        hex::encode(key.public_key().spki_der()),
        crypto("k2_spki_der_hex").as_str().unwrap()
    );
    assert_eq!(
        key.public_key().id().to_string(),
        crypto("k2_infohash_sha1_spki").as_str().unwrap()
    );
    let parsed = PublicKey::from_spki_der(key.public_key().spki_der()).unwrap();
    assert_eq!(parsed, *key.public_key());
    assert!(!format!("{key:?}").contains("PRIVATE"));
}

#[test]
fn signatures_match_opendht_byte_for_byte() {
    let vector = crypto("signed_value");
    let to_sign = hex_field(&vector, "to_sign_hex");
    let signature = hex_field(&vector, "signature_hex");
    let key = test_key();
    assert_eq!(key.sign(&to_sign), signature);
    key.public_key().verify(&to_sign, &signature).unwrap();
    let mut tampered = to_sign.clone();
    tampered[10] ^= 1;
    assert_eq!(key.public_key().verify(&tampered, &signature), Err(CryptoError::BadSignature));
    let mut bad = signature.clone();
    bad[0] ^= 1;
    assert_eq!(key.public_key().verify(&to_sign, &bad), Err(CryptoError::BadSignature));
    assert_eq!(key.public_key().verify(&to_sign, &[]), Err(CryptoError::BadSignature));
}

#[test]
fn decrypts_what_opendht_encrypted() {
    let vector = crypto("encrypted_value");
    let blob = encrypted_blob();
    assert_eq!(test_key().decrypt(&blob).unwrap(), hex_field(&vector, "plaintext_hex"));
}

#[test]
fn encrypts_exactly_as_opendht_given_the_same_key_and_iv() {
    let vector = crypto("encrypted_value");
    let blob = encrypted_blob();
    let key = test_key();
    let aes_key = hex_field(&vector, "aes_key_hex");
    let iv: [u8; 12] = hex_field(&vector, "iv_hex").try_into().unwrap();
    let block = key.key.size();
    assert_eq!(
        key.key.decrypt(Pkcs1v15Encrypt, &blob[..block]).unwrap(),
        aes_key,
        "the wrapped AES key"
    );
    let ours = key
        .public_key()
        .encrypt_hybrid_with(&hex_field(&vector, "plaintext_hex"), &aes_key, &iv)
        .unwrap();
    // The RSA block is randomly padded; the rest is deterministic.
    assert_eq!(ours.len(), blob.len());
    assert_eq!(ours[block..], blob[block..]);
    assert_eq!(
        &blob[block + 12 + blob.len() - block - 12 - 16..],
        hex_field(&vector, "tag_hex").as_slice()
    );
}

#[test]
fn round_trips_and_rejects_damage() {
    let key = test_key();
    let public = key.public_key();
    let short = b"fits in one block";
    let sealed = public.encrypt(short).unwrap();
    assert_eq!(sealed.len(), 256);
    assert_eq!(key.decrypt(&sealed).unwrap(), short);
    let long = vec![7u8; 2000];
    let sealed = public.encrypt(&long).unwrap();
    assert_eq!(sealed.len(), 256 + 12 + 2000 + 16);
    assert_eq!(key.decrypt(&sealed).unwrap(), long);

    let mut damaged = sealed.clone();
    damaged[300] ^= 1;
    assert!(key.decrypt(&damaged).is_err());
    for bad in [&sealed[..100], &sealed[..256 + 20], &[][..]] {
        assert!(key.decrypt(bad).is_err(), "{} bytes", bad.len());
    }
    // A lone RSA block is not authenticated (rsa 0.10 rejects bad padding implicitly, with
    // pseudorandom output, against Marvin-type timing attacks): garbage decrypts to garbage,
    // which the signature inside every real value then refuses.
    let garbage = key.decrypt(&[0u8; 256]).unwrap_or_default();
    assert_ne!(garbage, short);
}

#[test]
fn reads_values_from_old_opendht_versions() {
    // Old versions computed the tag with the plaintext as associated data.
    let key = test_key();
    let aes_key = [3u8; 32];
    let iv = [5u8; 12];
    let plaintext = b"a value from an older OpenDHT".to_vec();
    let mut legacy = key.public_key().encrypt_block(&aes_key).unwrap();
    legacy.extend_from_slice(&iv);
    legacy.extend_from_slice(&gcm_encrypt(&aes_key, &iv, &plaintext, &plaintext).unwrap());
    assert_eq!(key.decrypt(&legacy).unwrap(), plaintext);
}

#[test]
fn only_rsa_keys() {
    assert!(PublicKey::from_spki_der(b"garbage").is_err());
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    use rcgen::PublicKeyData as _;
    assert!(matches!(
        PublicKey::from_spki_der(&ec.subject_public_key_info()),
        Err(CryptoError::InvalidKey(_))
    ));
    assert!(PrivateKey::from_pem(&ec.serialize_pem()).is_err());
    assert!(PrivateKey::from_pem("not pem").is_err());
}
