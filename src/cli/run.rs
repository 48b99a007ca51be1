//! `rdv run`: the server.

use std::time::SystemTime;

use rdv::config::Config;
use rdv::data_dir::DataDir;
use rdv::store::Store;

/// Opens the data directory and the store, loads and checks every room's identity, and
/// reports what would be served. Serving (the DHT node, calls) is not implemented yet, so it
/// says so and returns rather than pretend.
pub(super) async fn run(config: &Config) -> anyhow::Result<()> {
    let data_dir = DataDir::create_or_open(&config.data_dir)?;
    let store = Store::open(&data_dir).await?;
    let rooms = store.rooms().await?;
    let now = SystemTime::now();
    for room in &rooms {
        let identity = &room.identity;
        tracing::info!(
            room = %room.name,
            jami_id = %identity.account_id(),
            device_id = %identity.device_id(),
            "room loaded"
        );
        if let Err(error) = identity.chain().check_validity(now) {
            tracing::warn!(room = %room.name, %error, "the room's certificates are not valid now");
        }
    }
    store.close().await;
    tracing::warn!(
        rooms = rooms.len(),
        data_dir = %data_dir.path().display(),
        "this version of rdv stores rooms and their Jami identities but cannot serve them yet: \
         the DHT node and call handling are not implemented, so the rooms are not reachable \
         on the Jami network; exiting"
    );
    Ok(())
}
