//! Helpers shared by the integration tests: running the real `rdv` binary in a scratch
//! directory, and detecting real-peer prerequisites.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A scratch working directory in which `rdv` runs with a clean `RDV_*` environment.
pub struct Rdv {
    dir: tempfile::TempDir,
}

/// What one `rdv` invocation did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts success and returns standard output.
    pub fn ok(self) -> String {
        assert_eq!(self.code, 0, "rdv failed: {}", self.stderr);
        self.stdout
    }

    /// Asserts a failure reported on one `error:` line and returns that line.
    pub fn error(self) -> String {
        assert_eq!(
            self.code, 1,
            "expected failure, got {}: {}{}",
            self.code, self.stdout, self.stderr
        );
        let errors: Vec<&str> = self.stderr.lines().filter(|l| l.starts_with("error: ")).collect();
        assert_eq!(errors.len(), 1, "one error line expected in {:?}", self.stderr);
        errors[0].to_owned()
    }

    /// Parses standard output as JSON, asserting success.
    pub fn json(self) -> serde_json::Value {
        let stdout = self.ok();
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
    }
}

impl Rdv {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("temporary directory") }
    }

    /// The working directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The default data directory, `./data`.
    pub fn data_dir(&self) -> PathBuf {
        self.path().join("data")
    }

    /// A command for `rdv args...` in the scratch directory.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rdv"));
        command.args(args).current_dir(self.path());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("RDV") {
                command.env_remove(name);
            }
        }
        command
    }

    /// Runs `rdv args...`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_command(self.command(args))
    }

    pub fn run_command(&self, mut command: Command) -> Run {
        let Output { status, stdout, stderr } = command.output().expect("rdv runs");
        Run {
            code: status.code().expect("rdv exited normally, not by a signal"),
            stdout: String::from_utf8(stdout).expect("UTF-8 output"),
            stderr: String::from_utf8(stderr).expect("UTF-8 output"),
        }
    }
}

/// True when the test's real-peer prerequisite is present. Otherwise the test is skipped
/// loudly, except under CI (`CI=true`), where a missing prerequisite fails the run.
pub fn prerequisite(what: &str, present: bool) -> bool {
    if present {
        return true;
    }
    if std::env::var("CI").is_ok_and(|value| value == "true") {
        panic!("{what} is missing under CI: scripts/setup should have installed it");
    }
    eprintln!("\n*** SKIPPED: {what} is not available; `scripts/setup test` installs it ***\n");
    false
}

/// Whether `program args...` runs and exits successfully.
pub fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).output().is_ok_and(|output| output.status.success())
}

/// Waits (30 s at most) until a DHT announce reports that its value is stored.
pub async fn wait_announced(events: &mut tokio::sync::mpsc::Receiver<rdv::dht::node::Event>) {
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(event) = events.recv().await {
            if matches!(event, rdv::dht::node::Event::Announced { .. }) {
                return;
            }
        }
    })
    .await
    .expect("announced in time");
}

/// The test peers `scripts/build-peers` made (today's OpenDHT, dhtnet and the dhtnet caller):
/// `$PEERS_DIR`, else the last build in the default cache. `None` when not built.
pub fn peers_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("PEERS_DIR")
        .map_or_else(|| PathBuf::from("/var/cache/rdv-peers/current"), PathBuf::from);
    dir.join("done").is_file().then_some(dir)
}
