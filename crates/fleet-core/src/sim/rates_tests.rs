//! Alert volume (issue 12 §8): the simulated fleet, decoded and run through fleetdash's own
//! rules with their default settings, must raise alerts at a real fleet's rates — harsh
//! braking a few times per vehicle per day, not per minute — so the demo's feed is something
//! an operator can work through.

use super::{DEFAULT_CENTER, Fleet};
use crate::config::{AlertsConfig, TopicConfig};
use crate::decode::{Decoded, Decoder, RawMessage};
use crate::rules::RuleEngine;
use fleet_model::TopicKind;
use std::collections::BTreeMap;

const T0: i64 = 1_700_000_000_000;

/// Alerts raised per rule by `vehicles` vehicles over `secs` simulated seconds at 1 Hz.
fn raised(vehicles: u32, secs: i64) -> BTreeMap<String, u64> {
    let dec = |kind| Decoder::new(&TopicConfig::new("t", kind));
    let (dp, ds) = (dec(TopicKind::Position), dec(TopicKind::Status));
    let mut fleet = Fleet::new(11, vehicles, DEFAULT_CENTER, 5.0, T0);
    let mut rules = RuleEngine::new(&AlertsConfig::default(), T0);
    let mut out = Vec::new();
    let mut alerts = Vec::new();
    for s in 0..secs {
        fleet.step(1000, &mut out);
        for m in out.drain(..) {
            let raw = RawMessage {
                key: Some(m.key.as_bytes()),
                payload: Some(&m.payload),
                kafka_ts_ms: Some(m.ts_ms),
            };
            match m.kind {
                TopicKind::Position => {
                    if let Ok(Decoded::Position(p)) = dp.decode(raw, m.ts_ms) {
                        rules.on_position(&p, &mut alerts);
                    }
                }
                TopicKind::Status => {
                    if let Ok(Decoded::Status(st)) = ds.decode(raw, m.ts_ms) {
                        rules.on_status(&st, &mut alerts);
                    }
                }
                _ => {}
            }
        }
        if s % 10 == 0 {
            rules.on_tick(T0 + s * 1000, std::iter::empty(), &mut alerts);
        }
    }
    let mut by_rule = BTreeMap::new();
    for a in alerts
        .iter()
        .filter(|a| a.state == fleet_model::AlertState::Open)
    {
        *by_rule.entry(a.rule.clone()).or_default() += 1;
    }
    by_rule
}

#[test]
fn a_demo_fleet_raises_alerts_at_a_real_fleets_rates() {
    // 300 vehicles for 40 simulated minutes = 200 vehicle-hours.
    let (vehicles, secs) = (300u32, 40 * 60);
    let by_rule = raised(vehicles, secs);
    let vehicle_days = f64::from(vehicles) * secs as f64 / 86_400.0;
    let per_vehicle_day =
        |rule: &str| by_rule.get(rule).copied().unwrap_or(0) as f64 / vehicle_days;
    eprintln!("alerts raised in {vehicle_days:.1} vehicle-days: {by_rule:?}");
    let harsh = per_vehicle_day("harsh_braking");
    assert!(
        (0.5..=8.0).contains(&harsh),
        "harsh braking {harsh:.1} per vehicle per day (a real fleet: a few): {by_rule:?}"
    );
    let total: u64 = by_rule.values().sum();
    let total_per_vehicle_day = total as f64 / vehicle_days;
    assert!(
        total_per_vehicle_day <= 20.0,
        "{total_per_vehicle_day:.1} alerts per vehicle per day is more than operators can work: {by_rule:?}"
    );
}
