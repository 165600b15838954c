//! The live fleet's merge rules, counters and eviction.
use super::*;

fn p(src: Source, ts: i64) -> PositionSample {
    PositionSample {
        vehicle: "v".into(),
        ts_ms: ts,
        lat: 1.0,
        lng: 2.0,
        speed: None,
        heading: None,
        source: src,
    }
}

/// SPEC §8: info topics merge column by column; `Some("")` clears, `None` keeps.
#[test]
fn info_merges_column_by_column() {
    let mut f = LiveFleet::new(60.0);
    let info = |plate: Option<&str>, driver: Option<&str>, extra: &str| VehicleInfo {
        vehicle: "v".into(),
        plate: plate.map(Into::into),
        driver: driver.map(Into::into),
        extra: extra.into(),
        ..Default::default()
    };
    f.apply_info(&info(Some("12가3456"), None, r#"{"year":2024}"#), 1);
    f.apply_info(&info(None, Some("Kim"), r#"{"seats":5}"#), 2);
    let got = f.vehicle("v").unwrap().info.clone().unwrap();
    assert_eq!(got.plate.as_deref(), Some("12가3456"));
    assert_eq!(got.driver.as_deref(), Some("Kim"));
    let extra: serde_json::Value = serde_json::from_str(&got.extra).unwrap();
    assert_eq!(extra, serde_json::json!({"seats": 5, "year": 2024}));
    f.apply_info(&info(None, Some(""), "{}"), 3);
    let got = f.vehicle("v").unwrap().info.clone().unwrap();
    assert_eq!(got.driver, None, "cleared");
    assert_eq!(got.plate.as_deref(), Some("12가3456"), "kept");
    f.delete_info("v");
    assert!(f.vehicle("v").unwrap().info.is_none());
}

/// What an unmapped device reported moves to its vehicle; the newer fix wins.
#[test]
fn reattribute_moves_a_device_to_its_vehicle() {
    let mut f = LiveFleet::new(60.0);
    let mut dev = p(Source::Kafka, 200);
    dev.vehicle = "D1".into();
    f.apply_position(&dev, 10);
    f.apply_position(&p(Source::Kafka, 100), 20);
    assert!(f.reattribute("D1", "v", 30));
    assert!(f.vehicle("D1").is_none());
    let v = f.vehicle("v").unwrap();
    assert_eq!(v.position.as_ref().unwrap().ts_ms, 200);
    assert_eq!(v.position.as_ref().unwrap().vehicle, "v");
    assert_eq!(v.first_seen_ms, 10);
    assert!(!f.reattribute("D1", "v", 40), "nothing left to move");
}

#[test]
fn merge_rules() {
    let mut f = LiveFleet::new(60.0);
    assert!(f.apply_position(&p(Source::Kafka, 100), 1000).new_vehicle);
    assert!(
        !f.apply_position(&p(Source::Kafka, 50), 1001).changed,
        "older kafka sample loses"
    );
    assert!(
        f.apply_position(&p(Source::Redis, 10), 1002).changed,
        "other source: arrival wins"
    );
    assert_eq!(
        f.vehicle("v").unwrap().position.as_ref().unwrap().source,
        Source::Redis
    );
    // speed and heading of a recent Kafka fix carry over to a Redis fix that has none
    let mut k = p(Source::Kafka, 5_000);
    k.speed = Some(42.0);
    f.apply_position(&k, 1003);
    f.apply_position(&p(Source::Redis, 9_000), 1003);
    let cur = f.vehicle("v").unwrap().position.clone().unwrap();
    assert_eq!((cur.source, cur.speed), (Source::Redis, Some(42.0)));
    f.apply_position(&p(Source::Kafka, 30_000), 1003);
    f.apply_position(&p(Source::Redis, 60_000), 1003);
    assert_eq!(
        f.vehicle("v").unwrap().position.as_ref().unwrap().speed,
        None,
        "too old to carry over"
    );
    let c = f.counters(1003);
    assert_eq!((c.vehicles_total, c.vehicles_online), (1, 1));
    let c = f.counters(1003 + 61_000);
    assert_eq!(c.vehicles_stale, 1);
}

#[test]
fn rate_and_lag() {
    let mut f = LiveFleet::new(60.0);
    for s in 0..5 {
        f.count("gps", 100, 1, s * 1000 + 10);
    }
    let c = f.counters(5_000);
    assert!((c.rate - 100.0).abs() < 1e-9, "{}", c.rate);
    assert_eq!(c.rejected, 5);
    f.set_lag("gps", 0, 7);
    f.set_lag("gps", 1, 3);
    assert_eq!(f.counters(5_000).lag, Some(10));
}

/// SPEC §7 bounded: silent vehicles go, the fleet is capped by evicting the longest
/// silent first, and vehicles the caller must keep stay.
#[test]
fn eviction_takes_the_silent_and_the_oldest_over_the_cap() {
    let mut l = LiveFleet::new(300.0);
    for i in 0..10 {
        l.apply_position(
            &PositionSample {
                vehicle: format!("v{i}"),
                ..p(Source::Kafka, 1)
            },
            1_000 * i,
        );
    }
    let mut gone = l.eviction_candidates(2_500, usize::MAX, |_| false);
    gone.sort();
    assert_eq!(gone, ["v0", "v1", "v2"]);
    let mut gone = l.eviction_candidates(0, 6, |id| id == "v1");
    gone.sort();
    assert_eq!(gone, ["v0", "v2", "v3"], "the 4 oldest, v1 kept");
    for id in &gone {
        l.remove(id);
    }
    assert_eq!(l.len(), 7);
    assert!(l.eviction_candidates(0, 7, |_| false).is_empty());
}
