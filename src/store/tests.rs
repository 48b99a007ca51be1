use std::os::unix::fs::PermissionsExt;
use std::sync::OnceLock;
use std::time::SystemTime;

use super::*;
use crate::config::DatabaseUrl;
use crate::identity::AccountId;
use crate::identity::RoomIdentity;
use crate::room::{AccountRole, RoomPolicy};

fn identity(index: usize) -> RoomIdentity {
    static IDENTITIES: OnceLock<Vec<RoomIdentity>> = OnceLock::new();
    IDENTITIES.get_or_init(|| {
        (0..2).map(|_| RoomIdentity::generate_blocking(SystemTime::now()).unwrap()).collect()
    })[index]
        .clone()
}

fn name(text: &str) -> RoomName {
    text.parse().unwrap()
}

async fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(&DataDir::open(dir.path()).unwrap()).await.unwrap()
}

async fn rooms_round_trip(store: Store) {
    assert!(store.rooms().await.unwrap().is_empty());

    let created = store
        .create_room(&name("Lobby"), &identity(0), &RoomPolicy::default(), 1_700_000_000)
        .await
        .unwrap();
    assert_eq!(created.name.as_str(), "Lobby");
    assert_eq!(created.identity.account_id(), identity(0).account_id());
    assert_eq!(created.created_at, 1_700_000_000);
    assert_eq!(created.policy, RoomPolicy::default());

    let found = store.room(&name("lobby")).await.unwrap().expect("found regardless of case");
    assert_eq!(found.id, created.id);
    assert_eq!(found.identity.certificate_chain_pem(), identity(0).certificate_chain_pem());
    assert_eq!(found.identity.device().private_key, identity(0).device().private_key);

    store
        .create_room(&name("alpha"), &identity(1), &RoomPolicy::default(), 1_700_000_001)
        .await
        .unwrap();
    let names: Vec<_> =
        store.rooms().await.unwrap().into_iter().map(|r| r.name.to_string()).collect();
    assert_eq!(names, ["alpha", "Lobby"]);

    let deleted = store.delete_room(&name("LOBBY")).await.unwrap().unwrap();
    assert_eq!(deleted.name, "Lobby");
    assert_eq!(deleted.jami_id, identity(0).account_id().to_string());
    assert!(store.room(&name("Lobby")).await.unwrap().is_none());
    assert!(store.delete_room(&name("Lobby")).await.unwrap().is_none());
    assert_eq!(store.rooms().await.unwrap().len(), 1);
}

async fn names_are_unique_regardless_of_case(store: Store) {
    store.create_room(&name("standup"), &identity(0), &RoomPolicy::default(), 0).await.unwrap();
    let error = store
        .create_room(&name("StandUp"), &identity(1), &RoomPolicy::default(), 0)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::RoomExists(_)), "{error}");
    let rooms = store.rooms().await.unwrap();
    assert_eq!(rooms.len(), 1);
    assert_eq!(
        rooms[0].identity.account_id(),
        identity(0).account_id(),
        "the first room is intact"
    );
}

/// A fresh PostgreSQL database on the local server that `scripts/setup test` runs, as the
/// user running the tests (peer authentication on the socket); `RDVT_POSTGRES_URL` names
/// another server's maintenance database instead. `None` (skipped loudly, a failure under CI)
/// when no server answers.
async fn postgres() -> Option<(Store, String)> {
    use sqlx::Connection as _;
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let server = postgres_server();
    let mut admin = match sqlx::PgConnection::connect(&server).await {
        Ok(connection) => connection,
        Err(error) => {
            let what = format!("PostgreSQL at {server} ({error})");
            if std::env::var("CI").is_ok_and(|value| value == "true") {
                panic!("{what} is missing under CI: scripts/setup test should have started it");
            }
            eprintln!("\n*** SKIPPED: {what}; `scripts/setup test` installs and starts it ***\n");
            return None;
        }
    };
    let database = format!(
        "rdvt_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    // The name is ours: letters, digits and underscores.
    for sql in
        [format!("DROP DATABASE IF EXISTS {database}"), format!("CREATE DATABASE {database}")]
    {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await.unwrap();
    }
    let url = match server.split_once('?') {
        Some((base, query)) => format!("{}/{database}?{query}", base.rsplit_once('/').unwrap().0),
        None => format!("{}/{database}", server.rsplit_once('/').unwrap().0),
    };
    Some((Store::open_postgres(&DatabaseUrl::parse(&url).unwrap()).await.unwrap(), database))
}

/// The maintenance database's URL (see [`postgres`]).
fn postgres_server() -> String {
    let user = std::process::Command::new("id")
        .arg("-un")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_default();
    std::env::var("RDVT_POSTGRES_URL").unwrap_or_else(|_| {
        format!("postgres://{user}@localhost/postgres?host=/var/run/postgresql")
    })
}

/// Drops a database made by [`postgres`].
async fn drop_database(database: &str) {
    use sqlx::Connection as _;
    if let Ok(mut admin) = sqlx::PgConnection::connect(&postgres_server()).await {
        let sql = format!("DROP DATABASE IF EXISTS {database}");
        let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await;
    }
}

/// Runs a test on both databases: SQLite in a temporary data directory, and PostgreSQL.
macro_rules! on_both {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                super::$test(super::open(&dir).await).await;
            }

            #[tokio::test]
            async fn postgres() {
                if let Some((store, database)) = super::postgres().await {
                    super::$test(store.clone()).await;
                    store.close().await;
                    super::drop_database(&database).await;
                }
            }
        }
    )*};
}

