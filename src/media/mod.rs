//! A call's media transport: SRTP with the keys exchanged in SDP (SDES).

pub mod srtp;
