//! `fleetctl alerts`: alerts from the cache, newest first.

use super::{load_config, open_store};
use crate::cli::{AlertsArgs, StateArg};
use crate::error::CliError;
use fleet_model::AlertState;
use serde_json::{Value, json};

pub async fn run(a: AlertsArgs) -> Result<Value, CliError> {
    let (cfg, _) = load_config(&a.config, false)?;
    let store = open_store(&cfg).await?;
    let state = a.state.map(|s| match s {
        StateArg::Open => AlertState::Open,
        StateArg::Acknowledged => AlertState::Acknowledged,
        StateArg::Resolved => AlertState::Resolved,
    });
    let alerts = store.alerts(state).await?;
    store.close().await;
    if !a.json {
        for al in &alerts {
            eprintln!(
                "{} {:8} {:12} {:10} {} {}",
                al.id,
                al.severity.as_str(),
                al.state.as_str(),
                al.vehicle,
                al.rule,
                al.message
            );
        }
        eprintln!("{} alerts", alerts.len());
    }
    Ok(json!({ "alerts": alerts }))
}
