//! Verification of a Jami device certificate chain (PEM, leaf first: device, account, CA),
//! following what Jami does for a peer (`AccountManager::foundPeerDevice`, jami-protocol.md
//! §1.2): the leaf must not be self-signed, each certificate must be issued and signed by the
//! next one, issuers must be CAs, the last must be self-signed, and all keys must be RSA
//! because OpenDHT encrypts to them. Validity in time is a separate check with time as input.

use std::fmt;
use std::time::SystemTime;

use crate::clock::unix_seconds;

use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;

use super::{AccountId, DeviceId, DeviceLongId};

/// Longest chain accepted; Jami's is three certificates long.
const MAX_CHAIN_LEN: usize = 8;

/// Why a certificate chain was rejected. Whoever supplied the chain is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The text is not a sequence of PEM `CERTIFICATE` blocks.
    #[error("not a PEM certificate chain: {0}")]
    Pem(String),
    /// A certificate does not parse as X.509.
    #[error("certificate {index} of the chain is not valid X.509: {reason}")]
    Parse {
        /// Position in the chain, 0 for the leaf.
        index: usize,
        /// What the parser reported.
        reason: String,
    },
    /// Fewer than two or more than [`MAX_CHAIN_LEN`] certificates.
    #[error("a device chain has 2 to {MAX_CHAIN_LEN} certificates, this one has {0}")]
    Length(usize),
    /// The device certificate signs itself, which Jami refuses.
    #[error("the device certificate is self-signed")]
    SelfSignedLeaf,
    /// A certificate's issuer name is not the next certificate's subject.
    #[error("certificate {index} is not issued by the next certificate in the chain")]
    BrokenLink {
        /// Position of the certificate whose issuer does not follow.
        index: usize,
    },
    /// A signature does not verify with the issuer's key.
    #[error("the signature of certificate {index} does not verify: {reason}")]
    BadSignature {
        /// Position of the badly signed certificate.
        index: usize,
        /// What the verifier reported.
        reason: String,
    },
    /// A certificate that issues another is not allowed to sign certificates.
    #[error("certificate {index} issues another certificate but is not a CA")]
    IssuerNotCa {
        /// Position of the issuing certificate.
        index: usize,
    },
    /// The last certificate is not self-issued.
    #[error("the chain does not end in a self-signed certificate")]
    Unrooted,
    /// A key is not RSA.
    #[error("certificate {index} has a non-RSA key; Jami requires RSA")]
    NotRsa {
        /// Position of the certificate.
        index: usize,
    },
    /// The chain is not valid at the given time.
    #[error("the chain is not valid at {at}: it is valid from {valid_from} until {valid_until}")]
    OutsideValidity {
        /// The time checked, in Unix seconds.
        at: i64,
        /// Start of the validity shared by all certificates, in Unix seconds.
        valid_from: i64,
        /// End of the validity shared by all certificates, in Unix seconds.
        valid_until: i64,
    },
}

/// A chain that passed [`verify_device_chain`], with the identifiers it defines.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedChain {
    certificates_der: Vec<Vec<u8>>,
    public_keys_der: Vec<Vec<u8>>,
    account_id: AccountId,
    device_id: DeviceId,
    device_long_id: DeviceLongId,
    valid_from: i64,
    valid_until: i64,
}

impl VerifiedChain {
    /// The account id: the key id of the device certificate's direct issuer.
    pub fn account_id(&self) -> AccountId {
        self.account_id
    }

    /// The device's short (SHA-1) id.
    pub fn device_id(&self) -> DeviceId {
        self.device_id
    }

    /// The device's long (SHA-256) id.
    pub fn device_long_id(&self) -> DeviceLongId {
        self.device_long_id
    }

    /// The certificates in DER, leaf first.
    pub fn certificates_der(&self) -> &[Vec<u8>] {
        &self.certificates_der
    }

    /// Each certificate's SubjectPublicKeyInfo in DER, leaf first.
    pub fn public_keys_der(&self) -> &[Vec<u8>] {
        &self.public_keys_der
    }

    /// Start of the period in which every certificate is valid, in Unix seconds.
    pub fn valid_from(&self) -> i64 {
        self.valid_from
    }

    /// End of the period in which every certificate is valid, in Unix seconds.
    pub fn valid_until(&self) -> i64 {
        self.valid_until
    }

