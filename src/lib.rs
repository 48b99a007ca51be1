//! rdv: a headless rendezvous-point conference server for the Jami network.
//!
//! This crate is the server: its configuration, the rooms' Jami identities, the store, the
//! DHT node, device links, SIP, media and the conference logic. `docs/architecture.md` says
//! how they fit together.

pub mod clock;
pub mod conference;
pub mod config;
pub mod data_dir;
pub mod dht;
pub mod identity;
pub mod media;
pub mod net;
pub mod presence;
pub mod room;
pub mod server;
pub mod sip;
pub mod store;
pub mod telemetry;
pub mod webhooks;
