//! The device link a Jami client opens to a room: ICE-TCP, TLS, and the multiplexed socket
//! that carries the `sip` channel and, for today's clients, the `msg:` channel.

pub mod ice;
pub mod message_channel;
mod msgpack_stream;
pub mod mux;
pub mod tls;
