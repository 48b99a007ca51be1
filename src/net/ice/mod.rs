//! ICE for device links: TCP only (RFC 6544) with RFC 4571 framing, as Jami's pjnath uses
//! them; the room is the controlling agent.

pub mod candidate;
pub mod framing;
pub mod tcp;
