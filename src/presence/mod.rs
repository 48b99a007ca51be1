//! A room's presence on the DHT, as a Jami device (jami-protocol.md §1.3, §2.1): its device
//! certificate, its signed DeviceAnnouncement, and the key where callers put their
//! PeerConnectionRequests.

mod request;

use serde::Serialize;
use serde_bytes::Bytes;

pub use request::{
    PeerConnectionData, PeerConnectionRequest, RequestError, answer_value, open_request,
};

use crate::dht::InfoHash;
use crate::dht::crypto::{CryptoError, PrivateKey};
use crate::dht::value::{Body, Content, Value, ValueType, certificate_data};
use crate::identity::{DeviceId, RoomIdentity};

/// The id OpenDHT gives a node's certificate value.
const CERTIFICATE_VALUE_ID: u64 = 1;

/// The key a device listens on for connection requests: SHA-1 of `"peer:" + device id`.
pub fn peer_key(device: DeviceId) -> InfoHash {
    InfoHash::of(format!("peer:{device}").as_bytes())
}

/// The device certificate value, put at the device id: unsigned, type 8, id 1, and `data` a
/// msgpack bin holding the PEM chain (device, account, CA).
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
    recipient: &crate::dht::crypto::PublicKey,
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
