//! Looking back (issue 11): history ranges, the replay frame, the field picker, and the
//! streamed export with its CSV formula escaping.

use super::history::FLEET_AT_SQL;
use super::tests::{fresh_store, pos, query_plan};
use super::*;
use fleet_model::{
    Alert, AlertState, PositionSample, Severity, Source, StatusFields, StatusSample, VehicleInfo,
};
use rand::{Rng, SeedableRng};

fn snapshot(v: &str) -> VehicleSnapshot {
    VehicleSnapshot {
        vehicle: v.into(),
        first_seen: 0,
        position: None,
        status_json: None,
    }
}

fn status(v: &str, ts: i64, fuel: f64) -> StatusSample {
    StatusSample {
        vehicle: v.into(),
        ts_ms: ts,
        known: StatusFields {
            fuel: Some(fuel),
            ..Default::default()
        },
        fields: format!(
            r#"{{"ts":{ts},"fuel":{fuel},"engine":"on","engine.rpm":{},"doors.open":false,"fw":"1.2"}}"#,
            ts % 3000
        ),
    }
}

fn alert(id: &str, v: &str, ts: i64, severity: Severity) -> Alert {
    Alert {
        id: id.into(),
        vehicle: v.into(),
        rule: "speeding".into(),
        severity,
        message: "m".into(),
        ts_ms: ts,
        state: AlertState::Open,
        acked_by: None,
        acked_ms: None,
        ack_note: None,
        resolved_ms: None,
        plate: None,
    }
}

