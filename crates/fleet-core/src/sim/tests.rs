//! Scenario tests of the generator: reproducibility, geometry, and that a half-hour of a
//! 500-vehicle fleet contains every anomaly the alert rules and the UI are built for.

use super::city::distance_m;
use super::{DEFAULT_CENTER, Fleet, SimMessage, SimOptions};
use fleet_model::TopicKind;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::OnceLock;

const T0: i64 = 1_700_000_000_000;

fn run_fleet(seed: u64, vehicles: u32, steps: usize, dt: i64) -> Vec<SimMessage> {
    let mut fleet = Fleet::new(seed, vehicles, DEFAULT_CENTER, 5.0, T0);
    let mut out = fleet.info_messages();
    for _ in 0..steps {
        fleet.step(dt, &mut out);
    }
    out
}

#[test]
fn same_seed_same_stream_different_seed_different_stream() {
    let a = run_fleet(7, 40, 300, 1000);
    let b = run_fleet(7, 40, 300, 1000);
    assert_eq!(a, b);
    let c = run_fleet(8, 40, 300, 1000);
    assert_ne!(a, c);
}

#[test]
fn a_vehicle_does_not_depend_on_the_rest_of_the_fleet() {
    let key = |m: &SimMessage| m.key.clone();
    let small: Vec<_> = run_fleet(3, 5, 120, 1000);
    let big: Vec<_> = run_fleet(3, 50, 120, 1000);
    let ids: Vec<String> = (1..=5).map(|i| format!("car-{i:05}")).collect();
    let pick = |v: &[SimMessage]| {
        v.iter()
            .filter(|m| m.kind != TopicKind::Alert && ids.contains(&key(m)))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(pick(&small), pick(&big));
}

#[test]
fn options_are_validated_with_the_option_named() {
    let ok = SimOptions::default();
    assert!(ok.validate().is_ok());
    let bad = |f: fn(&mut SimOptions)| {
        let mut o = SimOptions::default();
        f(&mut o);
        o.validate().unwrap_err().to_string()
    };
    assert!(bad(|o| o.vehicles = 0).contains("`vehicles`"));
    assert!(bad(|o| o.rate_hz = 0.0).contains("`rate_hz`"));
    assert!(bad(|o| o.rate_hz = f64::NAN).contains("`rate_hz`"));
    assert!(bad(|o| o.radius_km = -1.0).contains("`radius_km`"));
    assert!(bad(|o| o.center = (91.0, 0.0)).contains("`center`"));
    assert!(bad(|o| o.brokers.clear()).contains("`brokers`"));
    assert!(bad(|o| o.topics.gps.clear()).contains("`topics.gps`"));
}

/// 500 vehicles, 30 simulated minutes at 1 Hz, shared by the scenario tests below.
struct Scenario {
    fleet: Fleet,
    msgs: Vec<SimMessage>,
    json: Vec<Value>,
}

fn scenario() -> &'static Scenario {
    static S: OnceLock<Scenario> = OnceLock::new();
    S.get_or_init(|| {
        let mut fleet = Fleet::new(2024, 500, DEFAULT_CENTER, 5.0, T0);
        let mut msgs = fleet.info_messages();
        for _ in 0..1800 {
            fleet.step(1000, &mut msgs);
        }
        let json = msgs
            .iter()
            .map(|m| serde_json::from_slice(&m.payload).expect("payload is JSON"))
            .collect();
        Scenario { fleet, msgs, json }
    })
}

/// (message, parsed payload) of one kind.
fn of(kind: TopicKind) -> impl Iterator<Item = (&'static SimMessage, &'static Value)> {
    let s = scenario();
    s.msgs
        .iter()
        .zip(&s.json)
        .filter(move |(m, _)| m.kind == kind)
}

fn num(v: &Value, field: &str) -> f64 {
    v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} missing in {v}"))
}

#[test]
fn payloads_have_the_contract_fields() {
    assert_eq!(of(TopicKind::Info).count(), 500);
    for (m, v) in of(TopicKind::Info) {
        assert!(m.key.starts_with("car-") && m.key.len() == 9, "{}", m.key);
        for f in ["plate", "model", "driver", "group"] {
            assert!(v[f].as_str().is_some_and(|s| !s.is_empty()), "{f} in {v}");
        }
    }
    for (m, v) in of(TopicKind::Position) {
        let (lat, lng) = (num(v, "lat"), num(v, "lng"));
        assert!(lat.abs() <= 90.0 && lng.abs() <= 180.0);
        assert_eq!(v["ts"].as_i64(), Some(m.ts_ms));
        assert!(num(v, "speed") >= 0.0);
        assert!((0.0..360.0).contains(&num(v, "heading")));
    }
    for (m, v) in of(TopicKind::Status) {
        assert_eq!(v["ts"].as_i64(), Some(m.ts_ms));
        assert!(matches!(v["engine"].as_str(), Some("on" | "off")));
        assert!(matches!(v["doors"].as_str(), Some("open" | "closed")));
        assert!(matches!(v["headlights"].as_str(), Some("on" | "off")));
        for f in ["speed", "fuel", "battery"] {
            assert!(
                (0.0..=100.0).contains(&num(v, f)) || f == "speed",
                "{f} in {v}"
            );
        }
        assert!(v["engine_detail"]["rpm"].is_u64() && v["engine_detail"]["temp_c"].is_f64());
    }
    let alerts: Vec<_> = of(TopicKind::Alert).collect();
    assert!(!alerts.is_empty(), "about 15 upstream alerts expected");
    for (m, v) in alerts {
        assert_eq!(v["id"].as_str(), Some(m.key.as_str()));
        assert!(m.key.starts_with("up-") && m.key.len() == 19);
        assert!(matches!(
            v["severity"].as_str(),
            Some("info" | "warning" | "critical")
        ));
        for f in ["vehicle", "rule", "message"] {
            assert!(v[f].is_string(), "{f} in {v}");
        }
    }
}

