//! Tones through real jamid callers: each caller plays its own tone into its microphone and
//! records its speaker; the recording's levels show whom it hears.

#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::process::{Child, Stdio};

use super::harness::Harness;

/// A caller and the frequency of its tone, Hz.
pub type Caller<'a> = (&'a str, u32);

/// A tone playing in a caller's microphone until dropped.
pub struct Playing(Child);

impl Drop for Playing {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Callers ready to call: the harness, the directory of their tones, their Jami IDs.
pub struct Callers {
    /// The harness, with its DHT.
    pub harness: Harness,
    /// Tones and recordings.
    pub dir: tempfile::TempDir,
    /// Each caller's Jami ID, in order.
    pub ids: Vec<String>,
}

/// A harness with a DHT and a jamid with an account and a tone for each caller; `None` (the
/// test is skipped, loudly) when this machine cannot run jamid.
pub fn start_callers(callers: &[Caller<'_>]) -> Option<Callers> {
    if !super::harness::prerequisites() {
        return None;
    }
    let harness = Harness::with_dht();
    let dir = tempfile::tempdir().unwrap();
    add_callers(&harness, dir.path(), callers);
    let ids = callers.iter().map(|(name, _)| harness.run(&["id", name])).collect();
    Some(Callers { harness, dir, ids })
}

/// Starts a jamid with an account for each caller and writes its tone into `dir`.
pub fn add_callers(harness: &Harness, dir: &Path, callers: &[Caller<'_>]) {
    for (name, freq) in callers {
        harness.add_account(name);
        make_tone(harness, dir, name, *freq);
    }
}

/// Writes `name`'s 30 s tone at `freq` into `dir`.
pub fn make_tone(harness: &Harness, dir: &Path, name: &str, freq: u32) {
    let tone = dir.join(format!("{name}.wav"));
    harness.run(&["tone", tone.to_str().unwrap(), "--freq", &freq.to_string(), "--seconds", "30"]);
}

/// Plays `name`'s tone (made by [`make_tone`]) into its microphone, in a loop, until dropped.
pub fn play(harness: &Harness, dir: &Path, name: &str) -> Playing {
    let tone = dir.join(format!("{name}.wav"));
    let child = harness
        .command(&["play", name, tone.to_str().unwrap(), "--loop"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    Playing(child)
}

/// Records `name`'s speaker for 3 s and returns each caller tone's level, dBFS, over the
/// last 2 s.
pub fn heard(harness: &Harness, dir: &Path, name: &str, callers: &[Caller<'_>]) -> Vec<(u32, f64)> {
    let file = dir.join(format!("{name}-heard.wav"));
    let file = file.to_str().unwrap();
    harness.run(&["record", name, file, "--seconds", "3"]);
    let mut args = vec!["analyze", file, "--skip", "1"];
    let freqs: Vec<String> = callers.iter().map(|(_, f)| f.to_string()).collect();
    for freq in &freqs {
        args.extend(["--freq", freq]);
    }
    let analysis: serde_json::Value = serde_json::from_str(&harness.run(&args)).unwrap();
    callers
        .iter()
        .map(|(_, freq)| {
            let key = format!("{freq}.0");
            (*freq, analysis["tones_dbfs"][&key].as_f64().unwrap())
        })
        .collect()
}

/// Asserts that each of `callers` hears the others' tones and not its own. A jamid that just
/// joined takes a moment (longer on a loaded machine) before it plays what it receives, so
/// each caller is recorded again until its expectations hold, 8 times at most.
pub fn assert_mix_minus(harness: &Harness, dir: &Path, callers: &[Caller<'_>]) {
    for (name, own) in callers {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let levels = heard(harness, dir, name, callers);
            eprintln!("{name} hears {levels:?} (recording {attempt})");
            let wrong: Vec<String> = levels
                .iter()
                .filter_map(|(freq, level)| {
                    let fine = if freq == own { *level < -50.0 } else { *level > -30.0 };
                    (!fine).then(|| format!("{freq} Hz at {level} dBFS"))
                })
                .collect();
            if wrong.is_empty() {
                break;
            }
            assert!(attempt < 8, "{name} (own tone {own} Hz) hears {wrong:?}");
        }
    }
}
