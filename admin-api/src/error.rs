//! Errors, classified by who is at fault, and the one JSON shape every error response has:
//! `{"error": {"code": "not_found", "message": "..."}}`.

use axum::Json;
use axum::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Why a request failed. The server's [`Control`](crate::Control) returns these; the API
/// layer adds its own (authentication, rate limiting, malformed requests).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The room, participant, token... does not exist (404).
    #[error("not found: {0}")]
    NotFound(String),
    /// The request is malformed or asks for something invalid (400).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The request clashes with the current state, e.g. a room name already taken (409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// No credentials, or credentials that match nothing (401).
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// Valid credentials that do not grant this resource (403).
    #[error("this token does not grant access to this resource")]
    Forbidden,
    /// Too many failed authentication attempts from this client (429).
    #[error("too many failed authentication attempts; try again later")]
    TooManyRequests,
    /// The server cannot serve this now: starting up, overloaded, timed out (503).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A fault in the server (500). The detail is logged, never sent to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable code in the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::BadRequest(_) => "bad_request",
            Self::Conflict(_) => "conflict",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::TooManyRequests => "too_many_requests",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// The message the client sees.
    fn public_message(&self) -> String {
        match self {
            Self::NotFound(message)
            | Self::BadRequest(message)
            | Self::Conflict(message)
            | Self::Unavailable(message) => message.clone(),
            Self::Internal(_) => "internal error".to_owned(),
            Self::Unauthorized | Self::Forbidden | Self::TooManyRequests => self.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(detail) = &self {
            tracing::error!(%detail, "admin API internal error");
        }
        let mut response = error_response(self.status(), self.code(), self.public_message());
        if self == Self::Unauthorized {
            response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong: a stable code to match on, and a message for humans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// `not_found`, `bad_request`, `conflict`, `unauthorized`, `forbidden`,
    /// `too_many_requests`, `unavailable`, `internal`, `payload_too_large`,
    /// `unsupported_media_type` or `method_not_allowed`.
    pub code: String,
    /// A human-readable explanation.
    pub message: String,
}

/// An error response in the API's JSON shape.
pub(crate) fn error_response(status: StatusCode, code: &str, message: String) -> Response {
    let body = ErrorBody { error: ErrorDetail { code: code.to_owned(), message } };
    (status, Json(body)).into_response()
}

/// The 429 answer, telling the client when it may try again.
pub(crate) fn too_many_requests(retry_after_secs: u64) -> Response {
    let mut response = ApiError::TooManyRequests.into_response();
    response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(retry_after_secs.max(1)));
    response
}

/// Turns an axum extractor rejection (bad JSON, bad path parameter, body too big...) into
/// the API's JSON shape, keeping its detail (which describes the client's request).
pub(crate) fn rejection_response(status: StatusCode, detail: String) -> Response {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => error_response(status, "payload_too_large", detail),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            error_response(status, "unsupported_media_type", detail)
        }
        status if status.is_client_error() => ApiError::BadRequest(detail).into_response(),
        _ => ApiError::Internal(detail).into_response(),
    }
}

/// Errors raised by the tower layers (timeout, load shedding) as JSON responses.
pub(crate) async fn layer_error(error: tower::BoxError) -> Response {
    if error.is::<tower::timeout::error::Elapsed>() {
        ApiError::Unavailable("the request timed out".into()).into_response()
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        ApiError::Unavailable("the server is busy; try again".into()).into_response()
    } else {
        ApiError::Internal(error.to_string()).into_response()
    }
}

/// The answer for paths no route matches.
pub(crate) async fn route_not_found() -> Response {
    ApiError::NotFound("no such route".into()).into_response()
}

/// The answer for a known path with a method it does not take.
pub(crate) async fn method_not_allowed() -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take this method".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_a_status_and_code() {
        let cases = [
            (ApiError::NotFound("x".into()), 404, "not_found"),
            (ApiError::BadRequest("x".into()), 400, "bad_request"),
            (ApiError::Conflict("x".into()), 409, "conflict"),
            (ApiError::Unauthorized, 401, "unauthorized"),
            (ApiError::Forbidden, 403, "forbidden"),
            (ApiError::TooManyRequests, 429, "too_many_requests"),
            (ApiError::Unavailable("x".into()), 503, "unavailable"),
            (ApiError::Internal("x".into()), 500, "internal"),
        ];
        for (error, status, code) in cases {
            assert_eq!(error.status().as_u16(), status);
            assert_eq!(error.code(), code);
        }
    }

    #[test]
    fn internal_detail_is_not_shown() {
        let error = ApiError::Internal("database file /var/lib/rdv.db is locked".into());
        assert_eq!(error.public_message(), "internal error");
    }
}
