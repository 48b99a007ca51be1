//! OpenDHT's 160-bit keys and node ids (opendht-wire.md §2.1).

use sha1::Sha1;
use sha2::Digest as _;

use crate::identity::{AccountId, DeviceId, DeviceLongId, key_id};

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

    /// This hash with bit `index` set.
    pub(crate) fn with_bit(mut self, index: u32) -> Self {
        self.0[(index / 8) as usize] |= 0x80 >> (index % 8);
        self
    }

    /// Index of the last set bit, or `None` for the zero hash (OpenDHT's `lowbit`).
    pub(crate) fn lowest_set_bit(&self) -> Option<u32> {
        let (index, byte) = self.0.iter().enumerate().rev().find(|(_, byte)| **byte != 0)?;
        Some(8 * index as u32 + 7 - byte.trailing_zeros())
    }

    /// A random hash sharing the first `prefix_bits` bits of this one.
    pub(crate) fn random_with_prefix(&self, prefix_bits: u32, rng: &mut impl rand::Rng) -> Self {
        let mut random = [0u8; 20];
        rng.fill_bytes(&mut random);
        let mut out = *self;
        for index in prefix_bits.min(160)..160 {
            let byte = (index / 8) as usize;
            let mask = 0x80 >> (index % 8);
            out.0[byte] = (out.0[byte] & !mask) | (random[byte] & mask);
        }
        out
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

impl From<DeviceLongId> for InfoHash {
    /// OpenDHT's `InfoHash::get(PkId)`: SHA-1 of the long id's 32 bytes. Since OpenDHT 3.5 a
    /// device certificate is put there too, and since 3.7.2 only there.
    fn from(id: DeviceLongId) -> Self {
        Self::of(id.as_bytes())
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

    #[test]
    fn bit_helpers() {
        let zero = InfoHash::ZERO;
        assert_eq!(zero.lowest_set_bit(), None);
        let one = zero.with_bit(0);
        assert_eq!(one.as_bytes()[0], 0x80);
        assert_eq!(one.lowest_set_bit(), Some(0));
        assert_eq!(one.with_bit(13).lowest_set_bit(), Some(13));
        assert_eq!(zero.with_bit(159).lowest_set_bit(), Some(159));
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7);
        for prefix in [0, 1, 9, 80, 159, 160] {
            let target = one.with_bit(40).random_with_prefix(prefix, &mut rng);
            assert!(target.common_bits(&one.with_bit(40)) >= prefix);
        }
    }
}
