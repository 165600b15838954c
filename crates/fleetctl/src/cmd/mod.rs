//! One module per command; each returns the JSON object printed with `--json`.

mod ack;
mod alerts;
mod bench;
mod check;
mod demo;
mod export;
mod frame_probe;
mod ingest;
mod sim;
mod stats;

use crate::cli::{BenchCommand, Command, ConfigArg};
use crate::error::CliError;
use fleet_core::Config;
use fleet_core::store::Store;
use serde_json::Value;
use std::path::PathBuf;

/// Runs a command.
pub async fn run(cmd: Command) -> Result<Value, CliError> {
    match cmd {
        Command::Sim(a) => sim::run(a).await,
        Command::Ingest(a) => ingest::run(a).await,
        Command::Stats(a) => stats::run(a).await,
        Command::Export(a) => export::run(a).await,
        Command::Alerts(a) => alerts::run(a).await,
        Command::Ack(a) => ack::run(a).await,
        Command::Bench(BenchCommand::Ingest(a)) => bench::ingest(a).await,
        Command::Bench(BenchCommand::Rules(a)) => bench::rules(a).await,
        Command::Bench(BenchCommand::Alerts(a)) => bench::alerts(a).await,
        Command::Bench(BenchCommand::Churn(a)) => bench::churn(a).await,
        Command::Demo(a) => demo::run(a).await,
        Command::Check(a) => check::run(a).await,
    }
}

/// Loads the config by the SPEC §3 lookup. Without any file, commands that only read the
/// cache use the defaults (the default cache path); `required` commands fail with exit 2.
pub fn load_config(arg: &ConfigArg, required: bool) -> Result<(Config, Option<PathBuf>), CliError> {
    match Config::discover(arg.config.as_deref())? {
        Some((cfg, path)) => Ok((cfg, Some(path))),
        None if required => Err(CliError::Usage(
            "no config file (--config, $FLEETDASH_CONFIG or the per-user default); `fleetctl demo` runs the embedded demo".into(),
        )),
        None => Ok((Config::default(), None)),
    }
}

/// Opens the cache named by the config.
pub async fn open_store(cfg: &Config) -> Result<Store, CliError> {
    let path = cfg.store_path();
    Ok(Store::open(&path).await?)
}
