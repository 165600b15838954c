//! `fleetctl stats`: what the cache holds.

use super::{load_config, open_store};
use crate::cli::StatsArgs;
use crate::error::CliError;
use serde_json::Value;

pub async fn run(a: StatsArgs) -> Result<Value, CliError> {
    let (cfg, _) = load_config(&a.config, false)?;
    let store = open_store(&cfg).await?;
    let s = store.stats().await?;
    store.close().await;
    if !a.json {
        eprintln!("cache {}", cfg.store_path().display());
        eprintln!(
            "vehicles {}  positions {}  status samples {}  rejected {}  alerts open/ack/resolved {}/{}/{}",
            s.vehicles,
            s.positions,
            s.status_samples,
            s.rejected,
            s.alerts.open,
            s.alerts.acknowledged,
            s.alerts.resolved
        );
        for (t, ts) in &s.topics {
            eprintln!(
                "  {t}: {} messages, {} rejected, offsets {:?}",
                ts.messages, ts.rejected, ts.offsets
            );
        }
    }
    serde_json::to_value(s).map_err(|e| CliError::Runtime(e.to_string()))
}
