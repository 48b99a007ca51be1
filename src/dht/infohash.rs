//! OpenDHT's 160-bit keys and node ids (opendht-wire.md §2.1).

use sha1::Sha1;
use sha2::Digest as _;

use crate::identity::{AccountId, DeviceId, key_id};

key_id!(
    /// A DHT key or node id: 20 bytes, printed as 40 lowercase hex digits. A key for text is
    /// SHA-1 of the text; a public key's id is SHA-1 of its DER SubjectPublicKeyInfo.
    InfoHash, 20, Sha1
);

impl InfoHash {
    /// The all-zero hash, which OpenDHT treats as "none".
    pub const ZERO: Self = Self([0; 20]);

    /// SHA-1 of `data`: the key OpenDHT uses for a string, such as `"peer:" + device id`.
    pub fn of(data: &[u8]) -> Self {
        Self(Sha1::digest(data).into())
    }

    /// Whether this is the all-zero hash.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 20]
    }

    /// XOR distance to `other`, compared big-endian as OpenDHT's `xorCmp` does.
    pub fn distance(&self, other: &Self) -> [u8; 20] {
        std::array::from_fn(|i| self.0[i] ^ other.0[i])
    }

    /// Number of leading bits shared with `other` (160 when equal).
    pub fn common_bits(&self, other: &Self) -> u32 {
        let distance = self.distance(other);
        match distance.iter().position(|byte| *byte != 0) {
            Some(index) => 8 * index as u32 + distance[index].leading_zeros(),
            None => 160,
        }
    }
}

impl From<AccountId> for InfoHash {
    fn from(id: AccountId) -> Self {
        Self(*id.as_bytes())
    }
}

impl From<DeviceId> for InfoHash {
    fn from(id: DeviceId) -> Self {
        Self(*id.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_strings_like_opendht() {
        // opendht-wire.md §2.1: InfoHash.get("hello").
        assert_eq!(InfoHash::of(b"hello").to_string(), "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d");
    }

    #[test]
    fn distance_and_common_bits() {
        let a = InfoHash::from_bytes([0; 20]);
        let mut bytes = [0; 20];
        bytes[1] = 0b0010_0000;
        let b = InfoHash::from_bytes(bytes);
        assert_eq!(a.common_bits(&b), 10);
        assert_eq!(a.common_bits(&a), 160);
        assert_eq!(a.distance(&b), bytes);
        assert!(a.is_zero() && !b.is_zero());
    }
}
