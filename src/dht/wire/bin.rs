//! msgpack `bin` helpers for serde: OpenDHT carries ids, tokens, keys and data as bin.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::dht::InfoHash;

/// An [`InfoHash`] on the wire: a bin of exactly 20 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WireHash(pub(crate) InfoHash);

impl Serialize for WireHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0.as_bytes())
    }
}

impl<'de> Deserialize<'de> for WireHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HashVisitor;
        impl Visitor<'_> for HashVisitor {
            type Value = WireHash;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a 20-byte bin")
            }
            fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<WireHash, E> {
                let bytes: [u8; 20] =
                    bytes.try_into().map_err(|_| E::invalid_length(bytes.len(), &self))?;
                Ok(WireHash(InfoHash::from_bytes(bytes)))
            }
        }
        deserializer.deserialize_bytes(HashVisitor)
    }
}

/// A blob field (`token`, `data`, `sig`, `n4`, ...): written as bin; read from bin, str or an
/// array of small integers, as OpenDHT's `unpackBlob` accepts.
pub(crate) type Blob = serde_bytes::ByteBuf;

/// A transaction id: a uint32, or on input a 4-byte bin/str read big-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Tid(pub u32);

impl<'de> Deserialize<'de> for Tid {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TidVisitor;
        impl Visitor<'_> for TidVisitor {
            type Value = Tid;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a uint32 or 4 bytes")
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Tid, E> {
                u32::try_from(value).map(Tid).map_err(|_| E::custom("transaction id over 32 bits"))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Tid, E> {
                u32::try_from(value).map(Tid).map_err(|_| E::custom("negative transaction id"))
            }
            fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Tid, E> {
                let bytes: [u8; 4] =
                    bytes.try_into().map_err(|_| E::invalid_length(bytes.len(), &self))?;
                Ok(Tid(u32::from_be_bytes(bytes)))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Tid, E> {
                self.visit_bytes(text.as_bytes())
            }
        }
        deserializer.deserialize_any(TidVisitor)
    }
}
