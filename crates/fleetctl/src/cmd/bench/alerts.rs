//! `fleetctl bench alerts`: how long from producing a message that should raise an alert
//! until the alert is in the cache, where the app's feed reads it — under a live load of
//! 20,000 simulated vehicles at 1 Hz with all rules on. The app renders frames every 100 ms,
//! so the feed latency is at most the cache latency + 100 ms; both are printed.

use super::{broker, create_topics, ok, quantile, rt};
use crate::cli::BenchAlertsArgs;
use crate::error::CliError;
use fleet_core::config::{KafkaConfig, StartFrom, StoreConfig};
use fleet_core::sim::{self, SimOptions, SimTopics};
use fleet_core::store::now_ms;
use fleet_core::{Config, Engine, Store};
use fleet_model::alert_id;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The app's frame period (≤ 10 Hz).
const FRAME_MS: f64 = 100.0;

pub async fn alerts(a: BenchAlertsArgs) -> Result<Value, CliError> {
    let (brokers, _guard) = broker(&a.brokers).await?;
    let topics = [
        "cars.gps.json",
        "cars.status.json",
        "cars.info.json",
        "fleet.alerts.json",
        "fleet.alert-acks.json",
    ];
    create_topics(&brokers, &topics.map(|t| (t, 3))).await?;
    let dir = tempfile::tempdir().map_err(rt)?;
    let mut kafka = KafkaConfig::with_brokers(&brokers);
    kafka.start = StartFrom::Latest;
    kafka.group_id = Some(format!("bench-alerts-{}", now_ms()));
    kafka.properties.extend(a.properties.iter().cloned());
    let cfg = Config {
        kafka: Some(kafka),
        store: StoreConfig {
            path: Some(dir.path().join("cache.sqlite")),
            ..Default::default()
        },
        ..Config::default()
    };
    let store = Store::open(&cfg.store_path()).await?;
    let cancel = CancellationToken::new();
    let engine = Engine::start(&cfg, store.clone(), cancel.child_token()).await?;

    eprintln!(
        "bench: {} vehicles at 1 Hz in the background, all rules on …",
        a.vehicles
    );
    let sim_cancel = cancel.child_token();
    let load = tokio::spawn(sim::run(
        SimOptions {
            brokers: brokers.clone(),
            vehicles: a.vehicles,
            rate_hz: 1.0,
            duration: Duration::ZERO,
            topics: SimTopics::default(),
            ..SimOptions::default()
        },
        sim_cancel.clone(),
    ));
    // Let the load and the consumer settle before measuring.
    tokio::time::sleep(Duration::from_secs(a.warmup)).await;
    let rate_under_load = engine.counters().rate;

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "0")
        .create()
        .map_err(rt)?;
    let mut lat = Vec::new();
    let mut live_lat = Vec::new();
    for i in 0..a.probes {
        let vehicle = format!("probe-{i:04}");
        let ts = now_ms();
        let payload = format!(
            r#"{{"ts":{ts},"engine":"on","doors":"closed","headlights":"off","battery":4}}"#
        );
        let id = alert_id("low_battery", &vehicle, ts);
        let sent = Instant::now();
        producer
            .send(
                FutureRecord::to("cars.status.json")
                    .key(&vehicle)
                    .payload(&payload),
                Duration::from_secs(5),
            )
            .await
            .map_err(|(e, _)| rt(e))?;
        let mut seen_live = false;
        loop {
            if !seen_live && engine.live().lock().vehicle(&vehicle).is_some() {
                seen_live = true;
                live_lat.push(sent.elapsed().as_secs_f64() * 1000.0);
            }
            if store.alert(&id).await?.is_some() {
                lat.push(sent.elapsed().as_secs_f64() * 1000.0);
                break;
            }
            if sent.elapsed() > Duration::from_secs(10) {
                return Err(rt(format!("alert {id} did not appear within 10 s")));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sim_cancel.cancel();
    let _ = load.await;
    cancel.cancel();
    engine.shutdown().await?;
    let (p50, p99, max) = (
        quantile(&mut lat, 0.5),
        quantile(&mut lat, 0.99),
        quantile(&mut lat, 1.0),
    );
    let feed_p99 = p99 + FRAME_MS;
    let (l50, l99) = (quantile(&mut live_lat, 0.5), quantile(&mut live_lat, 0.99));
    eprintln!(
        "\n  produce → engine live state  p50 {l50:>6.0} ms   p99 {l99:>6.0} ms   (broker + consumer)"
    );
    eprintln!(
        "\nbench alerts — {} probes under {rate_under_load:.0} msg/s of live load ({} vehicles at 1 Hz)",
        a.probes, a.vehicles
    );
    eprintln!(
        "  produce → alert in cache   p50 {p50:>6.0} ms   p99 {p99:>6.0} ms   max {max:>6.0} ms"
    );
    eprintln!(
        "  produce → app feed (≤ +1 frame of {FRAME_MS:.0} ms)   p99 ≤ {feed_p99:.0} ms   target ≤ 500 ms   {}",
        ok(feed_p99 <= 500.0)
    );
    Ok(json!({
        "probes": a.probes,
        "load_rate": rate_under_load,
        "cache_latency_ms": {"p50": p50, "p99": p99, "max": max},
        "live_state_latency_ms": {"p50": l50, "p99": l99},
        "feed_latency_p99_bound_ms": feed_p99,
        "targets": {"feed_p99_le_500ms": feed_p99 <= 500.0},
    }))
}
