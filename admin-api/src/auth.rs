//! Bearer-token authentication and the two access levels: admin, and one room.
//!
//! The admin token (if configured) grants everything. A room token grants only its room's
//! routes, matched case-insensitively on the room name. Routes are grouped by the level they
//! need and each group carries its middleware ([`require_admin`], [`require_room`]), so a
//! route cannot be added without one.
//!
//! The token comes from the `Authorization` header. The event-stream groups alone
//! ([`TokenSource::HeaderOrQuery`]) also take it from an `access_token` query parameter on a
//! `GET` without that header, because a browser's `EventSource` cannot send headers. The
//! checks and the rate limiting are the same wherever the token comes from.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use axum::extract::{ConnectInfo, Query, RawPathParams, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::too_many_requests;
use crate::rate_limit::FailureLimiter;
use crate::{ApiError, ApiState, Control};

/// Who may use the API.
#[derive(Clone, Default)]
pub struct AuthConfig {
    /// The admin bearer token; `None` (or blank) refuses every admin route with 401.
    pub admin_token: Option<String>,
}

impl AuthConfig {
    /// The shortest admin token accepted on a non-loopback address.
    pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

    /// Whether the API may listen on `addr`: anywhere but loopback it needs an admin token of
    /// at least [`Self::MIN_ADMIN_TOKEN_LEN`] characters. `Err` says why not.
    pub fn allows_listen(&self, addr: &SocketAddr) -> Result<(), String> {
        if addr.ip().to_canonical().is_loopback() {
            return Ok(());
        }
        match self.admin_token() {
            None => Err(format!(
                "the admin API may listen on {addr} only with an admin token; \
                 set one or listen on a loopback address"
            )),
            Some(token) if token.chars().count() < Self::MIN_ADMIN_TOKEN_LEN => Err(format!(
                "the admin token is too short to listen on {addr}: use at least {} characters",
                Self::MIN_ADMIN_TOKEN_LEN
            )),
            Some(_) => Ok(()),
        }
    }

    /// The admin token, unless absent or blank.
    fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_deref().filter(|token| !token.trim().is_empty())
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = self.admin_token().map(|_| "<redacted>");
        f.debug_struct("AuthConfig").field("admin_token", &token).finish()
    }
}

/// The SHA-256 of a room token, in lower-case hex: what the server stores and looks up.
pub fn token_sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new room token: 32 random bytes in lower-case hex.
pub(crate) fn generate_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Authentication state shared by every request.
pub(crate) struct AuthState {
    /// SHA-256 of the admin token, so that comparing takes the same time whatever the guess.
    admin_digest: Option<[u8; 32]>,
    limiter: Mutex<FailureLimiter>,
}

impl AuthState {
    pub(crate) fn new(config: &AuthConfig) -> Self {
        Self {
            admin_digest: config.admin_token().map(|token| Sha256::digest(token.as_bytes()).into()),
            limiter: Mutex::new(FailureLimiter::new()),
        }
    }

    fn is_admin(&self, token: &str) -> bool {
        let Some(admin) = &self.admin_digest else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        digest.ct_eq(admin).into()
    }

    fn limiter(&self) -> MutexGuard<'_, FailureLimiter> {
        self.limiter.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The query parameter that may carry the token on event-stream routes.
pub(crate) const ACCESS_TOKEN_PARAM: &str = "access_token";

/// Where a group's middleware looks for the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenSource {
    /// The `Authorization: Bearer` header only.
    Header,
    /// The header or, on a `GET` without one, the [`ACCESS_TOKEN_PARAM`] query parameter.
    /// Only for event streams: their URLs are not logged with the query, and they change
    /// nothing.
    HeaderOrQuery,
}

/// What a group's middleware runs with: the shared state, and where to find the token.
pub(crate) struct Guard<C> {
    /// The shared state.
    pub(crate) state: ApiState<C>,
    /// Where the token may come from.
    pub(crate) source: TokenSource,
}

impl<C: Clone> Clone for Guard<C> {
    fn clone(&self) -> Self {
        Self { state: self.state.clone(), source: self.source }
    }
}

/// Whom a request's token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Principal {
    Admin,
    Room(String),
}

