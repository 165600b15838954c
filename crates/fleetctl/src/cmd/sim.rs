//! `fleetctl sim`: a realistic simulated fleet.

use crate::cli::SimArgs;
use crate::error::CliError;
use fleet_core::sim::{self, SimOptions};
use serde_json::Value;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub async fn run(a: SimArgs) -> Result<Value, CliError> {
    if !(a.duration.is_finite() && a.duration > 0.0) {
        return Err(CliError::Usage(format!(
            "--duration must be > 0 seconds, got {}",
            a.duration
        )));
    }
    let opts = SimOptions {
        brokers: a.brokers,
        kafka_properties: a.properties.into_iter().collect(),
        redis_url: a.redis,
        geo_key: a.geo_key,
        vehicles: a.vehicles,
        rate_hz: a.rate,
        duration: Duration::from_secs_f64(a.duration),
        seed: a.seed,
        center: a.center.unwrap_or(sim::DEFAULT_CENTER),
        radius_km: a.radius_km,
        max_messages: a.max_messages,
        unthrottled: a.unthrottled,
        topics: if a.cdc {
            sim::SimTopics::cdc()
        } else {
            sim::SimTopics::default()
        },
        cdc: a.cdc.then_some(sim::CdcOptions {
            firmware_change_s: a.firmware_change,
            devices_per_car: None,
        }),
    };
    opts.validate()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            c.cancel();
        }
    });
    eprintln!(
        "sim: {} vehicles at {} Hz for {} s → {}",
        opts.vehicles, opts.rate_hz, a.duration, opts.brokers
    );
    let report = sim::run(opts, cancel)
        .await
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    let total: u64 = report.produced.values().sum();
    eprintln!(
        "sim: produced {total} messages in {:.1} s ({:.0}/s), {} GEOADDs, {} delivery errors",
        report.elapsed_s,
        total as f64 / report.elapsed_s.max(1e-9),
        report.geoadds,
        report.delivery_errors
    );
    if report.delivery_errors > 0 {
        return Err(CliError::Runtime(format!(
            "{} messages were not delivered",
            report.delivery_errors
        )));
    }
    serde_json::to_value(report).map_err(|e| CliError::Runtime(e.to_string()))
}
