use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::oid_registry::{
    OID_PKCS1_SHA384WITHRSA, OID_X509_COMMON_NAME, OID_X509_EXT_SUBJECT_KEY_IDENTIFIER,
};
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};
use x509_parser::public_key::PublicKey;

use super::*;

/// A chain made by Debian's python3-opendht 2.4.12 (`Identity.generate`), and the ids that
/// OpenDHT's `Certificate.getId()` and GnuTLS's `certtool -i` print for it.
const OPENDHT_CHAIN: &str = include_str!("../../tests/data/opendht-2.4.12-chain.pem");
const OPENDHT_LEAF_ID: &str = "b36694fa8b369c7f9667b60970b74e12a955158a";
const OPENDHT_ISSUER_ID: &str = "68b65f679e77447a2e2b4c228735eeed6809e16f";
const OPENDHT_LEAF_LONG_ID: &str =
    "75b6080456d03dab549870d6924b0e16db6f4f17a2efc44c8e4e51f1e15a8c2c";

const OID_LDAP_UID: &str = "0.9.2342.19200300.100.1.1";

/// One generated identity shared by the tests of this module: RSA-4096 takes a while.
fn identity() -> &'static RoomIdentity {
    static IDENTITY: OnceLock<RoomIdentity> = OnceLock::new();
    IDENTITY.get_or_init(|| RoomIdentity::generate_blocking(SystemTime::now()).unwrap())
}

fn parse(der: &[u8]) -> X509Certificate<'_> {
    let (rest, certificate) = X509Certificate::from_der(der).unwrap();
    assert!(rest.is_empty());
    certificate
}

/// The (CN, UID) of a name, checking that both are PrintableStrings, CN first, as GnuTLS
/// writes them.
fn name_fields(name: &x509_parser::x509::X509Name<'_>) -> (String, String) {
    let attributes: Vec<_> = name.iter_attributes().collect();
    assert_eq!(attributes.len(), 2, "{name}");
    assert_eq!(attributes[0].attr_type(), &OID_X509_COMMON_NAME);
    assert_eq!(attributes[1].attr_type().to_id_string(), OID_LDAP_UID);
    for attribute in &attributes {
        assert_eq!(attribute.attr_value().tag(), Tag::PrintableString);
    }
    let text = |i: usize| attributes[i].as_str().unwrap().to_owned();
    (text(0), text(1))
}

#[test]
fn ids_of_an_opendht_chain_match_opendht_and_gnutls() {
    let chain = verify_device_chain(OPENDHT_CHAIN).unwrap();
    assert_eq!(chain.device_id().to_string(), OPENDHT_LEAF_ID);
    assert_eq!(chain.account_id().to_string(), OPENDHT_ISSUER_ID);
    assert_eq!(chain.device_long_id().to_string(), OPENDHT_LEAF_LONG_ID);
}

