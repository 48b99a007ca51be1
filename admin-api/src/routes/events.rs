//! Live events as Server-Sent Events: each is `event: <kind>` with the [`Event`] as JSON
//! data. A client that falls behind gets `event: lagged` with `{"missed": n}` and carries on.
//!
//! These routes alone also take the token as an `access_token` query parameter (see
//! [`crate::auth::TokenSource`]), for browsers' `EventSource`.

use std::convert::Infallible;

use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::error::ErrorBody;
use crate::extract::Path;
use crate::types::Event;
use crate::{ApiError, ApiState, Control};

/// Most event streams open at once, across all clients.
pub(crate) const MAX_STREAMS: usize = 64;

/// The OpenAPI description of the `access_token` query parameter.
const ACCESS_TOKEN_DOC: &str = "The token, for clients that cannot send an Authorization \
    header (a browser's EventSource); ignored when the header is present";

/// Routes for the admin token only.
pub(crate) fn admin_routes<C: Control>() -> Router<ApiState<C>> {
    Router::new().route("/events", get(all::<C>))
}

/// Routes for the admin token or the room's token.
pub(crate) fn room_routes<C: Control>() -> Router<ApiState<C>> {
    Router::new().route("/rooms/{room}/events", get(room::<C>))
}

/// Stream every room's events.
#[utoipa::path(
    get, path = "/api/v1/events", tag = "events",
    params(("access_token" = Option<String>, Query, description = ACCESS_TOKEN_DOC)),
    responses(
        (status = 200, description = "An endless stream of events",
            content_type = "text/event-stream", body = Event),
        (status = 503, description = "Too many event streams open", body = ErrorBody),
    ),
)]
pub(crate) async fn all<C: Control>(
    State(state): State<ApiState<C>>,
) -> Result<Response, ApiError> {
    stream(&state, None)
}

/// Stream one room's events.
#[utoipa::path(
    get, path = "/api/v1/rooms/{room}/events", tag = "events",
    params(
        ("room" = String, Path, description = super::ROOM_PARAM),
        ("access_token" = Option<String>, Query, description = ACCESS_TOKEN_DOC),
    ),
    responses(
        (status = 200, description = "An endless stream of the room's events",
            content_type = "text/event-stream", body = Event),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 503, description = "Too many event streams open", body = ErrorBody),
    ),
)]
pub(crate) async fn room<C: Control>(
    State(state): State<ApiState<C>>,
    Path(room): Path<String>,
) -> Result<Response, ApiError> {
    stream(&state, Some(&room))
}

/// Subscribes and turns the subscription into an SSE response, which holds one of the
/// [`MAX_STREAMS`] permits while open.
fn stream<C: Control>(state: &ApiState<C>, room: Option<&str>) -> Result<Response, ApiError> {
    let permit = state
        .event_streams
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::Unavailable("too many event streams are open".into()))?;
    let receiver = state.control.events(room)?;
    let events = BroadcastStream::new(receiver).map(move |item| {
        let _held = &permit;
        Ok::<_, Infallible>(sse_event(item))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()).into_response())
}

/// One SSE event for one broadcast item.
fn sse_event(item: Result<Event, BroadcastStreamRecvError>) -> SseEvent {
    match item {
        Ok(event) => {
            let name = event.kind.name();
            SseEvent::default().event(name).json_data(&event).unwrap_or_else(|error| {
                tracing::error!(%error, "cannot serialise an admin API event");
                SseEvent::default().event("error").data(r#"{"message":"unserialisable event"}"#)
            })
        }
        Err(BroadcastStreamRecvError::Lagged(missed)) => {
            SseEvent::default().event("lagged").data(format!(r#"{{"missed":{missed}}}"#))
        }
    }
}
