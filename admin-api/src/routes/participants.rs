//! Participants and moderation: the generic `actions` route, and REST shortcuts that each
//! build one [`Action`].

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};

use crate::error::ErrorBody;
use crate::extract::{Json, Path};
use crate::types::{Action, ChatRequest, LayoutRequest, MuteRequest, Participant};
use crate::{ApiError, ApiState, Control};

/// Routes for the admin token or the room's token.
pub(crate) fn room_routes<C: Control>() -> Router<ApiState<C>> {
    Router::new()
        .route("/rooms/{room}/participants", get(list::<C>))
        .route("/rooms/{room}/actions", post(act::<C>))
        .route("/rooms/{room}/participants/{id}/kick", post(kick::<C>))
        .route("/rooms/{room}/participants/{id}/admit", post(admit::<C>))
        .route("/rooms/{room}/participants/{id}/lower-hand", post(lower_hand::<C>))
        .route("/rooms/{room}/participants/{id}/mute", post(mute::<C>))
        .route("/rooms/{room}/mute-all", post(mute_all::<C>))
        .route("/rooms/{room}/layout", put(set_layout::<C>))
        .route("/rooms/{room}/lock", post(lock::<C>))
        .route("/rooms/{room}/unlock", post(unlock::<C>))
        .route("/rooms/{room}/chat", post(chat::<C>))
}

/// Validates and performs one action.
async fn perform<C: Control>(
    state: &ApiState<C>,
    room: &str,
    action: Action,
) -> Result<StatusCode, ApiError> {
    action.validate()?;
    state.control.act(room, action).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List a room's participants, lobby included.
#[utoipa::path(
    get, path = "/api/v1/rooms/{room}/participants", tag = "participants",
    params(("room" = String, Path, description = super::ROOM_PARAM)),
    responses(
        (status = 200, description = "The participants", body = [Participant]),
        (status = 404, description = "No such room", body = ErrorBody),
    ),
)]
pub(crate) async fn list<C: Control>(
    State(state): State<ApiState<C>>,
    Path(room): Path<String>,
) -> Result<Json<Vec<Participant>>, ApiError> {
    Ok(Json(state.control.participants(&room).await?))
}

/// Perform any moderation action.
#[utoipa::path(
    post, path = "/api/v1/rooms/{room}/actions", tag = "participants", request_body = Action,
    params(("room" = String, Path, description = super::ROOM_PARAM)),
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "Invalid action", body = ErrorBody),
        (status = 404, description = "No such room or participant", body = ErrorBody),
    ),
)]
pub(crate) async fn act<C: Control>(
    State(state): State<ApiState<C>>,
    Path(room): Path<String>,
    Json(action): Json<Action>,
) -> Result<StatusCode, ApiError> {
    perform(&state, &room, action).await
}

/// Hang up on a participant.
#[utoipa::path(
    post, path = "/api/v1/rooms/{room}/participants/{id}/kick", tag = "participants",
    params(
        ("room" = String, Path, description = super::ROOM_PARAM),
        ("id" = u64, Path, description = "The participant's id"),
    ),
    responses(
        (status = 204, description = "Done"),
        (status = 404, description = "No such room or participant", body = ErrorBody),
    ),
)]
pub(crate) async fn kick<C: Control>(
    State(state): State<ApiState<C>>,
    Path((room, participant)): Path<(String, u64)>,
) -> Result<StatusCode, ApiError> {
    perform(&state, &room, Action::Kick { participant }).await
}

/// Let a participant in from the lobby.
#[utoipa::path(
    post, path = "/api/v1/rooms/{room}/participants/{id}/admit", tag = "participants",
    params(
        ("room" = String, Path, description = super::ROOM_PARAM),
        ("id" = u64, Path, description = "The participant's id"),
    ),
    responses(
        (status = 204, description = "Done"),
        (status = 404, description = "No such room or participant", body = ErrorBody),
    ),
)]
pub(crate) async fn admit<C: Control>(
    State(state): State<ApiState<C>>,
    Path((room, participant)): Path<(String, u64)>,
) -> Result<StatusCode, ApiError> {
    perform(&state, &room, Action::Admit { participant }).await
}

/// Lower a participant's raised hand.
#[utoipa::path(
    post, path = "/api/v1/rooms/{room}/participants/{id}/lower-hand", tag = "participants",
    params(
        ("room" = String, Path, description = super::ROOM_PARAM),
        ("id" = u64, Path, description = "The participant's id"),
    ),
    responses(
        (status = 204, description = "Done"),
        (status = 404, description = "No such room or participant", body = ErrorBody),
    ),
)]
pub(crate) async fn lower_hand<C: Control>(
    State(state): State<ApiState<C>>,
    Path((room, participant)): Path<(String, u64)>,
) -> Result<StatusCode, ApiError> {
    perform(&state, &room, Action::LowerHand { participant }).await
}

