//! Webhooks: every room event POSTed, signed, to the URLs the operator configured.
//!
//! Each event goes out as `POST <url>` with the event's JSON (the same as the admin API's
//! event streams) as the body. Deliveries to one webhook for one room are made in order: a
//! room's next event waits until the previous one was accepted (any 2xx answer) or given up
//! on. Rooms do not wait for one another: each (webhook, room) pair has its own bounded queue
//! and worker task, started on the pair's first event and stopped once it has been idle for
//! a while.
//!
//! Failed attempts (no connection, no answer within the attempt timeout, 5xx, 408 or 429) are
//! retried with exponential backoff; any other answer outside 2xx is final. See
//! [`DeliverySettings`] for the numbers and [`signature`] for how a receiver checks that a
//! request came from this server.

use std::collections::HashMap;
use std::fmt;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER, USER_AGENT};
use hyper::{Request, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rdv_admin_api::types::Event;
use serde::Deserialize;
use sha2::Sha256;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tracing::{debug, warn};

#[cfg(test)]
mod tests;

/// The fewest characters a webhook secret may have.
pub const MIN_SECRET_CHARS: usize = 16;

/// Every event type a webhook's `events` filter may name (the JSON `type` of the event's
/// `kind`).
pub const EVENT_TYPES: &[&str] = &[
    "joined",
    "left",
    "muted",
    "hand_raised",
    "layout_changed",
    "voice_activity",
    "call_refused",
    "call_failed",
    "lobby",
];

/// Header carrying the event's type, e.g. `joined`.
pub const EVENT_HEADER: &str = "x-rdv-event";
/// Header carrying the delivery's unique id, the same on every attempt of one delivery.
pub const DELIVERY_HEADER: &str = "x-rdv-delivery";
/// Header carrying the attempt's time, Unix seconds, as signed.
pub const TIMESTAMP_HEADER: &str = "x-rdv-timestamp";
/// Header carrying the attempt's signature, `sha256=<hex>` (see [`signature`]).
pub const SIGNATURE_HEADER: &str = "x-rdv-signature";

/// How much of a receiver's answer body is read (and thrown away) before the connection is
/// given back to the pool.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// How long an unused connection to a receiver is kept open.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The shortest period between two sweeps of idle queues.
const MIN_SWEEP_PERIOD: Duration = Duration::from_millis(10);

type HmacSha256 = Hmac<Sha256>;
type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

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
    fn backoff(&self, failed_attempts: u32) -> Duration {
        let doublings = failed_attempts.saturating_sub(1);
        let factor = 1u32.checked_shl(doublings).unwrap_or(u32::MAX);
        self.first_backoff.checked_mul(factor).unwrap_or(self.max_backoff).min(self.max_backoff)
    }
}

