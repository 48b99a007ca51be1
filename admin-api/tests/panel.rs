//! The moderator web panel's static files, through the router: content types, security
//! headers, caching, the redirect, and what the page references and relies on.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[allow(dead_code)] // this test crate uses only part of the shared double
mod support;

use axum::Router;
use axum::body::Body;
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
    LOCATION, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use rdv_admin_api::{AuthConfig, router};
use support::MemControl;
use tower::ServiceExt;

/// The panel's files and the content type each is served with.
const FILES: [(&str, &str); 3] = [
    ("/panel/", "text/html; charset=utf-8"),
    ("/panel/panel.js", "text/javascript; charset=utf-8"),
    ("/panel/panel.css", "text/css; charset=utf-8"),
];

fn app() -> Router {
    let auth = AuthConfig { admin_token: Some("admin-token-for-tests-0123456789".into()) };
    router(MemControl::with_rooms(&["alpha"]), auth)
}

async fn get(uri: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, String) {
    let mut builder = Request::get(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = app().oneshot(builder.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
}

/// Every value of `attribute="..."` in `html`.
fn attribute_values<'a>(html: &'a str, attribute: &str) -> Vec<&'a str> {
    let needle = format!(" {attribute}=\"");
    html.match_indices(&needle)
        .map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect()
}

#[tokio::test]
async fn the_files_are_served_with_their_types_and_security_headers() {
    for (uri, content_type) in FILES {
        let (status, headers, body) = get(uri, &[]).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(headers[CONTENT_TYPE], content_type, "{uri}");
        assert_eq!(headers[CACHE_CONTROL], "no-cache", "{uri}");
        assert_eq!(headers[X_CONTENT_TYPE_OPTIONS], "nosniff", "{uri}");
        assert_eq!(headers[REFERRER_POLICY], "no-referrer", "{uri}");
        let csp = headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
        let directives: Vec<_> = csp.split(';').map(str::trim).collect();
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(directives.contains(&directive), "{uri}: {directive} missing from {csp}");
        }
        assert!(!csp.contains("unsafe"), "{uri}: {csp}");
        assert!(!body.is_empty(), "{uri}");
    }
}

#[tokio::test]
async fn the_files_need_no_token_and_ignore_one() {
    let (status, _, _) = get("/panel/", &[(AUTHORIZATION.as_str(), "Bearer nonsense")]).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_current_copy_is_revalidated_with_its_etag() {
    for (uri, _) in FILES {
        let (_, headers, _) = get(uri, &[]).await;
        let etag = headers[ETAG].to_str().unwrap().to_owned();
        let (status, headers, body) = get(uri, &[(IF_NONE_MATCH.as_str(), &etag)]).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{uri}");
        assert_eq!(headers[ETAG], etag.as_str(), "{uri}");
        assert_eq!(headers[CACHE_CONTROL], "no-cache", "{uri}");
        assert!(body.is_empty(), "{uri}");
        let (status, _, _) = get(uri, &[(IF_NONE_MATCH.as_str(), "\"stale\"")]).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
    }
}

#[tokio::test]
async fn panel_without_a_slash_redirects_to_the_panel() {
    let (status, headers, _) = get("/panel", &[]).await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    // Relative, so that it holds behind a proxy's path prefix: from /panel it is /panel/.
    assert_eq!(headers[LOCATION], "panel/");
}

#[tokio::test]
async fn other_panel_paths_are_json_404s() {
    for uri in ["/panel/index.html", "/panel/panel.js.map", "/panel/../api/v1/rooms/alpha"] {
        let (status, headers, _) = get(uri, &[]).await;
        assert_ne!(status, StatusCode::OK, "{uri}");
        if status == StatusCode::NOT_FOUND {
            assert_eq!(headers[CONTENT_TYPE], "application/json", "{uri}");
        }
    }
}

#[tokio::test]
async fn the_page_references_only_its_script_and_style() {
    let (_, _, html) = get("/panel/", &[]).await;
    let mut resources: Vec<_> = attribute_values(&html, "src");
    resources.extend(attribute_values(&html, "href").into_iter().filter(|v| !v.starts_with('#')));
    resources.sort_unstable();
    assert_eq!(resources, ["panel.css", "panel.js"]);
    for fragment in attribute_values(&html, "href").into_iter().filter(|v| v.starts_with('#')) {
        let id = format!(" id=\"{}\"", &fragment[1..]);
        assert!(html.contains(&id), "link to a missing {fragment}");
    }
    // Nothing inline, nothing from elsewhere: the CSP would block it anyway.
    assert_eq!(html.matches("<script").count(), 1);
    assert!(html.contains("<script src=\"panel.js\" defer></script>"));
    for forbidden in ["<style", " style=", " onclick=", " onload=", " onsubmit=", "//", "url("] {
        assert!(!html.contains(forbidden), "index.html contains {forbidden:?}");
    }
}

#[tokio::test]
async fn the_page_has_the_elements_scripts_and_tests_rely_on() {
    let (_, _, html) = get("/panel/", &[]).await;
    let ids = attribute_values(&html, "id");
    for id in [
        "token",
        "room-name",
        "sign-in",
        "sign-out",
        "error",
        "notice",
        "sign-in-view",
        "rooms-view",
        "room-list",
        "room-view",
        "room-title",
        "room-jami-id",
        "status",
        "participants",
        "layout",
        "layout-apply",
        "lock",
        "unlock",
        "mute-all",
        "chat-text",
        "chat-send",
    ] {
        assert_eq!(ids.iter().filter(|&&found| found == id).count(), 1, "id {id}");
    }
    assert!(html.contains("<label for=\"token\">"));
    assert!(html.contains("<label for=\"room-name\">"));
    assert!(html.contains("<label for=\"layout\">"));
    assert!(html.contains("<label for=\"chat-text\">"));
    assert!(html.contains("id=\"error\" class=\"alert\" role=\"alert\""));
    assert!(html.contains("id=\"status\" aria-live=\"polite\""));
    for layout in ["grid", "one_big_with_small", "one_big"] {
        assert!(html.contains(&format!("<option value=\"{layout}\">")), "{layout}");
    }
}

#[tokio::test]
async fn the_script_stays_on_this_origin_and_knows_every_action() {
    let (_, _, script) = get("/panel/panel.js", &[]).await;
    for forbidden in ["http:", "https:", "innerHTML", "outerHTML", "eval(", "document.write"] {
        assert!(!script.contains(forbidden), "panel.js contains {forbidden:?}");
    }
    assert!(script.contains("'../api/v1/'"));
    assert!(script.contains("'access_token'"));
    assert!(script.contains("sessionStorage"));
    for action in
        ["mute-audio", "mute-video", "kick", "ban", "admit", "lower-hand", "make-moderator"]
    {
        assert!(script.contains(&format!("'{action}'")), "action {action}");
    }
    let (_, _, style) = get("/panel/panel.css", &[]).await;
    assert!(!style.contains("@import") && !style.contains("url("));
}
