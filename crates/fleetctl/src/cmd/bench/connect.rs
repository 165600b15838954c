//! `fleetctl bench connect`: the Kafka → Redis loader's throughput beside a Python peer
//! (confluent-kafka + redis-py, pipelined GEOADD of 1,000 per round trip, commit after each
//! pipeline) and the bare librdkafka consumer on the same broker, in the same run.
//!
//! Each contender loads the same pre-filled topic from its beginning under a fresh consumer
//! group into its own geo set, in its own process; each is timed from its first message to
//! its last offset commit, and its set must end up holding every vehicle. Medians over
//! `--runs`, contenders interleaved per run so drift on a shared machine hits all alike.

use super::ingest::bare_consume;
use super::{broker, median, ok, prefill_positions, rt, run_child_json};
use crate::cli::BenchConnectArgs;
use crate::error::CliError;
use fleet_core::store::now_ms;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// The peer, shipped inside the binary so the bench runs from an installed `fleetctl` too.
const PEER: &str = include_str!("../../../bench/connect_peer.py");

pub async fn connect(a: BenchConnectArgs) -> Result<Value, CliError> {
    let python = a
        .python
        .clone()
        .or_else(|| std::env::var_os("FLEETDASH_PYTHON").map(PathBuf::from))
        .ok_or_else(|| {
            CliError::Usage(
                "no Python for the peer: pass --python or set $FLEETDASH_PYTHON (`./dev bench connect` uses the one `./dev setup` made)".into(),
            )
        })?;
    let (brokers, _guard) = broker(&a.brokers).await?;
    let (topic, produced, _) =
        prefill_positions(&brokers, "connect", a.partitions, a.messages, a.vehicles).await?;
    let stamp = now_ms();
    eprintln!("bench: produced {produced} positions");
    let dir = tempfile::tempdir().map_err(rt)?;
    let peer = dir.path().join("connect_peer.py");
    std::fs::write(&peer, PEER).map_err(rt)?;
    let redis = redis::Client::open(a.redis.as_str()).map_err(rt)?;
    let mut redis = redis.get_multiplexed_async_connection().await.map_err(rt)?;

    let (mut ceiling, mut ours, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=a.runs {
        let (b, t, n, parts) = (brokers.clone(), topic.clone(), produced, a.partitions);
        let c = tokio::task::spawn_blocking(move || bare_consume(&b, &t, parts, n))
            .await
            .map_err(rt)??;
        ceiling.push(c);

        let key = format!("bench:connect:{stamp}:{run}:fleetctl");
        let v = run_fleetctl(dir.path(), &brokers, &a.redis, &topic, &key, run).await?;
        let members = check_loaded(&mut redis, &key, &v, produced, None).await?;
        if members * 100 < u64::from(a.vehicles) * 99 {
            return Err(rt(format!(
                "fleetctl connect loaded only {members} of {} vehicles: {v}",
                a.vehicles
            )));
        }
        let r = v["rate"].as_f64().unwrap_or(0.0);
        ours.push(r);

        let key = format!("bench:connect:{stamp}:{run}:python");
        let group = format!("bench-connect-peer-{stamp}-{run}");
        let v = run_peer(
            &python, &peer, &brokers, &topic, &group, &a.redis, &key, produced,
        )
        .await?;
        check_loaded(&mut redis, &key, &v, produced, Some(members)).await?;
        let p = v["rate"].as_f64().unwrap_or(0.0);
        theirs.push(p);
        eprintln!(
            "bench: run {run}/{}: bare consumer {c:.0} msg/s, fleetctl connect {r:.0} msg/s, python peer {p:.0} msg/s ({:.2}×)",
            a.runs,
            r / p.max(1e-9)
        );
    }
    let (c, r, p) = (median(&mut ceiling), median(&mut ours), median(&mut theirs));
    let (vs_peer, vs_ceiling) = (r / p.max(1e-9), r / c.max(1e-9));
    eprintln!(
        "\nbench connect — {produced} position messages, {} vehicles, {} partitions (medians of {} runs)",
        a.vehicles, a.partitions, a.runs
    );
    eprintln!("  bare rdkafka consumer (ceiling) {c:>10.0} msg/s");
    eprintln!(
        "  fleetctl connect                {r:>10.0} msg/s   {:>5.1} % of ceiling",
        100.0 * vs_ceiling
    );
    eprintln!("  python peer                     {p:>10.0} msg/s");
    eprintln!(
        "  fleetctl / peer                 {vs_peer:>10.2} ×       target ≥ 2 ×           {}",
        ok(vs_peer >= 2.0)
    );
    Ok(json!({
        "messages": produced,
        "vehicles": a.vehicles,
        "partitions": a.partitions,
        "ceiling_rate_median": c,
        "connect_rate_median": r,
        "peer_rate_median": p,
        "connect_vs_peer": vs_peer,
        "connect_vs_ceiling": vs_ceiling,
        "runs": {"ceiling": ceiling, "connect": ours, "peer": theirs},
        "targets": {"ge_2x_peer": vs_peer >= 2.0},
    }))
}

/// Runs `fleetctl connect --idle-exit 1 --json` in a child process; returns its summary.
async fn run_fleetctl(
    dir: &Path,
    brokers: &str,
    redis: &str,
    topic: &str,
    key: &str,
    run: u32,
) -> Result<Value, CliError> {
    let cfg = dir.join(format!("connect-{run}.toml"));
    let toml = format!(
        "[kafka]\nbrokers = \"{brokers}\"\n\n[redis]\nurl = \"{redis}\"\n\n[connect]\ngroup_id = \"bench-connect-{}-{run}\"\n\n[[connect.routes]]\ntopic = \"{topic}\"\ngeo_key = \"{key}\"\n",
        now_ms()
    );
    std::fs::write(&cfg, toml).map_err(rt)?;
    run_child_json("fleetctl connect", "connect", &cfg, &[]).await
}

#[allow(clippy::too_many_arguments)]
async fn run_peer(
    python: &Path,
    script: &Path,
    brokers: &str,
    topic: &str,
    group: &str,
    redis: &str,
    key: &str,
    expected: u64,
) -> Result<Value, CliError> {
    let out = tokio::process::Command::new(python)
        .arg(script)
        .args([brokers, topic, group, redis, key, &expected.to_string()])
        .output()
        .await
        .map_err(|e| {
            rt(format!(
                "cannot run the python peer ({}): {e}",
                python.display()
            ))
        })?;
    if !out.status.success() {
        return Err(rt(format!(
            "python peer failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| rt(format!("python peer output: {e}")))
}

/// A contender counts only if it read every message and its set holds as many vehicles as
/// `members` (the other contender's count: the simulator has vehicles that never report a
/// usable fix, so not quite every vehicle is there); returns the set's size and deletes it.
async fn check_loaded(
    redis: &mut redis::aio::MultiplexedConnection,
    key: &str,
    v: &Value,
    produced: u64,
    members: Option<u64>,
) -> Result<u64, CliError> {
    let card: u64 = redis::cmd("ZCARD")
        .arg(key)
        .query_async(redis)
        .await
        .map_err(rt)?;
    let _: () = redis::cmd("DEL")
        .arg(key)
        .query_async(redis)
        .await
        .map_err(rt)?;
    let read = v["messages"].as_u64().unwrap_or(0);
    if read != produced || members.is_some_and(|m| m != card) {
        return Err(rt(format!(
            "{key}: read {read} of {produced} messages, set holds {card} vehicles (expected {members:?})"
        )));
    }
    Ok(card)
}
