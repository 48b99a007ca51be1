//! Recording a room: a listener in the mix that writes what it hears (everyone) as Ogg Opus.
//! The mixer already encodes that mix; the recorder only packs the packets into pages, on a
//! blocking thread, and finishes the file (end-of-stream page) when its route closes: when
//! the recording is stopped, the room empties, or the room stops.

use std::fs::OpenOptions;
use std::io::BufWriter;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::media::Outgoing;
use crate::media::ogg_opus::OggOpusWriter;

/// A recording in progress.
pub(super) struct Recorder {
    /// The file being written.
    pub(super) file: PathBuf,
    /// Ends with the seconds written once the file is complete.
    task: JoinHandle<Result<f64, String>>,
}

impl Recorder {
    /// Creates `file` (and its directory, private) and starts writing the packets of `mix`
    /// into it. A file that cannot be created is refused before anything is recorded.
    pub(super) fn start(file: PathBuf, mix: mpsc::Receiver<Outgoing>) -> Result<Self, String> {
        let output = create(&file).map_err(|error| format!("{}: {error}", file.display()))?;
        let writer = OggOpusWriter::new(BufWriter::new(output), rand::random(), "rdv")
            .map_err(|error| format!("{}: {error}", file.display()))?;
        let path = file.clone();
        let task = tokio::task::spawn_blocking(move || write(writer, mix, &path));
        Ok(Self { file, task })
    }

    /// Waits until the file is complete (its route must be closed first); the seconds written.
    pub(super) async fn finished(self) -> Result<f64, String> {
        self.task.await.map_err(|error| error.to_string())?
    }
}

fn create(file: &Path) -> std::io::Result<std::fs::File> {
    if let Some(directory) = file.parent() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(directory)?;
    }
    OpenOptions::new().write(true).create_new(true).mode(0o600).open(file)
}

fn write(
    mut writer: OggOpusWriter<BufWriter<std::fs::File>>,
    mut mix: mpsc::Receiver<Outgoing>,
    file: &Path,
) -> Result<f64, String> {
    let describe = |error: std::io::Error| format!("{}: {error}", file.display());
    while let Some(Outgoing::Audio { index, payload }) = mix.blocking_recv() {
        if let Err(error) = writer.push(payload, index) {
            warn!(file = %file.display(), %error, "recording stopped: the file cannot be written");
            return Err(describe(error));
        }
    }
    let seconds = writer.seconds();
    writer.finish().map_err(describe)?;
    info!(file = %file.display(), seconds, "recording finished");
    Ok(seconds)
}