/// The HMAC-SHA256 signature of one request, as sent in the `X-Rdv-Signature` header:
/// `sha256=` followed by the lower-case hex of HMAC-SHA256(`secret`, `"<timestamp>.<body>"`).
///
/// To check a request, a receiver:
/// 1. reads the raw body bytes (before any JSON parsing) and the `X-Rdv-Timestamp` header;
/// 2. refuses the request if that timestamp is more than a few minutes away from its own
///    clock (this stops replays; each retry is signed anew with a fresh timestamp);
/// 3. computes HMAC-SHA256 with the shared secret as the key over the timestamp's decimal
///    digits, a `.`, then the body, and hex-encodes it in lower case;
/// 4. compares `sha256=<that hex>` with `X-Rdv-Signature` in constant time (see
///    [`verify_signature`]).
///
/// In Python: `"sha256=" + hmac.new(secret, f"{ts}.".encode() + body, "sha256").hexdigest()`.
pub fn signature(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let mac = signing_mac(secret, timestamp, body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `header` (an `X-Rdv-Signature` value) is the signature of `timestamp` and `body`
/// under `secret`, compared in constant time. The timestamp's freshness is the caller's to
/// check.
pub fn verify_signature(secret: &str, timestamp: u64, body: &[u8], header: &str) -> bool {
    let Some(hex_digest) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(digest) = hex::decode(hex_digest) else {
        return false;
    };
    signing_mac(secret, timestamp, body).verify_slice(&digest).is_ok()
}

/// The MAC of `"<timestamp>.<body>"` under `secret`, not yet finalised.
fn signing_mac(secret: &str, timestamp: u64, body: &[u8]) -> HmacSha256 {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The running webhook deliveries. Dropping it stops them at once, abandoning what is
/// queued; [`Webhooks::shutdown`] gives them time to finish.
#[derive(Debug)]
pub struct Webhooks {
    stop: oneshot::Sender<Duration>,
    task: JoinHandle<usize>,
}

impl Webhooks {
    /// Starts delivering `events` to every webhook of `configs`, with the default
    /// [`DeliverySettings`]. Must be called inside a Tokio runtime.
    pub fn spawn(
        configs: &[WebhookConfig],
        events: broadcast::Receiver<Event>,
    ) -> Result<Self, WebhooksError> {
        Self::spawn_with_settings(configs, DeliverySettings::default(), events)
    }

    /// Starts delivering `events` to every webhook of `configs`. Must be called inside a
    /// Tokio runtime.
    pub fn spawn_with_settings(
        configs: &[WebhookConfig],
        settings: DeliverySettings,
        events: broadcast::Receiver<Event>,
    ) -> Result<Self, WebhooksError> {
        let targets = configs
            .iter()
            .map(|config| Target::new(config).map(Arc::new))
            .collect::<Result<_, _>>()?;
        let dispatcher = Dispatcher {
            client: http_client(&settings)?,
            targets,
            settings: Arc::new(settings),
            queues: HashMap::new(),
            workers: JoinSet::new(),
        };
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(dispatcher.run(events, stopped));
        Ok(Self { stop, task })
    }

    /// Stops taking events (those not yet read from the receiver are not delivered) and
    /// waits up to `grace` for the queued deliveries, retries included, to finish; what is
    /// left then is abandoned. Returns how many events were abandoned, over all webhooks.
    pub async fn shutdown(self, grace: Duration) -> usize {
        // The dispatcher may have ended already (its event source closed and everything was
        // delivered): then the send fails and the join returns at once.
        let _ = self.stop.send(grace);
        match self.task.await {
            Ok(abandoned) => abandoned,
            Err(error) => {
                warn!(%error, "the webhook dispatcher failed");
                0
            }
        }
    }
}

/// A validated webhook.
struct Target {
    uri: Uri,
    /// The URL without credentials or query string (which may hold a token), for logs.
    log_url: String,
    secret: String,
    /// Event types to deliver; empty for all.
    events: Vec<String>,
}

impl Target {
    fn new(config: &WebhookConfig) -> Result<Self, WebhookConfigError> {
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

    fn wants(&self, event_type: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|wanted| wanted == event_type)
    }
}

/// The HTTP(S) client: rustls with the ring provider and the Mozilla (webpki) roots.
fn http_client(settings: &DeliverySettings) -> Result<HttpClient, rustls::Error> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(settings.attempt_timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build(https))
}

/// One event on its way to one webhook.
struct Job {
    body: Bytes,
    event_type: &'static str,
    room: String,
    delivery_id: String,
}

/// The queue of one (webhook, room) pair.
struct Queue {
    jobs: mpsc::Sender<Job>,
    /// Jobs queued or being delivered: the worker counts one down when it is done with it.
    pending: Arc<AtomicUsize>,
    last_used: Instant,
}

/// Reads the events and hands them to the (webhook, room) queues.
struct Dispatcher {
    client: HttpClient,
    targets: Vec<Arc<Target>>,
    settings: Arc<DeliverySettings>,
    /// By webhook index and lower-cased room name (room names are unique regardless of case).
    queues: HashMap<(usize, String), Queue>,
    workers: JoinSet<()>,
}

impl Dispatcher {
    /// Runs until stopped or until the event source closes, then finishes the queues.
    /// Returns how many events were abandoned.
    async fn run(
        mut self,
        mut events: broadcast::Receiver<Event>,
        mut stop: oneshot::Receiver<Duration>,
    ) -> usize {
        let sweep_period = self.settings.idle_after.max(MIN_SWEEP_PERIOD);
        let mut sweep = tokio::time::interval_at(Instant::now() + sweep_period, sweep_period);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let grace = loop {
            tokio::select! {
                biased;
                // A dropped handle stops everything at once.
                grace = &mut stop => break Some(grace.unwrap_or(Duration::ZERO)),
                received = events.recv() => match received {
                    Ok(event) => self.dispatch(&event),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        warn!(missed, "webhooks fell behind the room events; {missed} events were not delivered");
                    }
                    Err(broadcast::error::RecvError::Closed) => break None,
                },
                _ = sweep.tick() => self.sweep_idle(),
            }
        };
        drop(events);
        self.finish(grace, stop).await
    }

    /// Queues `event` for every webhook that wants it.
    fn dispatch(&mut self, event: &Event) {
        let event_type = event.kind.name();
        let body = match serde_json::to_vec(event) {
            Ok(body) => Bytes::from(body),
            Err(error) => {
                warn!(%error, room = %event.room, event = event_type, "cannot encode an event for webhooks");
                return;
            }
        };
        let room_key = event.room.to_lowercase();
        for (index, target) in self.targets.iter().enumerate() {
            if !target.wants(event_type) {
                continue;
            }
            let queue = self.queues.entry((index, room_key.clone())).or_insert_with(|| {
                let (jobs, queued) = mpsc::channel(self.settings.queue_capacity.max(1));
                let pending = Arc::new(AtomicUsize::new(0));
                let worker = Worker {
                    client: self.client.clone(),
                    target: Arc::clone(target),
                    settings: Arc::clone(&self.settings),
                };
                self.workers.spawn(worker.run(queued, Arc::clone(&pending)));
                Queue { jobs, pending, last_used: Instant::now() }
            });
            let job = Job {
                body: body.clone(),
                event_type,
                room: event.room.clone(),
                delivery_id: hex::encode(rand::random::<[u8; 16]>()),
            };
            // Counted before it is sent, so the worker can never count it down first.
            queue.pending.fetch_add(1, Ordering::AcqRel);
            queue.last_used = Instant::now();
            if queue.jobs.try_send(job).is_err() {
                queue.pending.fetch_sub(1, Ordering::AcqRel);
                warn!(
                    url = %target.log_url,
                    room = %event.room,
                    event = event_type,
                    "webhook queue is full; event dropped"
                );
            }
        }
    }

    /// Stops the queues that have had nothing to do for `idle_after`, and collects the
    /// workers that have ended.
    fn sweep_idle(&mut self) {
        let idle_after = self.settings.idle_after;
        // Only this task adds to `pending`: once it reads 0, the worker has nothing queued
        // or in flight, and dropping the sender ends it without reordering anything.
        self.queues.retain(|_, queue| {
            queue.pending.load(Ordering::Acquire) > 0 || queue.last_used.elapsed() < idle_after
        });
        while let Some(ended) = self.workers.try_join_next() {
            log_worker_failure(ended);
        }
    }

    /// Closes the queues and lets the workers deliver what they hold: until they are done if
    /// the event source closed (unless a stop comes), for at most `grace` if stopped.
    async fn finish(mut self, grace: Option<Duration>, stop: oneshot::Receiver<Duration>) -> usize {
        let pending: Vec<Arc<AtomicUsize>> =
            self.queues.drain().map(|(_, queue)| queue.pending).collect();
        let workers = &mut self.workers;
        let finished = {
            let mut all_done = pin!(join_all(workers));
            match grace {
                Some(grace) => tokio::time::timeout(grace, &mut all_done).await.is_ok(),
                None => tokio::select! {
                    () = &mut all_done => true,
                    grace = stop => {
                        let grace = grace.unwrap_or(Duration::ZERO);
                        tokio::time::timeout(grace, &mut all_done).await.is_ok()
                    }
                },
            }
        };
        if finished {
            return 0;
        }
        let abandoned = pending.iter().map(|count| count.load(Ordering::Acquire)).sum();
        self.workers.shutdown().await;
        if abandoned > 0 {
            warn!(abandoned, "webhooks stopped with events still undelivered");
        }
        abandoned
    }
}

/// Waits for every worker to end.
async fn join_all(workers: &mut JoinSet<()>) {
    while let Some(ended) = workers.join_next().await {
        log_worker_failure(ended);
    }
}

fn log_worker_failure(ended: Result<(), tokio::task::JoinError>) {
    if let Err(error) = ended
        && error.is_panic()
    {
        warn!(%error, "a webhook worker panicked");
    }
}

/// What one attempt came to.
enum Attempt {
    /// A 2xx answer.
    Delivered(StatusCode),
    /// An answer that retrying will not change.
    Refused(String),
    /// Worth another try, after at least `retry_after` if the receiver said so.
    Failed { reason: String, retry_after: Option<Duration> },
}

/// Delivers one (webhook, room) queue, in order.
struct Worker {
    client: HttpClient,
    target: Arc<Target>,
    settings: Arc<DeliverySettings>,
}

impl Worker {
    async fn run(self, mut jobs: mpsc::Receiver<Job>, pending: Arc<AtomicUsize>) {
        while let Some(job) = jobs.recv().await {
            self.deliver(&job).await;
            pending.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Delivers `job`, retrying as the settings say, until it is accepted or given up on.
    async fn deliver(&self, job: &Job) {
        let max_attempts = self.settings.max_attempts.max(1);
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.attempt(job).await {
                Attempt::Delivered(status) => {
                    debug!(
                        url = %self.target.log_url,
                        room = %job.room,
                        event = job.event_type,
                        delivery = %job.delivery_id,
                        status = status.as_u16(),
                        attempts,
                        "webhook delivered"
                    );
                    return;
                }
                Attempt::Refused(reason) => {
                    warn!(
                        url = %self.target.log_url,
                        room = %job.room,
                        event = job.event_type,
                        delivery = %job.delivery_id,
                        attempts,
                        "webhook refused the event ({reason}); not retried"
                    );
                    return;
                }
                Attempt::Failed { reason, retry_after } => {
                    if attempts >= max_attempts {
                        warn!(
                            url = %self.target.log_url,
                            room = %job.room,
                            event = job.event_type,
                            delivery = %job.delivery_id,
                            attempts,
                            "webhook delivery failed ({reason}); giving up"
                        );
                        return;
                    }
                    let wait = self
                        .settings
                        .backoff(attempts)
                        .max(retry_after.unwrap_or_default())
                        .min(self.settings.max_backoff);
                    debug!(
                        url = %self.target.log_url,
                        room = %job.room,
                        event = job.event_type,
                        attempts,
                        ?wait,
                        "webhook attempt failed ({reason}); will retry"
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// One signed POST of `job`.
    async fn attempt(&self, job: &Job) -> Attempt {
        let timestamp = unix_seconds();
        let request = Request::post(self.target.uri.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("rdv/", env!("CARGO_PKG_VERSION")))
            .header(EVENT_HEADER, job.event_type)
            .header(DELIVERY_HEADER, job.delivery_id.as_str())
            .header(TIMESTAMP_HEADER, timestamp)
            .header(SIGNATURE_HEADER, signature(&self.target.secret, timestamp, &job.body))
            .body(Full::new(job.body.clone()));
        let request = match request {
            Ok(request) => request,
            Err(error) => return Attempt::Refused(format!("cannot build the request: {error}")),
        };
        let deadline = Instant::now() + self.settings.attempt_timeout;
        let response = match tokio::time::timeout_at(deadline, self.client.request(request)).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                return Attempt::Failed { reason: error_chain(&error), retry_after: None };
            }
            Err(_) => {
                let reason = format!("no answer within {:?}", self.settings.attempt_timeout);
                return Attempt::Failed { reason, retry_after: None };
            }
        };
        let status = response.status();
        let retry_after = retry_after(response.headers());
        // Read the answer (up to a limit) so the connection can serve the next request; its
        // content does not matter.
        let answer = Limited::new(response.into_body(), MAX_ANSWER_BYTES).collect();
        let _ = tokio::time::timeout_at(deadline, answer).await;
        if status.is_success() {
            Attempt::Delivered(status)
        } else if status.is_server_error()
            || status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS
        {
            Attempt::Failed { reason: format!("answered {status}"), retry_after }
        } else {
            Attempt::Refused(format!("answered {status}"))
        }
    }
}

/// A `Retry-After` given in seconds (the HTTP-date form is ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds = headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

/// An error and its causes, `: `-separated (hyper's own message alone says little).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

fn unix_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs())
}
