//! `rdv run` as a child process, with its log lines collected, for end-to-end tests.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::common::Rdv;

/// Every wait on the server is bounded by this.
const WAIT: Duration = Duration::from_secs(30);

/// The admin API token of servers started by tests.
pub const ADMIN_TOKEN: &str = "rdv-test-admin-token-0123456789";

/// Server log lines printed when a test fails.
const SHOWN_ON_FAILURE: usize = 400;

/// `rdv run` with its log lines collected.
pub struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Server {
    /// Starts `rdv run` on `rdv`'s data directory, bootstrapping on `bootstrap`, through
    /// `wrapper` (a command prefix such as the jamid harness's `exec --`; empty for none).
    pub fn start(rdv: &Rdv, wrapper: &[&str], bootstrap: &str) -> Self {
        Self::start_with(rdv, wrapper, bootstrap, &[])
    }

    /// [`Server::start`] with more environment variables (configuration keys).
    pub fn start_with(rdv: &Rdv, wrapper: &[&str], bootstrap: &str, env: &[(&str, &str)]) -> Self {
        let rdv_binary = env!("CARGO_BIN_EXE_rdv");
        let (program, prefix) = match wrapper.split_first() {
            Some((program, rest)) => (*program, [rest, &[rdv_binary]].concat()),
            None => (rdv_binary, Vec::new()),
        };
        let mut command = Command::new(program);
        command
            .args(prefix)
            .args(["run", "--bootstrap", bootstrap, "--log-filter", "info,rdv=debug", "--data-dir"])
            .arg(rdv.data_dir())
            .current_dir(rdv.path())
            .env("RDV_DHT__PORT", "0")
            .env("RDV_DHT__IPV6", "false")
            .env("RDV_API__LISTEN", "127.0.0.1:0")
            .env("RDV_METRICS__LISTEN", "127.0.0.1:0")
            .env("RDV_API__ADMIN_TOKEN", ADMIN_TOKEN)
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .stdout(Stdio::null());
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines, seen: Vec::new() }
    }

    /// The admin API's address (`IP:PORT`), once it listens.
    pub fn api_address(&mut self) -> String {
        let line = self.wait_for(&["admin API listening"]);
        let address = line.split_whitespace().find_map(|field| field.strip_prefix("address="));
        address.unwrap_or_else(|| panic!("no address in {line:?}")).to_owned()
    }

    /// The metrics listener's address (`IP:PORT`), once it listens.
    pub fn metrics_address(&mut self) -> String {
        let line = self.wait_for(&["metrics listening"]);
        let address = line.split_whitespace().find_map(|field| field.strip_prefix("address="));
        address.unwrap_or_else(|| panic!("no address in {line:?}")).to_owned()
    }

    /// Waits for a log line containing every one of `parts`.
    pub fn wait_for(&mut self, parts: &[&str]) -> String {
        self.wait_for_nth(parts, 1)
    }

    /// Waits for the `n`th log line (counting from 1) containing every one of `parts`.
    pub fn wait_for_nth(&mut self, parts: &[&str], n: usize) -> String {
        self.wait_for_nth_within(parts, n, WAIT)
    }

    /// Waits up to `timeout` for the `n`th log line containing every one of `parts`.
    pub fn wait_for_nth_within(&mut self, parts: &[&str], n: usize, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let matches = |line: &String| parts.iter().all(|p| line.contains(p));
        if let Some(line) = self.seen.iter().filter(|line| matches(line)).nth(n - 1) {
            return line.clone();
        }
        let mut found = self.seen.iter().filter(|line| matches(line)).count();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!("no log line {n} with {parts:?}; saw:\n{}", self.seen.join("\n"))
            });
            self.seen.push(line.clone());
            if matches(&line) {
                found += 1;
                if found == n {
                    return line;
                }
            }
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How many log lines seen so far contain every one of `parts`.
    pub fn count(&self, parts: &[&str]) -> usize {
        self.seen.iter().filter(|line| parts.iter().all(|p| line.contains(p))).count()
    }

    /// SIGTERM, then the exit status within the wait bound.
    pub fn stop(mut self) -> i32 {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "rdv run did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.seen.extend(self.lines.try_iter());
        // For a developer who wants the whole log of a passing run too.
        if let Some(path) = std::env::var_os("RDVT_SERVER_LOG") {
            let _ = std::fs::write(path, self.seen.join("\n"));
        }
        if std::thread::panicking() {
            // The test failed: its server's log says why as often as the clients' do.
            let start = self.seen.len().saturating_sub(SHOWN_ON_FAILURE);
            eprintln!("--- rdv run log (last {} lines)", self.seen.len() - start);
            for line in &self.seen[start..] {
                eprintln!("{line}");
            }
        }
    }
}
