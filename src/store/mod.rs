//! Persistent state: rooms with their identities and policy, in SQLite by default or in
//! PostgreSQL (`database.url`), with the same SQL and the same migrations' semantics.
//!
//! The database lives in the data directory with mode 0600, since it holds private keys. It
//! runs in WAL mode with a busy timeout, so the CLI and a running server can use it at once;
//! opening and migrating the database are serialised between processes by a lock file. The SQL is portable
//! (`$n` placeholders, standard types) so that a PostgreSQL backend can share it.

mod leases;
mod rooms;
mod tokens;

pub use rooms::{DeletedRoom, RoomOutline};
pub use tokens::RoomToken;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::config::{DatabaseConfig, DatabaseUrl};
use crate::data_dir::{self, DataDir};
use crate::room::RoomName;

/// How long a statement waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// SQLite's result codes for a file that is not a database, or a damaged one.
const SQLITE_CORRUPT: &str = "11";
const SQLITE_NOTADB: &str = "26";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections to a PostgreSQL server per replica.
const POSTGRES_CONNECTIONS: u32 = 8;

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A room with this name (in any case) already exists. The caller is at fault.
    #[error("a room named \"{0}\" already exists")]
    RoomExists(RoomName),
    /// The database file is not a database, or is damaged. Nothing was changed.
    #[error("database {path} is damaged or not an rdv database ({detail}); it was left untouched")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// SQLite's message.
        detail: String,
    },
    /// The database was migrated by a newer rdv than this one.
    #[error("database {path} has schema version {version}, newer than this rdv knows; upgrade rdv")]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// The unknown migration version.
        version: i64,
    },
    /// A stored room does not load (its identity or policy is damaged).
    #[error("stored room {name:?} is damaged: {reason}")]
    DamagedRoom {
        /// The room's name as stored.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The database file or lock could not be created or opened.
    #[error("database {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Applying the schema failed.
    #[error("schema migration of {path} failed: {source}")]
    Migration {
        /// The database file.
        path: PathBuf,
        /// What sqlx reported.
        source: sqlx::migrate::MigrateError,
    },
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// The store, a pool of database connections. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
}

/// The database behind the store.
#[derive(Debug, Clone)]
enum Pool {
    /// SQLite in the data directory: the default.
    Sqlite(SqlitePool),
    /// A PostgreSQL server, shared by several replicas.
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the store's pool, whichever database it is: the SQL is
/// the same for both, each arm is checked against its own driver.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

impl Store {
    /// Opens (creating if needed) the database in `data_dir` and brings its schema up to date.
    pub async fn open(data_dir: &DataDir) -> Result<Self, StoreError> {
        let path = data_dir.database_path();
        let io_error = |source| StoreError::Io { path: path.clone(), source };
        data_dir::ensure_private_file(&path).map_err(io_error)?;
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(false)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // The first connection switches a new database to WAL mode, which SQLite does not
        // wait for if another process holds the file; opening and migrating are therefore
        // serialised between processes. Later connections find WAL mode already set.
        let lock = lock_file(data_dir.setup_lock_path()).await.map_err(io_error)?;
        let pool = connect_and_migrate(options, &path).await;
        drop(lock);
        Ok(Self { pool: Pool::Sqlite(pool?) })
    }

    /// Connects to the PostgreSQL database at `url` and brings its schema up to date.
    /// Migrations are serialised between replicas by PostgreSQL's advisory lock.
    pub async fn open_postgres(url: &DatabaseUrl) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url.expose().parse()?;
        let pool = PgPoolOptions::new()
            .max_connections(POSTGRES_CONNECTIONS)
            .acquire_timeout(BUSY_TIMEOUT)
            .connect_with(options)
            .await?;
        POSTGRES_MIGRATOR.run(&pool).await.map_err(|error| match error {
            sqlx::migrate::MigrateError::VersionMissing(version) => {
                StoreError::SchemaTooNew { path: PathBuf::from(url.redacted()), version }
            }
            source => StoreError::Migration { path: PathBuf::from(url.redacted()), source },
        })?;
        Ok(Self { pool: Pool::Postgres(pool) })
    }

    /// The store the configuration names: PostgreSQL when `database.url` is set, otherwise
    /// SQLite in the data directory.
    pub async fn open_configured(
        database: &DatabaseConfig,
        data_dir: &DataDir,
    ) -> Result<Self, StoreError> {
        match &database.url {
            Some(url) => Self::open_postgres(url).await,
            None => Self::open(data_dir).await,
        }
    }

    /// Which database this is, for logs: `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Closes every connection, waiting for them to finish.
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await);
    }
}

async fn connect_and_migrate(
    options: SqliteConnectOptions,
    path: &Path,
) -> Result<SqlitePool, StoreError> {
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .map_err(|error| classify(error, path))?;
    MIGRATOR.run(&pool).await.map_err(|error| match error {
        sqlx::migrate::MigrateError::VersionMissing(version) => {
            StoreError::SchemaTooNew { path: path.to_owned(), version }
        }
        sqlx::migrate::MigrateError::Execute(error) => classify(error, path),
        source => StoreError::Migration { path: path.to_owned(), source },
    })?;
    Ok(pool)
}

/// Takes an exclusive lock on `path` (created if needed) off the async runtime; the lock is
/// released when the returned file is dropped.
async fn lock_file(path: PathBuf) -> std::io::Result<std::fs::File> {
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::OpenOptionsExt as _;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)?;
        file.lock()?;
        Ok(file)
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Recognises a damaged or foreign database file among sqlx errors.
fn classify(error: sqlx::Error, path: &Path) -> StoreError {
    if let sqlx::Error::Database(database_error) = &error
        && matches!(database_error.code().as_deref(), Some(SQLITE_NOTADB | SQLITE_CORRUPT))
    {
        return StoreError::Corrupt {
            path: path.to_owned(),
            detail: database_error.message().to_owned(),
        };
    }
    StoreError::Database(error)
}

#[cfg(test)]
mod tests;
