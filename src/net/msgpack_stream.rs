//! The msgpack streams of a device link (the multiplexer's, a `msg:` channel's): objects one
//! after another, cut anywhere by the transport.

use std::io::Cursor;

use serde::de::DeserializeOwned;

/// Takes the complete objects at the front of `input`, leaving an incomplete last one there.
/// Returns them, and the error that stopped the reading if the stream is malformed (the
/// objects before it are still returned).
pub(crate) fn take_objects<T: DeserializeOwned>(
    input: &mut Vec<u8>,
) -> (Vec<T>, Option<rmp_serde::decode::Error>) {
    let mut objects = Vec::new();
    let mut consumed = 0;
    let mut failure = None;
    while consumed < input.len() {
        let mut cursor = Cursor::new(&input[consumed..]);
        let mut deserializer = rmp_serde::Deserializer::new(&mut cursor);
        match T::deserialize(&mut deserializer) {
            Ok(object) => objects.push(object),
            Err(error) if is_incomplete(&error) => break,
            Err(error) => {
                failure = Some(error);
                break;
            }
        }
        consumed += usize::try_from(cursor.position()).unwrap_or(usize::MAX);
    }
    input.drain(..consumed.min(input.len()));
    (objects, failure)
}

/// Whether a decode error only means that more bytes are needed.
fn is_incomplete(error: &rmp_serde::decode::Error) -> bool {
    use rmp_serde::decode::Error;
    match error {
        Error::InvalidMarkerRead(io) | Error::InvalidDataRead(io) => {
            io.kind() == std::io::ErrorKind::UnexpectedEof
        }
        _ => false,
    }
}
