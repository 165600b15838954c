//! `fleetctl ingest`: the full pipeline, headless.

use super::frame_probe::FrameProbe;
use super::{load_config, open_store};
use crate::cli::IngestArgs;
use crate::error::CliError;
use crate::rss::peak_rss_mib;
use fleet_core::Engine;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::info;

pub async fn run(a: IngestArgs) -> Result<Value, CliError> {
    let (cfg, path) = load_config(&a.config, true)?;
    if cfg.kafka.is_none() && cfg.redis.is_none() {
        return Err(CliError::Usage(format!(
            "config {}: neither [kafka] nor [redis] is configured: nothing to ingest",
            path.map(|p| p.display().to_string()).unwrap_or_default()
        )));
    }
    if let Some(p) = &path {
        cfg.require_secrets(p)?;
    }
    let store = open_store(&cfg).await?;
    info!(cache = %store.path().display(), "ingesting");
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let engine = Engine::start(&cfg, store.clone(), cancel.clone()).await?;
    let probe = a
        .frame_probe_ms
        .map(|ms| FrameProbe::spawn(engine.live().clone(), Duration::from_millis(ms.max(1))));
    let idle = a.idle_exit.map(Duration::from_secs_f64);
    let mut last_progress = Instant::now();
    let mut redis_last_change = Instant::now();
    let mut last_total = 0u64;
    let mut reason = "interrupted";
    // When the cache last advanced its Kafka offsets: "end to end" ends when data is committed.
    let committed = engine.writer().committed();
    let mut offsets_sum = 0i64;
    let mut last_offset_commit: Option<Instant> = None;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        let fault = (committed.borrow().fault.as_ref())
            .filter(|f| f.permanent)
            .map(|f| f.message.clone());
        if let Some(fault) = fault {
            // SPEC §7: a permanent write error stops headless ingest (exit 1, named); what
            // was not committed is read again on the next start.
            let msg = format!(
                "cache {} cannot be written: {fault}",
                store.path().display()
            );
            engine.shutdown().await?;
            store.close().await;
            return Err(CliError::Runtime(msg));
        }
        let sum: i64 = committed.borrow().offsets.iter().map(|(_, _, o)| *o).sum();
        if sum != offsets_sum {
            offsets_sum = sum;
            last_offset_commit = Some(Instant::now());
        }
        let c = engine.counters();
        let total: u64 =
            c.topics.values().map(|t| t.messages).sum::<u64>() + (c.redis_rate > 0.0) as u64;
        if total != last_total {
            last_total = total;
            redis_last_change = Instant::now();
        }
        if last_progress.elapsed() >= Duration::from_secs(5) {
            last_progress = Instant::now();
            eprintln!(
                "ingest: {} msgs ({:.0}/s), {} vehicles, {} rejected, lag {}, kafka {}, redis {}",
                c.topics.values().map(|t| t.messages).sum::<u64>(),
                c.rate,
                c.vehicles_total,
                c.rejected,
                c.lag.map(|l| l.to_string()).unwrap_or_else(|| "?".into()),
                c.kafka,
                c.redis
            );
        }
        if let Some(idle) = idle {
            let done = match engine.kafka_status() {
                Some(s) => {
                    let st = s.lock();
                    match st.assigned_at {
                        // The idle clock starts only once partitions are assigned.
                        Some(at) => {
                            let quiet_since = st.last_message.map_or(at, |m| m.max(at));
                            // The lag panel (refreshed each second) shows it too, so the
                            // report's `partitions` carry the watermarks the exit saw.
                            let panel = c.partitions.len() == st.assigned.len()
                                && c.partitions
                                    .iter()
                                    .all(|p| p.high_watermark.is_some() && p.lag == Some(0));
                            // And the engine has worked through its queue: the poll
                            // thread may be idle while batches still wait (a slow engine
                            // exited "idle" 748 messages short).
                            st.caught_up()
                                && st.all_processed()
                                && panel
                                && quiet_since.elapsed() >= idle
                        }
                        None => false,
                    }
                }
                // Redis only: quiet, and connected (a wrong password is not "caught up").
                None => c.redis.is_up() && redis_last_change.elapsed() >= idle,
            };
            if done {
                reason = "idle";
                break;
            }
        }
    }
    if reason == "idle" {
        // "Everything consumed committed, outbox flushed": give queued acks a moment to go out.
        let deadline = Instant::now() + Duration::from_secs(15);
        while engine.outbox_len().await.unwrap_or(0) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let frames = match probe {
        Some(p) => p.finish().await,
        None => Value::Null,
    };
    let status = engine.kafka_status().map(|s| s.snapshot());
    let counters = engine.counters();
    // Drain time: from partition assignment until the cache committed the last offsets (the
    // figure `bench ingest` reports), to within the 100 ms loop tick.
    let drain_s = status
        .as_ref()
        .and_then(|s| {
            Some(
                last_offset_commit?
                    .saturating_duration_since(s.assigned_at?)
                    .as_secs_f64(),
            )
        })
        .unwrap_or(0.0);
    engine.shutdown().await?;
    let stats = store.stats().await?;
    store.close().await;
    let messages: u64 = counters.topics.values().map(|t| t.messages).sum();
    eprintln!("ingest: stopped ({reason}) after {messages} messages; cache committed");
    Ok(json!({
        "stopped": reason,
        "messages": messages,
        "rejected": counters.rejected,
        "vehicles": counters.vehicles_total,
        "elapsed_s": started.elapsed().as_secs_f64(),
        "drain_s": drain_s,
        "rate": if drain_s > 0.0 { messages as f64 / drain_s } else { 0.0 },
        "peak_rss_mib": peak_rss_mib(),
        "frames": frames,
        "partitions": counters.partitions,
        "cache": stats,
    }))
}