#[test]
fn positions_stay_on_streets_inside_the_radius() {
    let s = scenario();
    let city = s.fleet.city();
    assert!((city.radius_m() - 5000.0).abs() < 1e-9);
    for (_, v) in of(TopicKind::Position) {
        let (lat, lng) = (num(v, "lat"), num(v, "lng"));
        assert!(distance_m((lat, lng), DEFAULT_CENTER) <= 5000.0 + 5.0);
        let off = city.distance_to_street(lat, lng);
        assert!(off < 0.5, "{off} m off the street at {lat},{lng}");
    }
    let reporting: Vec<_> = s.fleet.positions().collect();
    assert!(reporting.len() > 450 && reporting.len() <= 500);
    for (_, lat, lng) in reporting {
        assert!(distance_m((lat, lng), DEFAULT_CENTER) <= 5000.0 + 5.0);
    }
}

#[test]
fn consecutive_positions_are_physically_plausible() {
    let mut last: HashMap<&str, (i64, f64, f64, f64)> = HashMap::new();
    let mut checked = 0;
    for (m, v) in of(TopicKind::Position) {
        let cur = (m.ts_ms, num(v, "lat"), num(v, "lng"), num(v, "speed"));
        if let Some((ts, lat, lng, speed)) = last.insert(&m.key, cur) {
            let dt = (cur.0 - ts) as f64 / 1000.0;
            let moved = distance_m((lat, lng), (cur.1, cur.2));
            let fastest = speed.max(cur.3) / 3.6;
            let slowest = speed.min(cur.3) / 3.6;
            assert!(
                moved <= fastest * dt + 3.0,
                "{} moved {moved} m in {dt} s",
                m.key
            );
            if dt <= 1.0 && slowest > 0.0 {
                // Even across a corner the chord is at least ~70 % of the path.
                assert!(
                    moved >= 0.7 * slowest * dt - 2.0,
                    "{} moved only {moved} m",
                    m.key
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 100_000, "{checked}");
}

#[test]
fn speeds_look_like_city_traffic_with_speeding_and_harsh_braking() {
    let mut moving: Vec<f64> = Vec::new();
    let mut last: HashMap<&str, (i64, f64)> = HashMap::new();
    let mut harsh = 0;
    for (m, v) in of(TopicKind::Position) {
        let speed = num(v, "speed");
        if speed > 5.0 {
            moving.push(speed);
        }
        if let Some((ts, prev)) = last.insert(&m.key, (m.ts_ms, speed))
            && m.ts_ms - ts == 1000
            && prev - speed > 20.0
        {
            harsh += 1;
        }
    }
    moving.sort_by(f64::total_cmp);
    let median = moving[moving.len() / 2];
    assert!((20.0..=60.0).contains(&median), "median {median}");
    let speeding = moving.iter().filter(|s| **s > 100.0).count();
    assert!(speeding > 0, "no speeding at all");
    assert!(
        speeding * 100 < moving.len(),
        "speeding is the exception: {speeding}"
    );
    assert!(harsh > 0, "no harsh braking");
}

#[test]
fn anomalies_show_up_in_half_an_hour() {
    // Headlights left on: engine off, doors closed, lights on, still so 2 minutes later.
    let mut since: HashMap<&str, i64> = HashMap::new();
    let mut left_on = 0;
    let (mut low_battery, mut low_fuel, mut doors_open) = (0, 0, 0);
    for (m, v) in of(TopicKind::Status) {
        let lights_left = v["engine"] == "off" && v["doors"] == "closed" && v["headlights"] == "on";
        if lights_left {
            let start = *since.entry(&m.key).or_insert(m.ts_ms);
            if m.ts_ms - start >= 120_000 {
                left_on += 1;
                since.insert(&m.key, i64::MAX / 2);
            }
        } else {
            since.remove(m.key.as_str());
        }
        low_battery += usize::from(num(v, "battery") < 15.0);
        low_fuel += usize::from(num(v, "fuel") < 10.0);
        doors_open += usize::from(v["doors"] == "open");
    }
    assert!(left_on >= 1, "no headlights-left-on episode");
    assert!(low_battery > 0 && low_fuel > 0, "{low_battery} {low_fuel}");
    assert!(doors_open > 0);

    // Silent devices: nothing at all for over a minute (statuses alone come every 10 s).
    let mut last: HashMap<&str, i64> = HashMap::new();
    let mut silent = 0;
    for m in scenario()
        .msgs
        .iter()
        .filter(|m| m.kind != TopicKind::Alert)
    {
        if let Some(prev) = last.insert(&m.key, m.ts_ms)
            && m.ts_ms - prev > 60_000
        {
            silent += 1;
        }
    }
    assert!(silent >= 1, "no device went silent and came back");
}
