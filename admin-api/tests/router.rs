//! The admin API router over an in-memory `Control`, driven request by request with
//! `oneshot`: authentication and access levels, error shapes, how routes map to actions,
//! the OpenAPI document, event streams and the probes.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use rdv_admin_api::types::{Action, Event, EventKind, LayoutName, PlayRequest, Role};
use rdv_admin_api::{AuthConfig, router, token_sha256_hex};
use serde_json::{Value, json};
use support::{BROKEN_ROOM, EVENT_CAPACITY, MemControl, RoleChange, SLOW_ROOM};
use tower::ServiceExt;

const ADMIN: &str = "admin-token-for-tests-0123456789";
/// Well formed (64 hex characters) but granted to nothing.
const WRONG: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const ACCOUNT: &str = "0123456789abcdef0123456789abcdef01234567";

fn auth() -> AuthConfig {
    AuthConfig { admin_token: Some(ADMIN.into()) }
}

/// A server with rooms `alpha` and `beta` and one token for each.
struct Fixture {
    control: MemControl,
    alpha: String,
    beta: String,
}

impl Fixture {
    fn new() -> Self {
        let control = MemControl::with_rooms(&["alpha", "beta"]);
        let alpha = control.grant("alpha");
        let beta = control.grant("beta");
        let jingle =
            PlayRequest { file: "jingle.wav".into(), looped: false, volume: 1.0, paused: false };
        control.add_playback("alpha", jingle);
        Self { control, alpha, beta }
    }

    fn app(&self) -> Router {
        router(self.control.clone(), auth())
    }
}

fn request(method: &str, uri: &str, token: Option<&str>, body: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    match body {
        Some(body) => {
            builder.header(CONTENT_TYPE, "application/json").body(Body::from(body.to_owned()))
        }
        None => builder.body(Body::empty()),
    }
    .unwrap()
}

/// A response, read whole.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    json: Value,
}

impl Reply {
    fn error_code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or_else(|| panic!("not an error: {}", self.json))
    }
}

async fn send(app: Router, request: Request<Body>) -> Reply {
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
    Reply { status, headers, json }
}

