//! A room's presence on the DHT, as a Jami device (jami-protocol.md §1.3, §2.1): its device
//! certificate, its signed DeviceAnnouncement, and the keys where callers put their
//! PeerConnectionRequests. Both generations of the protocol are spoken at once, as dhtnet's
//! `LegacyMode::Supported` does (jami-protocol-2026.md §1c, §2a–c).

mod request;

use serde::Serialize;
use serde_bytes::Bytes;

pub use request::{
    PeerConnectionData, PeerConnectionRequest, RequestError, answer_value, open_request,
};

use crate::dht::InfoHash;
use crate::dht::crypto::{CryptoError, PrivateKey, PublicKey};
use crate::dht::value::{Body, Content, Value, ValueType, certificate_data};
use crate::identity::RoomIdentity;

/// The id OpenDHT gives a node's certificate value.
const CERTIFICATE_VALUE_ID: u64 = 1;

/// The two generations of Jami's connection protocol, which differ in the DHT keys of a
/// device: where its certificate is and where it takes connection requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtocolEra {
    /// Today's Jami (dhtnet `LegacyMode::Supported`/`Disabled`, from Qt stable 20260306.0 on):
    /// keys from the SHA-256 long id.
    Current,
    /// jamid 13.7 up to Qt stable 20260220.0 (dhtnet `LegacyMode::Enabled`): keys from the
    /// SHA-1 id.
    Legacy,
}

impl ProtocolEra {
    /// Both eras, today's first (the order callers' certificates are looked up in).
    pub const ALL: [Self; 2] = [Self::Current, Self::Legacy];

    /// The key where `device` takes connection requests: SHA-1 of `"peer:"` and its long id
    /// in 64 hex digits (current), or its id in 40 (legacy).
    pub fn peer_key(self, device: &PublicKey) -> InfoHash {
        match self {
            Self::Current => InfoHash::of(format!("peer:{}", device.long_id()).as_bytes()),
            Self::Legacy => InfoHash::of(format!("peer:{}", device.id()).as_bytes()),
        }
    }

    /// The key where `device`'s certificate is published: the hash of its long id (OpenDHT
    /// ≥ 3.5), or its id (OpenDHT 2.4, up to 3.7.1).
    pub fn certificate_key(self, device: &PublicKey) -> InfoHash {
        match self {
            Self::Current => device.long_id().into(),
            Self::Legacy => device.id(),
        }
    }
}

impl std::fmt::Display for ProtocolEra {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Current => "current",
            Self::Legacy => "legacy",
        })
    }
}

/// The device certificate value, put at both of the device's certificate keys
/// ([`ProtocolEra::certificate_key`]): unsigned, type 8, id 1, and `data` a msgpack bin
/// holding the PEM chain (device, account, CA), the chain TLS presents.
pub fn certificate_value(identity: &RoomIdentity) -> Value {
    let data = certificate_data(&identity.certificate_chain_pem());
    Value::new(
        CERTIFICATE_VALUE_ID,
        Content::Clear { body: Body::new(ValueType::CERTIFICATE, data), signature: None },
    )
}

/// Jami's `DeviceAnnouncement`: `{"dev": bin20, "pk": bin(DER public key)}`.
#[derive(Serialize)]
struct DeviceAnnouncement<'a> {
    dev: &'a Bytes,
    pk: &'a Bytes,
}

/// The DeviceAnnouncement value, put at the account id: type 0, signed by the account key
/// with sequence 0. Its id is derived from the device id, so that every restart re-announces
/// the same value rather than adding another.
pub fn announcement_value(identity: &RoomIdentity) -> Result<Value, CryptoError> {
    let device_key = &identity.chain().public_keys_der()[0];
    let device_id = identity.device_id();
    let data = crate::dht::value::encode(&DeviceAnnouncement {
        dev: Bytes::new(device_id.as_bytes()),
        pk: Bytes::new(device_key),
    });
    let account_key = PrivateKey::from_pem(identity.account().private_key.expose())?;
    let mut id_bytes = [0u8; 8];
    id_bytes.copy_from_slice(&device_id.as_bytes()[..8]);
    let id = u64::from_be_bytes(id_bytes) | 1;
    Ok(sign(&account_key, id, Body::new(ValueType::USER_DATA, data)))
}

/// Signs `body` as OpenDHT's `Value::sign` does: owner and sequence 0 in the body, then an
/// RSA SHA-512 signature over its canonical msgpack.
pub fn sign(key: &PrivateKey, id: u64, mut body: Body) -> Value {
    body.owner = Some(serde_bytes::ByteBuf::from(key.public_key().spki_der().to_vec()));
    body.seq = Some(0);
    let signature = key.sign(&body.to_sign());
    Value::new(id, Content::Clear { body, signature: Some(serde_bytes::ByteBuf::from(signature)) })
}

/// Signs `body` for `recipient` and encrypts it to them, as OpenDHT's `putEncrypted` does:
/// `to` set, signed, then `{"body", "sig"}` encrypted; the wire value shows only the cypher.
pub fn seal(
    signer: &PrivateKey,
    recipient: &PublicKey,
    id: u64,
    mut body: Body,
) -> Result<Value, CryptoError> {
    body.set_recipient(Some(recipient.id()));
    let Value { content, .. } = sign(signer, id, body);
    let cypher = recipient.encrypt(&crate::dht::value::encode(&content))?;
    Ok(Value::new(id, Content::Encrypted(serde_bytes::ByteBuf::from(cypher))))
}

#[cfg(test)]
mod tests;