#[test]
fn chain_has_jami_shape() {
    let identity = identity();
    let ders = identity.chain().certificates_der();
    assert_eq!(ders.len(), 3);
    let [device, account, ca] = [parse(&ders[0]), parse(&ders[1]), parse(&ders[2])];

    for certificate in [&device, &account, &ca] {
        assert_eq!(certificate.version().0, 2, "X.509 v3");
        assert_eq!(certificate.signature_algorithm.algorithm, OID_PKCS1_SHA384WITHRSA);
        let PublicKey::RSA(key) = certificate.public_key().parsed().unwrap() else {
            panic!("not an RSA key");
        };
        assert_eq!(key.key_size(), 4096);
        assert_eq!(key.exponent, [0x01, 0x00, 0x01]);
        let serial = certificate.raw_serial();
        assert!(!serial.is_empty() && serial.len() <= 9 && serial[0] & 0x80 == 0, "{serial:?}");
        let validity = certificate.validity();
        let lifetime = validity.not_after.timestamp() - validity.not_before.timestamp();
        assert_eq!(lifetime, 10 * 365 * 24 * 3600);
    }

    let (ca_cn, ca_uid) = name_fields(ca.subject());
    assert_eq!(
        (ca_cn.as_str(), ca_uid.as_str()),
        ("Jami CA", &*DeviceId::from_spki_der(ca.public_key().raw).to_string())
    );
    assert_eq!(ca.issuer().as_raw(), ca.subject().as_raw(), "CA is self-signed");

    let (account_cn, account_uid) = name_fields(account.subject());
    assert_eq!(account_cn, "Jami");
    assert_eq!(account_uid, identity.account_id().to_string());
    assert_eq!(account.issuer().as_raw(), ca.subject().as_raw());

    let (device_cn, device_uid) = name_fields(device.subject());
    assert_eq!(device_cn, "Jami device");
    assert_eq!(device_uid, identity.device_id().to_string());
    assert_eq!(device.issuer().as_raw(), account.subject().as_raw());

    for issuer in [&ca, &account] {
        let constraints = issuer.basic_constraints().unwrap().unwrap();
        assert!(constraints.critical && constraints.value.ca);
        assert_eq!(constraints.value.path_len_constraint, None);
        let usage = issuer.key_usage().unwrap().unwrap();
        assert!(usage.critical);
        assert!(usage.value.key_cert_sign() && usage.value.crl_sign());
        assert_eq!(usage.value.flags, 0b110_0000, "keyCertSign and cRLSign only");
        let ski =
            issuer.get_extension_unique(&OID_X509_EXT_SUBJECT_KEY_IDENTIFIER).unwrap().unwrap();
        assert!(!ski.critical);
        let ParsedExtension::SubjectKeyIdentifier(key_id) = ski.parsed_extension() else {
            panic!("unparsed SKI");
        };
        assert_eq!(key_id.0, DeviceId::from_spki_der(issuer.public_key().raw).as_bytes());
        assert_eq!(issuer.extensions().len(), 3, "SKI, basicConstraints, keyUsage, nothing else");
    }
    assert!(device.extensions().is_empty(), "Jami device certificates have no extensions");
    assert!(!device.is_ca());
    assert!(device.subject_alternative_name().unwrap().is_none_or(|san| {
        !san.value.general_names.iter().any(|n| matches!(n, GeneralName::DNSName(_)))
    }));

    assert_eq!(identity.account_id(), AccountId::from_spki_der(account.public_key().raw));
    assert_eq!(identity.device_id(), DeviceId::from_spki_der(device.public_key().raw));
    assert_eq!(identity.device_long_id(), DeviceLongId::from_spki_der(device.public_key().raw));
}

#[test]
fn chain_pem_is_device_account_ca() {
    let identity = identity();
    let pem = identity.certificate_chain_pem();
    let expected = [&identity.device, &identity.account, &identity.ca]
        .map(|part| part.certificate_pem.clone())
        .concat();
    assert_eq!(pem, expected);
    assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----").count(), 3);
    assert_eq!(verify_device_chain(&pem).unwrap(), *identity.chain());
}

#[test]
fn validity_is_checked_against_the_given_time() {
    let chain = identity().chain();
    let now = SystemTime::now();
    chain.check_validity(now).unwrap();
    let eleven_years = Duration::from_secs(11 * 365 * 24 * 3600);
    assert!(matches!(
        chain.check_validity(now + eleven_years),
        Err(ChainError::OutsideValidity { .. })
    ));
    assert!(matches!(
        chain.check_validity(now - Duration::from_secs(3600)),
        Err(ChainError::OutsideValidity { .. })
    ));
}

#[test]
fn stored_parts_round_trip_and_keys_must_match() {
    let identity = identity();
    let reloaded = RoomIdentity::from_parts(
        identity.ca().clone(),
        identity.account().clone(),
        identity.device().clone(),
    )
    .unwrap();
    assert_eq!(reloaded.account_id(), identity.account_id());
    assert_eq!(reloaded.certificate_chain_pem(), identity.certificate_chain_pem());

    let mut swapped = identity.device().clone();
    swapped.private_key = identity.account().private_key.clone();
    let error =
        RoomIdentity::from_parts(identity.ca().clone(), identity.account().clone(), swapped)
            .unwrap_err();
    assert!(matches!(error, IdentityError::KeyMismatch(ChainLevel::Device)), "{error}");

    let mut garbage = identity.ca().clone();
    garbage.private_key = PrivateKeyPem::new("not a key".into());
    let error =
        RoomIdentity::from_parts(garbage, identity.account().clone(), identity.device().clone())
            .unwrap_err();
    assert!(
        matches!(error, IdentityError::InvalidPrivateKey { level: ChainLevel::Ca, .. }),
        "{error}"
    );

    // Certificates in the wrong places.
    let error = RoomIdentity::from_parts(
        identity.device().clone(),
        identity.account().clone(),
        identity.ca().clone(),
    )
    .unwrap_err();
    assert!(matches!(error, IdentityError::Chain(_)), "{error}");
}

