//! Liveness and readiness probes, outside `/api/v1` and without authentication.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::Serialize;

use crate::extract::Json;
use crate::{ApiState, Control};

/// A probe's answer.
#[derive(Debug, Serialize)]
pub(crate) struct Status {
    status: &'static str,
}

/// `/healthz` and `/readyz`.
pub(crate) fn routes<C: Control>() -> Router<ApiState<C>> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz::<C>))
}

/// Always 200 `{"status":"ok"}` while the process serves HTTP.
async fn healthz() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// 200 `{"status":"ready"}` once the server takes calls, else 503 `{"status":"not_ready"}`.
async fn readyz<C: Control>(State(state): State<ApiState<C>>) -> (StatusCode, Json<Status>) {
    if state.control.ready() {
        (StatusCode::OK, Json(Status { status: "ready" }))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(Status { status: "not_ready" }))
    }
}
