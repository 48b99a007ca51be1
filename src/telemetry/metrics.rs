//! Prometheus metrics: what the server counts as it runs, and the gauges read when scraped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

/// How a call attempt ended, as counted in `rdv_calls_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// Answered (200 OK to a new INVITE).
    Answered,
    /// Refused by the room's policy (banned, locked, full, not allowed).
    Refused,
    /// Failed: the device link could not be set up, or the INVITE was rejected.
    Failed,
}

impl CallOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Refused => "refused",
            Self::Failed => "failed",
        }
    }
}

/// The server's metrics. One per server, shared by every room.
pub struct Metrics {
    registry: Registry,
    calls: IntCounterVec,
    call_setup: Histogram,
    rtp_lost: IntCounter,
    rtp_jitter: Histogram,
    /// CPU time of mixers that have stopped, in nanoseconds; running ones are added at scrape.
    finished_mixer_cpu_ns: AtomicU64,
    mixer_cpu: Gauge,
    rooms: IntGauge,
    participants: IntGaugeVec,
    dht_nodes: IntGaugeVec,
    dht_values: IntGauge,
    dht_connected: IntGauge,
}

/// What the server is like now, read when the metrics are scraped.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Participants per served room.
    pub participants: Vec<(String, usize)>,
    /// CPU time of the mixers running now.
    pub running_mixer_cpu: Duration,
    /// Good DHT nodes known, IPv4 and IPv6.
    pub dht_nodes: (usize, usize),
    /// Values the DHT node stores for the network.
    pub dht_values: usize,
    /// Whether a DHT node answered us.
    pub dht_connected: bool,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("rdv".into()), None).unwrap_or_else(|_| Registry::new());
        let calls = IntCounterVec::new(
            Opts::new("calls_total", "Call attempts by outcome: answered, refused, failed"),
            &["outcome"],
        )
        .unwrap_or_else(|error| unreachable_metric(&error));
        let call_setup = Histogram::with_opts(
            HistogramOpts::new(
                "call_setup_seconds",
                "From a caller's verified connection request to its call answered",
            )
            .buckets(vec![0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0]),
        )
        .unwrap_or_else(|error| unreachable_metric(&error));
        let rtp_lost = IntCounter::new(
            "rtp_packets_lost_total",
            "RTP packets from callers that never arrived (from our reception reports)",
        )
        .unwrap_or_else(|error| unreachable_metric(&error));
        let rtp_jitter = Histogram::with_opts(
            HistogramOpts::new(
                "rtp_jitter_seconds",
                "Interarrival jitter of callers' RTP streams, at each reception report",
            )
            .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16]),
        )
        .unwrap_or_else(|error| unreachable_metric(&error));
        let mixer_cpu = Gauge::new(
            "mixer_cpu_seconds_total",
            "CPU time spent by the rooms' media threads (mixing, compositing calls)",
        )
        .unwrap_or_else(|error| unreachable_metric(&error));
        let rooms = IntGauge::new("rooms", "Rooms being served")
            .unwrap_or_else(|error| unreachable_metric(&error));
        let participants =
            IntGaugeVec::new(Opts::new("participants", "Participants per room"), &["room"])
                .unwrap_or_else(|error| unreachable_metric(&error));
        let dht_nodes = IntGaugeVec::new(
            Opts::new("dht_nodes", "Good nodes in the DHT routing table"),
            &["family"],
        )
        .unwrap_or_else(|error| unreachable_metric(&error));
        let dht_values = IntGauge::new("dht_stored_values", "Values stored for the network")
            .unwrap_or_else(|error| unreachable_metric(&error));
        let dht_connected = IntGauge::new("dht_connected", "1 once a DHT node answered us")
            .unwrap_or_else(|error| unreachable_metric(&error));
        let metrics = Self {
            registry,
            calls,
            call_setup,
            rtp_lost,
            rtp_jitter,
            finished_mixer_cpu_ns: AtomicU64::new(0),
            mixer_cpu,
            rooms,
            participants,
            dht_nodes,
            dht_values,
            dht_connected,
        };
        let collectors: [Box<dyn prometheus::core::Collector>; 10] = [
            Box::new(metrics.calls.clone()),
            Box::new(metrics.call_setup.clone()),
            Box::new(metrics.rtp_lost.clone()),
            Box::new(metrics.rtp_jitter.clone()),
            Box::new(metrics.mixer_cpu.clone()),
            Box::new(metrics.rooms.clone()),
            Box::new(metrics.participants.clone()),
            Box::new(metrics.dht_nodes.clone()),
            Box::new(metrics.dht_values.clone()),
            Box::new(metrics.dht_connected.clone()),
        ];
        for collector in collectors {
            if let Err(error) = metrics.registry.register(collector) {
                tracing::error!(%error, "a metric could not be registered");
            }
        }
        metrics
    }

    /// Counts a call attempt.
    pub fn call(&self, outcome: CallOutcome) {
        self.calls.with_label_values(&[outcome.label()]).inc();
    }

    /// Counts an answered call that took `setup` from its connection request.
    pub fn call_answered(&self, setup: Option<Duration>) {
        self.call(CallOutcome::Answered);
        if let Some(setup) = setup {
            self.call_setup.observe(setup.as_secs_f64());
        }
    }

    /// Takes in one reception report about a caller's stream.
    pub fn reception(&self, lost: u64, jitter: Duration) {
        self.rtp_lost.inc_by(lost);
        self.rtp_jitter.observe(jitter.as_secs_f64());
    }

    /// A mixer stopped after using `cpu`.
    pub fn mixer_stopped(&self, cpu: Duration) {
        let nanos = u64::try_from(cpu.as_nanos()).unwrap_or(u64::MAX);
        self.finished_mixer_cpu_ns.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The metrics in Prometheus' text format, with the gauges set from `now`.
    pub fn render(&self, now: &Snapshot) -> String {
        self.rooms.set(i64::try_from(now.participants.len()).unwrap_or(i64::MAX));
        self.participants.reset();
        for (room, count) in &now.participants {
            let count = i64::try_from(*count).unwrap_or(i64::MAX);
            self.participants.with_label_values(&[room.as_str()]).set(count);
        }
        let finished = Duration::from_nanos(self.finished_mixer_cpu_ns.load(Ordering::Relaxed));
        self.mixer_cpu.set((finished + now.running_mixer_cpu).as_secs_f64());
        let (ipv4, ipv6) = now.dht_nodes;
        self.dht_nodes.with_label_values(&["ipv4"]).set(i64::try_from(ipv4).unwrap_or(i64::MAX));
        self.dht_nodes.with_label_values(&["ipv6"]).set(i64::try_from(ipv6).unwrap_or(i64::MAX));
        self.dht_values.set(i64::try_from(now.dht_values).unwrap_or(i64::MAX));
        self.dht_connected.set(i64::from(now.dht_connected));
        let mut text = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut text) {
            tracing::error!(%error, "cannot encode the metrics");
        }
        String::from_utf8(text).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// A metric whose name and help are constants failed to build: a programming error.
fn unreachable_metric(error: &prometheus::Error) -> ! {
    panic!("invalid metric definition: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_gauges_show_in_the_text_format() {
        let metrics = Metrics::new();
        metrics.call_answered(Some(Duration::from_millis(800)));
        metrics.call(CallOutcome::Refused);
        metrics.reception(3, Duration::from_millis(4));
        metrics.mixer_stopped(Duration::from_millis(1500));
        let now = Snapshot {
            participants: vec![("lobby".into(), 3), ("empty".into(), 0)],
            running_mixer_cpu: Duration::from_millis(500),
            dht_nodes: (12, 0),
            dht_values: 40,
            dht_connected: true,
        };
        let text = metrics.render(&now);
        for line in [
            "rdv_calls_total{outcome=\"answered\"} 1",
            "rdv_calls_total{outcome=\"refused\"} 1",
            "rdv_call_setup_seconds_bucket{le=\"1\"} 1",
            "rdv_call_setup_seconds_count 1",
            "rdv_rtp_packets_lost_total 3",
            "rdv_mixer_cpu_seconds_total 2",
            "rdv_rooms 2",
            "rdv_participants{room=\"lobby\"} 3",
            "rdv_dht_nodes{family=\"ipv4\"} 12",
            "rdv_dht_stored_values 40",
            "rdv_dht_connected 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from:\n{text}");
        }
        // A room that is gone is no longer reported.
        let text = metrics.render(&Snapshot::default());
        assert!(!text.contains("room=\"lobby\""), "{text}");
    }
}