#[test]
fn private_keys_never_show_in_debug_output() {
    let text = format!("{:?}", identity());
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    assert!(identity().device().private_key.expose().starts_with("-----BEGIN PRIVATE KEY-----"));
}

#[test]
fn malformed_chains_are_rejected() {
    let identity = identity();
    let [device, account, ca] =
        [identity.device(), identity.account(), identity.ca()].map(|p| p.certificate_pem.clone());

    type IsExpected = fn(&ChainError) -> bool;
    let cases: Vec<(String, IsExpected)> = vec![
        (String::new(), |e| matches!(e, ChainError::Length(0))),
        ("garbage".into(), |e| matches!(e, ChainError::Length(0))),
        ("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n".into(), |e| {
            matches!(e, ChainError::Pem(_))
        }),
        (device.clone(), |e| matches!(e, ChainError::Length(1))),
        (device.repeat(9), |e| matches!(e, ChainError::Length(9))),
        (format!("{ca}{ca}"), |e| matches!(e, ChainError::SelfSignedLeaf)),
        (format!("{device}{ca}"), |e| matches!(e, ChainError::BrokenLink { index: 0 })),
        (format!("{device}{account}"), |e| matches!(e, ChainError::Unrooted)),
        (format!("{device}{account}{ca}{}", identity.device().private_key.expose()), |e| {
            matches!(e, ChainError::Pem(_))
        }),
        (format!("{device}{account}{ca}{device}"), |e| {
            matches!(e, ChainError::BrokenLink { index: 2 })
        }),
    ];
    for (pem, expected) in cases {
        let error = verify_device_chain(&pem).unwrap_err();
        assert!(expected(&error), "{error} for {pem:.80}");
    }
}

#[test]
fn tampered_signature_is_rejected() {
    let identity = identity();
    let mut account_der = identity.chain().certificates_der()[1].clone();
    let last = account_der.len() - 1;
    account_der[last] ^= 0x01;
    let pem = [
        pem_block(&identity.chain().certificates_der()[0]),
        pem_block(&account_der),
        identity.ca().certificate_pem.clone(),
    ]
    .concat();
    let error = verify_device_chain(&pem).unwrap_err();
    assert!(matches!(error, ChainError::BadSignature { index: 1, .. }), "{error}");
}

#[test]
fn a_leaf_cannot_issue_certificates() {
    // A chain device -> device -> account -> CA, where a device certificate acts as issuer.
    let identity = identity();
    let device_key = generate::load_key(&identity.device().private_key).unwrap();
    let issuer =
        rcgen::Issuer::from_ca_cert_pem(&identity.device().certificate_pem, &device_key).unwrap();
    let leaf_key = generate::load_key(&identity.account().private_key).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name.push(rcgen::DnType::CommonName, "rogue");
    let rogue = params.signed_by(&leaf_key, &issuer).unwrap();
    let pem = format!("{}{}", rogue.pem(), identity.certificate_chain_pem());
    let error = verify_device_chain(&pem).unwrap_err();
    assert!(matches!(error, ChainError::IssuerNotCa { index: 1 }), "{error}");
}

#[tokio::test(flavor = "current_thread")]
async fn generation_leaves_the_runtime_free() {
    let generation = tokio::spawn(RoomIdentity::generate());
    let mut turns_while_generating = 0u64;
    while !generation.is_finished() {
        turns_while_generating += 1;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let generated = generation.await.unwrap().unwrap();
    assert_ne!(generated.account_id(), identity().account_id());
    assert!(turns_while_generating > 0, "the single runtime thread was blocked");
}

fn pem_block(der: &[u8]) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> =
        body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
}
