//! Identifiers derived from public keys exactly as Jami derives them (jami-protocol.md §1.2).
//!
//! GnuTLS's `gnutls_pubkey_get_key_id` hashes the DER SubjectPublicKeyInfo: SHA-1 for the
//! short id that OpenDHT calls `InfoHash`, SHA-256 for the long id (`PkId`). Hex is lowercase.

use sha1::Sha1;
use sha2::Sha256;

/// A key id could not be parsed from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected} lowercase hex digits, got {got:?}")]
pub struct ParseIdError {
    pub(crate) expected: usize,
    pub(crate) got: String,
}

/// Defines a fixed-size id type with hex text form, serde as hex, and derivation from an
/// SPKI by hashing. Used for the identity ids here and for the DHT's `InfoHash`.
macro_rules! key_id {
    ($(#[$doc:meta])* $name:ident, $len:literal, $hash:ty) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Derives the id from a DER-encoded SubjectPublicKeyInfo.
            pub fn from_spki_der(spki_der: &[u8]) -> Self {
                Self(<$hash as ::sha2::Digest>::digest(spki_der).into())
            }

            /// Wraps raw id bytes.
            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            /// The raw id bytes (for DHT keys).
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::identity::ParseIdError;

            /// Parses lowercase hex, as Jami prints it. Uppercase is accepted and normalised.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let error = || $crate::identity::ParseIdError { expected: 2 * $len, got: s.to_owned() };
                let mut bytes = [0u8; $len];
                if s.len() != 2 * $len {
                    return Err(error());
                }
                hex::decode_to_slice(s, &mut bytes).map_err(|_| error())?;
                Ok(Self(bytes))
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <String as ::serde::Deserialize>::deserialize(deserializer)?;
                text.parse().map_err(<D::Error as ::serde::de::Error>::custom)
            }
        }
    };
}

pub(crate) use key_id;

key_id!(
    /// A Jami account id ("Jami ID"): SHA-1 of the account public key, 40 hex digits.
    /// Callers dial `jami:<account id>`; it is also the DHT key of the device announcements.
    AccountId, 20, Sha1
);

key_id!(
    /// A device's short id: SHA-1 of the device public key, 40 hex digits. It keys the device
    /// certificate on the DHT and appears in SIP Contact headers.
    DeviceId, 20, Sha1
);

key_id!(
    /// A device's long id: SHA-256 of the device public key, 64 hex digits. Jami's
    /// ConnectionManager and the conference protocol's `device` fields use it.
    DeviceLongId, 32, Sha256
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_lowercase_hex() {
        let id: AccountId = "0F106BF56B3B56C4F345514D2CEBDD5774758DFD".parse().unwrap();
        assert_eq!(id.to_string(), "0f106bf56b3b56c4f345514d2cebdd5774758dfd");
        assert_eq!(id.as_bytes()[0], 0x0f);
    }

    #[test]
    fn rejects_wrong_length_and_non_hex() {
        assert!("0f106b".parse::<AccountId>().is_err());
        assert!("zz106bf56b3b56c4f345514d2cebdd5774758dfd".parse::<AccountId>().is_err());
        let long = "5757c743fcac3e32c0cf7ed6c233f108630f77d3a482fa10d7c6b3078bf54cb4";
        assert!(long.parse::<DeviceId>().is_err());
        assert!(long.parse::<DeviceLongId>().is_ok());
        // Multi-byte UTF-8 of the right byte length must not panic.
        assert!("é".repeat(20).parse::<AccountId>().is_err());
    }

    #[test]
    fn serde_uses_hex_strings() {
        let id = DeviceId::from_bytes([0xab; 20]);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{}\"", "ab".repeat(20)));
        assert_eq!(serde_json::from_str::<DeviceId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<DeviceId>("\"abc\"").is_err());
    }
}
