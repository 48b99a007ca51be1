//! Jami-compatible identities: each room is a Jami account with one device
//! (jami-protocol.md §1.1–1.2).
//!
//! A [`RoomIdentity`] holds three RSA-4096 keys and their certificates, CA → account → device.
//! The room's Jami ID is the account id; the device certificate chain is what the room
//! publishes on the DHT and presents in TLS. Private keys never appear in `Debug` output or logs.

mod chain;
pub(crate) mod generate;
mod ids;

use std::fmt;
use std::time::SystemTime;

use rcgen::PublicKeyData;
use zeroize::Zeroizing;

pub use chain::{ChainError, VerifiedChain, verify_device_chain, verify_device_chain_der};
pub(crate) use ids::key_id;
pub use ids::{AccountId, DeviceId, DeviceLongId, ParseIdError};

/// Why an identity could not be created or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The RSA key generator failed (no system randomness, typically).
    #[error("RSA key generation failed: {0}")]
    KeyGeneration(String),
    /// rcgen could not build or sign a certificate.
    #[error("certificate generation failed: {0}")]
    Certificate(#[from] rcgen::Error),
    /// A stored private key does not parse as a PKCS#8 RSA key.
    #[error("the {level} private key is unusable: {reason}")]
    InvalidPrivateKey {
        /// Which level of the chain.
        level: ChainLevel,
        /// What the key parser reported.
        reason: String,
    },
    /// A stored private key belongs to another certificate.
    #[error("the {0} private key does not match its certificate")]
    KeyMismatch(ChainLevel),
    /// The certificate chain is invalid.
    #[error("invalid certificate chain: {0}")]
    Chain(#[from] ChainError),
    /// The blocking key-generation task was cancelled (the runtime is shutting down).
    #[error("key generation was cancelled")]
    Cancelled,
}

/// A level of a Jami certificate chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainLevel {
    /// The self-signed "Jami CA".
    Ca,
    /// The account ("Jami"), whose key id is the Jami ID.
    Account,
    /// The device ("Jami device").
    Device,
}

impl fmt::Display for ChainLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ca => "CA",
            Self::Account => "account",
            Self::Device => "device",
        })
    }
}

/// A private key in PKCS#8 PEM. Its memory is wiped on drop and `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKeyPem(Zeroizing<String>);

impl PrivateKeyPem {
    /// Wraps a PKCS#8 PEM private key.
    pub fn new(pem: String) -> Self {
        Self(Zeroizing::new(pem))
    }

    /// The PEM text, for storage and for TLS. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKeyPem(<redacted>)")
    }
}

/// A certificate and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifiedKey {
    /// The certificate in PEM.
    pub certificate_pem: String,
    /// The certificate's private key.
    pub private_key: PrivateKeyPem,
}

/// A room's Jami identity: CA, account and device keys with their certificate chain, checked.
#[derive(Debug, Clone)]
pub struct RoomIdentity {
    ca: CertifiedKey,
    account: CertifiedKey,
    device: CertifiedKey,
    chain: VerifiedChain,
}

impl RoomIdentity {
    /// Generates a new identity on a blocking thread, so the async runtime keeps running
    /// during the seconds that three RSA-4096 key generations take.
    pub async fn generate() -> Result<Self, IdentityError> {
        tokio::task::spawn_blocking(|| Self::generate_blocking(SystemTime::now())).await.map_err(
            |join_error| match join_error.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(_) => IdentityError::Cancelled,
            },
        )?
    }

    /// Generates a new identity valid from `now`. Blocks for seconds.
    pub fn generate_blocking(now: SystemTime) -> Result<Self, IdentityError> {
        let chain = generate::generate_chain(time::OffsetDateTime::from(now))?;
        Self::from_parts(chain.ca, chain.account, chain.device)
    }

    /// Rebuilds an identity from stored parts, checking the chain and that each key matches
    /// its certificate. Expiry is not checked here: see [`VerifiedChain::check_validity`].
    pub fn from_parts(
        ca: CertifiedKey,
        account: CertifiedKey,
        device: CertifiedKey,
    ) -> Result<Self, IdentityError> {
        let chain_pem = chain_pem([&device, &account, &ca]);
        let chain = verify_device_chain(&chain_pem)?;
        if chain.certificates_der().len() != 3 {
            return Err(ChainError::Length(chain.certificates_der().len()).into());
        }
        let levels =
            [(ChainLevel::Device, &device), (ChainLevel::Account, &account), (ChainLevel::Ca, &ca)];
        for ((level, part), public_key_der) in levels.into_iter().zip(chain.public_keys_der()) {
            let key = generate::load_key(&part.private_key)
                .map_err(|reason| IdentityError::InvalidPrivateKey { level, reason })?;
            if key.subject_public_key_info() != *public_key_der {
                return Err(IdentityError::KeyMismatch(level));
            }
        }
        Ok(Self { ca, account, device, chain })
    }

    /// The room's Jami ID (account id).
    pub fn account_id(&self) -> AccountId {
        self.chain.account_id()
    }

    /// The device's short (SHA-1) id.
    pub fn device_id(&self) -> DeviceId {
        self.chain.device_id()
    }

    /// The device's long (SHA-256) id.
    pub fn device_long_id(&self) -> DeviceLongId {
        self.chain.device_long_id()
    }

    /// The verified chain, with the certificates in DER.
    pub fn chain(&self) -> &VerifiedChain {
        &self.chain
    }

    /// The certificate chain in PEM as Jami packs it: device, account, CA.
    pub fn certificate_chain_pem(&self) -> String {
        chain_pem([&self.device, &self.account, &self.ca])
    }

    /// The self-signed CA level.
    pub fn ca(&self) -> &CertifiedKey {
        &self.ca
    }

    /// The account level.
    pub fn account(&self) -> &CertifiedKey {
        &self.account
    }

    /// The device level.
    pub fn device(&self) -> &CertifiedKey {
        &self.device
    }
}

fn chain_pem(leaf_first: [&CertifiedKey; 3]) -> String {
    leaf_first.iter().map(|part| part.certificate_pem.as_str()).collect()
}

#[cfg(test)]
mod tests;
