//! Room tokens: bearer tokens that grant one room's routes. Admin only.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, post};

use crate::auth::{generate_token, token_sha256_hex};
use crate::error::ErrorBody;
use crate::extract::{Json, Path};
use crate::types::{CreateToken, CreatedToken};
use crate::{ApiError, ApiState, Control};

/// The longest token label accepted, in characters.
const MAX_LABEL_CHARS: usize = 100;

/// Routes for the admin token only.
pub(crate) fn admin_routes<C: Control>() -> Router<ApiState<C>> {
    Router::new()
        .route("/rooms/{room}/tokens", post(create::<C>))
        .route("/rooms/{room}/tokens/{id}", delete(revoke::<C>))
}

/// A token label, trimmed: 1 to 100 characters, no control characters.
fn label(raw: &str) -> Result<String, ApiError> {
    let label = raw.trim();
    if label.is_empty() || label.chars().count() > MAX_LABEL_CHARS {
        return Err(ApiError::BadRequest(format!(
            "a token label is 1 to {MAX_LABEL_CHARS} characters"
        )));
    }
    if label.chars().any(char::is_control) {
        return Err(ApiError::BadRequest("a token label has no control characters".into()));
    }
    Ok(label.to_owned())
}

/// Create a room token. The token is in this response only; the server keeps its hash.
#[utoipa::path(
    post, path = "/api/v1/rooms/{room}/tokens", tag = "tokens", request_body = CreateToken,
    params(("room" = String, Path, description = super::ROOM_PARAM)),
    responses(
        (status = 201, description = "The new token, shown this once", body = CreatedToken),
        (status = 400, description = "Invalid label", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
    ),
)]
pub(crate) async fn create<C: Control>(
    State(state): State<ApiState<C>>,
    Path(room): Path<String>,
    Json(request): Json<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let label = label(&request.label)?;
    let token = generate_token();
    let info = state.control.add_room_token(&room, token_sha256_hex(&token), label).await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { id: info.id, label: info.label, token })))
}

/// Revoke a room token.
#[utoipa::path(
    delete, path = "/api/v1/rooms/{room}/tokens/{id}", tag = "tokens",
    params(
        ("room" = String, Path, description = super::ROOM_PARAM),
        ("id" = i64, Path, description = "The token's id"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such room or token", body = ErrorBody),
    ),
)]
pub(crate) async fn revoke<C: Control>(
    State(state): State<ApiState<C>>,
    Path((room, id)): Path<(String, i64)>,
) -> Result<StatusCode, ApiError> {
    state.control.revoke_room_token(&room, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_trimmed_and_bounded() {
        assert_eq!(label("  panel  ").unwrap(), "panel");
        assert!(label("   ").is_err());
        assert!(label(&"é".repeat(MAX_LABEL_CHARS)).is_ok());
        assert!(label(&"a".repeat(MAX_LABEL_CHARS + 1)).is_err());
        assert!(label("a\nb").is_err());
    }
}
