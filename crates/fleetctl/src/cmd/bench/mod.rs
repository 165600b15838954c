//! `fleetctl bench …`: benchmarks that print their figures (medians, with the baseline
//! measured in the same run). Each starts a private tansu broker unless `--brokers` is given,
//! so the figures do not depend on other traffic (`bench history` needs none: it writes its
//! cache directly).

mod alerts;
mod churn;
mod connect;
mod history;
mod history_gen;
mod ingest;
mod ingest_cdc;
mod rules;

pub use alerts::alerts;
pub use churn::churn;
pub use connect::connect;
pub use history::history;
pub use ingest::ingest;
pub use rules::rules;

use crate::error::CliError;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use serde_json::Value;

pub(crate) fn rt(e: impl std::fmt::Display) -> CliError {
    CliError::Runtime(e.to_string())
}

pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

/// The `q`-quantile (0..=1) of `v` (sorted in place).
pub(crate) fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return 0.0;
    }
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// A broker to bench against: the given one, or a private tansu (kept alive by the guard).
pub(crate) async fn broker(
    given: &Option<String>,
) -> Result<(String, Option<fleet_testkit::Broker>), CliError> {
    match given {
        Some(b) => Ok((b.clone(), None)),
        None => {
            eprintln!("bench: starting a private tansu broker …");
            let b = tokio::task::spawn_blocking(fleet_testkit::Broker::start_memory)
                .await
                .map_err(rt)?;
            Ok((b.bootstrap(), Some(b)))
        }
    }
}

/// Creates topics (name, partitions).
pub(crate) async fn create_topics(brokers: &str, topics: &[(&str, i32)]) -> Result<(), CliError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(rt)?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1)))
        .collect();
    for r in admin
        .create_topics(&new, &AdminOptions::new())
        .await
        .map_err(rt)?
    {
        r.map_err(|(t, e)| rt(format!("create topic {t}: {e}")))?;
    }
    Ok(())
}

/// Runs `fleetctl ingest --idle-exit 1 --json` in a child process (so its peak RSS is its
/// own) on a fresh cache with `[kafka]` for `topics` plus `extra` TOML. Returns its JSON
/// after checking it consumed `expected` messages.
pub(crate) async fn run_ingest(
    brokers: &str,
    topics: &[(&str, &str)],
    extra: &str,
    expected: u64,
) -> Result<Value, CliError> {
    run_ingest_with(brokers, topics, extra, expected, &[]).await
}

/// [`run_ingest`] with extra `fleetctl ingest` arguments (e.g. the frame probe).
pub(crate) async fn run_ingest_with(
    brokers: &str,
    topics: &[(&str, &str)],
    extra: &str,
    expected: u64,
    args: &[&str],
) -> Result<Value, CliError> {
    let dir = tempfile::tempdir().map_err(rt)?;
    let cfg = dir.path().join("bench.toml");
    let mut toml = format!(
        "[kafka]\nbrokers = \"{brokers}\"\ngroup_id = \"bench-ingest-{}\"\nstart = \"earliest\"\n",
        fleet_core::store::now_ms()
    );
    for (name, kind) in topics {
        toml.push_str(&format!(
            "\n[[kafka.topics]]\nname = \"{name}\"\nkind = \"{kind}\"\n"
        ));
    }
    toml.push_str(&format!(
        "\n[store]\npath = \"{}\"\n\n{extra}",
        dir.path().join("cache.sqlite").display()
    ));
    std::fs::write(&cfg, toml).map_err(rt)?;
    let v = run_child_json("ingest", "ingest", &cfg, args).await?;
    let messages = v["messages"].as_u64().unwrap_or(0);
    if messages != expected {
        return Err(rt(format!(
            "ingest consumed {messages} messages, expected {expected}"
        )));
    }
    Ok(v)
}

/// Fills the broker as fast as it takes it: `messages` positions from `vehicles` simulated
/// vehicles (plus their status, info and alerts, to wherever `topics` sends them).
pub(crate) async fn prefill(
    brokers: &str,
    vehicles: u32,
    messages: u64,
    topics: fleet_core::sim::SimTopics,
    cdc: Option<fleet_core::sim::CdcOptions>,
) -> Result<fleet_core::sim::SimReport, CliError> {
    let opts = fleet_core::sim::SimOptions {
        brokers: brokers.to_string(),
        vehicles,
        rate_hz: 1.0,
        duration: std::time::Duration::ZERO,
        max_messages: Some(messages),
        unthrottled: true,
        topics,
        cdc,
        ..Default::default()
    };
    fleet_core::sim::run(opts, tokio_util::sync::CancellationToken::new())
        .await
        .map_err(rt)
}

/// Creates `bench.{name}.{stamp}` with `partitions` (and an aux topic for the simulator's
/// other output) and pre-fills it with `messages` simulated positions from `vehicles`.
/// Returns the topic, the positions produced and the simulator's report.
pub(crate) async fn prefill_positions(
    brokers: &str,
    name: &str,
    partitions: i32,
    messages: u64,
    vehicles: u32,
) -> Result<(String, u64, fleet_core::sim::SimReport), CliError> {
    let stamp = fleet_core::store::now_ms();
    let topic = format!("bench.{name}.{stamp}");
    let aux = format!("bench.{name}-aux.{stamp}");
    create_topics(brokers, &[(&topic, partitions), (&aux, 1)]).await?;
    eprintln!("bench: pre-filling {messages} position messages from {vehicles} vehicles …");
    let topics = fleet_core::sim::SimTopics {
        gps: topic.clone(),
        status: aux.clone(),
        info: aux.clone(),
        alerts: aux.clone(),
        devices: aux,
    };
    let fill = prefill(brokers, vehicles, messages, topics, None).await?;
    let produced = fill.produced.get(&topic).copied().unwrap_or(0);
    Ok((topic, produced, fill))
}

/// Runs this binary as `fleetctl CMD --config CFG --idle-exit 1 --json ARGS` with warnings
/// only, and returns its JSON (`what` names it in errors).
pub(crate) async fn run_child_json(
    what: &str,
    cmd: &str,
    cfg: &std::path::Path,
    args: &[&str],
) -> Result<Value, CliError> {
    let exe = std::env::current_exe().map_err(rt)?;
    let out = tokio::process::Command::new(exe)
        .args([cmd, "--config"])
        .arg(cfg)
        .args(["--idle-exit", "1", "--json"])
        .args(args)
        .env("FLEETDASH_LOG", "warn")
        .output()
        .await
        .map_err(rt)?;
    if !out.status.success() {
        return Err(rt(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| rt(format!("{what} output: {e}")))
}

/// A pass/fail word for the tables.
pub(crate) fn ok(b: bool) -> &'static str {
    if b { "ok" } else { "MISSED" }
}
