//! A real OpenDHT node driven by tests/support/opendht_peer.py, for the real-peer tests: 2.4.12
//! (Debian's python3-opendht, what jamid 13.7 runs) or 4.3.1 (today's Jami; the bindings that
//! scripts/build-peers builds).

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

/// Every wait on the peer is bounded by this.
const WAIT: Duration = Duration::from_secs(20);

pub const PYTHON: &str = "/usr/bin/python3";

/// Which OpenDHT a peer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenDht {
    /// 2.4.12, Debian bookworm's (jamid 13.7's generation).
    V2_4,
    /// 4.3.1, today's Jami's pin, built by scripts/build-peers.
    V4_3,
}

impl OpenDht {
    /// The generations to test against: both, each only once its binding imports. A missing
    /// one is skipped loudly, and fails the run under CI.
    pub fn available() -> Vec<Self> {
        [Self::V2_4, Self::V4_3]
            .into_iter()
            .filter(|generation| {
                let what = match generation {
                    Self::V2_4 => "python3-opendht (OpenDHT 2.4.12)",
                    Self::V4_3 => "OpenDHT 4.3.1's Python bindings (bash scripts/build-peers)",
                };
                crate::common::prerequisite(what, generation.imports())
            })
            .collect()
    }

    /// The PYTHONPATH its binding needs.
    fn python_path(self) -> Option<std::path::PathBuf> {
        match self {
            Self::V2_4 => None,
            Self::V4_3 => crate::common::peers_dir().map(|dir| dir.join("prefix/python")),
        }
    }

    /// The interpreter, with the generation's binding first on its path.
    pub fn python(self) -> Command {
        let mut command = Command::new(PYTHON);
        match self.python_path() {
            Some(path) => command.env("PYTHONPATH", path),
            None => command.env_remove("PYTHONPATH"),
        };
        command
    }

    fn imports(self) -> bool {
        if self == Self::V4_3 && self.python_path().is_none() {
            return false;
        }
        let check =
            "import opendht, sys; sys.exit(0 if hasattr(opendht, 'version') == WANT else 1)"
                .replace("WANT", if self == Self::V4_3 { "True" } else { "False" });
        self.python().args(["-c", &check]).output().is_ok_and(|output| output.status.success())
    }
}

/// An OpenDHT node driven by tests/support/opendht_peer.py.
pub struct PythonPeer {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<Json>,
    port: u16,
}

impl PythonPeer {
    /// A 2.4.12 node.
    pub fn start(port: u16, bootstrap: &[String]) -> Self {
        Self::start_with(OpenDht::V2_4, port, bootstrap)
    }

    /// A node of `generation`.
    pub fn start_with(generation: OpenDht, port: u16, bootstrap: &[String]) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/opendht_peer.py");
        let mut child = generation
            .python()
            .arg(script)
            .arg(port.to_string())
            .args(bootstrap)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(serde_json::from_str(&line).unwrap()).is_err() {
                    break;
                }
            }
        });
        let mut peer = Self { child, stdin, lines, port };
        let ready = peer.next(|line| line.get("ready").is_some());
        assert_eq!(ready["port"], port);
        peer
    }

    /// The next line satisfying `wanted`, within [`WAIT`]; other lines are dropped.
    pub fn next(&mut self, wanted: impl Fn(&Json) -> bool) -> Json {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line =
                self.lines.recv_timeout(left).expect("python3-opendht peer answered in time");
            if wanted(&line) {
                return line;
            }
        }
    }

    pub fn command(&mut self, command: Json) -> Json {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        self.next(|line| line.get("event").is_none())
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for PythonPeer {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"cmd": "quit"}));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
    }
}

/// A UDP port free at the time of asking.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
