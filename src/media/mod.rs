//! A call's media transport: SRTP with the keys exchanged in SDP (SDES).

pub mod rtp;
pub mod srtp;
