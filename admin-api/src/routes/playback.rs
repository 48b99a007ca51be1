//! Files played into a room: start one, list them, pause/resume or change the volume, stop.
//! A `playback_finished` event tells when one ends.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch};

use crate::error::ErrorBody;
use crate::extract::{Json, Path};
use crate::types::{PlayRequest, Playback, PlaybackPatch};
use crate::{ApiError, ApiState, Control};

/// Routes for the admin token or the room's token.
pub(crate) fn room_routes<C: Control>() -> Router<ApiState<C>> {
    Router::new()
        .route("/rooms/{room}/playbacks", get(list::<C>).post(start::<C>))
        .route("/rooms/{room}/playbacks/{id}", patch(change::<C>).delete(stop::<C>))
}

/// Play a file from the server's media directory into the room.
#[utoipa::path(
    post, path = "/api/v1/rooms/{room}/playbacks", tag = "playback", request_body = PlayRequest,
    params(("room" = String, Path, description = super::ROOM_PARAM)),
    responses(
        (status = 201, description = "Playing (or paused, if asked)", body = Playback),
        (status = 400, description = "The file cannot be played: missing, not media, no \
            decoder for its codec, or undecodable; or a bad name or volume", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 409, description = "Nobody is in the room, or it already plays 8 files", body = ErrorBody),
    ),
)]
pub(crate) async fn start<C: Control>(
    State(state): State<ApiState<C>>,
    Path(room): Path<String>,
    Json(request): Json<PlayRequest>,
) -> Result<(StatusCode, Json<Playback>), ApiError> {
    request.validate()?;
    Ok((StatusCode::CREATED, Json(state.control.play(&room, request).await?)))
}

/// List the files playing into the room.
#[utoipa::path(
    get, path = "/api/v1/rooms/{room}/playbacks", tag = "playback",
    params(("room" = String, Path, description = super::ROOM_PARAM)),
    responses(
        (status = 200, description = "The playbacks", body = [Playback]),
        (status = 404, description = "No such room", body = ErrorBody),
    ),
)]
pub(crate) async fn list<C: Control>(
    State(state): State<ApiState<C>>,
    Path(room): Path<String>,
) -> Result<Json<Vec<Playback>>, ApiError> {
    Ok(Json(state.control.playbacks(&room).await?))
}

/// Pause, resume or change the volume of a playback.
#[utoipa::path(
    patch, path = "/api/v1/rooms/{room}/playbacks/{id}", tag = "playback",
    request_body = PlaybackPatch,
    params(
        ("room" = String, Path, description = super::ROOM_PARAM),
        ("id" = u64, Path, description = "The playback's id"),
    ),
    responses(
        (status = 200, description = "The playback now", body = Playback),
        (status = 400, description = "A bad volume", body = ErrorBody),
        (status = 404, description = "No such room or playback", body = ErrorBody),
    ),
)]
pub(crate) async fn change<C: Control>(
    State(state): State<ApiState<C>>,
    Path((room, id)): Path<(String, u64)>,
    Json(patch): Json<PlaybackPatch>,
) -> Result<Json<Playback>, ApiError> {
    patch.validate()?;
    Ok(Json(state.control.change_playback(&room, id, patch).await?))
}

/// Stop a playback.
#[utoipa::path(
    delete, path = "/api/v1/rooms/{room}/playbacks/{id}", tag = "playback",
    params(
        ("room" = String, Path, description = super::ROOM_PARAM),
        ("id" = u64, Path, description = "The playback's id"),
    ),
    responses(
        (status = 204, description = "Stopped"),
        (status = 404, description = "No such room or playback", body = ErrorBody),
    ),
)]
pub(crate) async fn stop<C: Control>(
    State(state): State<ApiState<C>>,
    Path((room, id)): Path<(String, u64)>,
) -> Result<StatusCode, ApiError> {
    state.control.stop_playback(&room, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
