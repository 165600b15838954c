//! `fleetctl bench ingest`: end-to-end ingest throughput against the ceiling of a bare
//! rdkafka consumer on the same broker, in the same run. Medians over `--runs`.

use super::{broker, median, ok, prefill_positions, rt, run_ingest};
use crate::cli::BenchIngestArgs;
use crate::error::CliError;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub async fn ingest(a: BenchIngestArgs) -> Result<Value, CliError> {
    let (brokers, _guard) = broker(&a.brokers).await?;
    // 1. Pre-fill with the simulator (positions to the bench topic, everything else aside).
    let (topic, produced, fill) =
        prefill_positions(&brokers, "gps", a.partitions, a.messages, a.vehicles).await?;
    let fill_rate = fill.produced.values().sum::<u64>() as f64 / fill.elapsed_s.max(1e-9);
    eprintln!(
        "bench: produced {produced} positions in {:.1} s ({fill_rate:.0} msg/s incl. aux topics)",
        fill.elapsed_s
    );

    // The CDC shape (issue 12), when asked for: its own topics, read in the same runs.
    let cdc = match a.cdc {
        true => Some(
            super::ingest_cdc::prefill_cdc(&brokers, a.partitions, a.messages, a.vehicles).await?,
        ),
        false => None,
    };
    let mut cdc_rate = Vec::new();
    let mut cdc_rss = Vec::new();
    let mut ceiling = Vec::new();
    let mut e2e = Vec::new();
    let mut rss = Vec::new();
    for run in 1..=a.runs {
        // 2. Ceiling: a bare consumer that does nothing with the messages.
        let (b, t, n) = (brokers.clone(), topic.clone(), produced);
        let parts = a.partitions;
        let c = tokio::task::spawn_blocking(move || bare_consume(&b, &t, parts, n))
            .await
            .map_err(rt)??;
        ceiling.push(c);
        // 3. The real pipeline, in a child process so its peak RSS is its own.
        let v = run_ingest(&brokers, &[(&topic, "position")], "", produced).await?;
        let (rate, peak) = (
            v["rate"].as_f64().unwrap_or(0.0),
            v["peak_rss_mib"].as_f64().unwrap_or(0.0),
        );
        e2e.push(rate);
        rss.push(peak);
        eprintln!(
            "bench: run {run}/{}: bare consumer {c:.0} msg/s, ingest {rate:.0} msg/s ({:.0} %), peak RSS {peak:.0} MiB",
            a.runs,
            100.0 * rate / c
        );
        if let Some(w) = &cdc {
            let (cr, cp) = super::ingest_cdc::ingest_cdc(&brokers, w).await?;
            eprintln!(
                "bench: run {run}/{}: CDC shape {cr:.0} msg/s ({:.0} % of plain), peak RSS {cp:.0} MiB",
                a.runs,
                100.0 * cr / rate
            );
            cdc_rate.push(cr);
            cdc_rss.push(cp);
        }
    }
    let (c, r, m) = (median(&mut ceiling), median(&mut e2e), median(&mut rss));
    let ratio = r / c;
    println_table(produced, a.vehicles, c, r, ratio, m);
    let cdc_json = match &cdc {
        Some(w) => {
            let (cr, cm) = (median(&mut cdc_rate), median(&mut cdc_rss));
            eprintln!(
                "  CDC shape ingest ({} msgs: {} telemetry, 3 devices/car, 10 thresholds) {cr:>8.0} msg/s = {:.1} % of plain   target ≥ 85 %   {}",
                w.messages,
                w.telemetry,
                100.0 * cr / r,
                ok(cr >= 0.85 * r)
            );
            eprintln!(
                "  CDC shape vs ceiling            {:>10.1} %, peak RSS {:.1} MB",
                100.0 * cr / c,
                cm * 1.048_576
            );
            json!({
                "messages": w.messages,
                "telemetry": w.telemetry,
                "rate_median": cr,
                "ratio_to_plain": cr / r,
                "ratio_to_ceiling": cr / c,
                "peak_rss_mib_median": cm,
                "runs": {"rate": cdc_rate, "peak_rss_mib": cdc_rss},
                "target_ge_85pct_of_plain": cr >= 0.85 * r,
            })
        }
        None => Value::Null,
    };
    Ok(json!({
        "cdc": cdc_json,
        "messages": produced,
        "vehicles": a.vehicles,
        "prefill_rate": fill_rate,
        "ceiling_rate_median": c,
        "ingest_rate_median": r,
        "ratio": ratio,
        "peak_rss_mib_median": m,
        "runs": {"ceiling": ceiling, "ingest": e2e, "peak_rss_mib": rss},
        "targets": {"rate_ge_100k": r >= 100_000.0, "ratio_ge_0_6": ratio >= 0.6, "rss_le_250mb": m * 1.048_576 <= 250.0},
    }))
}

fn println_table(n: u64, vehicles: u32, c: f64, r: f64, ratio: f64, m: f64) {
    eprintln!("\nbench ingest — {n} position messages, {vehicles} vehicles (medians)");
    eprintln!("  bare rdkafka consumer (ceiling) {c:>10.0} msg/s");
    eprintln!(
        "  fleetdash ingest end-to-end     {r:>10.0} msg/s   target ≥ 100000        {}",
        ok(r >= 100_000.0)
    );
    eprintln!(
        "  ratio to ceiling                {:>10.1} %       target ≥ 60 %          {}",
        ratio * 100.0,
        ok(ratio >= 0.6)
    );
    eprintln!(
        "  ingest peak RSS                 {:>10.1} MB      target ≤ 250 MB        {}",
        m * 1.048_576,
        ok(m * 1.048_576 <= 250.0)
    );
}

/// Reads `n` messages from every partition's beginning and returns messages/s measured from
/// the first message to the last.
pub(super) fn bare_consume(
    brokers: &str,
    topic: &str,
    partitions: i32,
    n: u64,
) -> Result<f64, CliError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set(
            "group.id",
            format!("bench-ceiling-{}", fleet_core::store::now_ms()),
        )
        .set("enable.auto.commit", "false")
        .set("queued.max.messages.kbytes", "32768")
        .set("fetch.wait.max.ms", "100")
        .create()
        .map_err(rt)?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .map_err(rt)?;
    }
    consumer.assign(&tpl).map_err(rt)?;
    let mut seen = 0u64;
    let mut first = None;
    let deadline = Instant::now() + Duration::from_secs(300);
    while seen < n {
        if Instant::now() > deadline {
            return Err(rt(format!(
                "bare consumer read only {seen} of {n} messages in 300 s"
            )));
        }
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            m.map_err(rt)?;
            first.get_or_insert_with(Instant::now);
            seen += 1;
        }
    }
    let secs = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
    Ok(seen as f64 / secs.max(1e-9))
}
