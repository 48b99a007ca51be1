//! rdv-mixer: the media side of a room. One instance per room mixes the participants' audio
//! (each hears everyone but themselves) and composites their video into one picture laid out
//! the way Jami lays it out. Encoded media goes in and encoded media comes out; RTP and SRTP
//! stay in the server.
//!
//! The pure maths live in plain functions with their own tests: [`layout`] computes where each
//! participant's picture goes, to the pixel, because Jami clients crop their tiles from the
//! rectangles the server reports; [`audio`] holds the mix-minus arithmetic, [`engine`] the
//! clock-free mix and [`jitter`] the per-participant jitter buffer. [`audio_room`] and
//! [`video`] drive real GStreamer pipelines ([`opus`], [`pipeline`]) one tick at a time: time
//! is an input, and every call blocks for a bounded time, so a room runs them on a media
//! thread of its own, never on the async executor. [`webm`] writes recordings: the mix and
//! the composite muxed into a WebM file.

pub mod audio;
pub mod audio_room;
pub mod engine;
pub mod jitter;
pub mod layout;
pub mod media_room;
pub mod opus;
pub mod pipeline;
pub mod video;
pub mod webm;
