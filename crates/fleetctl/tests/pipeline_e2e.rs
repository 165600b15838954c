//! The seed pipeline's contracts (SPEC §8, issue 12) against the real broker: where a first
//! run starts when `kafka.start` is a time; the schema registry and its drift alerts.

mod common;

use common::*;
use fleet_testkit::Broker;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

const GPS: &str = "cars.gps.json";

fn fixes(range: std::ops::Range<u32>) -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
    range
        .map(|i| {
            (
                Some(format!("car-{i:03}").into_bytes()),
                format!(r#"{{"lat":37.5,"lng":{:.4}}}"#, 127.0 + f64::from(i) * 1e-4).into_bytes(),
            )
        })
        .collect()
}

#[test]
fn a_start_time_begins_every_partition_at_its_first_message_at_or_after_it() {
    // ListOffsets answers are only right with tansu's sqlite storage (fleet-testkit docs).
    let broker = Broker::start_sqlite();
    broker.create_topic(GPS, 3);
    let p = broker.producer();
    let before = p.send_many_to(GPS, None, fixes(0..60));
    std::thread::sleep(Duration::from_millis(1500));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let t = chrono::DateTime::from_timestamp_millis(now).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let after = p.send_many_to(GPS, None, fixes(60..150));
    // Where each partition's first message after `t` is: right after its last earlier one.
    let mut first_after: BTreeMap<i32, i64> = BTreeMap::new();
    for d in &before {
        let e = first_after.entry(d.partition).or_insert(0);
        *e = (*e).max(d.offset + 1);
    }
    let kafka = kafka_section(&broker.bootstrap(), &[(GPS, "position")]).replace(
        "start = \"earliest\"",
        &format!(
            "start = \"{}\"",
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        ),
    );
    let env = Env::new(&format!(
        "{kafka}\n[store]\npath = \"{{store}}\"\n{KEEP_ALL}"
    ));
    env.ingest_until_idle(1.0);
    assert_eq!(
        env.stats()["positions"],
        after.len(),
        "only the messages after the start time are read"
    );
    for (partition, want) in first_after {
        let got = query_i64(
            &env.cache(),
            &format!("SELECT MIN(koffset) FROM positions WHERE kpartition = {partition}"),
        );
        assert_eq!(
            got, want,
            "partition {partition} started at {got}, not {want}"
        );
    }
}

const STATUS: &str = "cars.status.json";

/// Status messages of `n` cars at `ts`, in firmware 1's shape or firmware 2's (which adds
/// nested fields).
fn status(n: u32, ts: i64, firmware2: bool) -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let extra = if firmware2 {
                r#","fw":{"version":"2.0"},"tpms":{"fl_psi":31.5,"fr_psi":32.0}"#
            } else {
                r#","fw":{"version":"1.0"}"#
            };
            (
                Some(format!("car-{i:03}").into_bytes()),
                format!(r#"{{"ts":{ts},"speed":{i},"fuel":50{extra}}}"#).into_bytes(),
            )
        })
        .collect()
}

/// SPEC §8: after a topic's 10-minute baseline, new nested fields raise exactly one
/// `schema_drift` alert, with the same id on every desktop, and not again after a restart;
/// `fleetctl fields` lists the registry.
#[test]
fn new_nested_fields_after_the_baseline_raise_one_drift_alert_everywhere() {
    let broker = Broker::start_memory();
    broker.create_topic(STATUS, 2);
    let p = broker.producer();
    let base = recent_base_ms();
    p.send_many(STATUS, status(20, base, false));
    p.send_many(STATUS, status(20, base + 5 * 60_000, false));
    p.send_many(STATUS, status(20, base + 15 * 60_000, true));
    let desk = || {
        Env::new(&format!(
            "{}\n[store]\npath = \"{{store}}\"\n",
            kafka_section(&broker.bootstrap(), &[(STATUS, "status")])
        ))
    };
    let (one, two) = (desk(), desk());
    one.ingest_until_idle(1.0);
    two.ingest_until_idle(1.0);
    let (a1, a2) = (drift_alerts(&one), drift_alerts(&two));
    assert_eq!(a1.len(), 1, "{a1:?}");
    assert_eq!(a2.len(), 1, "{a2:?}");
    assert_eq!(
        a1[0]["id"], a2[0]["id"],
        "the same drift has the same id on both desks"
    );
    let msg = a1[0]["message"].as_str().unwrap();
    for f in ["tpms.fl_psi (number", "tpms.fr_psi (number"] {
        assert!(msg.contains(f), "{msg}");
    }
    assert!(
        !msg.contains("fw.version"),
        "a known field is not drift: {msg}"
    );

    // More of the new shape after a restart: known now, no second alert.
    p.send_many(STATUS, status(20, base + 20 * 60_000, true));
    one.ingest_until_idle(1.0);
    assert_eq!(drift_alerts(&one).len(), 1);

    let fields = one.run_json(&["fields", "--topic", STATUS]);
    let row = |path: &str| -> Value {
        (fields.as_array().unwrap().iter())
            .find(|r| r["path"] == path)
            .cloned()
            .unwrap_or_else(|| panic!("{path} not in {fields}"))
    };
    assert_eq!(row("tpms.fl_psi")["type"], "number");
    assert_eq!(row("tpms.fl_psi")["count"], 40);
    assert_eq!(row("fw.version")["count"], 80);
    assert_eq!(row("fw.version")["type"], "string");
    assert_eq!(row("speed")["first_seen"], base);
    let since = (base + 10 * 60_000).to_string();
    let new = one.run_json(&["fields", "--since", &since]);
    let paths: Vec<&str> = (new.as_array().unwrap().iter())
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["tpms.fl_psi", "tpms.fr_psi"]);
}

