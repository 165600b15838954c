use super::*;
use fleet_model::{
    Ack, Alert, AlertFilter, AlertState, PositionSample, RejectReason, Severity, Source,
};

fn pos(v: &str, ts: i64) -> PositionSample {
    PositionSample {
        vehicle: v.into(),
        ts_ms: ts,
        lat: 37.5,
        lng: 127.0,
        speed: Some(10.0),
        heading: None,
        source: Source::Kafka,
    }
}

fn alert(id: &str) -> Alert {
    Alert {
        id: id.into(),
        vehicle: "car-1".into(),
        rule: "crash".into(),
        severity: Severity::Critical,
        message: "m".into(),
        ts_ms: 5,
        state: AlertState::Open,
        acked_by: None,
        acked_ms: None,
        ack_note: None,
        resolved_ms: None,
    }
}

/// A new cache in a temporary directory and its writer; the directory and the writer task
/// live as long as the returned values.
async fn fresh_store() -> (
    tempfile::TempDir,
    Store,
    WriterHandle,
    tokio::task::JoinHandle<()>,
) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("c.sqlite")).await.unwrap();
    let (w, task) = store.start_writer(HistoryConfig::default()).await.unwrap();
    (dir, store, w, task)
}

#[tokio::test]
async fn batch_commits_with_offsets_and_stats_add_up() {
    let (_dir, store, w, _task) = fresh_store().await;
    let mut b = WriteBatch::default();
    for i in 0..600 {
        b.positions.push((
            pos(&format!("car-{}", i % 7), i),
            Origin {
                partition: Some(0),
                offset: Some(i),
            },
        ));
    }
    b.quarantine.push(QuarantineRow {
        topic: "gps".into(),
        partition: 1,
        offset: 3,
        reason: RejectReason::NotJson,
        detail: "x".into(),
        key: Some(b"k".to_vec()),
        raw: Some(vec![b'a'; 10_000]),
        raw_len: 10_000,
        received_ms: 1,
    });
    b.offsets = vec![("gps".into(), 0, 600), ("gps".into(), 1, 4)];
    b.topic_deltas = vec![("gps".into(), 601, 1)];
    w.write(b).await.unwrap();
    w.flush().await.unwrap();
    let s = store.stats().await.unwrap();
    assert_eq!((s.positions, s.rejected), (600, 1));
    assert_eq!(s.topics["gps"].messages, 601);
    assert_eq!(s.topics["gps"].offsets[&0], 600);
    assert_eq!(s.rejected_by_reason["not_json"], 1);
    let raw_len: i64 = sqlx::query_scalar("SELECT length(raw) FROM quarantine")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(raw_len, 4096);
    assert_eq!(w.committed().borrow().offsets.len(), 2);
    let last = store.last_kept_positions().await.unwrap();
    assert_eq!(last.len(), 7);
    assert!(last.iter().all(|p| p.ts_ms >= 593));
}

