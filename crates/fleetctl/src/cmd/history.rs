//! `fleetctl history`: one vehicle's timeline straight from the cache (SPEC §4), the same
//! rows the app's replay draws.

use super::{load_config, open_store, rfc3339, time_range};
use crate::cli::HistoryArgs;
use crate::error::CliError;
use fleet_model::VehicleHistory;
use serde_json::Value;

/// The range looked at when neither end is given.
pub(crate) const DEFAULT_SPAN_MS: i64 = 3_600_000;

pub async fn run(a: HistoryArgs) -> Result<Value, CliError> {
    let (cfg, _) = load_config(&a.config, false)?;
    let (from, to) = time_range(a.from.as_deref(), a.to.as_deref(), DEFAULT_SPAN_MS)?;
    let h = load(&cfg, &a.vehicle, from, to).await?;
    if h.is_empty() {
        eprintln!(
            "history: {} {} – {}: no data in this range",
            h.vehicle,
            rfc3339(from),
            rfc3339(to)
        );
    } else {
        eprintln!(
            "history: {} {} – {}: {} positions, {} status samples, {} alerts",
            h.vehicle,
            rfc3339(from),
            rfc3339(to),
            h.positions.len(),
            h.status.len(),
            h.alerts.len()
        );
    }
    serde_json::to_value(&h).map_err(|e| CliError::Runtime(format!("history as JSON: {e}")))
}

/// The vehicle's history, or exit 1 naming it when the cache has never heard of it.
pub(crate) async fn load(
    cfg: &fleet_core::Config,
    vehicle: &str,
    from: i64,
    to: i64,
) -> Result<VehicleHistory, CliError> {
    let store = open_store(cfg).await?;
    let h = store.history(vehicle, from, to).await;
    store.close().await;
    h?.ok_or_else(|| {
        CliError::Runtime(format!(
            "unknown vehicle `{vehicle}`: the cache at {} holds nothing about it",
            cfg.store_path().display()
        ))
    })
}
