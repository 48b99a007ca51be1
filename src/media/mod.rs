//! A call's media transport: RTP framing, RTCP reports, and SRTP with the keys exchanged in
//! SDP (SDES).

pub mod media_file;
pub mod ogg_opus;
pub mod rtcp;
pub mod rtp;
pub mod srtp;
