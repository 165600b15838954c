//! `fleetctl check` (SPEC §4): connects exactly as `ingest` would (same client properties,
//! security settings and secrets) and reports brokers, topics with partitions and
//! watermarks, the cache's offsets against them with the lag, and the Redis geo keys; exit 1
//! naming the first thing that fails, so an operator sees why before opening the app.

use super::load_config;
use crate::cli::CheckArgs;
use crate::error::CliError;
use fleet_core::Config;
use fleet_core::kafka::consumer_config;
use fleet_core::redis_geo::{RedisSource, redact};
use fleet_core::store::Store;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(5);

pub async fn run(a: CheckArgs) -> Result<Value, CliError> {
    let (cfg, path) = load_config(&a.config, true)?;
    if let Some(p) = &path {
        cfg.require_secrets(p)?;
    }
    let cached = cached_offsets(&cfg).await?;
    let mut report = json!({ "config": path.map(|p| p.display().to_string()) });
    let mut first_failure: Option<String> = None;
    if cfg.kafka.is_some() {
        let cfg2 = cfg.clone();
        let (kafka, failure) = tokio::task::spawn_blocking(move || check_kafka(&cfg2, &cached))
            .await
            .map_err(|e| CliError::Runtime(e.to_string()))?;
        report["kafka"] = kafka;
        first_failure = first_failure.or(failure);
    }
    if let Some(r) = &cfg.redis {
        let src = RedisSource::new(r.clone()).map_err(|e| CliError::Usage(e.to_string()))?;
        let urls: Vec<String> = r.url.list().iter().map(|u| redact(u)).collect();
        match tokio::time::timeout(TIMEOUT, src.probe()).await {
            Ok(Ok(keys)) => {
                for (key, ty, n) in &keys {
                    eprintln!("redis {}: {key} ({ty}) {n} members", urls.join(","));
                    if ty != "zset" && ty != "none" && first_failure.is_none() {
                        first_failure = Some(format!("redis key {key} is a {ty}, not a geo set"));
                    }
                }
                report["redis"] = json!({
                    "urls": urls,
                    "ok": true,
                    "geo_keys": keys.iter().map(|(k, t, n)| json!({"key": k, "type": t, "members": n})).collect::<Vec<_>>(),
                });
            }
            Ok(Err(e)) => {
                let why = format!("redis {}: {e}", urls.join(","));
                eprintln!("{why}");
                report["redis"] = json!({"urls": urls, "ok": false, "error": e.to_string()});
                first_failure = first_failure.or(Some(why));
            }
            Err(_) => {
                let why = format!("redis {}: no answer within {TIMEOUT:?}", urls.join(","));
                eprintln!("{why}");
                report["redis"] = json!({"urls": urls, "ok": false, "error": "timeout"});
                first_failure = first_failure.or(Some(why));
            }
        }
    }
    report["ok"] = json!(first_failure.is_none());
    if let Some(why) = first_failure {
        if a.json {
            println!("{report}");
        }
        return Err(CliError::Runtime(why));
    }
    eprintln!("check: everything answered");
    Ok(report)
}

/// The cache's next offsets, when a cache exists (check never creates one).
async fn cached_offsets(cfg: &Config) -> Result<HashMap<(String, i32), i64>, CliError> {
    let path = cfg.store_path();
    if !path.exists() {
        return Ok(HashMap::new());
    }
    let store = Store::open(&path).await?;
    let offsets = store.offsets().await?;
    store.close().await;
    Ok(offsets)
}

/// Brokers, topics, partitions, watermarks and lag; the first failure, if any.
fn check_kafka(cfg: &Config, cached: &HashMap<(String, i32), i64>) -> (Value, Option<String>) {
    let k = cfg.kafka.as_ref().expect("checked by the caller");
    let consumer: BaseConsumer = match consumer_config(k).create() {
        Ok(c) => c,
        Err(e) => {
            let why = format!("kafka configuration rejected: {e}");
            return (json!({"ok": false, "error": why}), Some(why));
        }
    };
    let md = match consumer.fetch_metadata(None, TIMEOUT) {
        Ok(md) => md,
        Err(e) => {
            let why = format!("kafka {}: {e}", k.brokers);
            eprintln!("{why}");
            return (
                json!({"ok": false, "brokers": k.brokers, "error": e.to_string()}),
                Some(why),
            );
        }
    };
    let brokers: Vec<Value> = md
        .brokers()
        .iter()
        .map(|b| json!({"id": b.id(), "host": b.host(), "port": b.port()}))
        .collect();
    eprintln!("kafka {}: {} broker(s)", k.brokers, brokers.len());
    let cluster = consumer.client().fetch_cluster_id(TIMEOUT);
    let mut failure = None;
    let mut topics = serde_json::Map::new();
    for t in &k.topics {
        let Some(mt) = md.topics().iter().find(|m| m.name() == t.name) else {
            eprintln!("  {}: missing", t.name);
            failure = failure.or(Some(format!("kafka topic {} does not exist", t.name)));
            topics.insert(t.name.clone(), json!({"exists": false}));
            continue;
        };
        if let Some(e) = mt.error() {
            let why = format!("kafka topic {}: {e:?}", t.name);
            eprintln!("  {why}");
            failure = failure.or(Some(why));
            topics.insert(
                t.name.clone(),
                json!({"exists": false, "error": format!("{e:?}")}),
            );
            continue;
        }
        let mut parts = serde_json::Map::new();
        for p in mt.partitions() {
            let cached_next = cached.get(&(t.name.clone(), p.id())).copied();
            let entry = match consumer.fetch_watermarks(&t.name, p.id(), TIMEOUT) {
                Ok((lo, hi)) => {
                    let lag = cached_next.map(|c| (hi - c).max(0));
                    eprintln!(
                        "  {} [{}]: offsets {lo}..{hi}, cache at {}, lag {}",
                        t.name,
                        p.id(),
                        cached_next.map_or("-".into(), |c| c.to_string()),
                        lag.map_or("-".into(), |l| l.to_string())
                    );
                    json!({"low": lo, "high": hi, "cached": cached_next, "lag": lag,
                           "cache_outside_watermarks": cached_next.is_some_and(|c| c < lo || c > hi)})
                }
                Err(e) => {
                    let why = format!("kafka topic {} partition {}: {e}", t.name, p.id());
                    eprintln!("  {why}");
                    failure = failure.or(Some(why));
                    json!({"error": e.to_string()})
                }
            };
            parts.insert(p.id().to_string(), entry);
        }
        topics.insert(
            t.name.clone(),
            json!({"exists": true, "kind": t.kind.as_str(), "partitions": parts}),
        );
    }
    (
        json!({"ok": failure.is_none(), "brokers": brokers, "cluster_id": cluster, "topics": topics}),
        failure,
    )
}
