//! `fleetctl bench churn`: SPEC §7's memory bound under a flood of distinct vehicle ids —
//! 10 million ids over an hour of message time must keep the engine under 1 GB RSS with map
//! frames still coming within 200 ms. The same number of messages from a steady fleet is
//! the baseline, measured in the same run. Each side runs `fleetctl ingest` in a child
//! process (its peak RSS is its own) with the frame probe building the window's frame every
//! 100 ms beside the engine.

use super::{broker, create_topics, ok, rt, run_ingest_with};
use crate::cli::BenchChurnArgs;
use crate::error::CliError;
use serde_json::{Value, json};
use std::time::Instant;

/// Messages produced per `send_many` call (bounded memory in the bench process).
const CHUNK: u64 = 250_000;
/// The frame probe's period: the window's frame tick.
const FRAME_MS: &str = "100";
/// SPEC §7 targets.
const RSS_MAX_MB: f64 = 1000.0;
const FRAME_INTERVAL_MAX_MS: f64 = 200.0;

pub async fn churn(a: BenchChurnArgs) -> Result<Value, CliError> {
    let (brokers, _guard) = broker(&a.brokers).await?;
    let stamp = fleet_core::store::now_ms();
    let flood = format!("bench.churn.{stamp}");
    let steady = format!("bench.steady.{stamp}");
    create_topics(&brokers, &[(&flood, 1), (&steady, 1)]).await?;
    let n = a.ids;
    let span_ms = (a.span_s * 1000) as i64;
    let base = fleet_core::store::now_ms() - span_ms;

    eprintln!("bench: producing {n} positions from {n} distinct ids …");
    let fill = produce(&brokers, &flood, n, n, base, span_ms).await?;
    eprintln!("bench: produced in {fill:.1} s");
    let v = a.baseline_vehicles.max(1);
    eprintln!("bench: producing {n} positions from {v} vehicles (baseline) …");
    produce(&brokers, &steady, n, v, base, span_ms).await?;

    eprintln!("bench: ingesting the steady fleet (baseline) …");
    let base_run = ingest(&brokers, &steady, n).await?;
    eprintln!("bench: ingesting the flood of ids …");
    let churn_run = ingest(&brokers, &flood, n).await?;

    let fig = |v: &Value, k: &str| v[k].as_f64().unwrap_or(0.0);
    let frame = |v: &Value, k: &str| v["frames"][k].as_f64().unwrap_or(0.0);
    let rss_mb = |v: &Value| fig(v, "peak_rss_mib") * 1.048_576;
    let (rss_c, rss_b) = (rss_mb(&churn_run), rss_mb(&base_run));
    let max_c = frame(&churn_run, "interval_ms_max");
    let pass_rss = rss_c <= RSS_MAX_MB;
    let pass_frames = max_c < FRAME_INTERVAL_MAX_MS;

    eprintln!("\nbench churn — {n} position messages each side; frame probe every {FRAME_MS} ms");
    eprintln!(
        "                              {:>14} {:>14}",
        format!("{n} ids"),
        format!("{v} vehicles")
    );
    let row = |label: &str, c: f64, b: f64, unit: &str| {
        eprintln!("  {label:<28}{c:>12.1} {unit:<3}{b:>10.1} {unit}");
    };
    row(
        "ingest rate (msg/s)",
        fig(&churn_run, "rate"),
        fig(&base_run, "rate"),
        "",
    );
    row("peak RSS", rss_c, rss_b, "MB");
    for (label, key, unit) in [
        ("largest live fleet", "max_live_fleet", ""),
        ("frame interval p50", "interval_ms_p50", "ms"),
        ("frame interval p99", "interval_ms_p99", "ms"),
        ("frame interval max", "interval_ms_max", "ms"),
        ("frame build p99", "build_ms_p99", "ms"),
    ] {
        row(label, frame(&churn_run, key), frame(&base_run, key), unit);
    }
    eprintln!(
        "  target: peak RSS ≤ {RSS_MAX_MB:.0} MB {} · frame interval < {FRAME_INTERVAL_MAX_MS:.0} ms {} · RSS {:.2}× the steady fleet's",
        ok(pass_rss),
        ok(pass_frames),
        rss_c / rss_b.max(1e-9)
    );
    Ok(json!({
        "messages": n,
        "ids": n,
        "baseline_vehicles": v,
        "produce_s": fill,
        "churn": churn_run,
        "baseline": base_run,
        "rss_ratio": rss_c / rss_b.max(1e-9),
        "targets": {"rss_le_1gb": pass_rss, "frame_interval_lt_200ms": pass_frames},
    }))
}

/// `n` positions from `vehicles` ids (`i % vehicles`), message times spread evenly over
/// `span_ms` from `base`. Returns the seconds it took.
async fn produce(
    brokers: &str,
    topic: &str,
    n: u64,
    vehicles: u64,
    base: i64,
    span_ms: i64,
) -> Result<f64, CliError> {
    let (brokers, topic) = (brokers.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let p = fleet_testkit::Producer::new(&brokers);
        let mut from = 0;
        while from < n {
            let to = (from + CHUNK).min(n);
            p.send_many(
                &topic,
                (from..to).map(|i| {
                    let ts = base + (i as i128 * span_ms as i128 / n.max(1) as i128) as i64;
                    let id = i % vehicles;
                    (
                        Some(format!("churn-{id:08}").into_bytes()),
                        format!(
                            r#"{{"lat":{:.5},"lng":{:.5},"ts":{ts}}}"#,
                            37.0 + (id % 10_000) as f64 * 1e-4,
                            127.0 + (id / 10_000 % 10_000) as f64 * 1e-4,
                        )
                        .into_bytes(),
                    )
                }),
            );
            from = to;
        }
        started.elapsed().as_secs_f64()
    })
    .await
    .map_err(rt)
}

async fn ingest(brokers: &str, topic: &str, n: u64) -> Result<Value, CliError> {
    run_ingest_with(
        brokers,
        &[(topic, "position")],
        "",
        n,
        &["--frame-probe-ms", FRAME_MS],
    )
    .await
}
