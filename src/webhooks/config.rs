//! What the operator configures: the webhooks, and the retry and queue settings.

use std::fmt;
use std::time::Duration;

use hyper::Uri;
use serde::Deserialize;

use super::{EVENT_TYPES, MIN_SECRET_CHARS};

/// One webhook, as configured in a `[[webhooks]]` table.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where events are POSTed: an `http://` or `https://` URL.
    pub url: String,
    /// The key of the requests' HMAC-SHA256 signatures, at least [`MIN_SECRET_CHARS`]
    /// characters.
    pub secret: String,
    /// The event types to deliver (see [`EVENT_TYPES`]); empty for all.
    #[serde(default)]
    pub events: Vec<String>,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("events", &self.events)
            .finish()
    }
}

/// Why a [`WebhookConfig`] is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookConfigError {
    /// The URL does not parse.
    #[error("webhook url {url:?} is not a valid URL: {reason}")]
    InvalidUrl {
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL is neither `http://` nor `https://`.
    #[error("webhook url {url:?} must start with http:// or https://")]
    UnsupportedScheme {
        /// The URL as configured.
        url: String,
    },
    /// The URL has no host.
    #[error("webhook url {url:?} has no host")]
    MissingHost {
        /// The URL as configured.
        url: String,
    },
    /// The URL has a `user:password@` part, which would not be sent.
    #[error(
        "webhook url {url} has credentials before the host, which are not sent; \
         authenticate requests by their signature, or put a token in the query string"
    )]
    CredentialsInUrl {
        /// The URL without its credentials and query string.
        url: String,
    },
    /// The secret is too short to be a good HMAC key.
    #[error(
        "the secret of webhook {url} has {chars} characters; at least {MIN_SECRET_CHARS} \
         are needed"
    )]
    SecretTooShort {
        /// The webhook's URL without its query string.
        url: String,
        /// How many characters the secret has.
        chars: usize,
    },
    /// The `events` filter names a type no event has.
    #[error(
        "webhook {url} lists unknown event type {name:?}; the types are {}",
        EVENT_TYPES.join(", ")
    )]
    UnknownEventType {
        /// The webhook's URL without its query string.
        url: String,
        /// The unknown name.
        name: String,
    },
}

/// Why the webhooks could not be started.
#[derive(Debug, thiserror::Error)]
pub enum WebhooksError {
    /// A webhook's configuration is refused.
    #[error(transparent)]
    Config(#[from] WebhookConfigError),
    /// The TLS client could not be set up.
    #[error("cannot set up TLS for webhooks: {0}")]
    Tls(#[from] rustls::Error),
}

impl WebhookConfig {
    /// Checks the URL (`http://` or `https://`, with a host, without credentials), the
    /// secret's length and the event type names.
    pub fn validate(&self) -> Result<(), WebhookConfigError> {
        Target::new(self).map(drop)
    }
}

/// Retry, timeout and queue settings shared by every webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverySettings {
    /// Most attempts at one delivery, the first included (0 counts as 1).
    pub max_attempts: u32,
    /// The wait after the first failed attempt; it doubles after each further one.
    pub first_backoff: Duration,
    /// The longest wait between two attempts (a `Retry-After` is capped to it too).
    pub max_backoff: Duration,
    /// How long one attempt may take, from connecting to the answer's status.
    pub attempt_timeout: Duration,
    /// Events waiting per webhook and room; one more is dropped, with a warning.
    pub queue_capacity: usize,
    /// A (webhook, room) queue with nothing to do for this long is stopped.
    pub idle_after: Duration,
}

impl Default for DeliverySettings {
    /// 8 attempts over about a minute (waits of 0.5, 1, 2, 4, 8, 16 and 30 s), 10 s per
    /// attempt, 256 queued events per webhook and room, queues stopped after 60 idle seconds.
    fn default() -> Self {
        Self {
            max_attempts: 8,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(10),
            queue_capacity: 256,
            idle_after: Duration::from_secs(60),
        }
    }
}

impl DeliverySettings {
    /// The wait after `failed_attempts` failed attempts (1 for the first).
    pub(super) fn backoff(&self, failed_attempts: u32) -> Duration {
        let doublings = failed_attempts.saturating_sub(1);
        let factor = 1u32.checked_shl(doublings).unwrap_or(u32::MAX);
        self.first_backoff.checked_mul(factor).unwrap_or(self.max_backoff).min(self.max_backoff)
    }
}

/// A validated webhook.
pub(super) struct Target {
    pub(super) uri: Uri,
    /// The URL without credentials or query string (which may hold a token), for logs.
    pub(super) log_url: String,
    pub(super) secret: String,
    /// Event types to deliver; empty for all.
    pub(super) events: Vec<String>,
}

impl Target {
    pub(super) fn new(config: &WebhookConfig) -> Result<Self, WebhookConfigError> {
        let url = &config.url;
        let uri: Uri = url.parse().map_err(|error: hyper::http::uri::InvalidUri| {
            WebhookConfigError::InvalidUrl { url: url.clone(), reason: error.to_string() }
        })?;
        let scheme = match uri.scheme_str() {
            Some(scheme) if scheme.eq_ignore_ascii_case("http") => "http",
            Some(scheme) if scheme.eq_ignore_ascii_case("https") => "https",
            _ => return Err(WebhookConfigError::UnsupportedScheme { url: url.clone() }),
        };
        let Some(authority) = uri.authority() else {
            return Err(WebhookConfigError::MissingHost { url: url.clone() });
        };
        if authority.host().is_empty() {
            return Err(WebhookConfigError::MissingHost { url: url.clone() });
        }
        let host_and_port = match authority.port_u16() {
            Some(port) => format!("{}:{port}", authority.host()),
            None => authority.host().to_owned(),
        };
        let log_url = format!("{scheme}://{host_and_port}{}", uri.path());
        if authority.as_str().contains('@') {
            return Err(WebhookConfigError::CredentialsInUrl { url: log_url });
        }
        let chars = config.secret.chars().count();
        if chars < MIN_SECRET_CHARS {
            return Err(WebhookConfigError::SecretTooShort { url: log_url, chars });
        }
        if let Some(name) = config.events.iter().find(|name| !EVENT_TYPES.contains(&name.as_str()))
        {
            return Err(WebhookConfigError::UnknownEventType { url: log_url, name: name.clone() });
        }
        Ok(Self { uri, log_url, secret: config.secret.clone(), events: config.events.clone() })
    }

    pub(super) fn wants(&self, event_type: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|wanted| wanted == event_type)
    }
}
