//! Jami's `msg:<device>` channel (daemon 16.0 `MessageChannelHandler`,
//! jami-protocol-2026.md §6), sans-IO: today's clients open it on every new device link and
//! send their text messages there, no longer as SIP MESSAGE. Both directions carry a stream of
//! msgpack maps `{"id": u64, "t": type, "c": content, "req": nil}`.

use serde::{Deserialize, Serialize};

use super::msgpack_stream::take_objects;

/// The scheme of the channel's name; the rest is the long id of the device asked for.
pub const SCHEME: &str = "msg:";
/// The type of a plain text message.
pub const TEXT_PLAIN: &str = "text/plain";
/// Largest message accepted (what the daemon packs at most, `UINT16_MAX`), and so the most
/// bytes buffered while one arrives.
pub const MAX_MESSAGE: usize = u16::MAX as usize;

/// One message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ChannelMessage {
    /// The sender's id for it (used for delivery receipts).
    pub id: u64,
    /// Its MIME type: `text/plain`, or IMDN, invitations, ... which a room does not read.
    #[serde(rename = "t", default)]
    pub content_type: String,
    /// Its content.
    #[serde(rename = "c", default)]
    pub content: String,
}

/// The wire form: the daemon's `MSGPACK_DEFINE_MAP(id, t, c, req)`, `req` empty.
#[derive(Serialize)]
struct WireMessage<'a> {
    id: u64,
    t: &'a str,
    c: &'a str,
    req: Option<()>,
}

/// Why a channel's stream was given up (the sender is at fault; close the channel).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageChannelError {
    /// Not a stream of message maps.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A message larger than [`MAX_MESSAGE`].
    #[error("message over {MAX_MESSAGE} bytes")]
    Oversized,
}

/// Largest message id: jamid draws them from 1 to 2^53 (`JAMI_ID_MAX_VAL`), which clients
/// can carry as JSON numbers.
const MAX_ID: u64 = 1 << 53;

/// A new message id, as jamid draws them.
pub fn new_id() -> u64 {
    rand::random_range(1..=MAX_ID)
}

/// The bytes of `content` of type `content_type` as a message with id `id`.
pub fn encode(id: u64, content_type: &str, content: &str) -> Vec<u8> {
    let message = WireMessage { id, t: content_type, c: content, req: None };
    // Invariant: serialising this plain struct into a Vec cannot fail.
    rmp_serde::to_vec_named(&message)
        .unwrap_or_else(|error| unreachable!("msgpack encoding failed: {error}"))
}

/// Reads the messages of one channel as its bytes arrive, in any cuts.
#[derive(Debug, Default)]
pub struct MessageReader {
    input: Vec<u8>,
}

impl MessageReader {
    /// Feeds bytes of the channel; returns the messages completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<ChannelMessage>, MessageChannelError> {
        self.input.extend_from_slice(bytes);
        let (messages, failure) = take_objects::<ChannelMessage>(&mut self.input);
        if let Some(error) = failure {
            return Err(MessageChannelError::Malformed(error.to_string()));
        }
        if self.input.len() > MAX_MESSAGE {
            return Err(MessageChannelError::Oversized);
        }
        Ok(messages)
    }
}

#[cfg(test)]
mod tests;
