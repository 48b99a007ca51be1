//! OpenDHT's public-key crypto for values (opendht-wire.md §7.3–7.4, rust-stack.md §5.5):
//! RSA PKCS#1 v1.5 signatures with SHA-512, and encryption to a recipient as one RSA PKCS#1
//! v1.5 block, or for longer data `RSA(aes_key) ‖ IV(12) ‖ AES-GCM(data) ‖ tag(16)`.

use std::fmt;

use aes_gcm::aead::{Aead as _, KeyInit as _};
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm, Nonce};
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePublicKey as _};
use rsa::traits::PublicKeyParts as _;
use rsa::{Pkcs1v15Encrypt, Pkcs1v15Sign};
use sha2::{Digest as _, Sha512};
use zeroize::Zeroizing;

use super::InfoHash;

/// IV length of the AES-GCM part.
const IV_LEN: usize = 12;
/// Tag length of the AES-GCM part.
const TAG_LEN: usize = 16;
/// PKCS#1 v1.5 encryption padding overhead.
const PADDING: usize = 11;

type Aes192Gcm = AesGcm<aes_gcm::aes::Aes192, aes_gcm::aead::consts::U12>;

/// A key, signature or ciphertext was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// Not a DER/PEM RSA key.
    #[error("not an RSA key: {0}")]
    InvalidKey(String),
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// Decryption failed (wrong key, damaged or truncated data).
    #[error("cannot decrypt: {0}")]
    Decrypt(&'static str),
    /// The data cannot be encrypted to this key.
    #[error("cannot encrypt: {0}")]
    Encrypt(String),
}

/// An RSA public key as OpenDHT carries it: DER SubjectPublicKeyInfo.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: rsa::PublicKey,
    der: Vec<u8>,
}

impl PublicKey {
    /// Parses a DER SubjectPublicKeyInfo; only RSA keys are accepted.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, CryptoError> {
        let key = rsa::PublicKey::from_public_key_der(der)
            .map_err(|e| CryptoError::InvalidKey(e.to_string()))?;
        Ok(Self { key, der: der.to_vec() })
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.der
    }

    /// The key id: SHA-1 of the DER SubjectPublicKeyInfo.
    pub fn id(&self) -> InfoHash {
        InfoHash::from_spki_der(&self.der)
    }

    /// The long id (OpenDHT's `PkId`): SHA-256 of the DER SubjectPublicKeyInfo.
    pub fn long_id(&self) -> crate::identity::DeviceLongId {
        crate::identity::DeviceLongId::from_spki_der(&self.der)
    }

    /// Checks an RSA PKCS#1 v1.5 SHA-512 signature over `data`.
    pub fn verify(&self, data: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        let digest = Sha512::digest(data);
        self.key
            .verify(Pkcs1v15Sign::new::<Sha512>(), &digest, signature)
            .map_err(|_| CryptoError::BadSignature)
    }

    /// Encrypts `plaintext` to this key as OpenDHT does.
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let block = self.key.size();
        if plaintext.len() <= block.saturating_sub(PADDING) {
            return self.encrypt_block(plaintext);
        }
        let mut aes_key = Zeroizing::new([0u8; 32]);
        rand::fill(&mut aes_key[..]);
        let iv: [u8; IV_LEN] = rand::random();
        self.encrypt_hybrid_with(plaintext, &aes_key[..], &iv)
    }

    fn encrypt_block(&self, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.key
            .encrypt(&mut rand::rng(), Pkcs1v15Encrypt, data)
            .map_err(|e| CryptoError::Encrypt(e.to_string()))
    }

    /// Hybrid encryption with a given AES key and IV (the random parts of [`Self::encrypt`]).
    fn encrypt_hybrid_with(
        &self,
        plaintext: &[u8],
        aes_key: &[u8],
        iv: &[u8; IV_LEN],
    ) -> Result<Vec<u8>, CryptoError> {
        if self.key.size() < 32 + PADDING {
            return Err(CryptoError::Encrypt("key too short for an AES key".into()));
        }
        let mut out = self.encrypt_block(aes_key)?;
        out.extend_from_slice(iv);
        let sealed = gcm_encrypt(aes_key, iv, plaintext, &[])?;
        out.extend_from_slice(&sealed);
        Ok(out)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.id())
    }
}

/// An RSA private key. `Debug` shows only its id.
pub struct PrivateKey {
    key: rsa::PrivateKey,
    public: PublicKey,
}

impl PrivateKey {
    /// Parses a PEM private key: PKCS#8 (`PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`).
    pub fn from_pem(pem: &str) -> Result<Self, CryptoError> {
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .map_err(|e| CryptoError::InvalidKey(format!("not PEM: {e}")))?;
        let der = Zeroizing::new(block.contents);
        let key = match block.label.as_str() {
            "PRIVATE KEY" => rsa::PrivateKey::from_pkcs8_der(&der)
                .map_err(|e| CryptoError::InvalidKey(e.to_string()))?,
            "RSA PRIVATE KEY" => rsa::PrivateKey::from_pkcs1_der(&der)
                .map_err(|e| CryptoError::InvalidKey(e.to_string()))?,
            other => {
                return Err(CryptoError::InvalidKey(format!("unexpected PEM block {other:?}")));
            }
        };
        let spki = key
            .to_public_key()
            .to_public_key_der()
            .map_err(|e| CryptoError::InvalidKey(e.to_string()))?;
        let public = PublicKey::from_spki_der(spki.as_bytes())?;
        Ok(Self { key, public })
    }

