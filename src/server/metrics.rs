//! The Prometheus listener: `GET /metrics` in the text format, gauges read at each scrape.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use tracing::{info, warn};

use super::registry::Registry;
use crate::telemetry::metrics::{Metrics, Snapshot};

/// Prometheus' text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone)]
struct Scrape {
    metrics: Arc<Metrics>,
    rooms: Arc<Registry>,
}

/// Serves `/metrics` on `listen` until `shutdown` completes.
pub(super) async fn serve(
    listen: std::net::SocketAddr,
    metrics: Arc<Metrics>,
    rooms: Arc<Registry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    let router = Router::new().route("/metrics", get(scrape)).with_state(Scrape { metrics, rooms });
    info!(%address, "metrics listening");
    Ok(tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).with_graceful_shutdown(shutdown).await {
            warn!(%error, "the metrics listener stopped");
        }
    }))
}

async fn scrape(State(scrape): State<Scrape>) -> impl IntoResponse {
    let (participants, running_mixer_cpu) = scrape.rooms.load();
    let dht = scrape.rooms.dht_status().await;
    let now = Snapshot {
        participants,
        running_mixer_cpu,
        dht_nodes: dht.as_ref().map_or((0, 0), |status| status.good_nodes),
        dht_values: dht.as_ref().map_or(0, |status| status.stored_values),
        dht_connected: dht.as_ref().is_some_and(|status| status.connected),
    };
    ([(CONTENT_TYPE, TEXT_FORMAT)], scrape.metrics.render(&now))
}
