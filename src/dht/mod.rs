//! The OpenDHT node (opendht-wire.md): wire format, values and their crypto.
//!
//! Work in progress: the wire codec and value format come first; the sans-IO node core, its
//! UDP driver and the rooms' publication follow.

pub mod crypto;
pub mod driver;
mod infohash;
pub mod node;
pub mod routing;
pub mod storage;
pub mod value;
pub mod wire;

pub use infohash::InfoHash;
