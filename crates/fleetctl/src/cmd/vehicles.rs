//! `fleetctl vehicles`: every vehicle the cache knows, with its metadata (merged from the info
//! topics) and devices (SPEC §4, §8). Unmapped devices are listed as vehicles of their own id
//! with state `unmapped`, so telemetry that is waiting for its mapping is visible.

use super::{load_config, open_store, rfc3339};
use crate::cli::VehiclesArgs;
use crate::error::CliError;
use fleet_core::store::now_ms;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};

pub async fn run(a: VehiclesArgs) -> Result<Value, CliError> {
    let (cfg, _) = load_config(&a.config, false)?;
    let store = open_store(&cfg).await?;
    let vehicles = store.vehicles().await?;
    let devices = store.devices().await?;
    store.close().await;
    let mut by_vehicle: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut unmapped = HashSet::new();
    for (device, vehicle) in &devices {
        match vehicle {
            Some(v) => by_vehicle.entry(v).or_default().push(device),
            None => {
                unmapped.insert(device.as_str());
            }
        }
    }
    let stale_ms = (cfg.fleet.stale_after_s * 1000.0) as i64;
    let now = now_ms();
    let query = a.search.as_deref().map(str::to_lowercase);
    let mut out = Vec::new();
    for v in &vehicles {
        if a.group
            .as_deref()
            .is_some_and(|g| v.group.as_deref() != Some(g))
        {
            continue;
        }
        if let Some(q) = &query {
            let hit = |s: &str| s.to_lowercase().contains(q.as_str());
            if !hit(&v.id) && !v.plate.as_deref().is_some_and(hit) {
                continue;
            }
        }
        let state = if unmapped.contains(v.id.as_str()) {
            "unmapped"
        } else {
            match &v.last {
                None => "unknown",
                Some(p) if now - p.ts_ms > stale_ms => "stale",
                Some(p) if p.speed.unwrap_or(0.0) > fleet_core::view::MOVING_KMH => "moving",
                Some(_) => "parked",
            }
        };
        let devices = if unmapped.contains(v.id.as_str()) {
            vec![v.id.as_str()]
        } else {
            by_vehicle.get(v.id.as_str()).cloned().unwrap_or_default()
        };
        if !a.json {
            eprintln!(
                "{:20} {:12} {:20} {:16} {:12} {:9} {}  [{}]",
                v.id,
                v.plate.as_deref().unwrap_or("-"),
                v.model.as_deref().unwrap_or("-"),
                v.driver.as_deref().unwrap_or("-"),
                v.group.as_deref().unwrap_or("-"),
                state,
                v.last
                    .as_ref()
                    .map_or_else(|| "-".into(), |p| rfc3339(p.ts_ms)),
                devices.join(", ")
            );
        }
        out.push(json!({
            "id": v.id,
            "plate": v.plate,
            "model": v.model,
            "driver": v.driver,
            "group": v.group,
            "devices": devices,
            "lat": v.last.as_ref().map(|p| p.lat),
            "lng": v.last.as_ref().map(|p| p.lng),
            "ts": v.last.as_ref().map(|p| p.ts_ms),
            "state": state,
        }));
    }
    if !a.json {
        eprintln!("{} vehicles", out.len());
    }
    Ok(Value::Array(out))
}