#[tokio::test]
async fn history_returns_exactly_the_rows_of_the_range_in_order() {
    let (_dir, store, w, _task) = fresh_store().await;
    let (from, to) = (1_000, 2_000);
    // Out of order on purpose, with samples on and just outside both ends.
    let times = [2_001, 1_500, 999, 1_000, 2_000, 1_200, 500, 3_000, 1_999];
    let mut b = WriteBatch {
        snapshots: vec![snapshot("car-1"), snapshot("car-2")],
        infos: vec![VehicleInfo {
            vehicle: "car-1".into(),
            plate: Some("12가3456".into()),
            group: Some("north".into()),
            extra: r#"{"colour":"red"}"#.into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    for (i, &ts) in times.iter().enumerate() {
        let mut p = pos("car-1", ts);
        p.lat = 37.0 + i as f64 * 0.01;
        b.positions.push((p, Origin::default()));
        b.statuses
            .push((status("car-1", ts + 1, i as f64), Origin::default()));
        b.alerts.push((
            alert(&format!("a{i}"), "car-1", ts, Severity::Warning),
            AlertOrigin::Rule,
        ));
        // Another vehicle at the same times: never part of car-1's history.
        b.positions.push((pos("car-2", ts), Origin::default()));
        b.alerts.push((
            alert(&format!("b{i}"), "car-2", ts, Severity::Critical),
            AlertOrigin::Rule,
        ));
    }
    w.write(b).await.unwrap();
    w.flush().await.unwrap();

    let h = store.history("car-1", from, to).await.unwrap().unwrap();
    let mut want: Vec<(i64, f64)> = times
        .iter()
        .enumerate()
        .filter(|(_, ts)| (from..=to).contains(*ts))
        .map(|(i, &ts)| (ts, 37.0 + i as f64 * 0.01))
        .collect();
    want.sort_by_key(|w| w.0);
    let got: Vec<(i64, f64)> = h.positions.iter().map(|p| (p.ts_ms, p.lat)).collect();
    assert_eq!(got, want);
    assert!(h.positions.iter().all(|p| p.source == Source::Kafka));

    let mut want_status: Vec<i64> = times
        .iter()
        .map(|t| t + 1)
        .filter(|ts| (from..=to).contains(ts))
        .collect();
    want_status.sort();
    let got_status: Vec<i64> = h.status.iter().map(|s| s.ts_ms).collect();
    assert_eq!(got_status, want_status);
    let first = &h.status[0];
    assert_eq!(first.fields["engine"], "on");
    assert_eq!(first.number("fw"), Some(1.2), "numeric strings are numbers");
    assert_eq!(first.number("engine"), None);

    let mut want_alerts: Vec<(i64, String)> = times
        .iter()
        .enumerate()
        .filter(|(_, ts)| (from..=to).contains(*ts))
        .map(|(i, &ts)| (ts, format!("a{i}")))
        .collect();
    want_alerts.sort();
    let got_alerts: Vec<(i64, String)> = h.alerts.iter().map(|a| (a.ts_ms, a.id.clone())).collect();
    assert_eq!(got_alerts, want_alerts);
    assert!(h.alerts.iter().all(|a| a.severity == Severity::Warning));

    assert_eq!(h.info["plate"], "12가3456");
    assert_eq!(h.info["group"], "north");
    assert_eq!(h.info["colour"], "red");
    assert!(
        !h.info.contains_key("driver"),
        "unknown columns are left out"
    );
}

#[tokio::test]
async fn unknown_vehicles_and_empty_ranges_are_told_apart() {
    let (_dir, store, w, _task) = fresh_store().await;
    // car-9 has a sample but no vehicles row: still known.
    w.write(WriteBatch {
        snapshots: vec![snapshot("car-1")],
        positions: vec![(pos("car-1", 100), Origin::default())],
        alerts: vec![(alert("x", "car-9", 50, Severity::Info), AlertOrigin::Rule)],
        ..Default::default()
    })
    .await
    .unwrap();
    w.flush().await.unwrap();
    assert_eq!(store.history("nope", 0, i64::MAX).await.unwrap(), None);
    let empty = store.history("car-1", 200, 300).await.unwrap().unwrap();
    assert!(empty.is_empty(), "{empty:?}");
    let h = store.history("car-9", 0, 100).await.unwrap().unwrap();
    assert_eq!(h.alerts.len(), 1);
    assert!(h.info.is_empty());
}

/// The replay frame against a brute-force answer over random histories: each vehicle at
/// its last position ≤ T within the look-back, never a later one, and vehicles with nothing
/// in the window left out.
#[tokio::test]
async fn fleet_at_shows_each_vehicle_at_its_last_position_not_after_t() {
    let (_dir, store, w, _task) = fresh_store().await;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut all: Vec<PositionSample> = Vec::new();
    let mut b = WriteBatch::default();
    for v in 0..40 {
        let id = format!("car-{v:02}");
        b.snapshots.push(snapshot(&id));
        // Some vehicles start late, some stop early, some have a single sample.
        let n = rng.random_range(1..30);
        let start = rng.random_range(0..50_000);
        for _ in 0..n {
            let mut p = pos(&id, start + rng.random_range(0..60_000));
            p.lat = rng.random_range(-80.0..80.0);
            p.lng = rng.random_range(-170.0..170.0);
            all.push(p.clone());
            b.positions.push((p, Origin::default()));
        }
    }
    w.write(b).await.unwrap();
    w.flush().await.unwrap();
    for k in 0..90 {
        let lookback = [5_000, 20_000, 200_000][rng.random_range(0..3)];
        // Random times, and times exactly on a sample and on the look-back's far edge (both
        // ends of the window are inclusive).
        let on = all[rng.random_range(0..all.len())].ts_ms;
        let t = match k % 3 {
            0 => rng.random_range(-1_000..120_000),
            1 => on,
            _ => on + lookback,
        };
        let mut want: Vec<(String, i64)> = Vec::new();
        let mut ids: Vec<&str> = all.iter().map(|p| p.vehicle.as_str()).collect();
        ids.sort();
        ids.dedup();
        for id in ids {
            let last = all
                .iter()
                .filter(|p| p.vehicle == id && p.ts_ms <= t && p.ts_ms >= t - lookback)
                .map(|p| p.ts_ms)
                .max();
            if let Some(ts) = last {
                want.push((id.to_string(), ts));
            }
        }
        let got = store.fleet_at(t, lookback).await.unwrap();
        let got_keys: Vec<(String, i64)> =
            got.iter().map(|p| (p.vehicle.clone(), p.ts_ms)).collect();
        assert_eq!(got_keys, want, "T={t} lookback={lookback}");
        for p in &got {
            assert!(
                all.iter().any(|q| q == p),
                "frame row {p:?} is a stored sample"
            );
        }
    }
}

#[tokio::test]
async fn fleet_at_seeks_per_vehicle_instead_of_scanning_history() {
    let (_dir, store, _w, _task) = fresh_store().await;
    let plan = query_plan(&store, FLEET_AT_SQL, &[0, 0]).await;
    let text = plan.join("\n");
    assert!(
        text.contains("INDEX positions_vehicle_ts (vehicle=? AND ts>? AND ts<?)"),
        "{text}"
    );
    assert!(
        !plan
            .iter()
            .any(|l| l.starts_with("SCAN p") || l.starts_with("SCAN positions")),
        "{text}"
    );
}

#[tokio::test]
async fn status_fields_lists_the_numeric_fields_a_vehicle_sent() {
    let (_dir, store, w, _task) = fresh_store().await;
    let mut odd = status("car-1", 9, 1.0);
    odd.fields = r#"{"ts":9,"tyre.fl":2.3}"#.into();
    let mut broken = status("car-1", 10, 1.0);
    broken.fields = "not json".into();
    let mut other = status("car-2", 9, 1.0);
    other.fields = r#"{"only.car2":1}"#.into();
    w.write(WriteBatch {
        statuses: vec![
            (status("car-1", 5, 40.0), Origin::default()),
            (odd, Origin::default()),
            (broken, Origin::default()),
            (other, Origin::default()),
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    w.flush().await.unwrap();
    assert_eq!(
        store.status_fields("car-1").await.unwrap(),
        ["engine.rpm", "fuel", "tyre.fl"]
    );
    assert!(store.status_fields("nope").await.unwrap().is_empty());
}

#[tokio::test]
async fn export_streams_and_defuses_formula_cells() {
    let (_dir, store, w, _task) = fresh_store().await;
    let ids = ["=HYPERLINK(\"http://evil\",\"x\")", "-car", "car-3"];
    let mut b = WriteBatch::default();
    for (k, id) in ids.iter().enumerate() {
        for i in 0..3 {
            let mut p = pos(id, 1_000 * k as i64 + i);
            p.lat = -33.5 - i as f64;
            p.lng = -70.25;
            p.speed = Some(-1.5);
            b.positions.push((p, Origin::default()));
        }
    }
    w.write(b).await.unwrap();
    w.flush().await.unwrap();
    let mut out = Vec::new();
    let n = store
        .export(&ExportFilter::default(), ExportFormat::Csv, &mut out)
        .await
        .unwrap();
    assert_eq!(n, 9);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 10, "{text}");
    for line in &lines[1..] {
        assert!(
            line.starts_with("\"'=HYPERLINK(")
                || line.starts_with("\"'-car\",")
                || line.starts_with("car-3,"),
            "{line}"
        );
        // Numbers are never escaped: a negative latitude stays a number.
        assert!(
            line.contains(",-33.5,-70.25,-1.5,")
                || line.contains(",-34.5,-70.25,-1.5,")
                || line.contains(",-35.5,-70.25,-1.5,"),
            "{line}"
        );
        assert!(line.ends_with(",kafka"), "{line}");
    }

    let mut out = Vec::new();
    store
        .export(&ExportFilter::default(), ExportFormat::GeoJson, &mut out)
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let features = v["features"].as_array().unwrap();
    assert_eq!(features.len(), ids.len());
    let mut sorted = ids.to_vec();
    sorted.sort();
    for (f, id) in features.iter().zip(sorted) {
        assert_eq!(f["properties"]["vehicle"], id);
        assert_eq!(f["geometry"]["coordinates"].as_array().unwrap().len(), 3);
    }
    // Nothing in range: a valid, empty collection.
    let mut out = Vec::new();
    let n = store
        .export(
            &ExportFilter {
                from_ms: Some(50_000),
                ..Default::default()
            },
            ExportFormat::GeoJson,
            &mut out,
        )
        .await
        .unwrap();
    assert_eq!(n, 0);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["features"].as_array().map(Vec::len), Some(0));
}
