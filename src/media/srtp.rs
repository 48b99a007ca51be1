//! SRTP for one stream of a call (jami-protocol.md §6.4): each side encrypts with the key of
//! its own SDP and decrypts with the peer's, AES_CM_128_HMAC_SHA1_80 (or _32), via webrtc-rs's
//! rtc-srtp with ring. jamid neither protects nor unprotects RTCP (`media/socket_pair.cpp`
//! passes RTCP through as is), so our reports go out in the clear; SRTCP is still accepted.

use rtc_crypto::providers::RingCrypto;
use rtc_srtp::context::Context;
use rtc_srtp::protection_profile::ProtectionProfile;

use crate::sip::sdp::{KEY_SALT_LEN, SrtpKey};

/// Master key length of AES_CM_128.
const KEY_LEN: usize = 16;
/// What SRTCP appends to a packet with the suites we speak: the E flag and index (4 bytes),
/// then an 80-bit authentication tag (also with `_32`, which shortens SRTP's tag only).
const SRTCP_TRAILER_LEN: usize = 4 + 10;

/// An SRTP failure. Setup errors are ours; packet errors are the sender's (drop the packet).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// The key's suite is not one we speak.
    #[error("unsupported SRTP suite {0}")]
    Suite(String),
    /// rtc-srtp refused the keys.
    #[error("SRTP setup: {0}")]
    Setup(String),
    /// A packet failed authentication, replay or parsing.
    #[error("SRTP packet refused: {0}")]
    Packet(String),
}

/// Both directions of one stream.
pub struct SrtpSession {
    outbound: Context,
    inbound: Context,
}

impl std::fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SrtpSession(<keys redacted>)")
    }
}

fn context(key: &SrtpKey) -> Result<Context, SrtpError> {
    let profile = match key.suite.as_str() {
        "AES_CM_128_HMAC_SHA1_80" => ProtectionProfile::Aes128CmHmacSha1_80,
        "AES_CM_128_HMAC_SHA1_32" => ProtectionProfile::Aes128CmHmacSha1_32,
        other => return Err(SrtpError::Suite(other.to_owned())),
    };
    let (master_key, master_salt) = key.key_salt.split_at(KEY_LEN);
    Context::new(master_key, master_salt, profile, None, None, &RingCrypto)
        .map_err(|error| SrtpError::Setup(error.to_string()))
}

impl SrtpSession {
    /// A session that sends with `local` (our SDP's key) and receives with `remote` (the
    /// peer's).
    pub fn new(local: &SrtpKey, remote: &SrtpKey) -> Result<Self, SrtpError> {
        Ok(Self { outbound: context(local)?, inbound: context(remote)? })
    }

    /// Encrypts and authenticates an RTP packet.
    pub fn protect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        self.outbound.encrypt_rtp(packet).map(|b| b.to_vec()).map_err(packet_error)
    }

    /// Authenticates and decrypts an SRTP packet.
    pub fn unprotect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        self.inbound.decrypt_rtp(packet).map(|b| b.to_vec()).map_err(packet_error)
    }

    /// Encrypts and authenticates an RTCP compound packet. Calls send their reports in the
    /// clear instead: jamid reads RTCP undecrypted (`media/socket_pair.cpp`).
    #[cfg(test)]
    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        self.outbound.encrypt_rtcp(packet).map(|b| b.to_vec()).map_err(packet_error)
    }

    /// Authenticates and decrypts an SRTCP packet. One whose E flag says it is not encrypted
    /// is refused: rtc-srtp 0.21 returns such a packet without checking its authentication
    /// tag, so any plain RTCP packet (all that jamid sends) would pass for an authenticated
    /// one, 14 bytes short.
    pub fn unprotect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let flag = packet.len().checked_sub(SRTCP_TRAILER_LEN).and_then(|at| packet.get(at));
        let encrypted = flag.is_some_and(|flag| flag & 0x80 != 0);
        if !encrypted {
            return Err(SrtpError::Packet("not an encrypted SRTCP packet".into()));
        }
        self.inbound.decrypt_rtcp(packet).map(|b| b.to_vec()).map_err(packet_error)
    }
}

