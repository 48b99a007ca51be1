//! Webhooks: every room event POSTed, signed, to the URLs the operator configured.
//!
//! Each event goes out as `POST <url>` with the event's JSON (the same as the admin API's
//! event streams) as the body. Deliveries to one webhook for one room are made in order: a
//! room's next event waits until the previous one was accepted (any 2xx answer) or given up
//! on. Rooms do not wait for one another: each (webhook, room) pair has its own bounded queue
//! and worker task, started on the pair's first event and stopped once it has been idle for
//! a while.
//!
//! Failed attempts (no connection, no answer within the attempt timeout, 5xx, 408 or 429) are
//! retried with exponential backoff; any other answer outside 2xx is final. See
//! [`DeliverySettings`] for the numbers and [`signature`] for how a receiver checks that a
//! request came from this server.

mod config;
mod delivery;
mod signature;

#[cfg(test)]
mod tests;

pub use config::{DeliverySettings, WebhookConfig, WebhookConfigError, WebhooksError};
pub use delivery::Webhooks;
pub use signature::{signature, verify_signature};

/// The fewest characters a webhook secret may have.
pub const MIN_SECRET_CHARS: usize = 16;

/// Every event type a webhook's `events` filter may name (the JSON `type` of the event's
/// `kind`).
pub const EVENT_TYPES: &[&str] = &[
    "joined",
    "left",
    "muted",
    "hand_raised",
    "layout_changed",
    "voice_activity",
    "call_refused",
    "call_failed",
    "lobby",
    "hold",
    "chat",
    "playback_finished",
    "recording_finished",
];

/// Header carrying the event's type, e.g. `joined`.
pub const EVENT_HEADER: &str = "x-rdv-event";
/// Header carrying the delivery's unique id, the same on every attempt of one delivery.
pub const DELIVERY_HEADER: &str = "x-rdv-delivery";
/// Header carrying the attempt's time, Unix seconds, as signed.
pub const TIMESTAMP_HEADER: &str = "x-rdv-timestamp";
/// Header carrying the attempt's signature, `sha256=<hex>` (see [`signature`]).
pub const SIGNATURE_HEADER: &str = "x-rdv-signature";
