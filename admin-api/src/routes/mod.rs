//! The route handlers, one module per concept. Each module has `admin_routes` (admin token
//! only) and/or `room_routes` (the admin token or the room's token), with paths relative to
//! `/api/v1`.

pub(crate) mod accounts;
pub(crate) mod bot;
pub(crate) mod events;
pub(crate) mod health;
pub(crate) mod participants;
pub(crate) mod playback;
pub(crate) mod recording;
pub(crate) mod rooms;
pub(crate) mod tokens;

/// The OpenAPI description of the `{room}` path parameter.
pub(crate) const ROOM_PARAM: &str = "The room's name (case-insensitive)";
