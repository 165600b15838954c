//! `fleetctl connect`: the Kafka → Redis loader (SPEC §9), until Ctrl-C / SIGTERM or, with
//! `--idle-exit`, until caught up.

use super::load_config;
use crate::cli::ConnectArgs;
use crate::error::CliError;
use fleet_connect::{ConnectError, RunOptions};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub async fn run(a: ConnectArgs) -> Result<Value, CliError> {
    let (cfg, path) = load_config(&a.config, true)?;
    if let Some(p) = &path {
        cfg.require_secrets(p)?;
    }
    let file = path.map(|p| p.display().to_string()).unwrap_or_default();
    let stop = Arc::new(AtomicBool::new(false));
    let signals = tokio::spawn(stop_on_signal(stop.clone()));
    let opts = RunOptions {
        idle_exit: a.idle_exit.map(Duration::from_secs_f64),
        stop,
    };
    let rt = tokio::runtime::Handle::current();
    let r = tokio::task::spawn_blocking(move || fleet_connect::run(&cfg, &opts, &rt))
        .await
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    signals.abort();
    match r {
        Ok(summary) => serde_json::to_value(summary).map_err(|e| CliError::Runtime(e.to_string())),
        Err(e @ (ConnectError::Missing(_) | ConnectError::KafkaConfig(_))) => {
            Err(CliError::Usage(format!("config {file}: {e}")))
        }
        Err(e @ ConnectError::RedisConfig(_)) => {
            Err(CliError::Usage(format!("config {file}: {e}")))
        }
        Err(e) => Err(CliError::Runtime(e.to_string())),
    }
}

/// Ctrl-C or SIGTERM (a service manager stopping us) asks the loop to finish its batch.
async fn stop_on_signal(stop: Arc<AtomicBool>) {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    stop.store(true, Ordering::Relaxed);
}
