//! The admin API of a server under test, called with curl from inside the harness's namespace
//! (where the server listens), as an operator or a bot would call it.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::harness::Harness;
use super::server::{ADMIN_TOKEN, Server};

/// Longest wait for an API response or an event.
const WAIT: Duration = Duration::from_secs(20);

/// The admin API of one server.
pub struct Api {
    prefix: Vec<String>,
    base: String,
    metrics: String,
}

impl Api {
    /// The API of `server`, which runs in `harness`'s namespace.
    pub fn new(harness: &Harness, server: &mut Server) -> Self {
        Self::through(harness.exec_prefix(), server)
    }

    /// The API of `server`, which runs on this host's loopback.
    pub fn on_host(server: &mut Server) -> Self {
        Self::through(Vec::new(), server)
    }

    fn through(prefix: Vec<String>, server: &mut Server) -> Self {
        let base = format!("http://{}", server.api_address());
        let metrics = format!("http://{}/metrics", server.metrics_address());
        Self { prefix, base, metrics }
    }

    /// A command for `program args...`, through the namespace prefix if any.
    fn command(&self, program: &str) -> Command {
        match self.prefix.split_first() {
            Some((wrapper, rest)) => {
                let mut command = Command::new(wrapper);
                command.args(rest).arg(program);
                command
            }
            None => Command::new(program),
        }
    }

    fn curl(&self, args: &[&str]) -> Command {
        let mut command = self.command("curl");
        command.args(["-sS", "--max-time", "20"]).args(args);
        command
    }

    /// Sends a request with the admin token; returns the status and the body.
    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        self.request_as(Some(ADMIN_TOKEN), method, path, body)
    }

    /// Sends a request with `token` (or none); returns the status and the body.
    pub fn request_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, String) {
        let authorization = token.map(|token| format!("Authorization: Bearer {token}"));
        self.send(method, path, authorization.as_slice(), body)
    }

    /// Opens a WebSocket at `path` with the admin token, expecting a refusal; returns the
    /// status and the body.
    #[allow(dead_code)] // not every test opens WebSockets
    pub fn websocket_refusal(&self, path: &str) -> (u16, String) {
        let headers = [
            format!("Authorization: Bearer {ADMIN_TOKEN}"),
            "Connection: Upgrade".to_owned(),
            "Upgrade: websocket".to_owned(),
            "Sec-WebSocket-Version: 13".to_owned(),
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==".to_owned(),
        ];
        self.send("GET", path, &headers, None)
    }

    /// Sends a request with `headers` (and a JSON body); returns the status and the body.
    fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[String],
        body: Option<&str>,
    ) -> (u16, String) {
        let url = format!("{}{path}", self.base);
        let mut args = vec!["-X", method, "-w", "\n%{http_code}", &url];
        for header in headers {
            args.extend(["-H", header]);
        }
        if let Some(body) = body {
            args.extend(["-H", "Content-Type: application/json", "--data-binary", body]);
        }
        let output = self.curl(&args).output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "curl {method} {path} failed: {output:?}");
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
        (status.trim().parse().unwrap(), body.to_owned())
    }

    /// A request that must succeed with `expected` status; returns the JSON body (null if none).
    pub fn expect(
        &self,
        expected: u16,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> serde_json::Value {
        let (status, text) = self.request(method, path, body);
        assert_eq!(status, expected, "{method} {path}: {text}");
        if text.trim().is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        }
    }

    /// The value of the Prometheus sample `name` (with its labels, as in
    /// `rdv_calls_total{outcome="answered"}`) on the metrics listener; 0 when absent.
    pub fn metric(&self, name: &str) -> f64 {
        let output = self.curl(&[&self.metrics]).output().unwrap();
        assert!(output.status.success(), "curl {} failed: {output:?}", self.metrics);
        let text = String::from_utf8_lossy(&output.stdout);
        text.lines()
            .filter_map(|line| line.rsplit_once(' '))
            .find(|(sample, _)| *sample == name)
            .map_or(0.0, |(_, value)| value.parse().unwrap())
    }

    /// The room's participants.
    pub fn participants(&self, room: &str) -> Vec<serde_json::Value> {
        let list = self.expect(200, "GET", &format!("/api/v1/rooms/{room}/participants"), None);
        list.as_array().unwrap().clone()
    }

    /// The participant id of `account` in the room.
    pub fn participant_id(&self, room: &str, account: &str) -> u64 {
        let participants = self.participants(room);
        let found = participants.iter().find(|p| p["account"] == account);
        found.unwrap_or_else(|| panic!("{account} not among {participants:?}"))["id"]
            .as_u64()
            .unwrap()
    }

    /// Opens an event stream (`path` such as `/api/v1/rooms/lobby/events`).
    pub fn events(&self, path: &str) -> Events {
        let url = format!("{}{path}", self.base);
        let authorization = format!("Authorization: Bearer {ADMIN_TOKEN}");
        let mut child = self
            .command("curl")
            .args(["-sSN", "-H", &authorization, &url])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(data) = line.strip_prefix("data:")
                    && let Ok(event) = serde_json::from_str::<serde_json::Value>(data.trim())
                    && sender.send(event).is_err()
                {
                    break;
                }
            }
        });
        Events { child, lines, seen: Vec::new() }
    }
}

/// An open event stream.
pub struct Events {
    child: Child,
    lines: mpsc::Receiver<serde_json::Value>,
    seen: Vec<serde_json::Value>,
}

impl Events {
    /// Waits for the next event of `kind` (its `type`) that satisfies `check`, skipping others;
    /// returns it.
    pub fn next(
        &mut self,
        kind: &str,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(event) => {
                    self.seen.push(event.clone());
                    if event["kind"]["type"] == kind && check(&event["kind"]) {
                        return event;
                    }
                }
                Err(_) => panic!("no {kind} event within {WAIT:?}; seen: {:#?}", self.seen),
            }
        }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
