//! The OpenDHT node (opendht-wire.md): wire format, values and their crypto, the routing
//! table and storage, the sans-IO node core (`node`) and its tokio UDP driver (`driver`).

pub mod crypto;
pub mod driver;
mod infohash;
pub mod node;
pub mod routing;
pub mod storage;
pub mod value;
pub mod wire;

pub use infohash::InfoHash;
