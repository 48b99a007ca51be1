//! Logging: `tracing` events to standard error, as text or JSON, filtered by `log.filter`.
//! Text is coloured only when standard error is a terminal. Metrics: [`metrics`].

pub mod metrics;

use std::io::IsTerminal as _;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. Call once, after the configuration is loaded.
pub fn init_logging(config: &LogConfig) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(config.filter.to_env_filter())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match config.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
