//! One module per command; each returns the JSON object printed with `--json`.

mod ack;
mod alerts;
mod bench;
mod chart;
mod check;
mod connect;
mod demo;
mod export;
mod fields;
mod frame_probe;
mod history;
mod ingest;
mod sim;
mod stats;
mod vehicles;

use crate::cli::{BenchCommand, Command, ConfigArg};
use crate::error::CliError;
use fleet_core::Config;
use fleet_core::decode::ts::parse_ts;
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
        Command::History(a) => history::run(a).await,
        Command::Chart(a) => chart::run(a).await,
        Command::Alerts(a) => alerts::run(a).await,
        Command::Ack(a) => ack::run(a).await,
        Command::Bench(BenchCommand::Ingest(a)) => bench::ingest(a).await,
        Command::Bench(BenchCommand::Rules(a)) => bench::rules(a).await,
        Command::Bench(BenchCommand::Alerts(a)) => bench::alerts(a).await,
        Command::Bench(BenchCommand::Churn(a)) => bench::churn(a).await,
        Command::Bench(BenchCommand::History(a)) => bench::history(a).await,
        Command::Demo(a) => demo::run(a).await,
        Command::Check(a) => check::run(a).await,
        Command::Connect(a) => connect::run(a).await,
        Command::Fields(a) => fields::run(a).await,
        Command::Vehicles(a) => vehicles::run(a).await,
        Command::Bench(BenchCommand::Connect(a)) => bench::connect(a).await,
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

/// A `--from`/`--to` value: RFC 3339 or ms since the epoch (bad input is a usage error).
pub fn parse_time(flag: &str, s: &str) -> Result<i64, CliError> {
    parse_ts(&Value::String(s.to_string())).map_err(|_| {
        CliError::Usage(format!(
            "--{flag} `{s}`: expected RFC 3339 (2024-05-01T08:00:00Z) or ms epoch"
        ))
    })
}

/// The `[from, to]` a command looks at: `--to` defaults to now and `--from` to `default_span_ms`
/// before `--to`. A range that ends before it starts is a usage error (SPEC §4, exit 2).
pub fn time_range(
    from: Option<&str>,
    to: Option<&str>,
    default_span_ms: i64,
) -> Result<(i64, i64), CliError> {
    let to_ms = match to {
        Some(s) => parse_time("to", s)?,
        None => fleet_core::store::now_ms(),
    };
    let from_ms = match from {
        Some(s) => parse_time("from", s)?,
        None => to_ms.saturating_sub(default_span_ms),
    };
    if from_ms > to_ms {
        return Err(CliError::Usage(format!(
            "--from ({}) is after --to ({}): the range must not end before it starts",
            rfc3339(from_ms),
            rfc3339(to_ms)
        )));
    }
    Ok((from_ms, to_ms))
}

/// A time for people (UTC, seconds).
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}