    /// The public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// RSA PKCS#1 v1.5 SHA-512 signature over `data` (deterministic).
    pub fn sign(&self, data: &[u8]) -> Vec<u8> {
        let digest = Sha512::digest(data);
        // Invariant: signing a SHA-512 digest with a valid RSA key of at least 1024 bits cannot
        // fail; OpenDHT keys are 2048 or 4096 bits.
        self.key
            .sign(Pkcs1v15Sign::new::<Sha512>(), &digest)
            .unwrap_or_else(|error| unreachable!("RSA signing failed: {error}"))
    }

    /// Decrypts what [`PublicKey::encrypt`] (or OpenDHT) produced for this key.
    pub fn decrypt(&self, cypher: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let block = self.key.size();
        if cypher.len() < block {
            return Err(CryptoError::Decrypt("shorter than one RSA block"));
        }
        let rsa_part = &cypher[..block];
        let plain_block = Zeroizing::new(
            self.key
                .decrypt(Pkcs1v15Encrypt, rsa_part)
                .map_err(|_| CryptoError::Decrypt("RSA block"))?,
        );
        if cypher.len() == block {
            return Ok(plain_block.to_vec());
        }
        let rest = &cypher[block..];
        if rest.len() <= IV_LEN + TAG_LEN {
            return Err(CryptoError::Decrypt("AES part too short"));
        }
        let (iv, sealed) = rest.split_at(IV_LEN);
        let iv: &[u8; IV_LEN] = iv.try_into().map_err(|_| CryptoError::Decrypt("IV"))?;
        gcm_decrypt(&plain_block, iv, sealed, &[])
            .or_else(|_| legacy_gcm_decrypt(&plain_block, iv, sealed))
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey(<redacted>, {})", self.public.id())
    }
}

fn gcm_encrypt(
    key: &[u8],
    iv: &[u8; IV_LEN],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let nonce = Nonce::from(*iv);
    let payload = aes_gcm::aead::Payload { msg: plaintext, aad };
    let sealed = match key.len() {
        16 => Aes128Gcm::new_from_slice(key).ok().map(|c| c.encrypt(&nonce, payload)),
        24 => Aes192Gcm::new_from_slice(key).ok().map(|c| c.encrypt(&nonce, payload)),
        32 => Aes256Gcm::new_from_slice(key).ok().map(|c| c.encrypt(&nonce, payload)),
        _ => None,
    };
    match sealed {
        Some(Ok(sealed)) => Ok(sealed),
        _ => Err(CryptoError::Encrypt("AES key size".into())),
    }
}

fn gcm_decrypt(
    key: &[u8],
    iv: &[u8; IV_LEN],
    sealed: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let nonce = Nonce::from(*iv);
    let payload = aes_gcm::aead::Payload { msg: sealed, aad };
    let opened = match key.len() {
        16 => Aes128Gcm::new_from_slice(key).ok().map(|c| c.decrypt(&nonce, payload)),
        24 => Aes192Gcm::new_from_slice(key).ok().map(|c| c.decrypt(&nonce, payload)),
        32 => Aes256Gcm::new_from_slice(key).ok().map(|c| c.decrypt(&nonce, payload)),
        _ => return Err(CryptoError::Decrypt("AES key size")),
    };
    match opened {
        Some(Ok(plaintext)) => Ok(plaintext),
        _ => Err(CryptoError::Decrypt("AES-GCM tag mismatch")),
    }
}

/// OpenDHT's fallback for values from old versions, whose tag covered the plaintext as
/// associated data. GCM's keystream is symmetric: encrypting the ciphertext yields the
/// plaintext, and encrypting that with the plaintext as associated data yields the old tag.
fn legacy_gcm_decrypt(
    key: &[u8],
    iv: &[u8; IV_LEN],
    sealed: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let (ciphertext, tag) = sealed.split_at(sealed.len() - TAG_LEN);
    let keystreamed =
        gcm_encrypt(key, iv, ciphertext, &[]).map_err(|_| CryptoError::Decrypt("AES key size"))?;
    let plaintext = &keystreamed[..ciphertext.len()];
    let legacy = gcm_encrypt(key, iv, plaintext, plaintext)
        .map_err(|_| CryptoError::Decrypt("AES key size"))?;
    if constant_time_eq(&legacy[ciphertext.len()..], tag) {
        Ok(plaintext.to_vec())
    } else {
        Err(CryptoError::Decrypt("AES-GCM tag mismatch"))
    }
}

/// Compares two byte strings in time that depends only on their length.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |difference, (x, y)| difference | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