on_both!(
    rooms_round_trip,
    names_are_unique_regardless_of_case,
    a_damaged_room_is_named,
    room_tokens_grant_their_room_until_revoked_or_the_room_is_deleted,
    outlines_carry_the_policy_without_the_keys,
    roles_and_policy_round_trip,
);

async fn roles_and_policy_round_trip(store: Store) {
    let room =
        store.create_room(&name("Ops"), &identity(0), &RoomPolicy::default(), 1).await.unwrap();
    let (alice, bob) = (AccountId::from_bytes([1; 20]), AccountId::from_bytes([2; 20]));
    assert!(store.grant_role(&name("ops"), alice, AccountRole::Moderator, 2).await.unwrap());
    assert!(
        store.grant_role(&name("ops"), alice, AccountRole::Moderator, 3).await.unwrap(),
        "again: no effect"
    );
    assert!(store.grant_role(&name("ops"), bob, AccountRole::Banned, 2).await.unwrap());
    assert!(!store.grant_role(&name("nowhere"), bob, AccountRole::Banned, 2).await.unwrap());
    assert_eq!(store.roles_of(room.id, alice).await.unwrap(), [AccountRole::Moderator]);
    assert_eq!(store.accounts(room.id).await.unwrap().len(), 2);
    assert!(store.revoke_role(&name("OPS"), bob, AccountRole::Banned).await.unwrap());
    assert!(!store.revoke_role(&name("ops"), bob, AccountRole::Banned).await.unwrap());
    assert!(store.roles_of(room.id, bob).await.unwrap().is_empty());

    let policy = RoomPolicy {
        locked: true,
        max_participants: std::num::NonZeroU32::new(7),
        layout: crate::room::Layout::OneBig,
        ..RoomPolicy::default()
    };
    assert!(store.set_policy(&name("ops"), &policy, 4).await.unwrap());
    assert!(store.set_admission(&name("ops"), crate::room::Admission::AllowList, 5).await.unwrap());
    let stored = store.room(&name("ops")).await.unwrap().unwrap().policy;
    assert_eq!(stored, RoomPolicy { admission: crate::room::Admission::AllowList, ..policy });
    assert!(!store.set_policy(&name("nowhere"), &RoomPolicy::default(), 4).await.unwrap());
}

#[tokio::test]
async fn database_is_private_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    store.create_room(&name("keep"), &identity(0), &RoomPolicy::default(), 0).await.unwrap();
    store.close().await;
    let mode = std::fs::metadata(dir.path().join("rdv.sqlite3")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let reopened = open(&dir).await;
    assert_eq!(reopened.rooms().await.unwrap().len(), 1);
}

#[tokio::test]
async fn loose_permissions_are_tightened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rdv.sqlite3");
    std::fs::write(&path, b"").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    open(&dir).await;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
}

#[tokio::test]
async fn a_foreign_file_is_reported_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rdv.sqlite3");
    let garbage = b"this is not a database, but somebody's precious notes\n".repeat(100);
    std::fs::write(&path, &garbage).unwrap();
    let error = Store::open(&DataDir::open(dir.path()).unwrap()).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
    assert_eq!(std::fs::read(&path).unwrap(), garbage);
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    on_pool!(store, pool => sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101000000, 'from the future', TRUE, x'00', 0)",
    )
    .execute(pool)
    .await
    .map(drop))
    .unwrap();
    store.close().await;
    let error = Store::open(&DataDir::open(dir.path()).unwrap()).await.unwrap_err();
    assert!(matches!(error, StoreError::SchemaTooNew { version: 99990101000000, .. }), "{error}");
}

