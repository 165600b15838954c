//! Every topic kind decoded end to end, and every kind of malformed input quarantined while
//! good messages keep flowing — through a real broker and the real binary.

mod common;

use common::*;
use fleet_testkit::{Broker, Producer};

const TOPICS: [(&str, &str); 5] = [
    ("cars.gps.json", "position"),
    ("cars.status.json", "status"),
    ("cars.info.json", "info"),
    ("fleet.alerts.json", "alert"),
    ("fleet.alert-acks.json", "ack"),
];

fn setup() -> (Broker, Env) {
    let broker = Broker::start_memory();
    for (t, _) in TOPICS {
        broker.create_topic(t, 3);
    }
    let toml = format!(
        "{}\n[store]\npath = \"{{store}}\"\n{KEEP_ALL}",
        kafka_section(&broker.bootstrap(), &TOPICS)
    );
    (broker, Env::new(&toml))
}

#[test]
fn every_topic_kind_is_decoded_into_the_cache() {
    let (broker, env) = setup();
    let p = Producer::new(&broker.bootstrap());
    let k = |s: &str| Some(s.as_bytes().to_vec());
    let base = recent_base_ms();
    p.send_many(
        "cars.gps.json",
        (0..50).map(|i| {
            (
                k(&format!("car-{}", i % 5)),
                format!(
                    r#"{{"lat":37.5{i:02},"lng":127.0{i:02},"ts":{},"speed":30}}"#,
                    base + i
                )
                .into_bytes(),
            )
        }),
    );
    p.send("cars.status.json", None, Some(b"car-1"), br#"{"engine":"off","doors":"closed","headlights":"on","battery":14,"engine_detail":{"rpm":0}}"#);
    p.send(
        "cars.status.json",
        None,
        Some(b"car-2"),
        br#"{"engine":true,"doors":"open","headlights":false,"fuel":55.5}"#,
    );
    p.send(
        "cars.info.json",
        None,
        Some(b"car-1"),
        br#"{"plate":"12A3456","model":"Ioniq 5","driver":"Kim","group":"north"}"#,
    );
    p.send("fleet.alerts.json", None, Some(b"up-1"), br#"{"id":"up-1","vehicle":"car-1","rule":"crash_detected","severity":"critical","message":"impact","ts":1700000000000}"#);
    p.send("fleet.alerts.json", None, Some(b"up-2"), br#"{"id":"up-2","vehicle":"car-2","rule":"tamper","severity":"warning","message":"x","ts":1700000000001}"#);
    p.send(
        "fleet.alert-acks.json",
        None,
        Some(b"up-1"),
        br#"{"alert_id":"up-1","operator":"bob","note":"calling driver","ts":1700000000500}"#,
    );

    let out = env.ingest_until_idle(1.0);
    assert_eq!(out["rejected"], 0, "{out}");
    let s = env.stats();
    assert_eq!(s["positions"], 50, "{s}");
    assert_eq!(s["status_samples"], 2, "{s}");
    assert_eq!(s["vehicles"], 5, "{s}");
    // up-2 from upstream, and low battery (14 %) raised by fleetdash's own rules for car-1
    assert_eq!(s["alerts"]["open"], 2, "{s}");
    assert_eq!(s["alerts"]["acknowledged"], 1, "{s}");
    assert_eq!(s["topics"]["cars.gps.json"]["messages"], 50);
    let offsets: i64 = s["topics"]["cars.gps.json"]["offsets"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_i64().unwrap())
        .sum();
    assert_eq!(
        offsets, 50,
        "next offsets over all partitions add up to what was produced"
    );
    assert_eq!(
        query_i64(
            &env.cache(),
            "SELECT COUNT(*) FROM vehicles WHERE id='car-1' AND plate='12A3456' AND driver='Kim'"
        ),
        1
    );
    assert_eq!(
        query_i64(
            &env.cache(),
            "SELECT COUNT(*) FROM status_samples WHERE vehicle='car-1' AND headlights_on=1 AND engine_on=0 AND json_extract(fields_json, '$.\"engine_detail.rpm\"')=0"
        ),
        1
    );
    let alerts = env.run_json(&["alerts", "--state", "acknowledged"]);
    assert_eq!(alerts["alerts"][0]["acked_by"], "bob", "{alerts}");
    assert_eq!(alerts["alerts"][0]["ack_note"], "calling driver");

    // A second run resumes from the cache's offsets: nothing is read twice.
    let again = env.ingest_until_idle(1.0);
    assert_eq!(again["messages"], 0, "{again}");
    assert_eq!(env.stats()["positions"], 50);
}

#[test]
fn malformed_messages_are_quarantined_and_good_ones_keep_flowing() {
    let (broker, env) = setup();
    let p = Producer::with_config(&broker.bootstrap(), &[("message.max.bytes", "3000000")]);
    let base = recent_base_ms();
    let good =
        |i: i32| format!(r#"{{"lat":37.5,"lng":127.0,"ts":{}}}"#, base + i64::from(i)).into_bytes();
    let oversized =
        format!(r#"{{"lat":1,"lng":2,"pad":"{}"}}"#, "x".repeat(1_100_000)).into_bytes();
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("not_json", b"lat=37.5;lng=127".to_vec()),
        ("not_utf8", vec![b'{', 0xff, 0xfe, b'}']),
        ("missing_coordinates", br#"{"lng":127.0}"#.to_vec()),
        (
            "invalid_coordinates",
            br#"{"lat":"north","lng":127.0}"#.to_vec(),
        ),
        ("lat_out_of_range", br#"{"lat":91.0,"lng":127.0}"#.to_vec()),
        ("lng_out_of_range", br#"{"lat":37.0,"lng":-180.5}"#.to_vec()),
        ("non_finite", br#"{"lat":NaN,"lng":127.0}"#.to_vec()),
        (
            "invalid_timestamp",
            br#"{"lat":37.0,"lng":127.0,"ts":"tomorrow"}"#.to_vec(),
        ),
        ("oversized", oversized),
    ];
    let mut msgs = Vec::new();
    for (i, (_, payload)) in bad.iter().enumerate() {
        msgs.push((Some(b"car-1".to_vec()), good(i as i32 * 2)));
        msgs.push((Some(b"car-1".to_vec()), payload.clone()));
    }
    msgs.push((Some(b"car-1".to_vec()), good(1000)));
    p.send_many("cars.gps.json", msgs);
    // A status message without any id (no key) is rejected too; an info message after it is fine.
    p.send("cars.status.json", None, None, br#"{"engine":"on"}"#);
    p.send(
        "cars.info.json",
        None,
        Some(b"car-1"),
        br#"{"plate":"P-1"}"#,
    );

    let out = env.ingest_until_idle(1.0);
    assert_eq!(out["rejected"], bad.len() as u64 + 1, "{out}");
    let s = env.stats();
    assert_eq!(
        s["positions"],
        bad.len() as u64 + 1,
        "every good message stored: {s}"
    );
    assert_eq!(s["rejected"], bad.len() as u64 + 1);
    for (reason, _) in &bad {
        assert_eq!(s["rejected_by_reason"][reason], 1, "reason {reason}: {s}");
    }
    assert_eq!(s["rejected_by_reason"]["missing_id"], 1);
    assert_eq!(s["topics"]["cars.gps.json"]["rejected"], bad.len() as u64);
    // Kept for the operator: coordinates, reason, and the first 4 KiB of the raw bytes.
    assert_eq!(
        query_i64(
            &env.cache(),
            "SELECT length(raw) FROM quarantine WHERE reason='oversized'"
        ),
        4096
    );
    assert_eq!(
        query_i64(
            &env.cache(),
            "SELECT raw_len > 1048576 FROM quarantine WHERE reason='oversized'"
        ),
        1
    );
    assert_eq!(
        query_i64(
            &env.cache(),
            "SELECT COUNT(*) FROM quarantine WHERE topic='cars.gps.json' AND koffset >= 0 AND detail != ''"
        ),
        bad.len() as i64
    );
    assert_eq!(
        query_i64(
            &env.cache(),
            "SELECT hex(raw) = '7BFFFE7D' FROM quarantine WHERE reason='not_utf8'"
        ),
        1
    );
}
