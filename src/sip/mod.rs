//! SIP on the `sip` channel of a device link (jami-protocol.md §6), parsed and written with
//! sipx-sip. Each message is one channel write, always with Content-Length.

pub mod call_id;
pub mod dialog;
pub mod sdp;
pub mod uas;

pub use call_id::CallId;
