//! Delivering events: one queue and worker per (webhook, room), in order, with retries.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER, USER_AGENT};
use hyper::{Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rdv_admin_api::types::Event;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::config::{DeliverySettings, Target, WebhookConfig, WebhooksError};
use super::signature::signature;
use super::{DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// How much of a receiver's answer body is read (and thrown away) before the connection is
/// given back to the pool.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// How long an unused connection to a receiver is kept open.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The shortest period between two sweeps of idle queues.
const MIN_SWEEP_PERIOD: Duration = Duration::from_millis(10);

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

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

pub(super) fn unix_seconds() -> u64 {
    u64::try_from(crate::clock::unix_now()).unwrap_or(0)
}
