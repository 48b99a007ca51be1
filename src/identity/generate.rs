//! Creation of a Jami certificate chain, field for field as OpenDHT 2.4.12 makes it
//! (`opendht: crypto.cpp: Certificate::generate`, jami-protocol.md §1.1):
//!
//! | level   | subject                      | extensions                                   |
//! |---------|------------------------------|----------------------------------------------|
//! | CA      | `CN=Jami CA, UID=<key id>`   | SKI, basicConstraints CA, keyCertSign+cRLSign |
//! | account | `CN=Jami, UID=<account id>`  | SKI, basicConstraints CA, keyCertSign+cRLSign |
//! | device  | `CN=Jami device, UID=<id>`   | none (Jami builds it from a bare CSR)        |
//!
//! All keys are RSA-4096; the signatures are RSA PKCS#1 v1.5 with SHA-384, the digest GnuTLS
//! prefers for 4096-bit keys; names are PrintableStrings, CN before UID; the serial is a random
//! positive 64-bit number; validity runs from now for ten years of 365 days.

use rcgen::string::PrintableString;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, IsCa, Issuer,
    KeyIdMethod, KeyPair, KeyUsagePurpose, PKCS_RSA_SHA384, PublicKeyData, SerialNumber,
};
use rsa::pkcs8::EncodePrivateKey;
use rustls_pki_types::PrivatePkcs8KeyDer;
use time::OffsetDateTime;

use super::{CertifiedKey, ChainLevel, DeviceId, IdentityError, PrivateKeyPem};

/// RSA modulus size of every key in the chain; Jami's default (`key_length = 4096`).
pub(crate) const KEY_BITS: usize = 4096;

/// Certificate lifetime: OpenDHT's default of `10 * 365 * 24 * 60 * 60` seconds.
pub(crate) const VALIDITY: time::Duration = time::Duration::days(10 * 365);

/// LDAP `UID` attribute (0.9.2342.19200300.100.1.1), where Jami writes the key id.
const OID_LDAP_UID: &[u64] = &[0, 9, 2342, 19200300, 100, 1, 1];

/// The three certified keys of a fresh chain, root first.
pub(super) struct GeneratedChain {
    pub(super) ca: CertifiedKey,
    pub(super) account: CertifiedKey,
    pub(super) device: CertifiedKey,
}

/// Generates the three keys (in parallel: each takes a fraction of a second to seconds) and
/// certifies them. Blocking; call it off the async runtime.
pub(super) fn generate_chain(now: OffsetDateTime) -> Result<GeneratedChain, IdentityError> {
    let [ca_key, account_key, device_key] = std::thread::scope(|scope| {
        let workers = [(); 3].map(|()| scope.spawn(generate_key));
        // A panic in key generation is a bug: let it propagate.
        workers.map(|worker| worker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    });
    let (ca_key, account_key, device_key) = (ca_key?, account_key?, device_key?);

    let ca_params = certificate_params(ChainLevel::Ca, &ca_key, now)?;
    let ca_certificate = ca_params.self_signed(&ca_key)?;
    let ca_issuer = Issuer::new(ca_params, &ca_key);

    let account_params = certificate_params(ChainLevel::Account, &account_key, now)?;
    let account_certificate = account_params.signed_by(&account_key, &ca_issuer)?;
    let account_issuer = Issuer::new(account_params, &account_key);

    let device_params = certificate_params(ChainLevel::Device, &device_key, now)?;
    let device_certificate = device_params.signed_by(&device_key, &account_issuer)?;

    let certified = |key: &KeyPair, certificate: &rcgen::Certificate| CertifiedKey {
        certificate_pem: certificate.pem(),
        private_key: PrivateKeyPem::new(key.serialize_pem()),
    };
    Ok(GeneratedChain {
        ca: certified(&ca_key, &ca_certificate),
        account: certified(&account_key, &account_certificate),
        device: certified(&device_key, &device_certificate),
    })
}

fn generate_key() -> Result<KeyPair, IdentityError> {
    let key = rsa::PrivateKey::new(&mut rand::rng(), KEY_BITS)
        .map_err(|error| IdentityError::KeyGeneration(error.to_string()))?;
    // The PKCS#8 document zeroises itself on drop.
    let pkcs8 =
        key.to_pkcs8_der().map_err(|error| IdentityError::KeyGeneration(error.to_string()))?;
    let der = PrivatePkcs8KeyDer::from(pkcs8.as_bytes());
    Ok(KeyPair::from_pkcs8_der_and_sign_algo(&der, &PKCS_RSA_SHA384)?)
}

/// Loads a stored PKCS#8 PEM key for signing with RSA-SHA384.
pub(super) fn load_key(private_key: &PrivateKeyPem) -> Result<KeyPair, String> {
    KeyPair::from_pkcs8_pem_and_sign_algo(private_key.expose(), &PKCS_RSA_SHA384)
        .map_err(|error| error.to_string())
}

fn certificate_params(
    level: ChainLevel,
    key: &KeyPair,
    now: OffsetDateTime,
) -> Result<CertificateParams, IdentityError> {
    let (common_name, is_ca) = match level {
        ChainLevel::Ca => ("Jami CA", true),
        ChainLevel::Account => ("Jami", true),
        ChainLevel::Device => ("Jami device", false),
    };
    let spki = key.subject_public_key_info();
    let key_id = DeviceId::from_spki_der(&spki);

    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, printable(common_name)?);
    name.push(DnType::CustomDnType(OID_LDAP_UID.to_vec()), printable(&key_id.to_string())?);

    let mut params = CertificateParams::default();
    params.distinguished_name = name;
    params.not_before = now;
    params.not_after = now + VALIDITY;
    params.serial_number = Some(random_serial());
    if is_ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.key_identifier_method = KeyIdMethod::PreSpecified(key_id.as_bytes().to_vec());
    } else {
        // A device certificate carries no extension at all, like Jami's.
        params.is_ca = IsCa::NoCa;
    }
    Ok(params)
}

fn printable(text: &str) -> Result<DnValue, IdentityError> {
    let value = PrintableString::try_from(text)?;
    Ok(DnValue::PrintableString(value))
}

/// A random positive, non-zero 64-bit serial number.
fn random_serial() -> SerialNumber {
    let serial = rand::random::<u64>() >> 1 | 1;
    SerialNumber::from_slice(&serial.to_be_bytes())
}

/// A new device certificate for `device`'s key, issued now by `issuer`'s account: the chain
/// (device, account, CA) as DER. Tests use it for a renewed certificate (the device's own
/// account) and a forged one (another account certifying someone else's key).
#[cfg(test)]
pub(crate) fn recertified_device(
    device: &CertifiedKey,
    issuer: &super::RoomIdentity,
) -> Result<Vec<Vec<u8>>, String> {
    let device_key = load_key(&device.private_key)?;
    let account_key = load_key(&issuer.account().private_key)?;
    let account = Issuer::from_ca_cert_pem(&issuer.account().certificate_pem, account_key)
        .map_err(|error| error.to_string())?;
    let params = certificate_params(ChainLevel::Device, &device_key, OffsetDateTime::now_utc())
        .map_err(|error| error.to_string())?;
    let certificate = params.signed_by(&device_key, &account).map_err(|error| error.to_string())?;
    let mut chain = vec![certificate.der().to_vec()];
    chain.extend(issuer.chain().certificates_der()[1..].iter().cloned());
    Ok(chain)
}
