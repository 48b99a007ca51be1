//! Recording a room (its mix as Ogg Opus, or its mix and composite as WebM, on the server).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::post;

use crate::error::ErrorBody;
use crate::extract::{OptionalJson, Path};
use crate::types::{RecordRequest, Recording};
use crate::{ApiError, ApiState, Control};

/// Routes for the admin token or the room's token.
pub(crate) fn room_routes<C: Control>() -> Router<ApiState<C>> {
    Router::new()
        .route("/rooms/{room}/recording/start", post(start::<C>))
        .route("/rooms/{room}/recording/stop", post(stop::<C>))
}

/// Start recording the room's mix (with `{"video": true}`, its composite too); participants'
/// Jami clients show that it is recorded. The body is optional.
#[utoipa::path(
    post, path = "/api/v1/rooms/{room}/recording/start", tag = "recording",
    params(("room" = String, Path, description = super::ROOM_PARAM)),
    request_body(content = Option<RecordRequest>, content_type = "application/json"),
    responses(
        (status = 200, description = "Recording (already, or from now)", body = Recording),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 409, description = "Nobody is in the room", body = ErrorBody),
        (status = 500, description = "The recording file cannot be written", body = ErrorBody),
    ),
)]
pub(crate) async fn start<C: Control>(
    State(state): State<ApiState<C>>,
    Path(room): Path<String>,
    OptionalJson(request): OptionalJson<RecordRequest>,
) -> Result<Json<Recording>, ApiError> {
    Ok(Json(state.control.record(&room, Some(request.unwrap_or_default())).await?))
}

/// Stop recording; the file is complete when this answers.
#[utoipa::path(
    post, path = "/api/v1/rooms/{room}/recording/stop", tag = "recording",
    params(("room" = String, Path, description = super::ROOM_PARAM)),
    responses(
        (status = 200, description = "Not recording (any more)", body = Recording),
        (status = 404, description = "No such room", body = ErrorBody),
    ),
)]
pub(crate) async fn stop<C: Control>(
    State(state): State<ApiState<C>>,
    Path(room): Path<String>,
) -> Result<Json<Recording>, ApiError> {
    Ok(Json(state.control.record(&room, None).await?))
}
