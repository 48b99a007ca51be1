//! The real-client harness (tests/support/jamid-harness.py, the project's copy of
//! ../shared/interop/jamid-harness.py that also runs today's jamid 16.0.0) driven from tests:
//! real jamid daemons in a private network namespace of the test's own.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::{Command, Output};

use super::common::{Rdv, prerequisite, runs};
use super::server::Server;

/// Debian's python, which has python3-opendht, python3-dbus and python3-gi.
pub const PYTHON: &str = "/usr/bin/python3";

/// How many times a jamid start is tried (see [`Harness::start_instance`]).
const START_ATTEMPTS: u32 = 3;

/// Where scripts/build-jamid leaves today's jamid (16.0.0) unless `JAMID16_BIN` says.
const JAMID16_DEFAULT: &str = "/var/cache/rdv-peers/jamid16/current/bin/jamid";

/// Which Jami daemon an instance runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Jamid {
    /// The harness's default: `JAMID_BIN` when the whole run is against another jamid, else
    /// Debian's 13.7.0.
    Default,
    /// Debian bookworm's jamid 13.7.0.
    Debian,
    /// Today's jamid 16.0.0, built by scripts/build-jamid.
    Today(PathBuf),
}

impl Jamid {
    /// Today's jamid, if built here: `JAMID16_BIN`, else scripts/build-jamid's cache.
    pub fn today() -> Option<Self> {
        let path = std::env::var_os("JAMID16_BIN")
            .map_or_else(|| PathBuf::from(JAMID16_DEFAULT), PathBuf::from);
        path.is_file().then_some(Self::Today(path))
    }
}

/// The harness with a namespace and state directory of its own; stopped on drop.
pub struct Harness {
    script: PathBuf,
    netns: String,
    root: tempfile::TempDir,
}

impl Harness {
    pub fn new() -> Self {
        let netns = format!("rdvt{}", std::process::id() % 100_000);
        Self { script: script(), netns, root: tempfile::tempdir().unwrap() }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(PYTHON);
        command
            .arg(&self.script)
            .args(args)
            .env("JAMID_HARNESS_NETNS", &self.netns)
            .env("JAMID_HARNESS_ROOT", self.root.path());
        command
    }

    /// Runs a harness command, failing the test on error; returns its standard output.
    pub fn run(&self, args: &[&str]) -> String {
        let Output { status, stdout, stderr } = self.command(args).output().unwrap();
        assert!(status.success(), "harness {args:?} failed: {}", String::from_utf8_lossy(&stderr));
        String::from_utf8(stdout).unwrap().trim().to_owned()
    }

    /// Starts a jamid instance. jamid 13.7 occasionally exits while starting under load, and
    /// the harness can report a start as failed while jamid is still exec'ing; the documented
    /// recovery (interop/README.md §5.7) is to stop what is left and `start` again.
    pub fn start_instance(&self, name: &str) {
        self.start_instance_as(name, &Jamid::Default);
    }

    /// Starts a jamid instance of the given kind (see [`Harness::start_instance`]).
    pub fn start_instance_as(&self, name: &str, jamid: &Jamid) {
        for attempt in 1..=START_ATTEMPTS {
            let mut start = self.command(&["start", name]);
            match jamid {
                Jamid::Default => &mut start,
                Jamid::Debian => start.env_remove("JAMID_BIN"),
                Jamid::Today(path) => start.env("JAMID_BIN", path),
            };
            let Output { status, stderr, .. } = start.output().unwrap();
            if status.success() {
                return;
            }
            eprintln!(
                "jamid start attempt {attempt} failed: {}",
                String::from_utf8_lossy(&stderr).trim()
            );
            print_log_tails(self.root.path());
            let _ = self.command(&["stop", name]).output();
        }
        panic!("jamid {name} did not start in {START_ATTEMPTS} attempts");
    }

    /// A harness whose namespace is up, with an OpenDHT node on 127.0.0.1:4222 in it.
    pub fn with_dht() -> Self {
        let harness = Self::new();
        harness.run(&["netns-up"]);
        harness.run(&["dht-start", "--port", "4222"]);
        harness
    }

    /// Starts jamid `name` with a new account on the namespace's DHT; returns its Jami ID.
    pub fn add_account(&self, name: &str) -> String {
        self.add_account_as(name, &Jamid::Default)
    }

    /// Starts a jamid of the given kind as `name`, with a new account on the namespace's DHT;
    /// returns its Jami ID.
    pub fn add_account_as(&self, name: &str, jamid: &Jamid) -> String {
        self.start_instance_as(name, jamid);
        self.run(&["create-account", name, "--dht", "127.0.0.1:4222"]);
        let id = self.run(&["id", name]);
        assert_eq!(id.len(), 40, "{id}");
        id
    }

    /// Creates room `name` in `rdv`'s data directory and runs the server inside the
    /// namespace, on its DHT, until the room is announced; returns the server and the room's
    /// Jami ID.
    pub fn serve_room(&self, rdv: &Rdv, name: &str) -> (Server, String) {
        let room = rdv.run(&["room", "create", name, "--json"]).json();
        let room_id = room["jami_id"].as_str().unwrap().to_owned();
        (self.start_server(rdv), room_id)
    }

