//! The conference as Jami clients see it (jami-conference.md §1.18): who is in, where each
//! one's tile is in the composite, who speaks and who is muted, sent to every participant as
//! `application/confInfo+json`, with changes coalesced so that a busy room never floods its
//! calls; and what moderators may do to it, whoever sends the order. [`core`] is the room's
//! state machine that puts these together, without I/O.

pub mod action;
pub mod core;
pub mod event;
pub mod info;
pub mod order;
pub mod speaker;
