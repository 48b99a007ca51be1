//! Select/where queries on values and `fileds` replies (opendht-wire.md §5).

use std::fmt;

use serde::de::{self, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::bin::WireHash;
use crate::dht::InfoHash;

/// A value field (`Value::Field`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    /// 1: the value id.
    Id,
    /// 2: the value type.
    ValueType,
    /// 3: the owner's public key.
    OwnerPk,
    /// 4: the sequence number.
    SeqNum,
    /// 5: the user type.
    UserType,
}

impl Field {
    fn number(self) -> u8 {
        match self {
            Self::Id => 1,
            Self::ValueType => 2,
            Self::OwnerPk => 3,
            Self::SeqNum => 4,
            Self::UserType => 5,
        }
    }

    fn from_number(number: u64) -> Option<Self> {
        [Self::Id, Self::ValueType, Self::OwnerPk, Self::SeqNum, Self::UserType]
            .into_iter()
            .find(|field| u64::from(field.number()) == number)
    }
}

impl Serialize for Field {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.number())
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let number = u64::deserialize(deserializer)?;
        Field::from_number(number)
            .ok_or_else(|| de::Error::custom(format!("unknown field {number}")))
    }
}

/// A where-condition. OpenDHT 2.4.12 cannot encode a condition on the sequence number, and
/// drops messages that carry one, so there is none here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `id = v`.
    Id(u64),
    /// `type = v`.
    ValueType(u16),
    /// `owner = v` (public-key id).
    Owner(InfoHash),
    /// `utype = v`.
    UserType(Vec<u8>),
}

impl Serialize for Filter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        match self {
            Self::Id(id) => {
                map.serialize_entry("f", &Field::Id)?;
                map.serialize_entry("v", id)?;
            }
            Self::ValueType(value_type) => {
                map.serialize_entry("f", &Field::ValueType)?;
                map.serialize_entry("v", value_type)?;
            }
            Self::Owner(owner) => {
                map.serialize_entry("f", &Field::OwnerPk)?;
                map.serialize_entry("v", &WireHash(*owner))?;
            }
            Self::UserType(user_type) => {
                map.serialize_entry("f", &Field::UserType)?;
                map.serialize_entry("v", serde_bytes::Bytes::new(user_type))?;
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Filter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct RawFilter {
            f: Field,
            v: FieldValue,
        }
        let RawFilter { f, v } = RawFilter::deserialize(deserializer)?;
        let invalid = || de::Error::custom(format!("bad value for a condition on {f:?}"));
        Ok(match (f, v) {
            (Field::Id, FieldValue::Uint(id)) => Self::Id(id),
            (Field::ValueType, FieldValue::Uint(t)) => {
                Self::ValueType(u16::try_from(t).map_err(|_| invalid())?)
            }
            (Field::OwnerPk, FieldValue::Bytes(bytes)) => Self::Owner(InfoHash::from_bytes(
                bytes.as_slice().try_into().map_err(|_| invalid())?,
            )),
            (Field::UserType, FieldValue::Bytes(bytes)) => Self::UserType(bytes),
            (Field::UserType, FieldValue::Text(text)) => Self::UserType(text.into_bytes()),
            _ => return Err(invalid()),
        })
    }
}

/// A query on the values of a key: `{"s": [fields], "w": [conditions]}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ValueQuery {
    /// Fields to return; empty for whole values.
    #[serde(rename = "s")]
    pub select: Vec<Field>,
    /// Conditions, all of which must hold.
    #[serde(rename = "w")]
    pub filters: Vec<Filter>,
}

/// One selected field of one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// Id, type or sequence number.
    Uint(u64),
    /// An owner key or a user type as bytes.
    Bytes(Vec<u8>),
    /// A user type as text.
    Text(String),
}

impl Serialize for FieldValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Uint(number) => serializer.serialize_u64(*number),
            Self::Bytes(bytes) => serializer.serialize_bytes(bytes),
            Self::Text(text) => serializer.serialize_str(text),
        }
    }
}

impl<'de> Deserialize<'de> for FieldValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldValueVisitor;
        impl Visitor<'_> for FieldValueVisitor {
            type Value = FieldValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an unsigned integer, bin or str")
            }
            fn visit_u64<E: de::Error>(self, number: u64) -> Result<FieldValue, E> {
                Ok(FieldValue::Uint(number))
            }
            fn visit_i64<E: de::Error>(self, number: i64) -> Result<FieldValue, E> {
                u64::try_from(number)
                    .map(FieldValue::Uint)
                    .map_err(|_| E::custom("negative field value"))
            }
            fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<FieldValue, E> {
                Ok(FieldValue::Bytes(bytes.to_vec()))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<FieldValue, E> {
                Ok(FieldValue::Text(text.to_owned()))
            }
        }
        deserializer.deserialize_any(FieldValueVisitor)
    }
}

/// The `fileds` (sic) part of a get reply: for each matching value, the selected fields in
/// ascending order, flattened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldsReply {
    /// The selected fields, ascending.
    #[serde(rename = "f")]
    pub fields: Vec<Field>,
    /// One entry per field per value.
    #[serde(rename = "v")]
    pub values: Vec<FieldValue>,
}

impl FieldsReply {
    /// The values' rows: `fields.len()` entries each; an incomplete last row is dropped.
    pub fn rows(&self) -> impl Iterator<Item = &[FieldValue]> {
        self.values.chunks_exact(self.fields.len().max(1))
    }
}
