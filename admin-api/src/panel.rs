//! The moderator web panel: three static files embedded in the binary, served at `/panel/`
//! without authentication (they hold no data: the page asks for a token and calls the API).
//!
//! Every file is sent with `Cache-Control: no-cache` and an `ETag`, so that a browser
//! revalidates and an upgraded server is picked up at once, and with a strict
//! Content-Security-Policy: only the panel's own script and style, no inline code, requests
//! to this origin only, no framing.

use axum::Router;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

/// The policy every panel file is served with.
pub(crate) const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'self'; \
    script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    body: &'static str,
    content_type: &'static str,
}

const INDEX: Asset = Asset {
    body: include_str!("../assets/panel/index.html"),
    content_type: "text/html; charset=utf-8",
};
const SCRIPT: Asset = Asset {
    body: include_str!("../assets/panel/panel.js"),
    content_type: "text/javascript; charset=utf-8",
};
const STYLE: Asset = Asset {
    body: include_str!("../assets/panel/panel.css"),
    content_type: "text/css; charset=utf-8",
};

/// `/panel` (redirected to `/panel/`), `/panel/`, `/panel/panel.js` and `/panel/panel.css`.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/panel", get(redirect))
        .route("/panel/", get(|headers: HeaderMap| async move { serve(&INDEX, &headers) }))
        .route("/panel/panel.js", get(|headers: HeaderMap| async move { serve(&SCRIPT, &headers) }))
        .route("/panel/panel.css", get(|headers: HeaderMap| async move { serve(&STYLE, &headers) }))
}

/// `/panel` to `/panel/`, relative so that it also works behind a proxy's path prefix.
async fn redirect() -> Redirect {
    Redirect::permanent("panel/")
}

/// The file with its headers, or 304 when the client's copy (`If-None-Match`) is current.
fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let etag = etag(asset.body);
    let fresh = request.get_all(IF_NONE_MATCH).iter().any(|value| matches_etag(value, &etag));
    let headers = [
        (CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE)),
        (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
    ];
    let etag = (ETAG, etag);
    if fresh {
        (StatusCode::NOT_MODIFIED, headers, [etag]).into_response()
    } else {
        (headers, [etag], asset.body).into_response()
    }
}

/// A strong entity tag for `body`: part of its SHA-256.
fn etag(body: &str) -> HeaderValue {
    let digest = Sha256::digest(body.as_bytes());
    let tag = format!("\"{}\"", hex::encode(&digest[..16]));
    HeaderValue::try_from(tag).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

/// Whether an `If-None-Match` value names `etag` (or is `*`). Weak comparison, as the
/// header's semantics ask: a `W/` prefix is ignored.
fn matches_etag(value: &HeaderValue, etag: &HeaderValue) -> bool {
    let (Ok(value), Ok(etag)) = (value.to_str(), etag.to_str()) else {
        return false;
    };
    value.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_are_quoted_hex_and_follow_the_content() {
        let tag = etag("a");
        let text = tag.to_str().unwrap();
        assert_eq!(text.len(), 34);
        assert!(text.starts_with('"') && text.ends_with('"'));
        assert_ne!(tag, etag("b"));
    }

    #[test]
    fn if_none_match_lists_are_understood() {
        let tag = etag("a");
        let quoted = tag.to_str().unwrap().to_owned();
        let matches = |value: &str| matches_etag(&HeaderValue::from_str(value).unwrap(), &tag);
        assert!(matches(&quoted));
        assert!(matches(&format!("\"x\", W/{quoted}")));
        assert!(matches("*"));
        assert!(!matches("\"x\""));
        assert!(!matches(quoted.trim_matches('"')));
    }

    #[test]
    fn the_policy_allows_no_inline_code() {
        assert!(!CONTENT_SECURITY_POLICY_VALUE.contains("unsafe"));
        assert!(CONTENT_SECURITY_POLICY_VALUE.contains("default-src 'self'"));
        assert!(CONTENT_SECURITY_POLICY_VALUE.contains("connect-src 'self'"));
    }
}
