//! A PostgreSQL database of the test's own, on the server `scripts/setup test` runs.

#![allow(dead_code, unreachable_pub)]

use super::common::prerequisite;

/// A database of its own on the local PostgreSQL server (`scripts/setup test` runs it), as
/// the user running the tests; dropped at the end.
pub struct Database {
    name: String,
    /// Its URL, for `database.url`.
    pub url: String,
}

impl Database {
    /// A new, empty database; `None` (skipped loudly, a failure under CI) without a server.
    pub fn create() -> Option<Self> {
        let psql = |sql: &str| {
            std::process::Command::new("psql")
                .args(["-d", "postgres", "-qtAc", sql])
                .output()
                .is_ok_and(|output| output.status.success())
        };
        if !prerequisite("PostgreSQL (psql, a running server)", psql("SELECT 1")) {
            return None;
        }
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let next = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("rdvt_server_{}_{next}", std::process::id());
        assert!(psql(&format!("DROP DATABASE IF EXISTS {name}")));
        assert!(psql(&format!("CREATE DATABASE {name}")));
        let user = std::process::Command::new("id").arg("-un").output().unwrap();
        let user = String::from_utf8_lossy(&user.stdout).trim().to_owned();
        let url = format!("postgres://{user}@localhost/{name}?host=/var/run/postgresql");
        Some(Self { name, url })
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args(["-d", "postgres", "-qtAc", &format!("DROP DATABASE IF EXISTS {}", self.name)])
            .output();
    }
}