/// Middleware for admin-only routes: a room token gets 403.
pub(crate) async fn require_admin<C: Control>(
    State(guard): State<Guard<C>>,
    request: Request,
    next: Next,
) -> Response {
    let (client, token) = (client_ip(&request), request_token(&request, guard.source));
    match authenticate(&guard.state, client, token).await {
        Ok(Principal::Admin) => next.run(request).await,
        Ok(Principal::Room(_)) => ApiError::Forbidden.into_response(),
        Err(response) => response,
    }
}

/// Middleware for a room's routes (path parameter `room`): the admin token, or that room's.
pub(crate) async fn require_room<C: Control>(
    State(guard): State<Guard<C>>,
    params: Result<RawPathParams, axum::extract::rejection::RawPathParamsRejection>,
    request: Request,
    next: Next,
) -> Response {
    let room = params.ok().and_then(|params| {
        params.iter().find(|(name, _)| *name == "room").map(|(_, value)| value.to_owned())
    });
    let Some(room) = room else {
        return ApiError::Internal(format!("route {} has no room parameter", request.uri().path()))
            .into_response();
    };
    let (client, token) = (client_ip(&request), request_token(&request, guard.source));
    match authenticate(&guard.state, client, token).await {
        Ok(Principal::Admin) => next.run(request).await,
        Ok(Principal::Room(granted)) if granted.eq_ignore_ascii_case(&room) => {
            next.run(request).await
        }
        Ok(Principal::Room(_)) => ApiError::Forbidden.into_response(),
        Err(response) => response,
    }
}

/// Checks a request's token (from [`request_token`]) sent by `client`. Blocked clients
/// get 429 before their token is looked at; a token that matches nothing counts as a failure.
async fn authenticate<C: Control>(
    state: &ApiState<C>,
    client: Option<IpAddr>,
    token: Option<String>,
) -> Result<Principal, Response> {
    if let Err(wait) = state.auth.limiter().check(client, Instant::now()) {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        return Err(too_many_requests(secs));
    }
    // No credentials is not a guess: it is not counted as a failure.
    let token = token.ok_or_else(|| ApiError::Unauthorized.into_response())?;
    if state.auth.is_admin(&token) {
        return Ok(Principal::Admin);
    }
    if is_room_token_shaped(&token) {
        let hash = token_sha256_hex(&token);
        match state.control.room_of_token(&hash).await {
            Ok(Some(room)) => return Ok(Principal::Room(room)),
            Ok(None) => {}
            Err(error) => return Err(error.into_response()),
        }
    }
    state.auth.limiter().record_failure(client, Instant::now());
    Err(ApiError::Unauthorized.into_response())
}

/// The request's token, if well formed: from the `Authorization` header, or, when `source`
/// allows it and the request is a `GET` with no such header, from the query. A request with
/// the header never has its query looked at, even if the header is malformed.
fn request_token(request: &Request, source: TokenSource) -> Option<String> {
    let headers = request.headers();
    let from_query = source == TokenSource::HeaderOrQuery
        && request.method() == Method::GET
        && !headers.contains_key(AUTHORIZATION);
    if from_query { query_token(request.uri()) } else { bearer_token(headers) }
}

/// The token of the request's one `Authorization: Bearer <token>` header, if well formed.
fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let value = value.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && is_well_formed(token)).then(|| token.to_owned())
}

/// The URI's one [`ACCESS_TOKEN_PARAM`] query parameter, percent-decoded, if well formed.
fn query_token(uri: &Uri) -> Option<String> {
    let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri).ok()?;
    let mut tokens =
        pairs.into_iter().filter(|(name, _)| name == ACCESS_TOKEN_PARAM).map(|(_, value)| value);
    let token = tokens.next()?;
    if tokens.next().is_some() {
        return None;
    }
    is_well_formed(&token).then_some(token)
}

/// Whether `token` could be a token at all: printable ASCII without spaces, not empty.
fn is_well_formed(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic())
}

