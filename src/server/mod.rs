//! `rdv run`: the DHT node and one owner task per room.

mod call;
mod conference;
mod link;
mod media;
mod room;
mod session;

use std::future::Future;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::Config;
use crate::dht::InfoHash;
use crate::dht::driver::{DriverConfig, spawn};
use crate::dht::node::NodeConfig;
use crate::room::Room;
use crate::store::Store;

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
}

/// Runs the rooms on the DHT until `shutdown` completes.
pub async fn run(
    config: &Config,
    store: Store,
    rooms: Vec<Room>,
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
    if rooms.is_empty() {
        warn!("no rooms: create one with `rdv room create NAME`");
    }
    let (stop, stopped) = watch::channel(false);
    let link = std::sync::Arc::new(config.link.clone());
    let tasks: Vec<_> = rooms
        .into_iter()
        .map(|room| {
            let link = std::sync::Arc::clone(&link);
            tokio::spawn(room::serve(dht.clone(), store.clone(), room, link, stopped.clone()))
        })
        .collect();
    shutdown.await;
    info!("shutting down");
    let _ = stop.send(true);
    for task in tasks {
        if let Err(error) = task.await {
            warn!(%error, "a room task failed");
        }
    }
    drop(dht);
    let _ = dht_task.await;
    Ok(())
}
