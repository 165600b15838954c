//! SOCAR's CDC shape (SPEC §8, issue 12) against the real broker: AWS DMS envelopes on
//! several info topics merge into one record per vehicle; device-keyed telemetry lands on its
//! vehicle, also when it arrived before the device's mapping; `fleetctl sim --cdc` feeds the
//! whole thing, drift notice included.

mod common;

use common::*;
use fleet_testkit::Broker;
use serde_json::{Value, json};
use std::time::Duration;

const CARINFO: &str = "carinfo";
const CARUSE: &str = "caruse";
const DEVICES: &str = "deviceinfo";
const TELEMETRY: &str = "cars.telemetry.json";

/// The README's SOCAR example: DMS tables for cars and devices, one device-keyed telemetry
/// topic read as position and as status.
const CDC_TOPICS: &str = r#"
[[kafka.topics]]
name = "carinfo"
kind = "info"
format = "dms"
fields = { id = "car_id", plate = "car_number", model = "car_name", driver = "driver_name", group = "region" }

[[kafka.topics]]
name = "deviceinfo"
kind = "device"
format = "dms"
fields = { id = "device_id", vehicle = "car_id" }

[[kafka.topics]]
name = "cars.telemetry.json"
kind = "position"
fields = { device = "device_id", lat = "gps.lat", lng = "gps.lng", speed = "gps.speed", heading = "gps.heading" }

[[kafka.topics]]
name = "cars.telemetry.json"
kind = "status"
fields = { device = "device_id", engine = "engine.state", doors = "body.doors", headlights = "body.headlights", speed = "gps.speed", fuel = "engine.fuel", battery = "engine.battery" }
"#;

fn dms(op: &str, table: &str, data: Value) -> (Option<Vec<u8>>, Vec<u8>) {
    let key = data
        .get("car_id")
        .or_else(|| data.get("device_id"))
        .and_then(Value::as_str)
        .map(|k| k.as_bytes().to_vec());
    let mut env = json!({
        "data": data,
        "metadata": {"timestamp": "2026-12-03T08:00:00.000000Z", "record-type": "data",
                     "operation": op, "partition-key-type": "primary-key",
                     "schema-name": "socar", "table-name": table},
    });
    // Ongoing replication (not the full load) adds a transaction id, as DMS does.
    if op != "load" {
        env["metadata"]["transaction-id"] = json!(4_815_162_342_u64);
    }
    (key, env.to_string().into_bytes())
}

/// A broker with the car and device tables (one partition each) and the telemetry topic
/// (two), and a producer.
fn cdc_broker() -> (Broker, fleet_testkit::Producer) {
    let broker = Broker::start_memory();
    broker.create_topic(CARINFO, 1);
    broker.create_topic(DEVICES, 1);
    broker.create_topic(TELEMETRY, 2);
    let p = broker.producer();
    (broker, p)
}

/// `--config`-less Kafka section (`start = "earliest"`) plus `topics`.
fn config(broker: &Broker, topics: &str) -> String {
    let kafka = kafka_section(&broker.bootstrap(), &[]);
    format!("{kafka}{topics}\n[store]\npath = \"{{store}}\"\n{KEEP_ALL}")
}

fn vehicles(env: &Env, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["vehicles"];
    args.extend_from_slice(extra);
    env.run_json(&args).as_array().unwrap().clone()
}

/// The schema registry's paths on `topic` (`fleetctl fields`).
fn field_paths(env: &Env, topic: &str) -> Vec<String> {
    let fields = env.run_json(&["fields", "--topic", topic]);
    (fields.as_array().unwrap().iter())
        .filter_map(|f| f["path"].as_str().map(str::to_string))
        .collect()
}

fn by_id<'a>(list: &'a [Value], id: &str) -> &'a Value {
    list.iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {list:#?}"))
}

