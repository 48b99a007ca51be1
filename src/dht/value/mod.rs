//! OpenDHT values (opendht-wire.md §7): ids, types, signed and encrypted content, and the
//! canonical msgpack that signatures cover.

use serde::{Deserialize, Serialize};

use super::InfoHash;
use super::wire::bin::{Blob, WireHash};

/// Largest value OpenDHT stores: data + signature + cypher + user type, in bytes.
pub const MAX_VALUE_SIZE: usize = 65536;

/// A value type (opendht-wire.md §7.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ValueType(pub u16);

impl ValueType {
    /// Type 0, "User Data": 10 minutes. Jami's DeviceAnnouncement and PeerConnectionRequest.
    pub const USER_DATA: Self = Self(0);
    /// Type 8, "Certificate": 7 days, stored only at the certificate's own key id.
    pub const CERTIFICATE: Self = Self(8);

    /// How long a node keeps a value of this type after its creation or last refresh.
    pub fn lifetime(self) -> std::time::Duration {
        const MINUTE: u64 = 60;
        std::time::Duration::from_secs(match self.0 {
            1 | 3 => 5 * MINUTE,
            2 => 15 * MINUTE,
            4 | 8 => 7 * 24 * 60 * MINUTE,
            5 => MINUTE,
            _ => 10 * MINUTE,
        })
    }
}

/// The body of a value, in the field order OpenDHT emits and signs: `seq, owner, to, type,
/// data, utype`. `seq` and `owner` are present exactly when the value is signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Body {
    /// Sequence number of a signed value; a replacement needs a higher one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u16>,
    /// The signer's public key, DER SubjectPublicKeyInfo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Blob>,
    /// The recipient's public-key id (encrypted values only).
    #[serde(default, rename = "to", skip_serializing_if = "Option::is_none")]
    recipient: Option<WireHash>,
    /// The value type.
    #[serde(rename = "type")]
    pub value_type: ValueType,
    /// The payload.
    pub data: Blob,
    /// An application-defined type string, such as `text/plain`.
    #[serde(default, rename = "utype", skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
}

impl Body {
    /// An unsigned body.
    pub fn new(value_type: ValueType, data: Vec<u8>) -> Self {
        Self {
            seq: None,
            owner: None,
            recipient: None,
            value_type,
            data: Blob::from(data),
            user_type: None,
        }
    }

    /// The recipient's public-key id, for encrypted values.
    pub fn recipient(&self) -> Option<InfoHash> {
        self.recipient.map(|hash| hash.0)
    }

    /// Sets the recipient.
    pub fn set_recipient(&mut self, recipient: Option<InfoHash>) {
        self.recipient = recipient.map(WireHash);
    }

    /// The canonical msgpack of the body: the bytes a signature covers.
    pub fn to_sign(&self) -> Vec<u8> {
        encode(self)
    }
}

/// A value's content: clear (maybe signed) or encrypted to one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Encrypted: RSA-wrapped AES key, IV, AES-GCM ciphertext and tag (`dat` is a bin).
    Encrypted(Blob),
    /// In clear: `{"body": ..., "sig": ...}`.
    Clear {
        /// The body.
        body: Body,
        /// The owner's signature over [`Body::to_sign`], when signed.
        #[serde(default, rename = "sig", skip_serializing_if = "Option::is_none")]
        signature: Option<Blob>,
    },
}

/// A value as carried in `values` arrays: `{"id": u64, "dat": ..., "p": u32, "pt": str}`.
/// OpenDHT 4.x adds the last two outside what signatures cover; nodes keep them as they came.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Value {
    /// The value id, unique per key; 0 is invalid.
    pub id: u64,
    /// The content.
    #[serde(rename = "dat")]
    pub content: Content,
    /// Priority (OpenDHT ≥ 3.x; Jami sets 1 on device announcements); absent means 0.
    #[serde(default, rename = "p", skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// Push type (OpenDHT ≥ 3.7.8; dhtnet sets it on connection requests).
    #[serde(default, rename = "pt", skip_serializing_if = "Option::is_none")]
    pub push_type: Option<String>,
}

/// Why a value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The packed value does not decode.
    #[error("undecodable value: {0}")]
    Decode(String),
    /// Value id 0.
    #[error("value id 0 is invalid")]
    ZeroId,
    /// An owner without `seq` or signature, or the reverse.
    #[error("inconsistent signature fields")]
    InconsistentSignature,
    /// Larger than [`MAX_VALUE_SIZE`].
    #[error("value of {0} bytes is over the size limit")]
    TooLarge(usize),
}

impl Value {
    /// A value with no priority or push type, as every value of OpenDHT 2.4.
    pub fn new(id: u64, content: Content) -> Self {
        Self { id, content, priority: None, push_type: None }
    }

    /// Decodes a packed value and checks its structure (not its signature).
    pub fn decode(bytes: &[u8]) -> Result<Self, ValueError> {
        let value: Self =
            rmp_serde::from_slice(bytes).map_err(|e| ValueError::Decode(e.to_string()))?;
        value.check()?;
        Ok(value)
    }

    /// The canonical msgpack of the value.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Structural checks: id, signature fields, size.
    pub fn check(&self) -> Result<(), ValueError> {
        if self.id == 0 {
            return Err(ValueError::ZeroId);
        }
        if let Content::Clear { body, signature } = &self.content {
            let signed = body.owner.is_some();
            if signed != body.seq.is_some() || signed != signature.is_some() {
                return Err(ValueError::InconsistentSignature);
            }
        }
        let size = self.size();
        if size > MAX_VALUE_SIZE {
            return Err(ValueError::TooLarge(size));
        }
        Ok(())
    }

    /// The value's type; an encrypted value's type is hidden inside, and nodes treat it as
    /// [`ValueType::USER_DATA`].
    pub fn value_type(&self) -> ValueType {
        match &self.content {
            Content::Clear { body, .. } => body.value_type,
            Content::Encrypted(_) => ValueType::USER_DATA,
        }
    }

    /// The size OpenDHT's storage policy measures: data + signature + cypher + user type +
    /// push type.
    pub fn size(&self) -> usize {
        self.push_type.as_ref().map_or(0, String::len)
            + match &self.content {
                Content::Encrypted(cypher) => cypher.len(),
                Content::Clear { body, signature } => {
                    body.data.len()
                        + signature.as_ref().map_or(0, |s| s.len())
                        + body.user_type.as_ref().map_or(0, String::len)
                }
            }
    }
}

/// The `data` of a certificate value (type 8): a msgpack bin holding the PEM chain.
pub fn certificate_data(pem_chain: &str) -> Vec<u8> {
    encode(&serde_bytes::Bytes::new(pem_chain.as_bytes()))
}

/// The PEM chain in a certificate value's `data`, if it holds one.
pub fn certificate_chain(data: &[u8]) -> Option<String> {
    let pem: Blob = rmp_serde::from_slice(data).ok()?;
    String::from_utf8(pem.into_vec()).ok()
}

/// Canonical msgpack (structs as maps, smallest integer forms, bin for byte strings).
pub(crate) fn encode(value: &impl Serialize) -> Vec<u8> {
    // Invariant: serialising these plain structs into a Vec cannot fail.
    rmp_serde::to_vec_named(value)
        .unwrap_or_else(|error| unreachable!("msgpack encoding failed: {error}"))
}

#[cfg(test)]
pub(crate) mod tests;
