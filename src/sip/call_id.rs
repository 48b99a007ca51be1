//! A call's SIP Call-ID: chosen by the caller, so it names a call on its link and nothing
//! more. The room refers to participants by the id it issued, never by a Call-ID.

use std::fmt;

/// Longest Call-ID taken (jamid's are 32 characters; RFC 3261 sets no bound).
pub const MAX_CALL_ID_BYTES: usize = 256;

/// A Call-ID as it came in an INVITE: non-empty, printable ASCII, at most
/// [`MAX_CALL_ID_BYTES`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(String);

impl CallId {
    /// The header value as a Call-ID, if it is one (surrounding blanks removed).
    pub fn parse(value: &[u8]) -> Option<Self> {
        let value = std::str::from_utf8(value).ok()?.trim();
        let printable = value.bytes().all(|byte| byte.is_ascii_graphic());
        (!value.is_empty() && value.len() <= MAX_CALL_ID_BYTES && printable)
            .then(|| Self(value.to_owned()))
    }

    /// The Call-ID's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_printable_ids_and_refuses_empty_long_or_binary_ones() {
        assert_eq!(CallId::parse(b" abc@host ").unwrap().as_str(), "abc@host");
        assert!(CallId::parse(b"").is_none());
        assert!(CallId::parse(b"   ").is_none());
        assert!(CallId::parse(b"a b").is_none());
        assert!(CallId::parse(&[b'x'; MAX_CALL_ID_BYTES + 1]).is_none());
        assert!(CallId::parse(&[b'x'; MAX_CALL_ID_BYTES]).is_some());
        assert!(CallId::parse(b"caf\xc3\xa9").is_none());
    }
}