/// Issue 12's lag panel: per partition, the cache's committed offset, the broker's high
/// watermark and the lag, as the broker itself reports them once everything is read.
#[test]
fn the_lag_panel_matches_the_brokers_watermarks() {
    let broker = Broker::start_memory();
    broker.create_topic(GPS, 3);
    broker.producer().send_many(GPS, fixes(0..150));
    let env = Env::new(&format!(
        "{}\n[store]\npath = \"{{store}}\"\n",
        kafka_section(&broker.bootstrap(), &[(GPS, "position")])
    ));
    let out = env.ingest_until_idle(1.0);
    let marks = fleet_testkit::watermarks(&broker.bootstrap(), GPS);
    let rows = out["partitions"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{out}");
    for r in rows {
        let p = r["partition"].as_i64().unwrap() as i32;
        let hi = marks[&p].1;
        assert_eq!(r["topic"], GPS);
        assert_eq!(r["high_watermark"], hi, "partition {p}: {r}");
        assert_eq!(r["committed"], hi, "partition {p}: {r}");
        assert_eq!(r["lag"], 0, "partition {p}: {r}");
        assert_eq!(r["stuck"], false, "partition {p}: {r}");
    }
}

/// SPEC §8: a threshold rule on a nested field, through the real pipeline: it fires after
/// `for_s` of the condition and resolves after `for_s` without it; a flicker shorter than
/// that changes nothing.
#[test]
fn a_threshold_rule_fires_and_resolves_with_hysteresis_end_to_end() {
    let broker = Broker::start_memory();
    broker.create_topic(STATUS, 1);
    let base = recent_base_ms();
    // car-1's engine temperature every 10 s: hot from 20 s, a 10 s dip at 70 s, cool from 100 s.
    let temps = [
        90, 90, 110, 111, 112, 113, 112, 95, 112, 112, 90, 90, 90, 90, 90,
    ];
    broker.producer().send_many(
        STATUS,
        temps.iter().enumerate().map(|(i, t)| {
            (
                Some(b"car-1".to_vec()),
                format!(
                    r#"{{"ts":{},"engine":{{"temp_c":{t}}}}}"#,
                    base + i as i64 * 10_000
                )
                .into_bytes(),
            )
        }),
    );
    let env = Env::new(&format!(
        "{}\n[store]\npath = \"{{store}}\"\n\n[[alerts.thresholds]]\nname = \"engine_overheat\"\nfield = \"engine.temp_c\"\nabove = 105\nfor_s = 30\nseverity = \"critical\"\n",
        kafka_section(&broker.bootstrap(), &[(STATUS, "status")])
    ));
    env.ingest_until_idle(1.0);
    let all = env.run_json(&["alerts"]);
    let hot: Vec<&Value> = (all["alerts"].as_array().unwrap().iter())
        .filter(|a| a["rule"] == "engine_overheat")
        .collect();
    assert_eq!(hot.len(), 1, "one alert despite the dip: {all}");
    let a = hot[0];
    assert_eq!(a["vehicle"], "car-1");
    assert_eq!(a["severity"], "critical");
    assert_eq!(
        a["id"],
        fleet_model::alert_id("engine_overheat", "car-1", base + 20_000),
        "the id derives from when the condition began"
    );
    // Hot from 20 s (held 30 s at 50 s), cool from 100 s: resolved at 130 s.
    assert_eq!(a["state"], "resolved", "{a}");
    assert_eq!(a["ts_ms"], base + 50_000, "{a}");
    assert_eq!(a["resolved_ms"], base + 130_000, "{a}");
}
