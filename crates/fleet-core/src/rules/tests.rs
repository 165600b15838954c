use super::*;
use crate::config::{AlertsConfig, Geofence};
use fleet_model::{Source, StatusFields};

fn status(v: &str, ts: i64, engine: bool, doors: bool, lights: bool) -> StatusSample {
    StatusSample {
        vehicle: v.into(),
        ts_ms: ts,
        known: StatusFields {
            engine_on: Some(engine),
            doors_open: Some(doors),
            headlights_on: Some(lights),
            ..Default::default()
        },
        fields: "{}".into(),
    }
}

fn level(v: &str, ts: i64, battery: f64) -> StatusSample {
    StatusSample {
        vehicle: v.into(),
        ts_ms: ts,
        known: StatusFields {
            battery: Some(battery),
            ..Default::default()
        },
        fields: "{}".into(),
    }
}

fn pos(v: &str, ts: i64, speed: f64, lat: f64) -> PositionSample {
    PositionSample {
        vehicle: v.into(),
        ts_ms: ts,
        lat,
        lng: 127.0,
        speed: Some(speed),
        heading: None,
        source: Source::Kafka,
    }
}

fn engine() -> RuleEngine {
    RuleEngine::new(&AlertsConfig::default(), 0)
}

#[test]
fn headlights_fire_at_exactly_the_threshold_and_resolve() {
    let mut r = engine();
    let mut out = Vec::new();
    r.on_status(&status("v", 1_000, false, false, true), &mut out);
    r.on_status(&status("v", 60_999, false, false, true), &mut out);
    assert!(out.is_empty(), "59.999 s is not 60 s");
    r.on_status(&status("v", 61_000, false, false, true), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].rule, names::HEADLIGHTS);
    assert_eq!(
        out[0].id,
        alert_id(names::HEADLIGHTS, "v", 1_000),
        "id from when the condition began"
    );
    r.on_status(&status("v", 70_000, false, false, true), &mut out);
    assert_eq!(out.len(), 1, "one open alert per rule and vehicle");
    r.on_status(&status("v", 80_000, false, true, true), &mut out); // a door opens
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].state, AlertState::Resolved);
    // fires again after it resolved, with a new id
    r.on_status(&status("v", 90_000, false, false, true), &mut out);
    r.on_status(&status("v", 150_000, false, false, true), &mut out);
    assert_eq!(out.len(), 3);
    assert_ne!(out[2].id, out[0].id);
}

#[test]
fn out_of_order_and_duplicate_messages_do_not_move_timers() {
    let mut r = engine();
    let mut out = Vec::new();
    r.on_status(&status("v", 100_000, false, false, true), &mut out);
    // a late message from before: ignored (would otherwise pull the timer back)
    r.on_status(&status("v", 10_000, false, false, true), &mut out);
    r.on_status(&status("v", 159_000, false, false, true), &mut out);
    assert!(out.is_empty());
    r.on_status(&status("v", 159_000, false, false, true), &mut out); // duplicate
    assert!(out.is_empty());
    r.on_status(&status("v", 160_000, false, false, true), &mut out);
    assert_eq!(out.len(), 1);
    // a late "lights off" from the past does not resolve it
    r.on_status(&status("v", 150_000, false, false, false), &mut out);
    assert_eq!(out.len(), 1);
}

#[test]
fn partial_status_keeps_the_headlights_timer() {
    let mut r = engine();
    let mut out = Vec::new();
    r.on_status(&status("v", 0, false, false, true), &mut out);
    r.on_status(&level("v", 30_000, 80.0), &mut out); // no switch fields: no verdict
    r.on_status(&status("v", 60_000, false, false, true), &mut out);
    assert_eq!(out.len(), 1);
}

#[test]
fn battery_threshold_and_hysteresis() {
    let mut r = engine();
    let mut out = Vec::new();
    r.on_status(&level("v", 1, 15.0), &mut out);
    assert!(out.is_empty(), "15 is not below 15");
    r.on_status(&level("v", 2, 14.9), &mut out);
    assert_eq!(out.len(), 1);
    r.on_status(&level("v", 3, 19.9), &mut out);
    assert_eq!(out.len(), 1, "within hysteresis: stays open");
    r.on_status(&level("v", 4, 20.0), &mut out);
    assert_eq!(out[1].state, AlertState::Resolved);
}

#[test]
fn overspeed_needs_duration() {
    let mut r = engine();
    let mut out = Vec::new();
    r.on_position(&pos("v", 0, 111.0, 37.0), &mut out);
    r.on_position(&pos("v", 9_000, 120.0, 37.0), &mut out);
    assert!(out.iter().all(|a| a.rule != names::OVERSPEED));
    r.on_position(&pos("v", 10_000, 115.0, 37.0), &mut out);
    assert!(
        out.iter()
            .any(|a| a.rule == names::OVERSPEED && a.severity == Severity::Critical)
    );
    r.on_position(&pos("v", 11_000, 110.0, 37.0), &mut out); // at the limit is not above it
    assert!(
        out.iter()
            .any(|a| a.rule == names::OVERSPEED && a.state == AlertState::Resolved)
    );
}