    /// Checks that every certificate of the chain is valid at `now`.
    pub fn check_validity(&self, now: SystemTime) -> Result<(), ChainError> {
        let at = unix_seconds(now);
        if (self.valid_from..=self.valid_until).contains(&at) {
            Ok(())
        } else {
            Err(ChainError::OutsideValidity {
                at,
                valid_from: self.valid_from,
                valid_until: self.valid_until,
            })
        }
    }
}

impl fmt::Debug for VerifiedChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedChain")
            .field("length", &self.certificates_der.len())
            .field("account_id", &self.account_id)
            .field("device_id", &self.device_id)
            .field("valid_until", &self.valid_until)
            .finish_non_exhaustive()
    }
}

/// Verifies the structure and signatures of a device chain given as PEM, leaf first.
pub fn verify_device_chain(pem: &str) -> Result<VerifiedChain, ChainError> {
    let blocks = Pem::iter_from_buffer(pem.as_bytes())
        .take(MAX_CHAIN_LEN + 1)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| ChainError::Pem(error.to_string()))?;
    if let Some(block) = blocks.iter().find(|block| block.label != "CERTIFICATE") {
        return Err(ChainError::Pem(format!("unexpected PEM block {:?}", block.label)));
    }
    verify_device_chain_der(blocks.into_iter().map(|block| block.contents).collect())
}

/// Verifies a device chain given as DER certificates, leaf first (as TLS presents it).
pub fn verify_device_chain_der(
    certificates_der: Vec<Vec<u8>>,
) -> Result<VerifiedChain, ChainError> {
    if !(2..=MAX_CHAIN_LEN).contains(&certificates_der.len()) {
        return Err(ChainError::Length(certificates_der.len()));
    }
    let certificates = certificates_der
        .iter()
        .enumerate()
        .map(|(index, der)| parse_certificate(index, der))
        .collect::<Result<Vec<_>, _>>()?;

    if is_self_issued(&certificates[0]) {
        return Err(ChainError::SelfSignedLeaf);
    }
    for (index, certificate) in certificates.iter().enumerate() {
        if certificate.public_key().algorithm.algorithm != OID_PKCS1_RSAENCRYPTION {
            return Err(ChainError::NotRsa { index });
        }
        let issuer = match certificates.get(index + 1) {
            Some(issuer) => {
                if certificate.issuer().as_raw() != issuer.subject().as_raw() {
                    return Err(ChainError::BrokenLink { index });
                }
                if !can_sign_certificates(issuer) {
                    return Err(ChainError::IssuerNotCa { index: index + 1 });
                }
                issuer
            }
            None if is_self_issued(certificate) => certificate,
            None => return Err(ChainError::Unrooted),
        };
        certificate
            .verify_signature(Some(issuer.public_key()))
            .map_err(|error| ChainError::BadSignature { index, reason: error.to_string() })?;
    }

    let public_keys_der: Vec<Vec<u8>> =
        certificates.iter().map(|c| c.public_key().raw.to_vec()).collect();
    let valid_from = certificates.iter().map(|c| c.validity().not_before.timestamp()).max();
    let valid_until = certificates.iter().map(|c| c.validity().not_after.timestamp()).min();
    Ok(VerifiedChain {
        account_id: AccountId::from_spki_der(&public_keys_der[1]),
        device_id: DeviceId::from_spki_der(&public_keys_der[0]),
        device_long_id: DeviceLongId::from_spki_der(&public_keys_der[0]),
        valid_from: valid_from.unwrap_or(i64::MAX),
        valid_until: valid_until.unwrap_or(i64::MIN),
        certificates_der: certificates_der.clone(),
        public_keys_der,
    })
}

fn parse_certificate(index: usize, der: &[u8]) -> Result<X509Certificate<'_>, ChainError> {
    let parse_error = |reason: String| ChainError::Parse { index, reason };
    let (rest, certificate) =
        X509Certificate::from_der(der).map_err(|error| parse_error(error.to_string()))?;
    if !rest.is_empty() {
        return Err(parse_error(format!("{} trailing bytes", rest.len())));
    }
    Ok(certificate)
}

fn is_self_issued(certificate: &X509Certificate<'_>) -> bool {
    certificate.issuer().as_raw() == certificate.subject().as_raw()
}

/// A CA certificate whose key usage, when present, allows signing certificates.
fn can_sign_certificates(certificate: &X509Certificate<'_>) -> bool {
    let key_usage_allows = match certificate.key_usage() {
        Ok(Some(usage)) => usage.value.key_cert_sign(),
        Ok(None) => true,
        Err(_) => false,
    };
    certificate.is_ca() && key_usage_allows
}
