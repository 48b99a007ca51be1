//! ICE as Jami's pjnath speaks it: for device links, TCP only (RFC 6544) with RFC 4571
//! framing and the room as the controlling agent; for media, UDP with the caller
//! controlling.

pub mod candidate;
pub mod framing;
pub mod stun;
pub mod tcp;
pub mod udp;
