//! RFC 4571 framing on ICE-TCP connections: every STUN message and every chunk of
//! application data is prefixed with its length (16 bits, big-endian). Frames holding a STUN
//! message are told apart by the magic cookie; the rest is the application's byte stream.

/// Largest frame payload.
pub const MAX_FRAME: usize = u16::MAX as usize;

/// One received frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A STUN message (checks, responses, keep-alive indications).
    Stun(Vec<u8>),
    /// Application bytes (TLS records, possibly split across frames).
    Data(Vec<u8>),
}

/// Reassembles frames from a TCP byte stream.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buffer: Vec<u8>,
}

impl FrameDecoder {
    /// Feeds bytes read from the socket; returns the complete frames.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Frame> {
        self.buffer.extend_from_slice(bytes);
        let mut frames = Vec::new();
        let mut at = 0;
        while let Some(header) = self.buffer.get(at..at + 2) {
            let length = usize::from(u16::from_be_bytes([header[0], header[1]]));
            let Some(payload) = self.buffer.get(at + 2..at + 2 + length) else { break };
            frames.push(if is_stun(payload) {
                Frame::Stun(payload.to_vec())
            } else {
                Frame::Data(payload.to_vec())
            });
            at += 2 + length;
        }
        self.buffer.drain(..at);
        frames
    }

    /// Bytes held waiting for the rest of a frame.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }
}

/// `payload` framed for the wire, split into frames of at most [`MAX_FRAME`] bytes.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 2 * (payload.len() / MAX_FRAME + 1));
    for chunk in payload.chunks(MAX_FRAME) {
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// A STUN message: top two bits zero, the magic cookie at bytes 4–7, a length that fits.
pub fn is_stun(payload: &[u8]) -> bool {
    payload.len() >= 20
        && payload[0] & 0xc0 == 0
        && payload[4..8] == [0x21, 0x12, 0xa4, 0x42]
        && usize::from(u16::from_be_bytes([payload[2], payload[3]])) + 20 == payload.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stun_like() -> Vec<u8> {
        let mut message = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        message.extend([7; 12]);
        message
    }

    #[test]
    fn frames_split_anywhere_are_reassembled_and_classified() {
        let mut stream = frame(&stun_like());
        stream.extend(frame(b"\x16\x03\x03 a TLS record"));
        let mut decoder = FrameDecoder::default();
        let mut frames = Vec::new();
        for byte in &stream {
            frames.extend(decoder.push(std::slice::from_ref(byte)));
        }
        assert_eq!(
            frames,
            [Frame::Stun(stun_like()), Frame::Data(b"\x16\x03\x03 a TLS record".to_vec())]
        );
        assert_eq!(decoder.pending(), 0);
    }

    #[test]
    fn long_payloads_span_several_frames_and_empty_frames_are_data() {
        let framed = frame(&vec![1; MAX_FRAME + 10]);
        assert_eq!(framed.len(), MAX_FRAME + 10 + 4);
        let frames = FrameDecoder::default().push(&framed);
        assert_eq!(frames.len(), 2);
        assert_eq!(FrameDecoder::default().push(&[0, 0]), [Frame::Data(Vec::new())]);
    }
}
