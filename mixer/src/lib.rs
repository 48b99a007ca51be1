//! rdv-mixer: the media side of a room. One instance per room mixes the participants' audio
//! (each hears everyone but themselves) and composites their video into one picture laid out
//! the way Jami lays it out.
//!
//! The pure maths live in plain functions with their own tests: [`layout`] computes where each
//! participant's picture goes, to the pixel, because Jami clients crop their tiles from the
//! rectangles the server reports; [`audio`] holds the mix-minus arithmetic. [`opus`] encodes and
//! decodes through GStreamer.

pub mod audio;
pub mod engine;
pub mod layout;
pub mod opus;
pub mod pipeline;
pub mod video;
