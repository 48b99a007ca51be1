//! rdv's admin HTTP API: an axum [`Router`] over the [`Control`] trait, which the server
//! implements.
//!
//! Routes live under `/api/v1` and take `Authorization: Bearer <token>` (see [`AuthConfig`]);
//! `/healthz` and `/readyz` sit outside it, without authentication. The OpenAPI document is
//! served at `/api/v1/openapi.json` (also without authentication) and returned by
//! [`openapi()`]. Every error is JSON: `{"error": {"code": "...", "message": "..."}}`.
//!
//! The moderator web panel is served at `/panel/`: static files, without authentication
//! (they hold no data); the page asks for a token and calls the API. Its event streams pass
//! the token as an `access_token` query parameter, which only the two event-stream routes
//! accept. Requests are traced with their path only, never their query.
//!
//! For per-client rate limiting of failed authentication, serve the router with
//! `into_make_service_with_connect_info::<SocketAddr>()`; without it all clients share one
//! bucket.

mod auth;
mod control;
mod error;
mod extract;
mod openapi;
mod panel;
mod rate_limit;
mod routes;
pub mod types;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::{Level, Span};

pub use crate::auth::{AuthConfig, token_sha256_hex};
use crate::auth::{Guard, TokenSource};
pub use crate::control::{BOT_FRAME_SAMPLES, BotLink, Control};
pub use crate::error::{ApiError, ErrorBody, ErrorDetail};
pub use crate::openapi::openapi;
use crate::routes::{
    accounts, bot, events, health, participants, playback, recording, rooms, tokens,
};

/// The largest request body accepted.
const BODY_LIMIT: usize = 64 * 1024;
/// How long a request may take to produce its response (a stream's body is not limited).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Most requests in progress at once; past it, requests are refused with 503.
const MAX_CONCURRENT_REQUESTS: usize = 256;

/// What every handler shares.
pub(crate) struct ApiState<C> {
    /// The server.
    pub(crate) control: C,
    /// Tokens and the failed-attempt limiter.
    pub(crate) auth: Arc<auth::AuthState>,
    /// Permits for open event streams.
    pub(crate) event_streams: Arc<Semaphore>,
}

impl<C: Clone> Clone for ApiState<C> {
    fn clone(&self) -> Self {
        Self {
            control: self.control.clone(),
            auth: Arc::clone(&self.auth),
            event_streams: Arc::clone(&self.event_streams),
        }
    }
}

/// The admin API. Bodies are limited to 64 KiB, a request gets 10 s to produce its response
/// (then 503), and at most 256 are in progress at once (then 503).
pub fn router<C: Control>(control: C, auth: AuthConfig) -> Router {
    let state = ApiState {
        control,
        auth: Arc::new(auth::AuthState::new(&auth)),
        event_streams: Arc::new(Semaphore::new(events::MAX_STREAMS)),
    };
    let guard = |source| Guard { state: state.clone(), source };
    let admin_only = Router::new()
        .merge(rooms::admin_routes())
        .merge(tokens::admin_routes())
        .route_layer(from_fn_with_state(guard(TokenSource::Header), auth::require_admin::<C>));
    let room_scoped = Router::new()
        .merge(rooms::room_routes())
        .merge(participants::room_routes())
        .merge(accounts::room_routes())
        .merge(bot::room_routes())
        .merge(recording::room_routes())
        .merge(playback::room_routes())
        .route_layer(from_fn_with_state(guard(TokenSource::Header), auth::require_room::<C>));
    // Event streams also take the token from the query: a browser's EventSource cannot send
    // an Authorization header.
    let admin_streams = events::admin_routes().route_layer(from_fn_with_state(
        guard(TokenSource::HeaderOrQuery),
        auth::require_admin::<C>,
    ));
    let room_streams = events::room_routes().route_layer(from_fn_with_state(
        guard(TokenSource::HeaderOrQuery),
        auth::require_room::<C>,
    ));
    let api = Router::new()
        .merge(admin_only)
        .merge(room_scoped)
        .merge(admin_streams)
        .merge(room_streams)
        .route("/openapi.json", get(openapi::serve))
        .fallback(error::route_not_found)
        .method_not_allowed_fallback(error::method_not_allowed);
    let limits = ServiceBuilder::new()
        // Handlers log their own failures; a 503 from /readyz is no error worth a line.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_failure(DefaultOnFailure::new().level(Level::DEBUG)),
        )
        .layer(HandleErrorLayer::new(error::layer_error))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::new(MAX_CONCURRENT_REQUESTS))
        .timeout(REQUEST_TIMEOUT);
    Router::new()
        .nest("/api/v1", api)
        .merge(health::routes())
        .merge(panel::routes())
        .fallback(error::route_not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(limits)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// A request's tracing span: its method and path, never its query, which may hold a token.
fn request_span(request: &Request) -> Span {
    tracing::debug_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        version = ?request.version(),
    )
}
