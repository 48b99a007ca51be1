//! The dhtnet caller (tests/peers/dhtnet_caller, built by scripts/build-peers): a caller
//! made of today's Jami parts (dhtnet in `LegacyMode::Disabled`, OpenDHT 4.3.1), run inside
//! the harness's namespace, its JSON-line events read as they come.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use super::common::{peers_dir, prerequisite};
use super::harness::Harness;

/// The built caller, if scripts/build-peers has made it (skips loudly, or fails under CI).
pub fn binary() -> Option<PathBuf> {
    let built = peers_dir().map(|dir| dir.join("prefix/bin/dhtnet-caller"));
    let built = built.filter(|path| path.is_file());
    if prerequisite("the dhtnet caller (bash scripts/build-peers)", built.is_some()) {
        built
    } else {
        None
    }
}

/// A running caller; killed on drop.
pub struct DhtnetCaller {
    child: Child,
    events: mpsc::Receiver<Json>,
    /// Every event so far, for the failure message.
    seen: Vec<Json>,
}

impl DhtnetCaller {
    /// Makes the identity in `identity` (its DH parameters too, so that they do not count in
    /// the call's setup time, as on an installed Jami).
    pub fn prepare(harness: &Harness, binary: &PathBuf, identity: &std::path::Path) {
        let status = in_namespace(harness, binary)
            .args(["--prepare", "--identity"])
            .arg(identity)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "dhtnet caller --prepare failed");
    }

    /// Starts the caller in `harness`'s namespace with `args`.
    pub fn start(harness: &Harness, binary: &PathBuf, args: &[&str]) -> Self {
        let mut child = in_namespace(harness, binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let Ok(event) = serde_json::from_str::<Json>(&line) else { continue };
                if sender.send(event).is_err() {
                    break;
                }
            }
        });
        Self { child, events, seen: Vec::new() }
    }

    /// The next event named `name` that satisfies `wanted`, within `timeout`. An `error`
    /// event or the caller's exit fails the test with everything it said.
    pub fn next(&mut self, name: &str, timeout: Duration, wanted: impl Fn(&Json) -> bool) -> Json {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(event) = self.events.recv_timeout(left) else {
                panic!(
                    "no {name} event from the dhtnet caller in {timeout:?}; saw {:#?}",
                    self.seen
                );
            };
            self.seen.push(event.clone());
            assert_ne!(event["event"], "error", "the dhtnet caller failed: {:#?}", self.seen);
            if event["event"] == name && wanted(&event) {
                return event;
            }
        }
    }

    /// Waits for the caller to exit; its status code.
    pub fn wait(mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for DhtnetCaller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn in_namespace(harness: &Harness, binary: &PathBuf) -> Command {
    let prefix = harness.exec_prefix();
    let mut command = Command::new(&prefix[0]);
    command.args(&prefix[1..]).arg(binary);
    command
}
