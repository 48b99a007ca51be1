//! Webhook deliveries to a real HTTP receiver on the loopback interface.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use bytes::Bytes;
use hyper::StatusCode;
use hyper::header::HeaderMap;
use rdv_admin_api::types::{Event, EventKind, LayoutName};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, broadcast, mpsc};

use super::delivery::unix_seconds;
use super::*;

const SECRET: &str = "a-test-secret-long-enough";
/// The longest a test waits for something that should happen.
const WAIT: Duration = Duration::from_secs(10);

/// A request as the test receiver saw it.
struct Received {
    event: Event,
    headers: HeaderMap,
    body: Bytes,
    /// 1 for a delivery's first attempt, 2 for its second...
    attempt: u32,
    answered: StatusCode,
}

impl Received {
    fn participant(&self) -> u64 {
        participant(&self.event)
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or_default()
    }
}

/// What the receiver answers to an event's `attempt`-th request.
type Answer = dyn Fn(&Event, u32) -> StatusCode + Send + Sync;

struct ReceiverState {
    received: mpsc::UnboundedSender<Received>,
    /// Requests seen, by delivery id.
    attempts: Mutex<HashMap<String, u32>>,
    answer: Box<Answer>,
    /// Rooms whose requests are held until the test hands out a permit.
    gates: HashMap<String, Arc<Semaphore>>,
}

/// An HTTP server on 127.0.0.1 recording every webhook request.
struct TestReceiver {
    url: String,
    received: mpsc::UnboundedReceiver<Received>,
    gates: HashMap<String, Arc<Semaphore>>,
}

impl TestReceiver {
    async fn start(
        answer: impl Fn(&Event, u32) -> StatusCode + Send + Sync + 'static,
        held_rooms: &[&str],
    ) -> Self {
        let gates: HashMap<String, Arc<Semaphore>> = held_rooms
            .iter()
            .map(|room| ((*room).to_owned(), Arc::new(Semaphore::new(0))))
            .collect();
        let (sender, received) = mpsc::unbounded_channel();
        let state = Arc::new(ReceiverState {
            received: sender,
            attempts: Mutex::new(HashMap::new()),
            answer: Box::new(answer),
            gates: gates.clone(),
        });
        let app = Router::new().route("/hook", post(receive)).with_state(state);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        // The query string is part of the URL a receiver may check; it must reach it.
        Self { url: format!("http://{address}/hook?token=abc"), received, gates }
    }

