//! The device link a Jami client opens to a room: ICE-TCP, TLS, and the multiplexed socket
//! that carries the `sip` channel.

pub mod ice;
pub mod mux;
pub mod tls;
