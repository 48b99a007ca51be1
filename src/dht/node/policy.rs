//! Which values are acceptable, on receipt from the network (opendht-wire.md §7.3–7.6): the
//! structure must hold, signed values must verify with their owner key, and a certificate
//! (type 8) is stored only at one of its public key's two keys: its id (SHA-1, OpenDHT 2.4)
//! or the hash of its long id (SHA-256, where OpenDHT ≥ 3.5 puts it; jami-protocol-2026.md
//! §1c).

use crate::dht::InfoHash;
use crate::dht::crypto::PublicKey;
use crate::dht::value::{Content, Value, ValueType};
use crate::identity::DeviceLongId;

/// Why a value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueRefusal {
    /// Structure (id, signature fields, size).
    #[error("{0}")]
    Structure(#[from] crate::dht::value::ValueError),
    /// The owner key is not an RSA public key.
    #[error("bad owner key")]
    OwnerKey,
    /// The signature does not verify.
    #[error("bad signature")]
    Signature,
    /// A certificate value not at its own key id.
    #[error("certificate at a foreign key")]
    CertificateKey,
}

/// Checks `value`, found or to be stored at `key`.
pub fn check(key: &InfoHash, value: &Value) -> Result<(), ValueRefusal> {
    value.check()?;
    let Content::Clear { body, signature } = &value.content else { return Ok(()) };
    if let (Some(owner), Some(signature)) = (&body.owner, signature) {
        let owner = PublicKey::from_spki_der(owner).map_err(|_| ValueRefusal::OwnerKey)?;
        owner.verify(&body.to_sign(), signature).map_err(|_| ValueRefusal::Signature)?;
    } else if body.value_type == ValueType::CERTIFICATE
        && !certificate_keys(&body.data).is_some_and(|keys| keys.contains(key))
    {
        return Err(ValueRefusal::CertificateKey);
    }
    Ok(())
}

/// The two keys where the first certificate of a certificate value's data (a msgpack bin
/// holding a PEM chain) may be stored: its public key's id, then the hash of its long id.
pub fn certificate_keys(data: &[u8]) -> Option<[InfoHash; 2]> {
    let pem = crate::dht::value::certificate_chain(data)?;
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let certificate = block.parse_x509().ok()?;
    let spki = certificate.public_key().raw;
    Some([InfoHash::from_spki_der(spki), DeviceLongId::from_spki_der(spki).into()])
}