    /// Runs the server for room `name`, already created in `rdv`'s data directory; returns the
    /// server and the room's Jami ID.
    pub fn serve_room_created(&self, rdv: &Rdv, name: &str) -> (Server, String) {
        let room = rdv.run(&["room", "show", name, "--json"]).json();
        let room_id = room["jami_id"].as_str().unwrap().to_owned();
        (self.start_server(rdv), room_id)
    }

    /// Runs the server on `rdv`'s data directory inside the namespace, on its DHT, until its
    /// rooms are announced.
    pub fn start_server(&self, rdv: &Rdv) -> Server {
        let prefix = self.exec_prefix();
        let wrapper: Vec<&str> = prefix.iter().map(String::as_str).collect();
        let mut server = Server::start(rdv, &wrapper, "127.0.0.1:4222");
        server.wait_for(&["device announcement stored on the DHT"]);
        server
    }

    /// `name` calls the room and waits until its call is CURRENT with media flowing and the
    /// server counts `nth` joins in all; returns the call's id.
    pub fn join(&self, server: &mut Server, name: &str, room_id: &str, nth: usize) -> String {
        let placed = std::time::Instant::now();
        let call = self.run(&["call", name, room_id, "--wait", "CURRENT", "--timeout", "10"]);
        eprintln!("{name}: CURRENT {:?} after placing the call", placed.elapsed());
        self.run(&["wait-state", name, "MEDIA", "--call", &call]);
        server.wait_for_nth(&["participant joined"], nth);
        call
    }

    /// `name` holds call `call`, then takes it off hold (13.7's D-Bus says unhold, 16.0's
    /// resume), waiting each time for the room to answer the re-INVITE; `answered` is how
    /// many re-INVITEs the room answered before.
    #[allow(dead_code)] // not every test binary holds calls
    pub fn hold_and_resume(&self, server: &mut Server, name: &str, call: &str, answered: usize) {
        self.run(&["dbus", name, "hold", call]);
        server.wait_for_nth(&["call answered", "reinvite=true"], answered + 1);
        let unhold = self.command(&["dbus", name, "unhold", call]).output().unwrap();
        if !unhold.status.success() {
            let stderr = String::from_utf8_lossy(&unhold.stderr);
            assert!(stderr.contains("unknown method"), "{unhold:?}");
            self.run(&["dbus", name, "resume", call]);
        }
        server.wait_for_nth(&["call answered", "reinvite=true"], answered + 2);
        self.run(&["wait-state", name, "CURRENT", "--call", call]);
    }

    /// The confInfo entries `name`'s jamid shows for call `call`, once there are `count`
    /// (string maps, as jamid reports them).
    pub fn conference_info(
        &self,
        name: &str,
        call: &str,
        count: usize,
    ) -> Vec<std::collections::BTreeMap<String, String>> {
        let out = self.run(&[
            "conference-info",
            name,
            "--call",
            call,
            "--wait-count",
            &count.to_string(),
            "--timeout",
            "10",
        ]);
        let infos: serde_json::Value = serde_json::from_str(&out).unwrap();
        let entries = infos
            .as_object()
            .and_then(|calls| calls.values().find_map(|c| c["infos"].as_array().cloned()))
            .unwrap_or_default();
        entries.into_iter().map(|entry| serde_json::from_value(entry).unwrap()).collect()
    }

    /// The command prefix that runs a program inside the namespace.
    pub fn exec_prefix(&self) -> Vec<String> {
        vec![
            "env".into(),
            format!("JAMID_HARNESS_NETNS={}", self.netns),
            format!("JAMID_HARNESS_ROOT={}", self.root.path().display()),
            PYTHON.into(),
            self.script.to_string_lossy().into_owned(),
            "exec".into(),
            "--".into(),
        ]
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if std::thread::panicking() {
            print_log_tails(self.root.path());
        }
        let _ = self.command(&["stop-all"]).output();
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/jamid-harness.py")
}

/// Prints the end of every jamid log under the harness root: the evidence of a failure.
fn print_log_tails(root: &std::path::Path) {
    for log in glob_logs(root) {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        eprintln!("--- {} (last 40 lines)", log.display());
        for line in tail.into_iter().rev() {
            eprintln!("{line}");
        }
    }
}

/// The `*/jamid.log` files under the harness root.
fn glob_logs(root: &std::path::Path) -> Vec<PathBuf> {
    std::fs::read_dir(root)
        .map(|entries| {
            entries.flatten().map(|e| e.path().join("jamid.log")).filter(|p| p.is_file()).collect()
        })
        .unwrap_or_default()
}

/// Whether this machine can run the harness; skips loudly (fails under CI) when not.
pub fn prerequisites() -> bool {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    prerequisite("root (network namespaces)", root)
        && prerequisite("tests/support/jamid-harness.py", script().is_file())
        && prerequisite("jamid (Debian jami-daemon)", PathBuf::from("/usr/libexec/jamid").is_file())
        && std::env::var_os("JAMID_BIN").is_none_or(|jamid| {
            prerequisite("the jamid JAMID_BIN names", PathBuf::from(jamid).is_file())
        })
        && prerequisite("ip (Debian iproute2)", runs("ip", &["-V"]))
        && prerequisite("pulseaudio", runs("pulseaudio", &["--version"]))
        && prerequisite(
            "python3-dbus, python3-gi, python3-opendht",
            runs(PYTHON, &["-c", "import dbus, gi, opendht"]),
        )
}