    fn answering_ok() -> impl Fn(&Event, u32) -> StatusCode + Send + Sync + 'static {
        |_: &Event, _: u32| StatusCode::OK
    }

    /// The next request, waiting at most [`WAIT`] for it.
    async fn next(&mut self) -> Received {
        tokio::time::timeout(WAIT, self.received.recv())
            .await
            .expect("no webhook request came in time")
            .expect("the receiver stopped")
    }

    /// Lets `permits` held requests of `room` be answered.
    fn release(&self, room: &str, permits: usize) {
        self.gates[room].add_permits(permits);
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let event: Event = serde_json::from_slice(&body).expect("the body is an event");
    let delivery = headers
        .get(DELIVERY_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let attempt = {
        let mut attempts = state.attempts.lock().unwrap();
        let count = attempts.entry(delivery).or_default();
        *count += 1;
        *count
    };
    let answered = (state.answer)(&event, attempt);
    let gate = state.gates.get(&event.room).cloned();
    let _ = state.received.send(Received { event, headers, body, attempt, answered });
    if let Some(gate) = gate {
        gate.acquire().await.expect("the gate stays open").forget();
    }
    answered
}

fn joined(room: &str, participant: u64) -> Event {
    Event {
        room: room.to_owned(),
        at_ms: 1_700_000_000_000 + participant,
        kind: EventKind::Joined { participant, account: "a".repeat(40), device: "d".repeat(40) },
    }
}

fn left(room: &str, participant: u64) -> Event {
    Event {
        room: room.to_owned(),
        at_ms: 1_700_000_000_000 + participant,
        kind: EventKind::Left { participant, account: "a".repeat(40), seconds: 5 },
    }
}

fn participant(event: &Event) -> u64 {
    match event.kind {
        EventKind::Joined { participant, .. } | EventKind::Left { participant, .. } => participant,
        _ => panic!("the tests send only joined and left events"),
    }
}

fn config(url: &str, events: &[&str]) -> WebhookConfig {
    WebhookConfig {
        url: url.to_owned(),
        secret: SECRET.to_owned(),
        events: events.iter().map(|name| (*name).to_owned()).collect(),
    }
}

/// Quick retries, and a long attempt timeout so held requests are not retried.
fn quick_retries() -> DeliverySettings {
    DeliverySettings {
        max_attempts: 5,
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        attempt_timeout: Duration::from_secs(30),
        queue_capacity: 16,
        idle_after: Duration::from_secs(60),
    }
}

fn start(
    configs: &[WebhookConfig],
    settings: DeliverySettings,
) -> (broadcast::Sender<Event>, Webhooks) {
    let (events, receiver) = broadcast::channel(64);
    let webhooks = Webhooks::spawn_with_settings(configs, settings, receiver).unwrap();
    (events, webhooks)
}

#[test]
fn signature_matches_an_independent_hmac() {
    // Python: hmac.new(b"0123456789abcdef0123", b'1700000000.{"hello":"world"}', "sha256")
    let body = br#"{"hello":"world"}"#;
    let expected = "sha256=cc967301383e0dc62eca4d275a4a380bd1fb8f3f93f49eb3c1d992e3a101197d";
    assert_eq!(signature("0123456789abcdef0123", 1_700_000_000, body), expected);
    assert!(verify_signature("0123456789abcdef0123", 1_700_000_000, body, expected));
    assert!(!verify_signature("0123456789abcdef0123", 1_700_000_001, body, expected));
    assert!(!verify_signature("0123456789abcdef0124", 1_700_000_000, body, expected));
    assert!(!verify_signature("0123456789abcdef0123", 1_700_000_000, b"{}", expected));
    assert!(!verify_signature("0123456789abcdef0123", 1_700_000_000, body, &expected[7..]));
    assert!(!verify_signature("0123456789abcdef0123", 1_700_000_000, body, "sha256=zz"));
}

#[test]
fn config_validation_explains_what_is_wrong() {
    assert_eq!(config("http://127.0.0.1:9000/hook?token=x", &[]).validate(), Ok(()));
    assert_eq!(config("https://hooks.example.com/rdv", &["joined", "left"]).validate(), Ok(()));
    assert!(matches!(
        config("ftp://example.com/", &[]).validate(),
        Err(WebhookConfigError::UnsupportedScheme { .. })
    ));
    assert!(matches!(
        config("/relative/path", &[]).validate(),
        Err(WebhookConfigError::UnsupportedScheme { .. })
    ));
    assert!(matches!(
        config("http://exa mple.com/", &[]).validate(),
        Err(WebhookConfigError::InvalidUrl { .. })
    ));
    assert_eq!(
        config("https://user:pass@example.com/hook?token=x", &[]).validate(),
        Err(WebhookConfigError::CredentialsInUrl { url: "https://example.com/hook".into() })
    );
    let short = WebhookConfig { secret: "short".into(), ..config("http://h:81/p?token=x", &[]) };
    let error = short.validate().unwrap_err();
    assert_eq!(error, WebhookConfigError::SecretTooShort { url: "http://h:81/p".into(), chars: 5 });
    assert!(!error.to_string().contains("token"), "{error}");
    let unknown = config("http://h/p", &["joined", "kicked"]).validate().unwrap_err();
    assert_eq!(
        unknown,
        WebhookConfigError::UnknownEventType { url: "http://h/p".into(), name: "kicked".into() }
    );
    assert!(unknown.to_string().contains("hand_raised"), "{unknown}");
}

#[test]
fn config_refuses_unknown_fields_and_hides_its_secret() {
    let parsed: WebhookConfig =
        serde_json::from_value(serde_json::json!({"url": "http://h/", "secret": SECRET})).unwrap();
    assert!(parsed.events.is_empty());
    let typo = serde_json::json!({"url": "http://h/", "secret": SECRET, "event": ["left"]});
    assert!(serde_json::from_value::<WebhookConfig>(typo).is_err());
    assert!(!format!("{parsed:?}").contains(SECRET));
}

#[test]
fn event_types_name_every_kind() {
    let every_kind = [
        EventKind::Joined { participant: 1, account: "a".into(), device: "d".into() },
        EventKind::Left { participant: 1, account: "a".into(), seconds: 3 },
        EventKind::Muted { participant: 1, audio: true, muted: true, by_moderator: false },
        EventKind::HandRaised { participant: 1, raised: true },
        EventKind::LayoutChanged { layout: LayoutName::Grid, active: None },
        EventKind::VoiceActivity { participant: 1, speaking: true },
        EventKind::CallRefused { account: "a".into(), reason: "locked".into() },
        EventKind::CallFailed { account: "a".into(), reason: "ice".into() },
        EventKind::Lobby { participant: 1, waiting: true },
        EventKind::Hold { participant: 1, on_hold: true },
        EventKind::Chat { participant: 1, account: "a".into(), text: "hi".into() },
        EventKind::PlaybackFinished {
            playback: 3,
            file: "a.wav".into(),
            outcome: rdv_admin_api::types::PlaybackOutcome::Finished,
            error: None,
        },
        EventKind::RecordingFinished {
            file: "/r/lobby.ogg".into(),
            duration_ms: Some(4000),
            outcome: rdv_admin_api::types::RecordingOutcome::Stopped,
            error: None,
        },
    ];
    for kind in &every_kind {
        // No wildcard: a new kind fails to compile here until it is listed above.
        match kind {
            EventKind::Joined { .. }
            | EventKind::Left { .. }
            | EventKind::Muted { .. }
            | EventKind::HandRaised { .. }
            | EventKind::LayoutChanged { .. }
            | EventKind::VoiceActivity { .. }
            | EventKind::CallRefused { .. }
            | EventKind::CallFailed { .. }
            | EventKind::Lobby { .. }
            | EventKind::Hold { .. }
            | EventKind::Chat { .. }
            | EventKind::PlaybackFinished { .. }
            | EventKind::RecordingFinished { .. } => {}
        }
        assert!(EVENT_TYPES.contains(&kind.name()), "{} is not in EVENT_TYPES", kind.name());
    }
    assert_eq!(EVENT_TYPES.len(), every_kind.len());
}

#[test]
fn backoff_doubles_up_to_its_cap() {
    let settings = DeliverySettings::default();
    let waits: Vec<u64> =
        (1..=9).map(|failed| settings.backoff(failed).as_millis() as u64).collect();
    assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    assert_eq!(settings.backoff(u32::MAX), Duration::from_secs(30));
}

#[tokio::test]
async fn delivers_a_signed_event_with_its_headers() {
    let mut receiver = TestReceiver::start(TestReceiver::answering_ok(), &[]).await;
    let (events, webhooks) = start(&[config(&receiver.url, &[])], quick_retries());
    let sent = joined("alpha", 7);
    events.send(sent.clone()).unwrap();

    let request = receiver.next().await;
    assert_eq!(request.event, sent);
    assert_eq!(request.header("content-type"), "application/json");
    assert_eq!(request.header(EVENT_HEADER), "joined");
    assert!(request.header("user-agent").starts_with("rdv/"));
    let delivery = request.header(DELIVERY_HEADER);
    assert_eq!(delivery.len(), 32, "{delivery}");
    assert!(delivery.chars().all(|c| c.is_ascii_hexdigit()), "{delivery}");
    let timestamp: u64 = request.header(TIMESTAMP_HEADER).parse().unwrap();
    assert!(timestamp.abs_diff(unix_seconds()) < 300, "{timestamp}");
    let signed = request.header(SIGNATURE_HEADER);
    assert_eq!(signed, signature(SECRET, timestamp, &request.body));
    assert!(verify_signature(SECRET, timestamp, &request.body, signed));
    let json: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(json["kind"]["type"], "joined");
    assert_eq!(json["room"], "alpha");

    assert_eq!(webhooks.shutdown(WAIT).await, 0);
}

#[tokio::test]
async fn retries_keep_a_rooms_order() {
    // Event 1 fails twice with 500, event 2 once with 429, event 3 once with 408.
    let answer = |event: &Event, attempt: u32| match (participant(event), attempt) {
        (1, 1 | 2) => StatusCode::INTERNAL_SERVER_ERROR,
        (2, 1) => StatusCode::TOO_MANY_REQUESTS,
        (3, 1) => StatusCode::REQUEST_TIMEOUT,
        _ => StatusCode::NO_CONTENT,
    };
    let mut receiver = TestReceiver::start(answer, &[]).await;
    let (events, webhooks) = start(&[config(&receiver.url, &[])], quick_retries());
    for participant in 1..=3 {
        events.send(joined("alpha", participant)).unwrap();
    }

    let mut seen = Vec::new();
    let mut deliveries: HashMap<u64, Vec<String>> = HashMap::new();
    for _ in 0..7 {
        let request = receiver.next().await;
        deliveries
            .entry(request.participant())
            .or_default()
            .push(request.header(DELIVERY_HEADER).to_owned());
        seen.push((request.participant(), request.attempt, request.answered.as_u16()));
    }
    assert_eq!(
        seen,
        [(1, 1, 500), (1, 2, 500), (1, 3, 204), (2, 1, 429), (2, 2, 204), (3, 1, 408), (3, 2, 204)]
    );
    for ids in deliveries.values() {
        assert!(ids.iter().all(|id| id == &ids[0]), "a delivery keeps its id: {ids:?}");
    }
    assert_eq!(webhooks.shutdown(WAIT).await, 0);
}

#[tokio::test]
async fn a_slow_room_does_not_hold_up_another() {
    let mut receiver = TestReceiver::start(TestReceiver::answering_ok(), &["slow"]).await;
    let (events, webhooks) = start(&[config(&receiver.url, &[])], quick_retries());
    events.send(joined("slow", 1)).unwrap();
    events.send(joined("fast", 1)).unwrap();
    events.send(joined("slow", 2)).unwrap();
    events.send(joined("fast", 2)).unwrap();
    events.send(joined("fast", 3)).unwrap();

    // The slow room's first request is held: the fast room's three still come through.
    let mut fast = Vec::new();
    let mut slow = Vec::new();
    while fast.len() < 3 {
        let request = receiver.next().await;
        match request.event.room.as_str() {
            "fast" => fast.push(request.participant()),
            _ => slow.push(request.participant()),
        }
    }
    assert_eq!(fast, [1, 2, 3]);
    assert!(slow.len() <= 1, "the slow room's second event waits for its first: {slow:?}");

    receiver.release("slow", 2);
    while slow.len() < 2 {
        let request = receiver.next().await;
        assert_eq!(request.event.room, "slow");
        slow.push(request.participant());
    }
    assert_eq!(slow, [1, 2]);
    assert_eq!(webhooks.shutdown(WAIT).await, 0);
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    let answer = |event: &Event, _: u32| match participant(event) {
        1 => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    let mut receiver = TestReceiver::start(answer, &[]).await;
    let (events, webhooks) = start(&[config(&receiver.url, &[])], quick_retries());
    events.send(joined("alpha", 1)).unwrap();
    events.send(joined("alpha", 2)).unwrap();

    // In order: had event 1 been retried, its second attempt would come before event 2.
    let first = receiver.next().await;
    assert_eq!(
        (first.participant(), first.attempt, first.answered),
        (1, 1, StatusCode::BAD_REQUEST)
    );
    let second = receiver.next().await;
    assert_eq!((second.participant(), second.attempt), (2, 1));
    assert_eq!(webhooks.shutdown(WAIT).await, 0);
    assert!(receiver.received.try_recv().is_err(), "nothing more was sent");
}

#[tokio::test]
async fn the_event_filter_applies() {
    let mut receiver = TestReceiver::start(TestReceiver::answering_ok(), &[]).await;
    let (events, webhooks) = start(&[config(&receiver.url, &["left"])], quick_retries());
    events.send(joined("alpha", 1)).unwrap();
    events.send(left("alpha", 2)).unwrap();
    events.send(joined("alpha", 3)).unwrap();
    events.send(left("alpha", 4)).unwrap();

    // In order: a delivered `joined` would come before the `left` that followed it.
    for expected in [2, 4] {
        let request = receiver.next().await;
        assert_eq!(request.header(EVENT_HEADER), "left");
        assert_eq!(request.participant(), expected);
    }
    assert_eq!(webhooks.shutdown(WAIT).await, 0);
    assert!(receiver.received.try_recv().is_err(), "nothing more was sent");
}

#[tokio::test]
async fn a_full_queue_drops_the_event() {
    let mut receiver = TestReceiver::start(TestReceiver::answering_ok(), &["alpha"]).await;
    let settings = DeliverySettings { queue_capacity: 1, ..quick_retries() };
    let (events, webhooks) = start(&[config(&receiver.url, &[])], settings);
    events.send(joined("alpha", 1)).unwrap();
    assert_eq!(receiver.next().await.participant(), 1);

    // Event 1 is held at the receiver: 2 fills the queue and 3 finds it full.
    events.send(joined("alpha", 2)).unwrap();
    events.send(joined("alpha", 3)).unwrap();
    events.send(joined("beta", 1)).unwrap();
    // The dispatcher has handled 2 and 3 once it hands over beta's event.
    assert_eq!(receiver.next().await.event.room, "beta");
    receiver.release("alpha", 10);
    assert_eq!(receiver.next().await.participant(), 2);
    events.send(joined("alpha", 4)).unwrap();
    assert_eq!(receiver.next().await.participant(), 4);
    assert_eq!(webhooks.shutdown(WAIT).await, 0);
}

#[tokio::test]
async fn shutdown_waits_for_queued_deliveries() {
    let mut receiver = TestReceiver::start(TestReceiver::answering_ok(), &["alpha"]).await;
    let (events, webhooks) = start(&[config(&receiver.url, &[])], quick_retries());
    events.send(joined("alpha", 1)).unwrap();
    events.send(joined("alpha", 2)).unwrap();
    events.send(joined("beta", 1)).unwrap();
    // Once beta's event arrives, the dispatcher has queued alpha's two.
    let mut rooms = [receiver.next().await.event.room, receiver.next().await.event.room];
    rooms.sort();
    assert_eq!(rooms, ["alpha", "beta"]);

    let shutdown = tokio::spawn(webhooks.shutdown(WAIT));
    receiver.release("alpha", 2);
    assert_eq!(receiver.next().await.participant(), 2);
    assert_eq!(shutdown.await.unwrap(), 0);
    assert_eq!(events.receiver_count(), 0, "no longer taking events");
}

#[tokio::test]
async fn shutdown_abandons_what_the_grace_period_does_not_cover() {
    let mut receiver = TestReceiver::start(TestReceiver::answering_ok(), &["alpha"]).await;
    let (events, webhooks) = start(&[config(&receiver.url, &[])], quick_retries());
    events.send(joined("alpha", 1)).unwrap();
    events.send(joined("alpha", 2)).unwrap();
    events.send(joined("beta", 1)).unwrap();
    // Once beta's event arrives, the dispatcher has queued alpha's two.
    let mut rooms = [receiver.next().await.event.room, receiver.next().await.event.room];
    rooms.sort();
    assert_eq!(rooms, ["alpha", "beta"]);

    // Event 1 is held at the receiver and event 2 waits behind it.
    assert_eq!(webhooks.shutdown(Duration::from_millis(50)).await, 2);
}

#[tokio::test]
async fn a_closed_event_source_still_delivers_what_is_queued() {
    let mut receiver = TestReceiver::start(TestReceiver::answering_ok(), &["alpha"]).await;
    let (events, webhooks) = start(&[config(&receiver.url, &[])], quick_retries());
    events.send(joined("alpha", 1)).unwrap();
    events.send(joined("alpha", 2)).unwrap();
    drop(events);
    assert_eq!(receiver.next().await.participant(), 1);
    receiver.release("alpha", 2);
    assert_eq!(receiver.next().await.participant(), 2);
    assert_eq!(webhooks.shutdown(WAIT).await, 0);
}

#[tokio::test]
async fn a_lagging_reader_goes_on_with_the_newest_events() {
    let mut receiver = TestReceiver::start(TestReceiver::answering_ok(), &[]).await;
    let (events, reader) = broadcast::channel(2);
    for participant in 1..=5 {
        events.send(joined("alpha", participant)).unwrap();
    }
    let webhooks =
        Webhooks::spawn_with_settings(&[config(&receiver.url, &[])], quick_retries(), reader)
            .unwrap();
    assert_eq!(receiver.next().await.participant(), 4);
    assert_eq!(receiver.next().await.participant(), 5);
    events.send(joined("alpha", 6)).unwrap();
    assert_eq!(receiver.next().await.participant(), 6);
    assert_eq!(webhooks.shutdown(WAIT).await, 0);
}

#[tokio::test]
async fn an_idle_queue_restarts_in_order() {
    let mut receiver = TestReceiver::start(TestReceiver::answering_ok(), &[]).await;
    let settings = DeliverySettings { idle_after: Duration::from_millis(10), ..quick_retries() };
    let (events, webhooks) = start(&[config(&receiver.url, &[])], settings);
    events.send(joined("alpha", 1)).unwrap();
    assert_eq!(receiver.next().await.participant(), 1);
    // Long enough for the queue to be swept away; the test holds either way.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for participant in 2..=4 {
        events.send(joined("alpha", participant)).unwrap();
    }
    for participant in 2..=4 {
        assert_eq!(receiver.next().await.participant(), participant);
    }
    assert_eq!(webhooks.shutdown(WAIT).await, 0);
}

#[tokio::test]
async fn every_webhook_gets_its_own_copy() {
    let mut first = TestReceiver::start(TestReceiver::answering_ok(), &[]).await;
    let mut second = TestReceiver::start(TestReceiver::answering_ok(), &[]).await;
    let configs = [config(&first.url, &[]), config(&second.url, &["joined"])];
    let (events, webhooks) = start(&configs, quick_retries());
    events.send(joined("alpha", 1)).unwrap();
    let (one, two) = (first.next().await, second.next().await);
    assert_eq!((one.participant(), two.participant()), (1, 1));
    assert_ne!(one.header(DELIVERY_HEADER), two.header(DELIVERY_HEADER));
    assert_eq!(webhooks.shutdown(WAIT).await, 0);
}

#[tokio::test]
async fn an_https_webhook_speaks_tls_and_gives_up_after_its_attempts() {
    // A plain TCP server: it records the first byte of each connection and hangs up.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (first_bytes, mut connections) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let first = stream.read_u8().await.ok();
            let _ = first_bytes.send(first);
        }
    });
    let settings = DeliverySettings { max_attempts: 3, ..quick_retries() };
    let (events, webhooks) = start(&[config(&format!("https://{address}/hook"), &[])], settings);
    events.send(joined("alpha", 1)).unwrap();
    drop(events);

    let mut seen = Vec::new();
    for _ in 0..3 {
        let first = tokio::time::timeout(WAIT, connections.recv()).await.unwrap().unwrap();
        seen.push(first);
    }
    // The closed source lets the dispatcher end once the delivery is given up on.
    assert_eq!(webhooks.shutdown(WAIT).await, 0);
    assert!(connections.try_recv().is_err(), "no fourth attempt");
    // 0x16: a TLS handshake record (the ClientHello).
    assert_eq!(seen, [Some(0x16); 3]);
}
