//! `fleetctl demo`: the embedded demo, headless. Shows the same pipeline the app runs with
//! no config: in-process broker → simulator → engine → cache, with live counters on stderr.

use crate::cli::DemoArgs;
use crate::error::CliError;
use fleet_core::demo::Demo;
use fleet_core::{Engine, Store};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub async fn run(a: DemoArgs) -> Result<Value, CliError> {
    let cancel = CancellationToken::new();
    let demo = Demo::start(a.vehicles, cancel.child_token())
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    eprintln!(
        "demo: embedded broker + {} simulated vehicles (no config found; see README to connect a real fleet)",
        a.vehicles
    );
    let store = Store::open(&demo.config.store_path()).await?;
    let engine = Engine::start(&demo.config, store.clone(), cancel.child_token()).await?;
    let started = Instant::now();
    let deadline = a.duration.map(Duration::from_secs_f64);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        let c = engine.counters();
        eprintln!(
            "demo: {:>6} vehicles ({} online, {} stale)  {:>7.0} msg/s  {} rejected  lag {}  kafka {}",
            c.vehicles_total,
            c.vehicles_online,
            c.vehicles_stale,
            c.rate,
            c.rejected,
            c.lag.unwrap_or(0),
            c.kafka
        );
        if deadline.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
    }
    let c = engine.counters();
    cancel.cancel();
    engine.shutdown().await?;
    // Read the cache before the demo's temp dir goes away with it.
    let stats = store.stats().await?;
    store.close().await;
    demo.stop().await;
    Ok(
        json!({ "vehicles": c.vehicles_total, "messages": c.topics.values().map(|t| t.messages).sum::<u64>(), "cache": stats }),
    )
}
