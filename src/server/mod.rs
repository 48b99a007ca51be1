//! `rdv run`: the DHT node, the registry of served rooms, and per room its door, its owner
//! task and its callers' links (docs/architecture.md).

mod api;
mod bot;
mod call;
mod door;
mod link;
mod metrics;
mod mix_routes;
mod playback;
mod recording;
mod registry;
mod room_owner;
mod session;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::Config;
use crate::dht::InfoHash;
use crate::dht::driver::{DriverConfig, spawn};
use crate::dht::node::NodeConfig;
use crate::store::{Store, StoreError};
use crate::telemetry::metrics::Metrics;
use crate::webhooks::Webhooks;
use registry::Registry;

pub use door::RequestCounters;

/// The server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The DHT's UDP port could not be bound (the operator's configuration).
    #[error("cannot open the DHT's UDP port {port}: {source}")]
    DhtSocket {
        /// The configured port.
        port: u16,
        /// The OS error.
        source: std::io::Error,
    },
    /// The admin API's address could not be bound (the operator's configuration).
    #[error("cannot listen for the admin API on {address}: {source}")]
    ApiSocket {
        /// The configured address.
        address: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The metrics listener's address could not be bound (the operator's configuration).
    #[error("cannot listen for metrics on {address}: {source}")]
    MetricsSocket {
        /// The configured address.
        address: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The webhooks could not be set up.
    #[error("webhooks: {0}")]
    Webhooks(crate::webhooks::WebhooksError),
    /// The rooms could not be read.
    #[error("cannot read the rooms: {0}")]
    Store(StoreError),
}

/// How often the served rooms are brought in line with the store (rooms created or deleted
/// by the CLI, policy changes) and readiness is checked.
const SYNC_INTERVAL: Duration = Duration::from_secs(2);

/// How long queued webhook deliveries get when the server stops.
const WEBHOOK_GRACE: Duration = Duration::from_secs(5);

/// Runs the stored rooms on the DHT, and the admin API, until `shutdown` completes.
pub async fn run(
    config: &Config,
    store: Store,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let node = NodeConfig {
        network: config.dht.network,
        ..NodeConfig::new(InfoHash::of(&rand::random::<[u8; 32]>()))
    };
    let driver = DriverConfig {
        node,
        port: config.dht.port,
        ipv6: config.dht.ipv6,
        bootstrap: config.dht.bootstrap.clone(),
    };
    let (dht, dht_task) = spawn(driver)
        .await
        .map_err(|source| ServerError::DhtSocket { port: config.dht.port, source })?;
    let metrics = Arc::new(Metrics::new());
    let link = Arc::new(config.link.clone());
    let rooms = Arc::new(Registry::new(
        dht.clone(),
        store,
        link,
        Arc::clone(&metrics),
        &config.cluster,
        config.media.clone(),
    ));
    let (listeners_stop, listeners_stopped) = watch::channel(false);
    let api = if config.api.enabled {
        let task = api::serve(&config.api, Arc::clone(&rooms), stop_signal(&listeners_stopped))
            .await
            .map_err(|source| ServerError::ApiSocket { address: config.api.listen, source })?;
        Some(task)
    } else {
        None
    };
    let metrics_task = if config.metrics.enabled {
        let task = metrics::serve(
            config.metrics.listen,
            metrics,
            Arc::clone(&rooms),
            stop_signal(&listeners_stopped),
        )
        .await
        .map_err(|source| ServerError::MetricsSocket { address: config.metrics.listen, source })?;
        Some(task)
    } else {
        None
    };
    let webhooks = if config.webhooks.is_empty() {
        None
    } else {
        let events = rooms.all_events();
        Some(Webhooks::spawn(&config.webhooks, events).map_err(ServerError::Webhooks)?)
    };
    rooms.sync().await.map_err(ServerError::Store)?;
    info!(rooms = rooms.serving(), "serving");
    let mut shutdown = std::pin::pin!(shutdown);
    let mut sync = tokio::time::interval(SYNC_INTERVAL);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = sync.tick() => {
                if let Err(error) = rooms.sync().await {
                    warn!(%error, "cannot read the rooms from the store");
                }
                let connected = dht.status().await.is_ok_and(|status| status.connected);
                rooms.set_ready(connected);
            }
        }
    }
    if config.cluster.drain_seconds > 0 {
        drain(&rooms, Duration::from_secs(config.cluster.drain_seconds)).await;
    }
    info!("shutting down");
    rooms.set_ready(false);
    let _ = listeners_stop.send(true);
    rooms.stop_all().await;
    if let Some(webhooks) = webhooks {
        let abandoned = webhooks.shutdown(WEBHOOK_GRACE).await;
        if abandoned > 0 {
            warn!(abandoned, "webhook deliveries abandoned at shutdown");
        }
    }
    for task in [api, metrics_task].into_iter().flatten() {
        let _ = task.await;
    }
    drop(rooms);
    drop(dht);
    let _ = dht_task.await;
    Ok(())
}

/// Completes once `stop` turns true.
fn stop_signal(stop: &watch::Receiver<bool>) -> impl Future<Output = ()> + Send + 'static {
    let mut stop = stop.clone();
    async move {
        let _ = stop.wait_for(|stopping| *stopping).await;
    }
}

/// Drains: new callers are refused and each room is handed over once empty, until no room is
/// left here or `timeout` passes.
async fn drain(rooms: &Registry, timeout: Duration) {
    info!(rooms = rooms.serving(), seconds = timeout.as_secs(), "draining");
    rooms.drain();
    let deadline = tokio::time::Instant::now() + timeout;
    while rooms.serving() > 0 && tokio::time::Instant::now() < deadline {
        if let Err(error) = rooms.sync().await {
            warn!(%error, "cannot read the rooms from the store");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    info!(left = rooms.serving(), "drained");
}
