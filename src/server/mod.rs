//! `rdv run`: the DHT node and one owner task per room.

mod api;
mod call;
mod conference;
mod link;
mod media;
mod registry;
mod room;
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
use registry::Registry;

pub use room::RequestCounters;

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
    /// The rooms could not be read.
    #[error("cannot read the rooms: {0}")]
    Store(StoreError),
}

/// How often the served rooms are brought in line with the store (rooms created or deleted
/// by the CLI, policy changes) and readiness is checked.
const SYNC_INTERVAL: Duration = Duration::from_secs(2);

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
    let rooms = Arc::new(Registry::new(dht.clone(), store, Arc::new(config.link.clone())));
    let (api_stop, api_stopped) = watch::channel(false);
    let api = if config.api.enabled {
        let mut stopped = api_stopped.clone();
        let stop = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let task = api::serve(&config.api, Arc::clone(&rooms), stop)
            .await
            .map_err(|source| ServerError::ApiSocket { address: config.api.listen, source })?;
        Some(task)
    } else {
        None
    };
    rooms.sync().await.map_err(ServerError::Store)?;
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
    info!("shutting down");
    rooms.set_ready(false);
    let _ = api_stop.send(true);
    rooms.stop_all().await;
    if let Some(api) = api {
        let _ = api.await;
    }
    drop(rooms);
    drop(dht);
    let _ = dht_task.await;
    Ok(())
}