/// SPEC §8: load / insert / update / delete on two info topics give one record per vehicle,
/// merged column by column with the newest value winning; a delete removes the record; a
/// column sent as null is cleared; control records change nothing; a malformed envelope is
/// quarantined.
#[test]
fn dms_changes_on_two_info_topics_merge_into_one_record_per_vehicle() {
    let broker = Broker::start_memory();
    for t in [CARINFO, CARUSE, DEVICES, TELEMETRY] {
        broker.create_topic(t, 1);
    }
    let p = broker.producer();
    p.send_many(
        CARINFO,
        [
            (
                None,
                br#"{"data":{},"metadata":{"record-type":"control","operation":"create-table"}}"#
                    .to_vec(),
            ),
            dms("load", CARINFO, json!({"car_id": "car-1", "car_number": "12가3456", "car_name": "Ioniq 5", "region": "gangnam"})),
            dms("load", CARINFO, json!({"car_id": "car-2", "car_number": "34나5678", "car_name": "Avante", "region": "mapo"})),
            dms("update", CARINFO, json!({"car_id": "car-1", "car_number": "12가3456", "car_name": "Ioniq 6", "region": "gangnam"})),
            dms("delete", CARINFO, json!({"car_id": "car-2"})),
            (Some(b"car-x".to_vec()), br#"{"metadata":{"operation":"insert"}}"#.to_vec()),
        ],
    );
    p.send_many(
        CARUSE,
        [dms(
            "insert",
            CARUSE,
            json!({"car_id": "car-1", "driver_name": "Kim Min-jun"}),
        )],
    );
    let topics = format!(
        r#"{CDC_TOPICS}
[[kafka.topics]]
name = "caruse"
kind = "info"
format = "dms"
fields = {{ id = "car_id", driver = "driver_name" }}
"#
    );
    let env = Env::new(&config(&broker, &topics));
    env.ingest_until_idle(1.0);
    let list = vehicles(&env, &[]);
    let car1 = by_id(&list, "car-1");
    assert_eq!(car1["plate"], "12가3456");
    assert_eq!(car1["model"], "Ioniq 6", "the update wins");
    assert_eq!(car1["driver"], "Kim Min-jun", "the other topic's column");
    assert_eq!(car1["group"], "gangnam");
    // Loaded then deleted: no record left (no row at all, or one without metadata).
    assert!(
        list.iter()
            .filter(|v| v["id"] == "car-2")
            .all(|v| v["plate"].is_null() && v["model"].is_null()),
        "car-2 was deleted: {list:#?}"
    );
    let stats = env.stats();
    assert_eq!(
        stats["rejected"], 1,
        "only the envelope without data: {stats}"
    );
    assert_eq!(stats["rejected_by_reason"]["invalid_field"], 1, "{stats}");

    // A later run: the driver is unassigned (null), the car moves depot. The plate, sent by
    // neither message, stays.
    p.send_many(
        CARUSE,
        [dms(
            "update",
            CARUSE,
            json!({"car_id": "car-1", "driver_name": null}),
        )],
    );
    p.send_many(
        CARINFO,
        [dms(
            "update",
            CARINFO,
            json!({"car_id": "car-1", "car_name": "Ioniq 6", "region": "mapo"}),
        )],
    );
    env.ingest_until_idle(1.0);
    let list = vehicles(&env, &[]);
    let car1 = by_id(&list, "car-1");
    assert_eq!(car1["driver"], Value::Null, "null clears: {car1}");
    assert_eq!(car1["group"], "mapo");
    assert_eq!(car1["plate"], "12가3456", "not sent, kept: {car1}");
    let mapo = vehicles(&env, &["--group", "mapo"]);
    assert_eq!(mapo.len(), 1, "{mapo:?}");
    let found = vehicles(&env, &["--search", "가3456"]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["id"], "car-1");

    // The registry holds the tables' columns, not the envelope's metadata: ongoing changes
    // (with a transaction id) after the full load are no schema drift.
    let paths = field_paths(&env, CARINFO);
    assert!(paths.iter().any(|p| p == "car_number"), "{paths:?}");
    assert!(
        paths
            .iter()
            .all(|p| !p.starts_with("data.") && !p.starts_with("metadata.")),
        "{paths:?}"
    );
    let drift = drift_alerts(&env);
    assert!(drift.is_empty(), "{drift:#?}");
}

/// One telemetry message of device `dev` at `ts`: position and status together.
fn telemetry(dev: &str, ts: i64, lng: f64) -> (Option<Vec<u8>>, Vec<u8>) {
    let m = json!({
        "device_id": dev, "ts": ts,
        "gps": {"lat": 37.5, "lng": lng, "speed": 30.0, "heading": 90.0},
        "engine": {"state": "on", "fuel": 60.0, "battery": 80.0},
        "body": {"doors": "closed", "headlights": "off"},
    });
    (Some(dev.as_bytes().to_vec()), m.to_string().into_bytes())
}

/// SPEC §8: telemetry keyed by a device lands on its vehicle; a device whose telemetry comes
/// before its mapping shows as an unmapped vehicle, loses nothing, and is re-attributed
/// (position, history, status) when the mapping arrives. One message feeds both the position
/// and the status reading of the topic, and is counted once.
#[test]
fn device_telemetry_before_its_mapping_is_reattributed_when_the_mapping_arrives() {
    let (broker, p) = cdc_broker();
    let base = recent_base_ms();
    p.send_many(
        TELEMETRY,
        (0..5).map(|i| telemetry("DEV-1", base + i * 1000, 127.0 + i as f64 * 1e-3)),
    );
    let env = Env::new(&config(&broker, CDC_TOPICS));
    env.ingest_until_idle(1.0);
    let list = vehicles(&env, &[]);
    let dev = by_id(&list, "DEV-1");
    assert_eq!(dev["state"], "unmapped", "{dev}");
    assert_eq!(dev["devices"], json!(["DEV-1"]));
    assert_eq!(dev["lng"], 127.004);
    let stats = env.stats();
    assert_eq!(stats["positions"], 5, "{stats}");
    assert_eq!(stats["status_samples"], 5, "{stats}");
    assert_eq!(stats["rejected"], 0, "{stats}");
    assert_eq!(
        stats["topics"][TELEMETRY]["messages"], 5,
        "a message read twice is counted once: {stats}"
    );

    // The mapping arrives, with a second device of the same car reporting after it.
    p.send_many(
        DEVICES,
        [
            dms(
                "load",
                DEVICES,
                json!({"device_id": "DEV-1", "car_id": "car-9", "device_type": "gps"}),
            ),
            dms(
                "load",
                DEVICES,
                json!({"device_id": "DEV-2", "car_id": "car-9", "device_type": "obd"}),
            ),
        ],
    );
    env.ingest_until_idle(1.0);
    p.send_many(TELEMETRY, [telemetry("DEV-2", base + 10_000, 127.01)]);
    env.ingest_until_idle(1.0);
    let list = vehicles(&env, &[]);
    assert!(
        list.iter().all(|v| v["id"] != "DEV-1"),
        "the device is no vehicle of its own any more: {list:#?}"
    );
    let car = by_id(&list, "car-9");
    assert_eq!(car["devices"], json!(["DEV-1", "DEV-2"]));
    assert_eq!(car["lng"], 127.01, "the newest fix, from either device");
    assert_ne!(car["state"], "unmapped");
    let cache = env.cache();
    for (table, want) in [("positions", 6), ("status_samples", 6)] {
        assert_eq!(
            query_i64(
                &cache,
                &format!("SELECT COUNT(*) FROM {table} WHERE vehicle = 'car-9'")
            ),
            want,
            "{table}: the unmapped device's rows moved to its car"
        );
        assert_eq!(
            query_i64(
                &cache,
                &format!("SELECT COUNT(*) FROM {table} WHERE vehicle LIKE 'DEV-%'")
            ),
            0,
            "{table}"
        );
    }
    let h = env.run_json(&[
        "history",
        "--vehicle",
        "car-9",
        "--from",
        &(base - 1000).to_string(),
        "--to",
        &(base + 60_000).to_string(),
    ]);
    assert_eq!(h["positions"].as_array().map(Vec::len), Some(6), "{h}");
}

/// `fleetctl sim --cdc` produces the shape the README's SOCAR config reads: every car ends up
/// with its plate, two or three devices and a position, no device stays unmapped, and the
/// firmware change after the 10-minute baseline raises exactly one drift alert naming the
/// new nested fields.
#[test]
fn sim_cdc_feeds_enrichment_devices_and_a_drift_notice() {
    let broker = Broker::start_memory();
    for t in [CARINFO, DEVICES, TELEMETRY, "fleet.alerts.json"] {
        broker.create_topic(t, 2);
    }
    let out = fleetctl()
        .args(["sim", "--cdc", "--brokers", &broker.bootstrap()])
        .args(["--vehicles", "30", "--rate", "0.2", "--duration", "1200"])
        .args(["--firmware-change", "900", "--unthrottled", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["produced"][CARINFO], 30, "{report}");
    let devices = report["produced"][DEVICES].as_u64().unwrap();
    assert!(
        (60..=90).contains(&devices),
        "2–3 devices per car: {report}"
    );
    let env = Env::new(&config(&broker, CDC_TOPICS));
    env.ingest_until_idle(1.5);
    let list = vehicles(&env, &[]);
    assert_eq!(list.len(), 30, "{list:#?}");
    for v in &list {
        assert!(v["plate"].is_string(), "{v}");
        let n = v["devices"].as_array().unwrap().len();
        assert!((2..=3).contains(&n), "{v}");
        assert!(v["lat"].is_number(), "{v}");
        assert_ne!(v["state"], "unmapped", "{v}");
    }
    let drift = drift_alerts(&env);
    assert_eq!(drift.len(), 1, "{drift:#?}");
    let msg = drift[0]["message"].as_str().unwrap();
    assert!(msg.contains("tpms.fl"), "{msg}");
    let paths = field_paths(&env, TELEMETRY);
    for want in ["gps.lat", "engine.state", "adas.lane_departure"] {
        assert!(paths.iter().any(|p| p == want), "{want} not in {paths:?}");
    }
}

/// A cache that read the car and device tables resumes on a config that adds the telemetry
/// topic: the resumed partitions (their last message inside a record batch of thousands)
/// verify and everything is read. The device tables were read before, so nothing is held
/// back for them, and the telemetry lands on the cars at once.
#[test]
fn a_resumed_cache_with_an_added_telemetry_topic_reads_it() {
    let (broker, p) = cdc_broker();
    let devices = 20_000;
    p.send_many(
        DEVICES,
        (0..devices).map(|i| {
            dms(
                "load",
                DEVICES,
                json!({"device_id": format!("D{i}"), "car_id": format!("car-{}", i / 3)}),
            )
        }),
    );
    // Every topic but the telemetry.
    let tables_only = CDC_TOPICS
        .split("[[kafka.topics]]")
        .filter(|t| !t.contains(TELEMETRY))
        .collect::<Vec<_>>()
        .join("[[kafka.topics]]");
    let env = Env::new(&config(&broker, &tables_only));
    let first = env.ingest_until_idle(1.0);
    assert_eq!(first["messages"], devices, "{first}");

    std::fs::write(
        &env.config,
        config(&broker, CDC_TOPICS).replace("{store}", &env.cache().display().to_string()),
    )
    .unwrap();
    let base = recent_base_ms();
    p.send_many(
        TELEMETRY,
        (0..100).map(|i| telemetry(&format!("D{}", i * 3), base + i, 127.0)),
    );
    let mut ingest = env.spawn_ingest(&["--idle-exit", "1", "--json"]);
    let status = wait_timeout(&mut ingest.0, Duration::from_secs(60));
    assert!(status.success(), "ingest: {status}\nlog:\n{}", env.log());
    let stats = env.stats();
    assert_eq!(stats["topics"][TELEMETRY]["messages"], 100, "{stats}");
    let cache = env.cache();
    assert_eq!(
        query_i64(
            &cache,
            "SELECT COUNT(DISTINCT vehicle) FROM positions WHERE vehicle LIKE 'car-%'"
        ),
        100,
        "every fix on its car"
    );
}

/// A backlog of device-keyed telemetry whose mappings are further down the device table:
/// the device table is read first, so every fix lands on its car without passing through an
/// unmapped vehicle.
#[test]
fn the_device_table_is_read_before_a_telemetry_backlog() {
    let (broker, p) = cdc_broker();
    let base = recent_base_ms();
    p.send_many(
        TELEMETRY,
        (0..300).map(|i| telemetry(&format!("D{i}"), base + i, 127.0)),
    );
    p.send_many(
        DEVICES,
        (0..300).map(|i| {
            dms(
                "load",
                DEVICES,
                json!({"device_id": format!("D{i}"), "car_id": format!("car-{}", i / 3)}),
            )
        }),
    );
    let env = Env::new(&config(&broker, CDC_TOPICS));
    let mut ingest = env.spawn_ingest(&["--idle-exit", "1", "--json"]);
    let status = wait_timeout(&mut ingest.0, Duration::from_secs(60));
    assert!(status.success(), "ingest: {status}\nlog:\n{}", env.log());
    let log = env.log();
    assert!(log.contains("device tables read"), "{log}");
    let cache = env.cache();
    assert_eq!(
        query_i64(&cache, "SELECT COUNT(*) FROM devices WHERE vehicle IS NULL"),
        0
    );
    assert_eq!(
        query_i64(&cache, "SELECT COUNT(*) FROM devices"),
        300,
        "every device mapped"
    );
    assert_eq!(
        query_i64(
            &cache,
            "SELECT COUNT(*) FROM positions WHERE vehicle LIKE 'car-%'"
        ),
        300
    );
}