async fn call(
    app: Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Reply {
    send(app, request(method, uri, token, body)).await
}

/// Status and headers only: event streams never end.
async fn status(app: Router, request: Request<Body>) -> (StatusCode, HeaderMap) {
    let response = app.oneshot(request).await.unwrap();
    (response.status(), response.headers().clone())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Admin,
    Room,
}

/// Every route under /api/v1 that needs a token, on room `alpha`, with a valid body.
const ROUTES: &[(&str, &str, Option<&str>, Access)] = &[
    ("GET", "/api/v1/rooms", None, Access::Admin),
    ("POST", "/api/v1/rooms", Some(r#"{"name":"gamma"}"#), Access::Admin),
    ("GET", "/api/v1/rooms/alpha", None, Access::Room),
    ("DELETE", "/api/v1/rooms/alpha", None, Access::Admin),
    ("PATCH", "/api/v1/rooms/alpha/policy", Some(r#"{"locked":true}"#), Access::Room),
    ("GET", "/api/v1/rooms/alpha/participants", None, Access::Room),
    ("POST", "/api/v1/rooms/alpha/actions", Some(r#"{"action":"mute_all"}"#), Access::Room),
    ("POST", "/api/v1/rooms/alpha/participants/1/kick", None, Access::Room),
    ("POST", "/api/v1/rooms/alpha/participants/1/admit", None, Access::Room),
    ("POST", "/api/v1/rooms/alpha/participants/1/lower-hand", None, Access::Room),
    ("POST", "/api/v1/rooms/alpha/participants/1/mute", Some(r#"{"audio":true}"#), Access::Room),
    ("POST", "/api/v1/rooms/alpha/mute-all", None, Access::Room),
    ("PUT", "/api/v1/rooms/alpha/layout", Some(r#"{"layout":"one_big"}"#), Access::Room),
    ("POST", "/api/v1/rooms/alpha/lock", None, Access::Room),
    ("POST", "/api/v1/rooms/alpha/unlock", None, Access::Room),
    ("POST", "/api/v1/rooms/alpha/chat", Some(r#"{"text":"hello"}"#), Access::Room),
    ("GET", "/api/v1/rooms/alpha/accounts", None, Access::Room),
    (
        "PUT",
        "/api/v1/rooms/alpha/moderators/0123456789abcdef0123456789abcdef01234567",
        None,
        Access::Room,
    ),
    (
        "DELETE",
        "/api/v1/rooms/alpha/moderators/0123456789abcdef0123456789abcdef01234567",
        None,
        Access::Room,
    ),
    (
        "PUT",
        "/api/v1/rooms/alpha/bans/0123456789abcdef0123456789abcdef01234567",
        None,
        Access::Room,
    ),
    (
        "DELETE",
        "/api/v1/rooms/alpha/bans/0123456789abcdef0123456789abcdef01234567",
        None,
        Access::Room,
    ),
    (
        "PUT",
        "/api/v1/rooms/alpha/allowed/0123456789abcdef0123456789abcdef01234567",
        None,
        Access::Room,
    ),
    (
        "DELETE",
        "/api/v1/rooms/alpha/allowed/0123456789abcdef0123456789abcdef01234567",
        None,
        Access::Room,
    ),
    ("POST", "/api/v1/rooms/alpha/tokens", Some(r#"{"label":"panel"}"#), Access::Admin),
    ("DELETE", "/api/v1/rooms/alpha/tokens/1", None, Access::Admin),
    ("GET", "/api/v1/events", None, Access::Admin),
    ("GET", "/api/v1/rooms/alpha/events", None, Access::Room),
    ("POST", "/api/v1/rooms/alpha/recording/start", None, Access::Room),
    ("POST", "/api/v1/rooms/alpha/recording/stop", None, Access::Room),
    ("POST", "/api/v1/rooms/alpha/playbacks", Some(r#"{"file":"a.wav"}"#), Access::Room),
    ("GET", "/api/v1/rooms/alpha/playbacks", None, Access::Room),
    ("PATCH", "/api/v1/rooms/alpha/playbacks/100", Some(r#"{"paused":true}"#), Access::Room),
    ("DELETE", "/api/v1/rooms/alpha/playbacks/100", None, Access::Room),
];

#[tokio::test]
async fn every_route_enforces_its_access_level() {
    for &(method, uri, body, access) in ROUTES {
        let case = format!("{method} {uri}");

        // Each request on a fresh server, so that failures are not rate limited and
        // mutations do not leak from one to the next.
        let fixture = Fixture::new();
        let (code, headers) = status(fixture.app(), request(method, uri, None, body)).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{case} without a token");
        assert_eq!(headers[WWW_AUTHENTICATE], "Bearer", "{case}");

        let fixture = Fixture::new();
        let (code, _) = status(fixture.app(), request(method, uri, Some(WRONG), body)).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{case} with a wrong token");

        let fixture = Fixture::new();
        let (code, _) = status(fixture.app(), request(method, uri, Some("not-hex"), body)).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{case} with a malformed token");

        let fixture = Fixture::new();
        let (code, _) = status(fixture.app(), request(method, uri, Some(ADMIN), body)).await;
        assert!(code.is_success(), "{case} with the admin token: {code}");

        let fixture = Fixture::new();
        let (code, _) =
            status(fixture.app(), request(method, uri, Some(&fixture.alpha), body)).await;
        match access {
            Access::Room => assert!(code.is_success(), "{case} with alpha's token: {code}"),
            Access::Admin => assert_eq!(code, StatusCode::FORBIDDEN, "{case} with alpha's token"),
        }

        let fixture = Fixture::new();
        let (code, _) =
            status(fixture.app(), request(method, uri, Some(&fixture.beta), body)).await;
        assert_eq!(code, StatusCode::FORBIDDEN, "{case} with beta's token");
    }
}

#[tokio::test]
async fn errors_of_auth_are_json() {
    let fixture = Fixture::new();
    let reply = call(fixture.app(), "GET", "/api/v1/rooms/alpha", None, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.error_code(), "unauthorized");
    let reply = call(fixture.app(), "GET", "/api/v1/rooms/alpha", Some(&fixture.beta), None).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.error_code(), "forbidden");
}

#[tokio::test]
async fn room_tokens_match_room_names_regardless_of_case() {
    let fixture = Fixture::new();
    let reply = call(fixture.app(), "GET", "/api/v1/rooms/ALPHA", Some(&fixture.alpha), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json["name"], "alpha");
    let reply =
        call(fixture.app(), "POST", "/api/v1/rooms/Alpha/lock", Some(&fixture.alpha), None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn without_an_admin_token_admin_routes_are_refused() {
    let fixture = Fixture::new();
    let app = || router(fixture.control.clone(), AuthConfig::default());
    let reply = call(app(), "GET", "/api/v1/rooms", None, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let reply = call(app(), "GET", "/api/v1/rooms", Some(ADMIN), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let reply = call(app(), "GET", "/api/v1/rooms", Some(&fixture.alpha), None).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    // Room tokens still work on their rooms.
    let reply = call(app(), "GET", "/api/v1/rooms/alpha", Some(&fixture.alpha), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    // A blank admin token is no admin token.
    let blank = router(fixture.control.clone(), AuthConfig { admin_token: Some(String::new()) });
    let mut bare = request("GET", "/api/v1/rooms", None, None);
    bare.headers_mut().insert(AUTHORIZATION, "Bearer ".parse().unwrap());
    assert_eq!(send(blank, bare).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn rooms_are_created_shown_and_deleted() {
    let fixture = Fixture::new();
    let body = r#"{"name":"gamma","policy":{"lobby":true,"max_participants":8}}"#;
    let reply = call(fixture.app(), "POST", "/api/v1/rooms", Some(ADMIN), Some(body)).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.headers[LOCATION], "/api/v1/rooms/gamma");
    assert_eq!(reply.json["policy"]["lobby"], true);
    assert_eq!(reply.json["policy"]["max_participants"], 8);
    assert_eq!(reply.json["policy"]["admission"], "open");

    let reply = call(fixture.app(), "POST", "/api/v1/rooms", Some(ADMIN), Some(body)).await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.error_code(), "conflict");

    let reply = call(fixture.app(), "GET", "/api/v1/rooms", Some(ADMIN), None).await;
    let names: Vec<_> = reply.json.as_array().unwrap().iter().map(|r| r["name"].clone()).collect();
    assert_eq!(names, [json!("alpha"), json!("beta"), json!("gamma")]);

    let reply = call(fixture.app(), "DELETE", "/api/v1/rooms/gamma", Some(ADMIN), None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let reply = call(fixture.app(), "GET", "/api/v1/rooms/gamma", Some(ADMIN), None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error_code(), "not_found");
}

#[tokio::test]
async fn policy_patch_changes_only_what_it_names() {
    let fixture = Fixture::new();
    let body = r#"{"admission":"allow_list","layout":"one_big_with_small"}"#;
    let reply =
        call(fixture.app(), "PATCH", "/api/v1/rooms/alpha/policy", Some(ADMIN), Some(body)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json["admission"], "allow_list");
    assert_eq!(reply.json["layout"], "one_big_with_small");
    assert_eq!(reply.json["locked"], false);
    let body = r#"{"max_participants":0}"#;
    let reply =
        call(fixture.app(), "PATCH", "/api/v1/rooms/alpha/policy", Some(ADMIN), Some(body)).await;
    assert_eq!(reply.json["max_participants"], Value::Null);
}

#[tokio::test]
async fn malformed_requests_are_json_400s() {
    let fixture = Fixture::new();
    let cases = [
        ("POST", "/api/v1/rooms/alpha/actions", Some("{not json"), "syntax"),
        ("POST", "/api/v1/rooms/alpha/actions", Some(r#"{"action":"explode"}"#), "unknown action"),
        ("POST", "/api/v1/rooms/alpha/actions", Some(r#"{"action":"kick"}"#), "missing field"),
        (
            "POST",
            "/api/v1/rooms/alpha/actions",
            Some(r#"{"action":"kick","participant":-1}"#),
            "bad id",
        ),
        (
            "POST",
            "/api/v1/rooms/alpha/actions",
            Some(r#"{"action":"kick","participant":1,"why":"x"}"#),
            "unknown field",
        ),
        ("POST", "/api/v1/rooms", Some(r#"{"name":"x","colour":"red"}"#), "unknown field"),
        ("PATCH", "/api/v1/rooms/alpha/policy", Some(r#"{"lockd":true}"#), "unknown field"),
        ("PATCH", "/api/v1/rooms/alpha/policy", Some(r#"{"layout":"mosaic"}"#), "unknown layout"),
        (
            "PUT",
            "/api/v1/rooms/alpha/layout",
            Some(r#"{"layout":"grid","active":1}"#),
            "unknown field",
        ),
        ("POST", "/api/v1/rooms/alpha/participants/x/kick", None, "participant id not a number"),
        ("POST", "/api/v1/rooms/alpha/participants/1/mute", Some("{}"), "mute nothing"),
        (
            "POST",
            "/api/v1/rooms/alpha/participants/1/mute",
            Some(r#"{"muted":true}"#),
            "unknown field",
        ),
        ("POST", "/api/v1/rooms/alpha/chat", Some(r#"{"text":""}"#), "empty chat"),
        ("POST", "/api/v1/rooms/alpha/tokens", Some(r#"{"label":""}"#), "empty label"),
        ("DELETE", "/api/v1/rooms/alpha/tokens/one", None, "token id not a number"),
    ];
    for (method, uri, body, why) in cases {
        let reply = call(fixture.app(), method, uri, Some(ADMIN), body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{why}: {method} {uri} {body:?}");
        assert_eq!(reply.error_code(), "bad_request", "{why}");
        assert!(!reply.json["error"]["message"].as_str().unwrap().is_empty(), "{why}");
    }
    assert!(fixture.control.actions().is_empty());
}

#[tokio::test]
async fn chat_over_4096_characters_is_refused() {
    let fixture = Fixture::new();
    let text = "é".repeat(4097);
    let body = json!({ "text": text }).to_string();
    let reply =
        call(fixture.app(), "POST", "/api/v1/rooms/alpha/chat", Some(ADMIN), Some(&body)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let body = json!({ "action": "chat", "text": text }).to_string();
    let reply =
        call(fixture.app(), "POST", "/api/v1/rooms/alpha/actions", Some(ADMIN), Some(&body)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let body = json!({ "text": "é".repeat(4096) }).to_string();
    let reply =
        call(fixture.app(), "POST", "/api/v1/rooms/alpha/chat", Some(ADMIN), Some(&body)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_body_over_64_kib_is_a_json_413() {
    let fixture = Fixture::new();
    let body = json!({ "text": "a".repeat(70 * 1024) }).to_string();
    let reply =
        call(fixture.app(), "POST", "/api/v1/rooms/alpha/chat", Some(ADMIN), Some(&body)).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.error_code(), "payload_too_large");
    assert!(fixture.control.actions().is_empty());
}

#[tokio::test]
async fn a_body_without_json_content_type_is_a_json_415() {
    let fixture = Fixture::new();
    let request = Request::post("/api/v1/rooms/alpha/actions")
        .header(AUTHORIZATION, format!("Bearer {ADMIN}"))
        .body(Body::from(r#"{"action":"mute_all"}"#))
        .unwrap();
    let reply = send(fixture.app(), request).await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(reply.error_code(), "unsupported_media_type");
}

#[tokio::test]
async fn a_request_without_credentials_is_refused_before_its_body_is_read() {
    let fixture = Fixture::new();
    let reply =
        call(fixture.app(), "POST", "/api/v1/rooms/alpha/actions", None, Some("{not json")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let body = "x".repeat(100 * 1024);
    let reply = call(fixture.app(), "POST", "/api/v1/rooms", None, Some(&body)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn account_ids_are_checked_and_lower_cased() {
    let fixture = Fixture::new();
    for bad in [
        "abc",
        "0123456789abcdef0123456789abcdef0123456z",
        "0123456789abcdef0123456789abcdef012345678",
    ] {
        let uri = format!("/api/v1/rooms/alpha/bans/{bad}");
        let reply = call(fixture.app(), "PUT", &uri, Some(ADMIN), None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(reply.error_code(), "bad_request");
    }
    let upper = ACCOUNT.to_ascii_uppercase();
    let app = fixture.app();
    let token = Some(fixture.alpha.as_str());
    let routes = [
        ("PUT", "moderators", Role::Moderator, true),
        ("DELETE", "moderators", Role::Moderator, false),
        ("PUT", "bans", Role::Banned, true),
        ("DELETE", "bans", Role::Banned, false),
        ("PUT", "allowed", Role::Allowed, true),
        ("DELETE", "allowed", Role::Allowed, false),
    ];
    for (method, list, _, _) in routes {
        let uri = format!("/api/v1/rooms/alpha/{list}/{upper}");
        let reply = call(app.clone(), method, &uri, token, None).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{method} {list}");
    }
    let expected: Vec<_> = routes
        .iter()
        .map(|&(_, _, role, granted)| RoleChange {
            room: "alpha".into(),
            account: ACCOUNT.into(),
            role,
            granted,
        })
        .collect();
    assert_eq!(fixture.control.role_changes(), expected);

    let uri = format!("/api/v1/rooms/alpha/moderators/{ACCOUNT}");
    call(app.clone(), "PUT", &uri, token, None).await;
    let reply = call(app, "GET", "/api/v1/rooms/alpha/accounts", token, None).await;
    assert_eq!(reply.json, json!([{ "account": ACCOUNT, "role": "moderator" }]));
}

#[tokio::test]
async fn action_routes_map_to_their_actions() {
    let cases: &[(&str, &str, Option<&str>, &[Action])] = &[
        (
            "POST",
            "actions",
            Some(r#"{"action":"set_active","participant":null}"#),
            &[Action::SetActive { participant: None }],
        ),
        (
            "POST",
            "actions",
            Some(r#"{"action":"set_active","participant":4}"#),
            &[Action::SetActive { participant: Some(4) }],
        ),
        (
            "POST",
            "actions",
            Some(r#"{"action":"mute_video","participant":2,"muted":false}"#),
            &[Action::MuteVideo { participant: 2, muted: false }],
        ),
        ("POST", "participants/7/kick", None, &[Action::Kick { participant: 7 }]),
        ("POST", "participants/7/admit", None, &[Action::Admit { participant: 7 }]),
        ("POST", "participants/7/lower-hand", None, &[Action::LowerHand { participant: 7 }]),
        (
            "POST",
            "participants/7/mute",
            Some(r#"{"audio":true}"#),
            &[Action::MuteAudio { participant: 7, muted: true }],
        ),
        (
            "POST",
            "participants/7/mute",
            Some(r#"{"video":false}"#),
            &[Action::MuteVideo { participant: 7, muted: false }],
        ),
        (
            "POST",
            "participants/7/mute",
            Some(r#"{"audio":false,"video":true}"#),
            &[
                Action::MuteAudio { participant: 7, muted: false },
                Action::MuteVideo { participant: 7, muted: true },
            ],
        ),
        ("POST", "mute-all", None, &[Action::MuteAll]),
        (
            "PUT",
            "layout",
            Some(r#"{"layout":"one_big_with_small"}"#),
            &[Action::SetLayout { layout: LayoutName::OneBigWithSmall }],
        ),
        ("POST", "lock", None, &[Action::Lock { locked: true }]),
        ("POST", "unlock", None, &[Action::Lock { locked: false }]),
        (
            "POST",
            "chat",
            Some(r#"{"text":"hello room"}"#),
            &[Action::Chat { text: "hello room".into() }],
        ),
    ];
    for &(method, route, body, expected) in cases {
        let fixture = Fixture::new();
        let uri = format!("/api/v1/rooms/alpha/{route}");
        let reply = call(fixture.app(), method, &uri, Some(&fixture.alpha), body).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{method} {uri}");
        let actions: Vec<_> = fixture.control.actions().into_iter().map(|(_, a)| a).collect();
        assert_eq!(actions, expected, "{method} {uri} {body:?}");
        assert!(fixture.control.actions().iter().all(|(room, _)| room == "alpha"));
    }
}

#[tokio::test]
async fn control_errors_keep_their_status_and_internal_detail_stays_inside() {
    let control = MemControl::with_rooms(&[BROKEN_ROOM]);
    let reply =
        call(router(control.clone(), auth()), "GET", "/api/v1/rooms/broken", Some(ADMIN), None)
            .await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.error_code(), "internal");
    assert_eq!(reply.json["error"]["message"], "internal error");
    let reply =
        call(router(control, auth()), "POST", "/api/v1/rooms/nowhere/lock", Some(ADMIN), None)
            .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test(start_paused = true)]
async fn a_request_that_takes_too_long_is_a_json_503() {
    let control = MemControl::with_rooms(&[SLOW_ROOM]);
    let reply = call(router(control, auth()), "GET", "/api/v1/rooms/slow", Some(ADMIN), None).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.error_code(), "unavailable");
}

#[tokio::test]
async fn room_tokens_are_created_hashed_usable_and_revoked() {
    let fixture = Fixture::new();
    let body = r#"{"label":"  web panel  "}"#;
    let reply =
        call(fixture.app(), "POST", "/api/v1/rooms/beta/tokens", Some(ADMIN), Some(body)).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.json["label"], "web panel");
    let token = reply.json["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 64);
    assert!(token.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    let id = reply.json["id"].as_i64().unwrap();
    assert_eq!(fixture.control.token_hash(id), Some(token_sha256_hex(&token)));

    let reply = call(fixture.app(), "GET", "/api/v1/rooms/beta", Some(&token), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = call(fixture.app(), "GET", "/api/v1/rooms/alpha", Some(&token), None).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);

    let uri = format!("/api/v1/rooms/beta/tokens/{id}");
    let reply = call(fixture.app(), "DELETE", &uri, Some(ADMIN), None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let reply = call(fixture.app(), "GET", "/api/v1/rooms/beta", Some(&token), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let reply = call(fixture.app(), "DELETE", &uri, Some(ADMIN), None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn openapi_document_lists_the_routes() {
    let fixture = Fixture::new();
    let reply = call(fixture.app(), "GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let doc = reply.json;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/rooms",
        "/api/v1/rooms/{room}",
        "/api/v1/rooms/{room}/actions",
        "/api/v1/rooms/{room}/participants/{id}/mute",
        "/api/v1/rooms/{room}/bans/{account}",
        "/api/v1/rooms/{room}/tokens/{id}",
        "/api/v1/events",
    ] {
        assert!(paths.contains_key(path), "{path} missing from {:?}", paths.keys());
    }
    assert!(paths["/api/v1/rooms"]["post"]["responses"]["201"].is_object());
    assert!(paths["/api/v1/rooms"]["get"]["responses"]["401"].is_object());
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert!(doc["components"]["schemas"]["Action"].is_object());
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
}

fn joined(room: &str, participant: u64) -> Event {
    Event {
        room: room.into(),
        at_ms: 1_700_000_000_000 + participant,
        kind: EventKind::Joined { participant, account: ACCOUNT.into(), device: "d".repeat(40) },
    }
}

/// Reads the next SSE event (as its `event:` name and its parsed data), waiting at most 5 s.
async fn next_event(body: &mut Body) -> (String, Value) {
    let read = async {
        let mut text = String::new();
        loop {
            let frame = body.frame().await.expect("the stream ended").unwrap();
            if let Ok(data) = frame.into_data() {
                text.push_str(std::str::from_utf8(&data).unwrap());
            }
            if text.contains("\n\n") {
                return text;
            }
        }
    };
    let text = tokio::time::timeout(Duration::from_secs(5), read).await.expect("no event in 5 s");
    let mut name = None;
    let mut data = None;
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("event: ") {
            name = Some(value.to_owned());
        } else if let Some(value) = line.strip_prefix("data: ") {
            data = Some(serde_json::from_str(value).unwrap());
        }
    }
    (name.unwrap(), data.unwrap())
}

#[tokio::test]
async fn a_room_event_stream_carries_that_rooms_events() {
    let fixture = Fixture::new();
    let req = request("GET", "/api/v1/rooms/alpha/events", Some(&fixture.alpha), None);
    let response = fixture.app().oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "text/event-stream");
    let mut body = response.into_body();

    fixture.control.emit(joined("beta", 9));
    fixture.control.emit(joined("alpha", 3));
    let (name, data) = next_event(&mut body).await;
    assert_eq!(name, "joined");
    assert_eq!(serde_json::from_value::<Event>(data).unwrap(), joined("alpha", 3));
}

#[tokio::test]
async fn the_all_rooms_stream_reports_lag_and_carries_on() {
    let fixture = Fixture::new();
    let req = request("GET", "/api/v1/events", Some(ADMIN), None);
    let response = fixture.app().oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();

    let sent = EVENT_CAPACITY as u64 + 2;
    for participant in 0..sent {
        fixture
            .control
            .emit(joined(if participant % 2 == 0 { "alpha" } else { "beta" }, participant));
    }
    let (name, data) = next_event(&mut body).await;
    assert_eq!(name, "lagged");
    assert_eq!(data, json!({ "missed": 2 }));
    let (name, data) = next_event(&mut body).await;
    assert_eq!(name, "joined");
    assert_eq!(serde_json::from_value::<Event>(data).unwrap(), joined("alpha", 2));
}

#[tokio::test]
async fn event_streams_are_limited_to_64_at_once() {
    let fixture = Fixture::new();
    let app = fixture.app();
    let mut open = Vec::new();
    for _ in 0..64 {
        let req = request("GET", "/api/v1/rooms/alpha/events", Some(ADMIN), None);
        let response = app.clone().oneshot(req).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        open.push(response);
    }
    let reply = call(app.clone(), "GET", "/api/v1/events", Some(ADMIN), None).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.error_code(), "unavailable");
    // Closing a stream frees its place.
    open.pop();
    let (code, _) = status(app, request("GET", "/api/v1/events", Some(ADMIN), None)).await;
    assert_eq!(code, StatusCode::OK);
}

#[tokio::test]
async fn an_event_stream_of_an_unknown_room_is_a_404() {
    let fixture = Fixture::new();
    let reply = call(fixture.app(), "GET", "/api/v1/rooms/nowhere/events", Some(ADMIN), None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error_code(), "not_found");
}

#[tokio::test]
async fn probes_need_no_token() {
    let fixture = Fixture::new();
    let reply = call(fixture.app(), "GET", "/healthz", None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json, json!({ "status": "ok" }));
    let reply = call(fixture.app(), "GET", "/readyz", None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json, json!({ "status": "ready" }));

    fixture.control.set_ready(false);
    let reply = call(fixture.app(), "GET", "/readyz", None, None).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json, json!({ "status": "not_ready" }));
    let reply = call(fixture.app(), "GET", "/healthz", None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json_errors() {
    let fixture = Fixture::new();
    for uri in ["/api/v1/nothing", "/nothing", "/api/v2/rooms"] {
        let reply = call(fixture.app(), "GET", uri, Some(ADMIN), None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(reply.error_code(), "not_found");
    }
    for (method, uri) in [("PUT", "/api/v1/rooms"), ("POST", "/healthz")] {
        let reply = call(fixture.app(), method, uri, Some(ADMIN), None).await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        assert_eq!(reply.error_code(), "method_not_allowed");
    }
}

fn from(addr: &str, mut request: Request<Body>) -> Request<Body> {
    let addr: SocketAddr = addr.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(addr));
    request
}

#[tokio::test]
async fn ten_failures_from_a_client_block_it_for_the_rest_of_the_minute() {
    let fixture = Fixture::new();
    let app = fixture.app();
    let attacker = "192.0.2.7:40000";
    for attempt in 0..10 {
        let req = from(attacker, request("GET", "/api/v1/rooms", Some(WRONG), None));
        let reply = send(app.clone(), req).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    // Now even the right token is refused from that client, so guessing learns nothing.
    let req = from(attacker, request("GET", "/api/v1/rooms", Some(ADMIN), None));
    let reply = send(app.clone(), req).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.error_code(), "too_many_requests");
    let retry: u64 = reply.headers[RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");

    // Another client, and the probes, are unaffected.
    let req = from("198.51.100.1:40000", request("GET", "/api/v1/rooms", Some(ADMIN), None));
    assert_eq!(send(app.clone(), req).await.status, StatusCode::OK);
    let req = from(attacker, request("GET", "/healthz", None, None));
    assert_eq!(send(app, req).await.status, StatusCode::OK);
}

#[tokio::test]
async fn missing_credentials_are_not_counted_as_failures() {
    let fixture = Fixture::new();
    let app = fixture.app();
    for _ in 0..20 {
        let reply = call(app.clone(), "GET", "/api/v1/rooms", None, None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let reply = call(app, "GET", "/api/v1/rooms", Some(ADMIN), None).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn without_connect_info_all_clients_share_one_bucket() {
    let fixture = Fixture::new();
    let app = fixture.app();
    for _ in 0..10 {
        call(app.clone(), "GET", "/api/v1/rooms/alpha", Some(WRONG), None).await;
    }
    let reply = call(app, "GET", "/api/v1/rooms/alpha", Some(&fixture.alpha), None).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_access_table_covers_every_documented_route() {
    let doc = serde_json::to_value(rdv_admin_api::openapi()).unwrap();
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    documented.sort();
    let mut tested: Vec<_> = ROUTES
        .iter()
        .map(|(method, uri, _, _)| {
            let template = uri
                .replace("/alpha", "/{room}")
                .replace(ACCOUNT, "{account}")
                .replace("/1/", "/{id}/")
                .replace("tokens/1", "tokens/{id}")
                .replace("playbacks/100", "playbacks/{id}");
            format!("{method} {template}")
        })
        .collect();
    // The bot's WebSocket, checked in `the_bot_socket_is_a_room_route`.
    tested.push("GET /api/v1/rooms/{room}/bot".to_owned());
    tested.sort();
    assert_eq!(tested, documented);
}

#[tokio::test]
async fn the_bot_socket_is_a_room_route() {
    let uri = "/api/v1/rooms/alpha/bot";
    let fixture = Fixture::new();
    let (code, _) = status(fixture.app(), request("GET", uri, None, None)).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let fixture = Fixture::new();
    let (code, _) = status(fixture.app(), request("GET", uri, Some(&fixture.beta), None)).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    // With alpha's token the request gets past authentication; without an HTTP connection to
    // upgrade (oneshot) or the WebSocket headers, the upgrade itself is refused.
    let fixture = Fixture::new();
    let (code, _) = status(fixture.app(), request("GET", uri, Some(&fixture.alpha), None)).await;
    assert!(code.is_client_error(), "{code}");
    assert!(![StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN].contains(&code), "{code}");
    let fixture = Fixture::new();
    let (code, _) =
        status(fixture.app(), request("GET", "/api/v1/rooms/nowhere/bot", Some(ADMIN), None)).await;
    assert!(code.is_client_error(), "{code}");
}

/// `uri` with the token as its `access_token` query parameter (percent-encoded).
fn with_query_token(uri: &str, token: &str) -> String {
    let mut encoded = String::new();
    for byte in token.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    let separator = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{separator}access_token={encoded}")
}

#[tokio::test]
async fn event_streams_take_the_token_from_the_query() {
    let fixture = Fixture::new();
    let uri = with_query_token("/api/v1/rooms/alpha/events", &fixture.alpha);
    let response = fixture.app().oneshot(request("GET", &uri, None, None)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "text/event-stream");
    let mut body = response.into_body();
    fixture.control.emit(joined("alpha", 5));
    let (name, data) = next_event(&mut body).await;
    assert_eq!(name, "joined");
    assert_eq!(serde_json::from_value::<Event>(data).unwrap(), joined("alpha", 5));

    // The admin token, on both streams.
    for uri in ["/api/v1/events", "/api/v1/rooms/alpha/events", "/api/v1/rooms/BETA/events"] {
        let req = request("GET", &with_query_token(uri, ADMIN), None, None);
        assert_eq!(status(fixture.app(), req).await.0, StatusCode::OK, "{uri}");
    }

    // A token with characters that need percent-encoding.
    let odd = "adm+in/tok&en=%?#~!-0123456789";
    let app = router(fixture.control.clone(), AuthConfig { admin_token: Some(odd.into()) });
    let req = request("GET", &with_query_token("/api/v1/events", odd), None, None);
    assert_eq!(status(app, req).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_query_token_is_refused_on_every_other_route() {
    for &(method, uri, body, _) in ROUTES {
        if uri.ends_with("/events") {
            continue;
        }
        let fixture = Fixture::new();
        let reply = call(fixture.app(), method, &with_query_token(uri, ADMIN), None, body).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        assert_eq!(reply.error_code(), "unauthorized", "{method} {uri}");
    }

    // A room named "events" is no event stream.
    let control = MemControl::with_rooms(&["events"]);
    let token = control.grant("events");
    let app = router(control, auth());
    for token in [ADMIN, token.as_str()] {
        let uri = with_query_token("/api/v1/rooms/events", token);
        let reply = call(app.clone(), "GET", &uri, None, None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        let reply = call(app.clone(), "GET", "/api/v1/rooms/events", Some(token), None).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn a_query_token_counts_only_on_a_get_without_an_authorization_header() {
    let fixture = Fixture::new();
    // Only GET. HEAD reaches the GET handler, but not with a query token; other methods
    // match no handler.
    let uri = with_query_token("/api/v1/events", ADMIN);
    let (code, _) = status(fixture.app(), request("HEAD", &uri, None, None)).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _) = status(fixture.app(), request("HEAD", &uri, Some(ADMIN), None)).await;
    assert_eq!(code, StatusCode::OK);
    let reply = call(fixture.app(), "POST", &uri, None, None).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    // The header, when present, is the one looked at, even if it is wrong or malformed.
    let uri = with_query_token("/api/v1/rooms/alpha/events", ADMIN);
    let req = request("GET", &uri, Some(WRONG), None);
    assert_eq!(status(fixture.app(), req).await.0, StatusCode::UNAUTHORIZED);
    let mut req = request("GET", &uri, None, None);
    req.headers_mut().insert(AUTHORIZATION, "Basic abc".parse().unwrap());
    assert_eq!(status(fixture.app(), req).await.0, StatusCode::UNAUTHORIZED);
    // A token given twice is no token.
    let twice = with_query_token(&with_query_token("/api/v1/events", ADMIN), ADMIN);
    let (code, _) = status(fixture.app(), request("GET", &twice, None, None)).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    // The wrong parameter name.
    let uri = format!("/api/v1/events?token={ADMIN}");
    let (code, _) = status(fixture.app(), request("GET", &uri, None, None)).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_room_token_in_the_query_is_held_to_its_room() {
    let fixture = Fixture::new();
    let uri = with_query_token("/api/v1/rooms/alpha/events", &fixture.beta);
    let reply = call(fixture.app(), "GET", &uri, None, None).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.error_code(), "forbidden");
    let uri = with_query_token("/api/v1/events", &fixture.alpha);
    let reply = call(fixture.app(), "GET", &uri, None, None).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let uri = with_query_token("/api/v1/rooms/alpha/events", WRONG);
    let reply = call(fixture.app(), "GET", &uri, None, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn wrong_query_tokens_are_rate_limited_like_header_ones() {
    let fixture = Fixture::new();
    let app = fixture.app();
    let attacker = "192.0.2.9:40000";
    for attempt in 0..10 {
        let uri = with_query_token("/api/v1/events", WRONG);
        let reply = send(app.clone(), from(attacker, request("GET", &uri, None, None))).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    let uri = with_query_token("/api/v1/events", ADMIN);
    let reply = send(app.clone(), from(attacker, request("GET", &uri, None, None))).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    // The header is blocked as well: one limiter whatever the token's source.
    let req = from(attacker, request("GET", "/api/v1/rooms", Some(ADMIN), None));
    assert_eq!(send(app, req).await.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn playback_requests_are_validated_before_the_server_sees_them() {
    let fixture = Fixture::new();
    let token = Some(fixture.alpha.as_str());
    let uri = "/api/v1/rooms/alpha/playbacks";
    for (body, why) in [
        (r#"{"file":"/etc/passwd"}"#, "an absolute path"),
        (r#"{"file":"../data/rdv.db"}"#, "a path out of the media directory"),
        (r#"{"file":""}"#, "an empty name"),
        (r#"{"file":"a.wav","volume":9}"#, "a volume over 4"),
        (r#"{"file":"a.wav","volume":-1}"#, "a negative volume"),
        (r#"{"file":"a.wav","speed":2}"#, "an unknown field"),
        (r#"{"loop":true}"#, "no file"),
    ] {
        let reply = call(fixture.app(), "POST", uri, token, Some(body)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{why}: {:?}", reply.json);
        assert!(reply.json["error"]["message"].is_string(), "{why}: a JSON error");
    }
    let reply =
        call(fixture.app(), "POST", uri, token, Some(r#"{"file":"x/b.mp3","loop":true}"#)).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.json["loop"], true);
    assert_eq!(reply.json["volume"], 1.0);
    let id = reply.json["id"].as_u64().unwrap();
    let one = format!("{uri}/{id}");
    let reply = call(fixture.app(), "PATCH", &one, token, Some(r#"{"volume":7}"#)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply =
        call(fixture.app(), "PATCH", &one, token, Some(r#"{"paused":true,"volume":0.5}"#)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        (reply.json["paused"].as_bool(), reply.json["volume"].as_f64()),
        (Some(true), Some(0.5))
    );
    let reply = call(fixture.app(), "DELETE", &one, token, None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let reply = call(fixture.app(), "DELETE", &one, token, None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = call(fixture.app(), "PATCH", &format!("{uri}/x"), token, Some("{}")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "a playback id is a number");
}

#[tokio::test]
async fn recording_takes_an_optional_body() {
    let fixture = Fixture::new();
    let token = Some(fixture.alpha.as_str());
    let uri = "/api/v1/rooms/alpha/recording/start";
    let reply = call(fixture.app(), "POST", uri, token, None).await;
    assert_eq!((reply.status, reply.json["video"].as_bool()), (StatusCode::OK, Some(false)));
    let reply = call(fixture.app(), "POST", uri, token, Some(r#"{"video":true}"#)).await;
    assert_eq!((reply.status, reply.json["video"].as_bool()), (StatusCode::OK, Some(true)));
    assert!(reply.json["file"].as_str().unwrap().ends_with(".webm"));
    let reply = call(fixture.app(), "POST", uri, token, Some(r#"{"video":"yes"}"#)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = call(fixture.app(), "POST", uri, token, Some(r#"{"vidoe":true}"#)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}
