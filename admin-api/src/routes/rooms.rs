//! Rooms: list, create, read, delete, and change a room's policy.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};

use crate::error::ErrorBody;
use crate::extract::{Json, Path};
use crate::types::{CreateRoom, Policy, PolicyPatch, RoomDetail, RoomSummary};
use crate::{ApiError, ApiState, Control};

/// Routes for the admin token only.
pub(crate) fn admin_routes<C: Control>() -> Router<ApiState<C>> {
    Router::new()
        .route("/rooms", get(list::<C>).post(create::<C>))
        .route("/rooms/{room}", axum::routing::delete(delete::<C>))
}

/// Routes for the admin token or the room's token.
pub(crate) fn room_routes<C: Control>() -> Router<ApiState<C>> {
    Router::new()
        .route("/rooms/{room}", get(show::<C>))
        .route("/rooms/{room}/policy", patch(update_policy::<C>))
}

/// List the rooms.
#[utoipa::path(
    get, path = "/api/v1/rooms", tag = "rooms",
    responses((status = 200, description = "Every room", body = [RoomSummary])),
)]
pub(crate) async fn list<C: Control>(
    State(state): State<ApiState<C>>,
) -> Result<Json<Vec<RoomSummary>>, ApiError> {
    Ok(Json(state.control.rooms().await?))
}

/// Create a room.
#[utoipa::path(
    post, path = "/api/v1/rooms", tag = "rooms", request_body = CreateRoom,
    responses(
        (status = 201, description = "The new room", body = RoomDetail,
            headers(("location" = String, description = "The room's URL"))),
        (status = 400, description = "Invalid name or policy", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
    ),
)]
pub(crate) async fn create<C: Control>(
    State(state): State<ApiState<C>>,
    Json(request): Json<CreateRoom>,
) -> Result<Response, ApiError> {
    let room = state.control.create_room(request).await?;
    let location = format!("/api/v1/rooms/{}", room.name);
    Ok((StatusCode::CREATED, [(LOCATION, location)], Json(room)).into_response())
}

/// Show a room: identity, policy, participants and layout.
#[utoipa::path(
    get, path = "/api/v1/rooms/{room}", tag = "rooms",
    params(("room" = String, Path, description = super::ROOM_PARAM)),
    responses(
        (status = 200, description = "The room", body = RoomDetail),
        (status = 404, description = "No such room", body = ErrorBody),
    ),
)]
pub(crate) async fn show<C: Control>(
    State(state): State<ApiState<C>>,
    Path(room): Path<String>,
) -> Result<Json<RoomDetail>, ApiError> {
    Ok(Json(state.control.room(&room).await?))
}

/// Delete a room, ending its conference.
#[utoipa::path(
    delete, path = "/api/v1/rooms/{room}", tag = "rooms",
    params(("room" = String, Path, description = super::ROOM_PARAM)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such room", body = ErrorBody),
    ),
)]
pub(crate) async fn delete<C: Control>(
    State(state): State<ApiState<C>>,
    Path(room): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.control.delete_room(&room).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change a room's policy; absent fields are left as they are.
#[utoipa::path(
    patch, path = "/api/v1/rooms/{room}/policy", tag = "rooms", request_body = PolicyPatch,
    params(("room" = String, Path, description = super::ROOM_PARAM)),
    responses(
        (status = 200, description = "The policy as it now is", body = Policy),
        (status = 400, description = "Invalid patch", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
    ),
)]
pub(crate) async fn update_policy<C: Control>(
    State(state): State<ApiState<C>>,
    Path(room): Path<String>,
    Json(patch): Json<PolicyPatch>,
) -> Result<Json<Policy>, ApiError> {
    Ok(Json(state.control.update_policy(&room, patch).await?))
}
