//! The web panel in a real headless Chromium, driven by tests/support/panel_driver.py
//! (Selenium, Debian's chromium-driver) from inside the harness's namespace, where the
//! server's API listens.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Write as _};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::common::{prerequisite, runs};
use super::harness::{Harness, PYTHON};

/// Longest wait for an answer from the driver (its own waits take 20 s at most).
const WAIT: Duration = Duration::from_secs(60);

/// Whether Chromium, its WebDriver and Selenium are here; skips loudly (fails under CI).
pub fn prerequisites() -> bool {
    prerequisite("chromium (Debian chromium)", runs("/usr/bin/chromium", &["--version"]))
        && prerequisite(
            "chromedriver (Debian chromium-driver)",
            runs("/usr/bin/chromedriver", &["--version"]),
        )
        && prerequisite(
            "selenium (Debian python3-selenium)",
            runs(PYTHON, &["-c", "import selenium"]),
        )
}

/// A signed-in panel showing one room.
pub struct Panel {
    child: Child,
    commands: ChildStdin,
    answers: mpsc::Receiver<String>,
}

impl Panel {
    /// Opens the panel at `base` (`http://IP:PORT`), signs in with `token` and opens `room`.
    pub fn open(harness: &Harness, base: &str, token: &str, room: &str) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/panel_driver.py");
        let prefix = harness.exec_prefix();
        let mut child = Command::new(&prefix[0])
            .args(&prefix[1..])
            .args([PYTHON, script, base, token, room])
            // The browser has no business with the callers' PulseAudio servers.
            .env("PULSE_SERVER", "unix:/nonexistent")
            .env_remove("XDG_RUNTIME_DIR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let commands = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, answers) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut panel = Self { child, commands, answers };
        panel.expect("room");
        panel
    }

    fn expect(&mut self, wanted: &str) {
        let answer = self.answers.recv_timeout(WAIT).unwrap_or_else(|_| {
            panic!("the panel driver said nothing within {WAIT:?} (waiting for {wanted:?})")
        });
        assert_eq!(answer, wanted, "the panel driver failed");
    }

    fn send(&mut self, command: &str, answer: &str) {
        writeln!(self.commands, "{command}").unwrap();
        self.expect(answer);
    }

    /// Waits until the participant table shows `count` participants.
    pub fn wait_rows(&mut self, count: usize) {
        self.send(&format!("rows {count}"), &format!("rows {count}"));
    }

    /// Clicks `action`'s button in `account`'s row.
    pub fn click(&mut self, account: &str, action: &str) {
        self.send(&format!("click {account} {action}"), "clicked");
    }

    /// Waits until `action`'s button in `account`'s row reads `label`.
    pub fn wait_label(&mut self, account: &str, action: &str, label: &str) {
        self.send(&format!("label {account} {action} {label}"), &format!("label {label}"));
    }
}

impl Drop for Panel {
    fn drop(&mut self) {
        let _ = writeln!(self.commands, "quit");
        // The driver closes Chromium and exits; one that hangs is killed.
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
