//! The command line: `rdv run` and `rdv room ...`.

mod output;
mod room;
mod run;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use rdv::config::{CONFIG_FILE_ENV, Config, LogFormat, Overrides};

/// rdv: a rendezvous-point conference server for the Jami network. Each room is a Jami
/// account that Jami users call.
#[derive(Debug, Parser)]
#[command(name = "rdv", version)]
pub(crate) struct Cli {
    /// Config file (TOML). Default: ./rdv.toml when it exists.
    #[arg(long, global = true, env = CONFIG_FILE_ENV, value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,
    /// Data directory, holding the database with the rooms' keys [default: ./data].
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Log filter: a level or `target=level` directives [default: info].
    #[arg(long, global = true, value_name = "FILTER")]
    log_filter: Option<String>,
    /// Log format [default: text].
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server on the configured data directory.
    Run {
        /// A DHT node to join the network through, HOST:PORT; repeatable. Replaces
        /// `dht.bootstrap`.
        #[arg(long, value_name = "HOST:PORT")]
        bootstrap: Vec<String>,
    },
    /// Create, list, show and delete rooms.
    #[command(subcommand)]
    Room(room::RoomCommand),
}

impl Cli {
    /// The configuration values given as flags.
    pub(crate) fn overrides(&self) -> Overrides {
        Overrides {
            data_dir: self.data_dir.clone(),
            log_filter: self.log_filter.clone(),
            log_format: self.log_format,
            bootstrap: match &self.command {
                Command::Run { bootstrap } => bootstrap.clone(),
                Command::Room(_) => Vec::new(),
            },
        }
    }

    /// Runs the command.
    pub(crate) async fn execute(self, config: &Config) -> anyhow::Result<()> {
        match self.command {
            Command::Run { .. } => run::run(config).await,
            Command::Room(command) => command.execute(config).await,
        }
    }
}
