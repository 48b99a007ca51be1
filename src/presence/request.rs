//! Incoming PeerConnectionRequests (jami-protocol.md §2.1–2.2): encrypted to our device,
//! signed by the caller's device, carrying `{id, ice_msg, isAnswer, connType}`.

use serde::{Deserialize, Serialize};

use crate::dht::InfoHash;
use crate::dht::crypto::CryptoError;
use crate::dht::crypto::{PrivateKey, PublicKey};
use crate::dht::value::{Body, Content, Value, ValueType};

/// The user type of connection requests.
const PEER_REQUEST: &str = "peer_request";

/// A decrypted and signature-checked connection request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConnectionRequest {
    /// The attempt's id, echoed in the answer.
    pub id: u64,
    /// The caller's ICE ufrag, password and candidates.
    pub ice_message: String,
    /// True for answers; a callee only takes requests.
    pub is_answer: bool,
    /// `videoCall`, `audioCall`, ... (informational).
    pub connection_type: String,
    /// The sender device's public key (DER SPKI); its certificate is at its keys on the DHT.
    pub sender: PublicKey,
    /// The protocol the request came in: which of our `peer:` keys it was put at. The answer
    /// goes to the caller's `peer:` key of the same era, the only one it listens on.
    pub era: super::ProtocolEra,
}

impl PeerConnectionRequest {
    /// The sender device's short id, the DHT key of its certificate.
    pub fn sender_id(&self) -> InfoHash {
        self.sender.id()
    }
}

/// Why a value at our `peer:` key was dropped. The sender is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Not encrypted.
    #[error("not encrypted")]
    NotEncrypted,
    /// Not decryptable with our device key.
    #[error("cannot decrypt: {0}")]
    Undecryptable(String),
    /// Decrypted, but not a value body.
    #[error("malformed content: {0}")]
    Malformed(String),
    /// Not signed.
    #[error("unsigned")]
    Unsigned,
    /// Addressed to another device.
    #[error("addressed to another device")]
    NotForUs,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// Signed and for us, but not a `peer_request`.
    #[error("not a peer request")]
    NotARequest,
}

/// The data of a request or an answer: a msgpack map in this key order
/// (`MSGPACK_DEFINE_MAP(id, ice_msg, isAnswer, connType)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerConnectionData {
    /// The attempt's id.
    pub id: u64,
    /// ICE ufrag, password and candidates.
    pub ice_msg: String,
    /// True for answers.
    #[serde(rename = "isAnswer", default)]
    pub is_answer: bool,
    /// `videoCall`, `audioCall`, ...; empty in answers.
    #[serde(rename = "connType", default)]
    pub connection_type: String,
}

impl PeerConnectionData {
    /// The data of a `peer_request` value, as a body of type 0 with that user type.
    pub fn into_body(self) -> Body {
        let data = rmp_serde::to_vec_named(&self).unwrap_or_default();
        let mut body = Body::new(ValueType::USER_DATA, data);
        body.user_type = Some(PEER_REQUEST.into());
        body
    }
}

/// The answer to `request`: our ICE info under the request's id, signed by our device and
/// sealed to the caller's device; it goes to the caller's `peer:` key.
pub fn answer_value(
    device_key: &PrivateKey,
    request: &PeerConnectionRequest,
    ice_message: String,
) -> Result<Value, CryptoError> {
    let data = PeerConnectionData {
        id: request.id,
        ice_msg: ice_message,
        is_answer: true,
        connection_type: String::new(),
    };
    super::seal(device_key, &request.sender, rand::random::<u64>() | 1, data.into_body())
}

/// Decrypts, checks and decodes a value found at our `peer:` key of `era`.
pub fn open_request(
    device_key: &PrivateKey,
    value: &Value,
    era: super::ProtocolEra,
) -> Result<PeerConnectionRequest, RequestError> {
    let Content::Encrypted(cypher) = &value.content else { return Err(RequestError::NotEncrypted) };
    let plaintext =
        device_key.decrypt(cypher).map_err(|e| RequestError::Undecryptable(e.to_string()))?;
    let content: Content =
        rmp_serde::from_slice(&plaintext).map_err(|e| RequestError::Malformed(e.to_string()))?;
    let Content::Clear { body, signature } = content else {
        return Err(RequestError::Malformed("nested encryption".into()));
    };
    let (Some(owner), Some(signature)) = (&body.owner, &signature) else {
        return Err(RequestError::Unsigned);
    };
    if body.recipient() != Some(device_key.public_key().id()) {
        return Err(RequestError::NotForUs);
    }
    let sender = PublicKey::from_spki_der(owner).map_err(|_| RequestError::BadSignature)?;
    sender.verify(&body.to_sign(), signature).map_err(|_| RequestError::BadSignature)?;
    if body.user_type.as_deref() != Some(PEER_REQUEST) {
        return Err(RequestError::NotARequest);
    }
    let data: PeerConnectionData =
        rmp_serde::from_slice(&body.data).map_err(|e| RequestError::Malformed(e.to_string()))?;
    Ok(PeerConnectionRequest {
        id: data.id,
        ice_message: data.ice_msg,
        is_answer: data.is_answer,
        connection_type: data.connection_type,
        sender,
        era,
    })
}
