//! Accounts' roles in a room: moderators, bans and the allow-list.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};

use crate::error::ErrorBody;
use crate::extract::{Json, Path};
use crate::types::{AccountRoleEntry, Role};
use crate::{ApiError, ApiState, Control};

/// The OpenAPI description of the `{account}` path parameter.
const ACCOUNT_PARAM: &str = "A Jami account id: 40 hex characters";

/// Routes for the admin token or the room's token.
pub(crate) fn room_routes<C: Control>() -> Router<ApiState<C>> {
    Router::new()
        .route("/rooms/{room}/accounts", get(list::<C>))
        .route(
            "/rooms/{room}/moderators/{account}",
            put(add_moderator::<C>).delete(remove_moderator::<C>),
        )
        .route("/rooms/{room}/bans/{account}", put(ban::<C>).delete(unban::<C>))
        .route("/rooms/{room}/allowed/{account}", put(allow::<C>).delete(disallow::<C>))
}

/// A Jami account id (40 hex characters), lower-cased.
fn account_id(raw: &str) -> Result<String, ApiError> {
    if raw.len() == 40 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(ApiError::BadRequest("an account id is 40 hex characters".into()))
    }
}

/// Validates the account, then grants or withdraws the role.
async fn set_role<C: Control>(
    state: &ApiState<C>,
    room: &str,
    account: &str,
    role: Role,
    granted: bool,
) -> Result<StatusCode, ApiError> {
    let account = account_id(account)?;
    state.control.set_role(room, &account, role, granted).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List the roles accounts hold in a room.
#[utoipa::path(
    get, path = "/api/v1/rooms/{room}/accounts", tag = "accounts",
    params(("room" = String, Path, description = super::ROOM_PARAM)),
    responses(
        (status = 200, description = "Every role held in the room", body = [AccountRoleEntry]),
        (status = 404, description = "No such room", body = ErrorBody),
    ),
)]
pub(crate) async fn list<C: Control>(
    State(state): State<ApiState<C>>,
    Path(room): Path<String>,
) -> Result<Json<Vec<AccountRoleEntry>>, ApiError> {
    Ok(Json(state.control.roles(&room).await?))
}

/// Make an account a moderator of the room.
#[utoipa::path(
    put, path = "/api/v1/rooms/{room}/moderators/{account}", tag = "accounts",
    params(
        ("room" = String, Path, description = super::ROOM_PARAM),
        ("account" = String, Path, description = ACCOUNT_PARAM),
    ),
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "Not an account id", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
    ),
)]
pub(crate) async fn add_moderator<C: Control>(
    State(state): State<ApiState<C>>,
    Path((room, account)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    set_role(&state, &room, &account, Role::Moderator, true).await
}

/// Stop an account being a moderator of the room.
#[utoipa::path(
    delete, path = "/api/v1/rooms/{room}/moderators/{account}", tag = "accounts",
    params(
        ("room" = String, Path, description = super::ROOM_PARAM),
        ("account" = String, Path, description = ACCOUNT_PARAM),
    ),
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "Not an account id", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
    ),
)]
pub(crate) async fn remove_moderator<C: Control>(
    State(state): State<ApiState<C>>,
    Path((room, account)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    set_role(&state, &room, &account, Role::Moderator, false).await
}

/// Ban an account from the room.
#[utoipa::path(
    put, path = "/api/v1/rooms/{room}/bans/{account}", tag = "accounts",
    params(
        ("room" = String, Path, description = super::ROOM_PARAM),
        ("account" = String, Path, description = ACCOUNT_PARAM),
    ),
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "Not an account id", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
    ),
)]
pub(crate) async fn ban<C: Control>(
    State(state): State<ApiState<C>>,
    Path((room, account)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    set_role(&state, &room, &account, Role::Banned, true).await
}

/// Lift an account's ban from the room.
#[utoipa::path(
    delete, path = "/api/v1/rooms/{room}/bans/{account}", tag = "accounts",
    params(
        ("room" = String, Path, description = super::ROOM_PARAM),
        ("account" = String, Path, description = ACCOUNT_PARAM),
    ),
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "Not an account id", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
    ),
)]
pub(crate) async fn unban<C: Control>(
    State(state): State<ApiState<C>>,
    Path((room, account)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    set_role(&state, &room, &account, Role::Banned, false).await
}

/// Put an account on the room's allow-list.
#[utoipa::path(
    put, path = "/api/v1/rooms/{room}/allowed/{account}", tag = "accounts",
    params(
        ("room" = String, Path, description = super::ROOM_PARAM),
        ("account" = String, Path, description = ACCOUNT_PARAM),
    ),
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "Not an account id", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
    ),
)]
pub(crate) async fn allow<C: Control>(
    State(state): State<ApiState<C>>,
    Path((room, account)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    set_role(&state, &room, &account, Role::Allowed, true).await
}

/// Take an account off the room's allow-list.
#[utoipa::path(
    delete, path = "/api/v1/rooms/{room}/allowed/{account}", tag = "accounts",
    params(
        ("room" = String, Path, description = super::ROOM_PARAM),
        ("account" = String, Path, description = ACCOUNT_PARAM),
    ),
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "Not an account id", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
    ),
)]
pub(crate) async fn disallow<C: Control>(
    State(state): State<ApiState<C>>,
    Path((room, account)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    set_role(&state, &room, &account, Role::Allowed, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_40_hex_and_lower_cased() {
        let upper = "ABCDEF0123456789ABCDEF0123456789ABCDEF01";
        assert_eq!(account_id(upper).unwrap(), upper.to_ascii_lowercase());
        assert!(account_id(&upper[1..]).is_err());
        assert!(account_id(&format!("{upper}0")).is_err());
        assert!(account_id("g".repeat(40).as_str()).is_err());
        assert!(account_id(&format!("ring:{}", &upper[5..])).is_err());
    }
}