/// Mute or unmute a participant's audio, video or both.
///
/// Audio is applied first; if both are given and the video change fails, the audio change
/// stays.
#[utoipa::path(
    post, path = "/api/v1/rooms/{room}/participants/{id}/mute", tag = "participants",
    request_body = MuteRequest,
    params(
        ("room" = String, Path, description = super::ROOM_PARAM),
        ("id" = u64, Path, description = "The participant's id"),
    ),
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "Neither audio nor video given", body = ErrorBody),
        (status = 404, description = "No such room or participant", body = ErrorBody),
    ),
)]
pub(crate) async fn mute<C: Control>(
    State(state): State<ApiState<C>>,
    Path((room, participant)): Path<(String, u64)>,
    Json(request): Json<MuteRequest>,
) -> Result<StatusCode, ApiError> {
    if request.audio.is_none() && request.video.is_none() {
        return Err(ApiError::BadRequest("give `audio`, `video` or both".into()));
    }
    if let Some(muted) = request.audio {
        perform(&state, &room, Action::MuteAudio { participant, muted }).await?;
    }
    if let Some(muted) = request.video {
        perform(&state, &room, Action::MuteVideo { participant, muted }).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Mute everyone's audio except the moderators'.
#[utoipa::path(
    post, path = "/api/v1/rooms/{room}/mute-all", tag = "participants",
    params(("room" = String, Path, description = super::ROOM_PARAM)),
    responses(
        (status = 204, description = "Done"),
        (status = 404, description = "No such room", body = ErrorBody),
    ),
)]
pub(crate) async fn mute_all<C: Control>(
    State(state): State<ApiState<C>>,
    Path(room): Path<String>,
) -> Result<StatusCode, ApiError> {
    perform(&state, &room, Action::MuteAll).await
}

/// Change the conference's layout.
#[utoipa::path(
    put, path = "/api/v1/rooms/{room}/layout", tag = "participants", request_body = LayoutRequest,
    params(("room" = String, Path, description = super::ROOM_PARAM)),
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "Unknown layout", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
    ),
)]
pub(crate) async fn set_layout<C: Control>(
    State(state): State<ApiState<C>>,
    Path(room): Path<String>,
    Json(request): Json<LayoutRequest>,
) -> Result<StatusCode, ApiError> {
    perform(&state, &room, Action::SetLayout { layout: request.layout }).await
}

/// Lock the room: no new participants.
#[utoipa::path(
    post, path = "/api/v1/rooms/{room}/lock", tag = "participants",
    params(("room" = String, Path, description = super::ROOM_PARAM)),
    responses(
        (status = 204, description = "Done"),
        (status = 404, description = "No such room", body = ErrorBody),
    ),
)]
pub(crate) async fn lock<C: Control>(
    State(state): State<ApiState<C>>,
    Path(room): Path<String>,
) -> Result<StatusCode, ApiError> {
    perform(&state, &room, Action::Lock { locked: true }).await
}

/// Unlock the room.
#[utoipa::path(
    post, path = "/api/v1/rooms/{room}/unlock", tag = "participants",
    params(("room" = String, Path, description = super::ROOM_PARAM)),
    responses(
        (status = 204, description = "Done"),
        (status = 404, description = "No such room", body = ErrorBody),
    ),
)]
pub(crate) async fn unlock<C: Control>(
    State(state): State<ApiState<C>>,
    Path(room): Path<String>,
) -> Result<StatusCode, ApiError> {
    perform(&state, &room, Action::Lock { locked: false }).await
}

/// Send a chat message to the conference, as the room.
#[utoipa::path(
    post, path = "/api/v1/rooms/{room}/chat", tag = "participants", request_body = ChatRequest,
    params(("room" = String, Path, description = super::ROOM_PARAM)),
    responses(
        (status = 204, description = "Sent"),
        (status = 400, description = "Empty or longer than 4096 characters", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
    ),
)]
pub(crate) async fn chat<C: Control>(
    State(state): State<ApiState<C>>,
    Path(room): Path<String>,
    Json(request): Json<ChatRequest>,
) -> Result<StatusCode, ApiError> {
    perform(&state, &room, Action::Chat { text: request.text }).await
}