fn packet_error(error: impl std::fmt::Display) -> SrtpError {
    SrtpError::Packet(error.to_string())
}

impl SrtpKey {
    /// A fresh random AES_CM_128_HMAC_SHA1_80 key for our SDP.
    pub fn random() -> Self {
        Self {
            suite: "AES_CM_128_HMAC_SHA1_80".into(),
            key_salt: rand::random::<[u8; KEY_SALT_LEN]>(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal RTP packet: version 2, PT 104, sequence, timestamp, SSRC, payload.
    fn rtp(sequence: u16) -> Vec<u8> {
        let mut packet = vec![0x80, 104];
        packet.extend(sequence.to_be_bytes());
        packet.extend(960u32.wrapping_mul(u32::from(sequence)).to_be_bytes());
        packet.extend(0x1234_5678u32.to_be_bytes());
        packet.extend(b"opus payload");
        packet
    }

    #[test]
    fn each_side_decrypts_what_the_other_encrypts_and_tampering_is_refused() {
        let (ours, theirs) = (SrtpKey::random(), SrtpKey::random());
        let mut room = SrtpSession::new(&ours, &theirs).unwrap();
        let mut caller = SrtpSession::new(&theirs, &ours).unwrap();
        for sequence in [1u16, 2, 65535, 0, 1] {
            let packet = rtp(sequence);
            let protected = room.protect_rtp(&packet).unwrap();
            assert_ne!(protected[12..packet.len()], packet[12..], "the payload is encrypted");
            assert_eq!(protected.len(), packet.len() + 10, "an 80-bit tag");
            assert_eq!(caller.unprotect_rtp(&protected).unwrap(), packet);
        }
        let mut tampered = room.protect_rtp(&rtp(2)).unwrap();
        tampered[14] ^= 1;
        assert!(matches!(caller.unprotect_rtp(&tampered), Err(SrtpError::Packet(_))));
        assert!(caller.unprotect_rtp(&[0x80, 104, 0]).is_err(), "truncated");

        // An RTCP receiver report (RC=0) each way.
        let report = [0x80, 201, 0, 1, 0x12, 0x34, 0x56, 0x78];
        let protected = caller.protect_rtcp(&report).unwrap();
        assert_eq!(room.unprotect_rtcp(&protected).unwrap(), report);
        // Plain RTCP is not SRTCP, whatever its last 14 bytes say: a 48-byte receiver report
        // and CNAME as jamid sends them, and the SRTCP packet with its E flag cleared.
        let mut plain = vec![0x81, 201, 0, 7];
        plain.extend([0x3a, 0x5f, 0x12, 0x1d, 0x3a, 0x5f, 0x12, 0x1c]);
        plain.extend([0; 20]);
        plain.extend([0x81, 202, 0, 4, 0x3a, 0x5f, 0x12, 0x1d, 1, 6]);
        plain.extend(b"jamid\0");
        assert_eq!(plain.len(), 48);
        assert!(matches!(room.unprotect_rtcp(&plain), Err(SrtpError::Packet(_))));
        let mut unflagged = caller.protect_rtcp(&report).unwrap();
        unflagged[report.len()] &= 0x7f;
        assert!(room.unprotect_rtcp(&unflagged).is_err(), "an E flag cleared by the network");
        assert!(room.unprotect_rtcp(&[0x80, 201, 0]).is_err(), "truncated");
        // Our own key cannot read what we sent: the directions are keyed apart.
        let protected = room.protect_rtp(&rtp(9)).unwrap();
        assert!(SrtpSession::new(&theirs, &theirs).unwrap().unprotect_rtp(&protected).is_err());
    }

    #[test]
    fn unknown_suites_are_refused() {
        let key = SrtpKey { suite: "F8_128_HMAC_SHA1_80".into(), key_salt: [0; KEY_SALT_LEN] };
        assert!(matches!(SrtpSession::new(&key, &key), Err(SrtpError::Suite(_))));
    }
}
