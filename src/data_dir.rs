//! The data directory: the database (with every room's private keys) and, later, other state.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// File name of the SQLite database inside the data directory.
const DATABASE_FILE: &str = "rdv.sqlite3";

/// File name of the lock taken while the database is opened and migrated.
const SETUP_LOCK_FILE: &str = "rdv.lock";

/// The data directory could not be used. The operator is at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataDirError {
    /// It does not exist, and the command does not create it.
    #[error(
        "data directory {0} does not exist (create a room or run `rdv run` first, or pass --data-dir)"
    )]
    NotFound(PathBuf),
    /// The path exists but is not a directory.
    #[error("data directory {0} is not a directory")]
    NotADirectory(PathBuf),
    /// It could not be read or created.
    #[error("data directory {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// A data directory that exists.
#[derive(Debug, Clone)]
pub struct DataDir {
    path: PathBuf,
}

impl DataDir {
    /// Opens an existing data directory.
    pub fn open(path: &Path) -> Result<Self, DataDirError> {
        match fs::metadata(path) {
            Ok(metadata) if metadata.is_dir() => Ok(Self { path: path.to_owned() }),
            Ok(_) => Err(DataDirError::NotADirectory(path.to_owned())),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                Err(DataDirError::NotFound(path.to_owned()))
            }
            Err(source) => Err(DataDirError::Io { path: path.to_owned(), source }),
        }
    }

    /// Opens the data directory, creating it (mode 0700, parents included) when missing.
    pub fn create_or_open(path: &Path) -> Result<Self, DataDirError> {
        match Self::open(path) {
            Err(DataDirError::NotFound(_)) => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(path)
                    .map_err(|source| DataDirError::Io { path: path.to_owned(), source })?;
                tracing::info!(path = %path.display(), "created data directory");
                Self::open(path)
            }
            other => other,
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The SQLite database file.
    pub fn database_path(&self) -> PathBuf {
        self.path.join(DATABASE_FILE)
    }

    /// The lock file that serialises opening and migrating the database between processes.
    pub fn setup_lock_path(&self) -> PathBuf {
        self.path.join(SETUP_LOCK_FILE)
    }
}

/// Creates `path` as an empty file with mode 0600 if it does not exist, and takes group and
/// other permissions away from it if it does: it holds private keys.
pub fn ensure_private_file(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "restricting permissions to 0600");
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
