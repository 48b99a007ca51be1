//! `rdv run`: the server.

use std::time::SystemTime;

use anyhow::Context as _;
use rdv::config::Config;
use rdv::data_dir::DataDir;
use rdv::store::Store;
use tokio::signal::unix::{SignalKind, signal};

/// Opens the data directory and the store, loads and checks every room's identity, and
/// serves the rooms on the DHT until SIGINT or SIGTERM.
pub(super) async fn run(config: &Config) -> anyhow::Result<()> {
    let data_dir = DataDir::create_or_open(&config.data_dir)?;
    let store = Store::open_configured(&config.database, &data_dir).await?;
    let rooms = store.rooms().await?;
    let now = SystemTime::now();
    for room in &rooms {
        if let Err(error) = room.identity.chain().check_validity(now) {
            tracing::warn!(room = %room.name, %error, "the room's certificates are not valid now");
        }
    }
    if rooms.is_empty() {
        tracing::warn!("no rooms yet: create one with `rdv room create NAME` or the admin API");
    }
    tracing::info!(
        rooms = rooms.len(),
        data_dir = %data_dir.path().display(),
        database = %store.backend(),
        "starting"
    );
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let shutdown = async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    };
    rdv::server::run(config, store.clone(), shutdown).await?;
    store.close().await;
    Ok(())
}
