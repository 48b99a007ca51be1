//! The signature of a delivery, and its check.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The HMAC-SHA256 signature of one request, as sent in the `X-Rdv-Signature` header:
/// `sha256=` followed by the lower-case hex of HMAC-SHA256(`secret`, `"<timestamp>.<body>"`).
///
/// To check a request, a receiver:
/// 1. reads the raw body bytes (before any JSON parsing) and the `X-Rdv-Timestamp` header;
/// 2. refuses the request if that timestamp is more than a few minutes away from its own
///    clock (this stops replays; each retry is signed anew with a fresh timestamp);
/// 3. computes HMAC-SHA256 with the shared secret as the key over the timestamp's decimal
///    digits, a `.`, then the body, and hex-encodes it in lower case;
/// 4. compares `sha256=<that hex>` with `X-Rdv-Signature` in constant time (see
///    [`verify_signature`]).
///
/// In Python: `"sha256=" + hmac.new(secret, f"{ts}.".encode() + body, "sha256").hexdigest()`.
pub fn signature(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let mac = signing_mac(secret, timestamp, body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `header` (an `X-Rdv-Signature` value) is the signature of `timestamp` and `body`
/// under `secret`, compared in constant time. The timestamp's freshness is the caller's to
/// check.
pub fn verify_signature(secret: &str, timestamp: u64, body: &[u8], header: &str) -> bool {
    let Some(hex_digest) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(digest) = hex::decode(hex_digest) else {
        return false;
    };
    signing_mac(secret, timestamp, body).verify_slice(&digest).is_ok()
}

/// The MAC of `"<timestamp>.<body>"` under `secret`, not yet finalised.
fn signing_mac(secret: &str, timestamp: u64, body: &[u8]) -> HmacSha256 {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}