#[test]
fn harsh_braking_and_clear() {
    let mut r = engine();
    let mut out = Vec::new();
    r.on_position(&pos("v", 0, 60.0, 37.0), &mut out);
    r.on_position(&pos("v", 1_000, 46.0, 37.0), &mut out); // 3.9 m/s²
    assert!(out.is_empty());
    r.on_position(&pos("v", 2_000, 31.0, 37.0), &mut out); // 4.17 m/s²
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].rule, names::HARSH_BRAKING);
    r.on_position(&pos("v", 10_000, 0.0, 37.0), &mut out); // gap 8 s > max 5 s: not compared
    r.on_position(&pos("v", 62_000, 0.0, 37.0), &mut out);
    assert_eq!(out.last().unwrap().state, AlertState::Resolved);
}

#[test]
fn geofence_leave_and_return() {
    let cfg = AlertsConfig {
        geofences: vec![Geofence {
            name: "depot".into(),
            center: Some([37.0, 127.0]),
            radius_m: Some(500.0),
            points: None,
            alert_on: FenceTrigger::Leave,
            severity: Severity::Warning,
        }],
        ..Default::default()
    };
    let mut r = RuleEngine::new(&cfg, 0);
    let mut out = Vec::new();
    r.on_position(&pos("v", 0, 10.0, 37.0), &mut out);
    r.on_position(&pos("v", 1_000, 10.0, 37.001), &mut out);
    assert!(out.is_empty());
    r.on_position(&pos("v", 2_000, 10.0, 37.01), &mut out); // ~1.1 km out
    assert_eq!(out[0].rule, "geofence_exit:depot");
    r.on_position(&pos("v", 3_000, 10.0, 37.0), &mut out);
    assert_eq!(out[1].state, AlertState::Resolved);
    // a vehicle first seen outside does not alert (no transition)
    r.on_position(&pos("w", 0, 10.0, 38.0), &mut out);
    assert_eq!(out.len(), 2);
}

#[test]
fn stale_after_grace_and_back_online() {
    let mut r = RuleEngine::new(&AlertsConfig::default(), 0);
    let mut out = Vec::new();
    r.on_position(&pos("v", 1_000, 0.0, 37.0), &mut out);
    r.on_tick(100_000, [("v", 1_000)].into_iter(), &mut out);
    assert!(out.is_empty(), "start-up grace and not silent long enough");
    r.on_tick(601_000, [("v", 1_000)].into_iter(), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].id,
        alert_id(names::STALE, "v", 1_000),
        "id from the last event time"
    );
    r.on_tick(700_000, [("v", 1_000)].into_iter(), &mut out);
    assert_eq!(out.len(), 1);
    r.on_position(&pos("v", 700_000, 0.0, 37.0), &mut out);
    assert_eq!(out[1].state, AlertState::Resolved);
}

/// Issue 10 fault suite: broker and Redis down for minutes must not end in a storm of
/// `stale` alerts; the rule pauses while the source is down and for `after_s` after it.
#[test]
fn stale_pauses_while_the_source_is_down() {
    let mut r = RuleEngine::new(&AlertsConfig::default(), 0);
    let mut out = Vec::new();
    for v in ["a", "b", "c"] {
        r.on_position(&pos(v, 1_000, 0.0, 37.0), &mut out);
    }
    // The source is down from 500 s to 800 s (ticks every second), then back.
    for now in (500_000..800_000).step_by(1_000) {
        r.sources_down(now);
        r.on_tick(
            now,
            [("a", 1_000), ("b", 1_000), ("c", 1_000)].into_iter(),
            &mut out,
        );
    }
    r.on_tick(
        900_000,
        [("a", 850_000), ("b", 1_000), ("c", 1_000)].into_iter(),
        &mut out,
    );
    assert!(
        out.is_empty(),
        "no stale alerts during the outage or right after it"
    );
    // A full after_s (600 s) after the outage, the vehicles that still say nothing are stale.
    r.on_tick(
        1_400_000,
        [("a", 1_390_000), ("b", 1_000), ("c", 1_000)].into_iter(),
        &mut out,
    );
    let stale: Vec<_> = out.iter().map(|a| a.vehicle.as_str()).collect();
    assert_eq!(stale, ["b", "c"]);
}

