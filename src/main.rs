//! The `rdv` command.

mod cli;

use std::fmt::Display;
use std::process::ExitCode;

use clap::Parser as _;
use rdv::config::{Config, ENV_PREFIX};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let environment = match prefixed_environment() {
        Ok(environment) => environment,
        Err(error) => return fail(error),
    };
    let config = match Config::load(cli.config.as_deref(), environment, &cli.overrides()) {
        Ok(config) => config,
        Err(error) => return fail(error),
    };
    rdv::telemetry::init_logging(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return fail(format_args!("cannot start the async runtime: {error}")),
    };
    match runtime.block_on(cli.execute(&config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(format_args!("{error:#}")),
    }
}

/// The `RDV_*` environment variables; a value that is not UTF-8 is an error, not ignored.
fn prefixed_environment() -> Result<Vec<(String, String)>, String> {
    std::env::vars_os()
        .filter_map(|(name, value)| {
            let name = name.into_string().ok().filter(|name| name.starts_with(ENV_PREFIX))?;
            Some(match value.into_string() {
                Ok(value) => Ok((name, value)),
                Err(_) => Err(format!("environment variable {name} is not valid UTF-8")),
            })
        })
        .collect()
}

/// Prints the error on one line of standard error and returns the failure exit code.
fn fail(error: impl Display) -> ExitCode {
    let message = error.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
    eprintln!("error: {message}");
    ExitCode::FAILURE
}