async fn a_damaged_room_is_named(store: Store) {
    store.create_room(&name("broken"), &identity(0), &RoomPolicy::default(), 0).await.unwrap();
    on_pool!(store, pool => sqlx::query("UPDATE rooms SET device_private_key = $1")
        .bind(identity(1).device().private_key.expose())
        .execute(pool)
        .await
        .map(drop))
    .unwrap();
    let error = store.rooms().await.unwrap_err();
    assert!(matches!(&error, StoreError::DamagedRoom { name, .. } if name == "broken"), "{error}");
    assert!(!error.to_string().contains("PRIVATE KEY"));
    let deleted =
        store.delete_room(&name("broken")).await.unwrap().expect("damaged rooms can be deleted");
    assert_eq!(deleted.name, "broken");
    assert!(store.rooms().await.unwrap().is_empty());
}

async fn room_tokens_grant_their_room_until_revoked_or_the_room_is_deleted(store: Store) {
    let (lobby, alpha) = (name("Lobby"), name("alpha"));
    store.create_room(&lobby, &identity(0), &RoomPolicy::default(), 1).await.unwrap();
    store.create_room(&alpha, &identity(1), &RoomPolicy::default(), 1).await.unwrap();
    let hash = "ab".repeat(32);
    let token = store.add_room_token(&name("LOBBY"), &hash, "bot", 5).await.unwrap().unwrap();
    assert_eq!((token.label.as_str(), token.created_at), ("bot", 5));
    assert!(
        store.add_room_token(&name("nowhere"), &"cd".repeat(32), "x", 5).await.unwrap().is_none()
    );
    assert!(store.add_room_token(&alpha, &hash, "again", 5).await.is_err(), "hashes are unique");

    assert_eq!(store.room_of_token(&hash).await.unwrap().as_deref(), Some("Lobby"));
    assert_eq!(store.room_tokens(&lobby).await.unwrap(), std::slice::from_ref(&token));
    assert!(!store.revoke_room_token(&alpha, token.id).await.unwrap(), "not alpha's token");
    assert!(store.revoke_room_token(&lobby, token.id).await.unwrap());
    assert_eq!(store.room_of_token(&hash).await.unwrap(), None);

    store.add_room_token(&lobby, &hash, "bot", 6).await.unwrap().unwrap();
    store.delete_room(&lobby).await.unwrap().unwrap();
    assert_eq!(store.room_of_token(&hash).await.unwrap(), None, "deleted with its room");
}

async fn outlines_carry_the_policy_without_the_keys(store: Store) {
    let policy = RoomPolicy { locked: true, lobby: true, ..RoomPolicy::default() };
    let room = store.create_room(&name("Beta"), &identity(0), &policy, 1).await.unwrap();
    store.create_room(&name("alpha"), &identity(1), &RoomPolicy::default(), 1).await.unwrap();
    let outlines = store.room_outlines().await.unwrap();
    let names: Vec<&str> = outlines.iter().map(|outline| outline.name.as_str()).collect();
    assert_eq!(names, ["alpha", "Beta"]);
    assert_eq!((outlines[1].id, &outlines[1].policy), (room.id, &policy));
    assert_eq!(outlines[1].jami_id, identity(0).account_id().to_string());
    assert_eq!(outlines[1].device_id, identity(0).device_id().to_string());
    let one = store.room_outline(&name("BETA")).await.unwrap().unwrap();
    assert_eq!((one.id, one.name.as_str(), one.created_at), (room.id, "Beta", 1));
    assert!(store.room_outline(&name("gamma")).await.unwrap().is_none());
}

on_both!(leases_go_to_one_holder_until_they_expire_or_are_released);

async fn leases_go_to_one_holder_until_they_expire_or_are_released(store: Store) {
    let room =
        store.create_room(&name("shared"), &identity(0), &RoomPolicy::default(), 1).await.unwrap();
    assert!(store.take_lease(room.id, "a", 1_000, 16_000).await.unwrap());
    assert!(!store.take_lease(room.id, "b", 2_000, 17_000).await.unwrap(), "a holds it");
    assert!(store.take_lease(room.id, "a", 10_000, 25_000).await.unwrap(), "a renews it");
    assert_eq!(store.lease_of(room.id).await.unwrap(), Some(("a".to_owned(), 25_000)));
    assert!(!store.take_lease(room.id, "b", 24_999, 40_000).await.unwrap(), "not yet expired");
    assert!(store.take_lease(room.id, "b", 25_001, 40_000).await.unwrap(), "expired: b takes it");
    assert!(!store.take_lease(room.id, "a", 26_000, 41_000).await.unwrap(), "a lost it");
    store.release_lease(room.id, "a").await.unwrap();
    assert_eq!(store.lease_of(room.id).await.unwrap().unwrap().0, "b", "only the holder releases");
    store.release_leases("b").await.unwrap();
    assert!(store.take_lease(room.id, "a", 27_000, 42_000).await.unwrap(), "released: free");
    store.delete_room(&name("shared")).await.unwrap();
    assert_eq!(store.lease_of(room.id).await.unwrap(), None, "gone with the room");
}