#[test]
fn state_survives_a_restart() {
    let mut r = engine();
    let mut out = Vec::new();
    r.on_status(&status("v", 0, false, false, true), &mut out);
    let saved = r.take_dirty();
    assert_eq!(saved[0].1.headlights_since, Some(0));
    let mut r2 = engine();
    r2.seed(Vec::new(), saved);
    r2.on_status(&status("v", 60_000, false, false, true), &mut out);
    assert_eq!(out.len(), 1, "the timer continued across the restart");
    // and an open alert reloaded from the cache is not raised twice
    let mut r3 = engine();
    r3.seed(out.clone(), r2.take_dirty());
    r3.on_status(&status("v", 61_000, false, false, true), &mut out);
    assert_eq!(out.len(), 1);
}

#[test]
fn disabled_rules_stay_quiet() {
    let mut cfg = AlertsConfig::default();
    cfg.low_battery.enabled = false;
    let mut r = RuleEngine::new(&cfg, 0);
    let mut out = Vec::new();
    r.on_status(&level("v", 1, 1.0), &mut out);
    assert!(out.is_empty());
}

fn temp(v: &str, ts: i64, t: f64) -> StatusSample {
    StatusSample {
        vehicle: v.into(),
        ts_ms: ts,
        known: StatusFields::default(),
        fields: format!(r#"{{"engine.temp_c":{t},"engine.rpm":900}}"#),
    }
}

fn overheat(for_s: f64) -> AlertsConfig {
    AlertsConfig {
        thresholds: vec![crate::config::ThresholdRule {
            name: "engine_overheat".into(),
            field: "engine.temp_c".into(),
            above: Some(105.0),
            below: None,
            equals: None,
            for_s,
            severity: Severity::Critical,
            enabled: true,
        }],
        ..Default::default()
    }
}

/// SPEC §8: a threshold fires once its condition held `for_s` and resolves once it has been
/// gone `for_s`; flicker in between changes nothing; the id derives from the event time.
#[test]
fn a_threshold_rule_fires_and_resolves_with_hysteresis() {
    let mut r = RuleEngine::new(&overheat(30.0), 0);
    let mut out = Vec::new();
    r.on_status(&temp("v", 0, 100.0), &mut out);
    r.on_status(&temp("v", 10_000, 106.0), &mut out); // condition begins
    r.on_status(&temp("v", 20_000, 104.0), &mut out); // flicker: timer restarts
    r.on_status(&temp("v", 30_000, 107.0), &mut out);
    r.on_status(&temp("v", 50_000, 108.0), &mut out);
    assert!(out.is_empty(), "held only 20 s: {out:?}");
    r.on_status(&temp("v", 60_000, 109.0), &mut out);
    assert_eq!(out.len(), 1);
    let a = &out[0];
    assert_eq!(
        (a.rule.as_str(), a.severity),
        ("engine_overheat", Severity::Critical)
    );
    assert_eq!(a.id, alert_id("engine_overheat", "v", 30_000));
    assert!(a.message.contains("engine.temp_c = 109"), "{}", a.message);
    r.on_status(&temp("v", 70_000, 100.0), &mut out); // gone…
    r.on_status(&temp("v", 80_000, 106.0), &mut out); // …back before 30 s: stays open
    r.on_status(&temp("v", 90_000, 100.0), &mut out);
    r.on_status(&temp("v", 110_000, 100.0), &mut out);
    assert_eq!(out.len(), 1, "gone only 20 s: {out:?}");
    r.on_status(&temp("v", 120_000, 100.0), &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].state, AlertState::Resolved);
    assert_eq!(out[1].id, out[0].id);
}

/// The timers are persisted like the built-in rules', so a restart continues them.
#[test]
fn threshold_timers_survive_a_restart() {
    let mut r = RuleEngine::new(&overheat(30.0), 0);
    let mut out = Vec::new();
    r.on_status(&temp("v", 10_000, 110.0), &mut out);
    let states = r.take_dirty();
    assert_eq!(states[0].1.thresholds.get("engine_overheat"), Some(&10_000));
    let mut again = RuleEngine::new(&overheat(30.0), 0);
    again.seed(Vec::new(), states);
    again.on_status(&temp("v", 40_000, 110.0), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].id, alert_id("engine_overheat", "v", 10_000));
}

/// A message without the field, or with a value of another kind, leaves the rule alone.
#[test]
fn a_threshold_ignores_messages_without_its_field() {
    let mut r = RuleEngine::new(&overheat(0.0), 0);
    let mut out = Vec::new();
    r.on_status(&temp("v", 0, 120.0), &mut out);
    assert_eq!(out.len(), 1);
    r.on_status(&level("v", 5_000, 50.0), &mut out); // no engine.temp_c
    let mut text = temp("v", 6_000, 0.0);
    text.fields = r#"{"engine.temp_c":"sensor fault"}"#.into();
    r.on_status(&text, &mut out);
    assert_eq!(out.len(), 1, "{out:?}");
}