/// Whether `token` could be a room token (64 hex characters), so worth a store lookup.
fn is_room_token_shaped(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The client's address when the server was started with connect info.
fn client_ip(request: &Request) -> Option<IpAddr> {
    request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn bearer_tokens_are_parsed_strictly() {
        assert_eq!(bearer_token(&headers(&["Bearer abc"])).as_deref(), Some("abc"));
        assert_eq!(bearer_token(&headers(&["bearer abc"])).as_deref(), Some("abc"));
        assert_eq!(bearer_token(&headers(&[])), None);
        assert_eq!(bearer_token(&headers(&["Bearer"])), None);
        assert_eq!(bearer_token(&headers(&["Bearer "])), None);
        assert_eq!(bearer_token(&headers(&["Basic abc"])), None);
        assert_eq!(bearer_token(&headers(&["Bearer a b"])), None);
        assert_eq!(bearer_token(&headers(&["Bearer a", "Bearer b"])), None);
    }

    fn get(uri: &str, authorization: Option<&str>) -> Request {
        let mut builder = Request::builder().method(Method::GET).uri(uri);
        if let Some(value) = authorization {
            builder = builder.header(AUTHORIZATION, value);
        }
        builder.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn query_tokens_are_read_only_where_allowed() {
        use TokenSource::{Header, HeaderOrQuery};
        let token = |request: &Request, source| request_token(request, source);
        let query = get("/events?access_token=abc", None);
        assert_eq!(token(&query, HeaderOrQuery).as_deref(), Some("abc"));
        assert_eq!(token(&query, Header), None);
        // The header wins, even when it is malformed.
        let both = get("/events?access_token=abc", Some("Bearer def"));
        assert_eq!(token(&both, HeaderOrQuery).as_deref(), Some("def"));
        let bad_header = get("/events?access_token=abc", Some("Basic def"));
        assert_eq!(token(&bad_header, HeaderOrQuery), None);
        // GET only.
        let mut post = get("/events?access_token=abc", None);
        *post.method_mut() = Method::POST;
        assert_eq!(token(&post, HeaderOrQuery), None);
    }

    #[test]
    fn query_tokens_are_decoded_and_parsed_strictly() {
        let parse = |uri: &str| query_token(&uri.parse::<Uri>().unwrap());
        assert_eq!(parse("/e?access_token=abc").as_deref(), Some("abc"));
        assert_eq!(parse("/e?x=1&access_token=abc&y").as_deref(), Some("abc"));
        assert_eq!(parse("/e?access_token=a%2Bb%26c%3D%25").as_deref(), Some("a+b&c=%"));
        assert_eq!(parse("/e"), None);
        assert_eq!(parse("/e?token=abc"), None);
        assert_eq!(parse("/e?access_token="), None);
        assert_eq!(parse("/e?access_token=a+b"), None);
        assert_eq!(parse("/e?access_token=a%20b"), None);
        assert_eq!(parse("/e?access_token=a&access_token=a"), None);
    }

    #[test]
    fn admin_token_is_compared_by_digest() {
        let state = AuthState::new(&AuthConfig { admin_token: Some("s3cret-admin-token".into()) });
        assert!(state.is_admin("s3cret-admin-token"));
        assert!(!state.is_admin("s3cret-admin-tokeN"));
        assert!(!state.is_admin(""));
    }

    #[test]
    fn a_blank_admin_token_is_no_admin_token() {
        let state = AuthState::new(&AuthConfig { admin_token: Some("  ".into()) });
        assert!(!state.is_admin("  "));
        assert!(state.admin_digest.is_none());
    }

    #[test]
    fn listening_beyond_loopback_needs_a_long_enough_admin_token() {
        let public: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let loopback: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let loopback6: SocketAddr = "[::1]:8080".parse().unwrap();
        let none = AuthConfig::default();
        assert!(none.allows_listen(&loopback).is_ok());
        assert!(none.allows_listen(&loopback6).is_ok());
        assert!(none.allows_listen(&public).is_err());
        let short = AuthConfig { admin_token: Some("short".into()) };
        assert!(short.allows_listen(&public).is_err());
        let good = AuthConfig { admin_token: Some("0123456789abcdef".into()) };
        assert!(good.allows_listen(&public).is_ok());
    }

    #[test]
    fn debug_hides_the_admin_token() {
        let config = AuthConfig { admin_token: Some("s3cret-admin-token".into()) };
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn generated_tokens_are_room_token_shaped_and_hash_to_hex() {
        let token = generate_token();
        assert!(is_room_token_shaped(&token));
        assert_ne!(token, generate_token());
        let hash = token_sha256_hex(&token);
        assert_eq!(hash.len(), 64);
        assert_eq!(
            token_sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