#[tokio::test]
async fn ack_before_alert_is_applied_and_resolution_kept() {
    let (_dir, store, w, _task) = fresh_store().await;
    w.write(WriteBatch {
        acks: vec![Ack {
            alert_id: "a1".into(),
            operator: "bob".into(),
            note: "n".into(),
            ts: 9,
        }],
        ..Default::default()
    })
    .await
    .unwrap();
    w.write(WriteBatch {
        alerts: vec![
            (alert("a1"), AlertOrigin::Upstream),
            (alert("a2"), AlertOrigin::Upstream),
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    w.flush().await.unwrap();
    let a1 = store.alert("a1").await.unwrap().unwrap();
    assert_eq!(
        (a1.state, a1.acked_by.as_deref()),
        (AlertState::Acknowledged, Some("bob"))
    );
    let mut r = alert("a2");
    r.state = AlertState::Resolved;
    r.resolved_ms = Some(20);
    w.write(WriteBatch {
        alerts: vec![(r, AlertOrigin::Upstream)],
        ..Default::default()
    })
    .await
    .unwrap();
    // re-delivery of the original open alert must not re-open it
    w.write(WriteBatch {
        alerts: vec![(alert("a2"), AlertOrigin::Upstream)],
        ..Default::default()
    })
    .await
    .unwrap();
    w.flush().await.unwrap();
    assert_eq!(
        store.alert("a2").await.unwrap().unwrap().state,
        AlertState::Resolved
    );
    let s = store.stats().await.unwrap();
    assert_eq!(
        (s.alerts.open, s.alerts.acknowledged, s.alerts.resolved),
        (0, 1, 1)
    );
}

#[tokio::test]
async fn housekeeping_prunes_and_thins() {
    let (_dir, store, w, _task) = fresh_store().await;
    let now = 100 * 3_600_000;
    let mut b = WriteBatch::default();
    // 100 h old: pruned (retention 72 h); 30 h old at 1 s spacing: thinned to 1/min; fresh: kept.
    for i in 0..10 {
        b.positions.push((pos("v", i * 1000), Origin::default()));
    }
    for i in 0..120 {
        b.positions
            .push((pos("v", now - 30 * 3_600_000 + i * 1000), Origin::default()));
    }
    for i in 0..5 {
        b.positions
            .push((pos("v", now - 1000 * i), Origin::default()));
    }
    w.write(b).await.unwrap();
    w.flush().await.unwrap();
    run_housekeeping(&store, &HistoryConfig::default(), now)
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM positions")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!((7..=8).contains(&n), "got {n}");
}

#[tokio::test]
async fn export_csv_and_geojson() {
    let (_dir, store, w, _task) = fresh_store().await;
    let b = WriteBatch {
        positions: vec![
            (pos("a", 1), Origin::default()),
            (pos("a", 2), Origin::default()),
            (pos("b,1", 3), Origin::default()),
        ],
        ..Default::default()
    };
    w.write(b).await.unwrap();
    w.flush().await.unwrap();
    let mut out = Vec::new();
    let n = store
        .export(&ExportFilter::default(), ExportFormat::Csv, &mut out)
        .await
        .unwrap();
    assert_eq!(n, 3);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.lines().nth(3).unwrap().starts_with("\"b,1\",3,"),
        "{text}"
    );
    let mut out = Vec::new();
    store
        .export(
            &ExportFilter {
                vehicle: Some("a".into()),
                ..Default::default()
            },
            ExportFormat::GeoJson,
            &mut out,
        )
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["features"][0]["geometry"]["type"], "LineString");
    assert_eq!(v["features"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn feed_orders_by_state_then_time_and_alert_changes_are_versioned() {
    let (_dir, store, w, _task) = fresh_store().await;
    let v0 = w.committed().borrow().alerts_version;
    let mut a = alert("old-open");
    a.ts_ms = 1;
    let mut b = alert("new-open");
    b.ts_ms = 3;
    let mut r = alert("resolved");
    r.ts_ms = 9;
    r.state = AlertState::Resolved;
    w.write(WriteBatch {
        alerts: vec![
            (a, AlertOrigin::Rule),
            (b, AlertOrigin::Rule),
            (r, AlertOrigin::Upstream),
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    w.flush().await.unwrap();
    assert_eq!(w.committed().borrow().alerts_version, v0 + 1);
    let all = AlertFilter::default();
    let f = store.feed(&all, 10).await.unwrap();
    let ids: Vec<_> = f.alerts.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["new-open", "old-open", "resolved"]);
    assert_eq!((f.open, f.alerting.len()), (2, 1));
    assert_eq!(store.feed(&all, 1).await.unwrap().alerts.len(), 1);
    let resolved = AlertFilter {
        state: Some(AlertState::Resolved),
        ..Default::default()
    };
    let f = store.feed(&resolved, 10).await.unwrap();
    let ids: Vec<_> = f.alerts.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["resolved"]);
    assert_eq!(f.open, 2, "the open count is the fleet's, not the filter's");
    let open = store.open_alerts_at_least(Severity::Info).await.unwrap();
    let ids: Vec<_> = open.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["old-open", "new-open"], "oldest first");
    assert_eq!(store.alert_rules().await.unwrap().len(), 1);
    w.alerts_changed().await;
    w.flush().await.unwrap();
    assert_eq!(w.committed().borrow().alerts_version, v0 + 2);
    // a batch without alerts does not bump it
    w.write(WriteBatch {
        offsets: vec![("t".into(), 0, 1)],
        ..Default::default()
    })
    .await
    .unwrap();
    w.flush().await.unwrap();
    assert_eq!(w.committed().borrow().alerts_version, v0 + 2);
}

#[tokio::test]
async fn status_fields_and_info_extras_are_stored_as_json_objects() {
    let (_dir, store, w, _task) = fresh_store().await;
    let mut b = WriteBatch::default();
    b.statuses.push((
        fleet_model::StatusSample {
            vehicle: "car-1".into(),
            ts_ms: 5,
            known: Default::default(),
            fields: r#"{"engine_detail.rpm":900,"doors":"closed"}"#.into(),
        },
        Origin::default(),
    ));
    // Seeded or built without a message: no extras known.
    b.infos.push(fleet_model::VehicleInfo {
        vehicle: "car-1".into(),
        plate: Some("12가3456".into()),
        ..Default::default()
    });
    w.write(b).await.unwrap();
    w.flush().await.unwrap();
    let fields: String = sqlx::query_scalar("SELECT fields_json FROM status_samples")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let fields: serde_json::Value = serde_json::from_str(&fields).unwrap();
    assert_eq!(fields["engine_detail.rpm"], 900);
    let extra: String = sqlx::query_scalar("SELECT info_json FROM vehicles WHERE id = 'car-1'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(extra, "{}");
}
