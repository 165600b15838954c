use super::*;
use crate::config::HistoryConfig;
use fleet_model::{
    Ack, Alert, AlertFilter, AlertState, PositionSample, RejectReason, Severity, Source,
};

pub(crate) fn pos(v: &str, ts: i64) -> PositionSample {
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

/// An open critical alert on car-1 (shared with the ack tests).
pub(crate) fn alert(id: &str) -> Alert {
    Alert::open(
        id.into(),
        "car-1".into(),
        "crash",
        Severity::Critical,
        "m".into(),
        5,
    )
}

/// `EXPLAIN QUERY PLAN` of `sql` (binding `binds`), one detail line per step.
pub(crate) async fn query_plan(store: &Store, sql: &str, binds: &[i64]) -> Vec<String> {
    let explain = format!("EXPLAIN QUERY PLAN {sql}");
    let mut q = sqlx::query(&explain);
    for b in binds {
        q = q.bind(*b);
    }
    q.fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| sqlx::Row::get::<String, _>(r, "detail"))
        .collect()
}

/// A new cache in a temporary directory and its writer; the directory and the writer task
/// live as long as the returned values.
pub(crate) async fn fresh_store() -> (
    tempfile::TempDir,
    Store,
    WriterHandle,
    tokio::task::JoinHandle<()>,
) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("c.sqlite")).await.unwrap();
    let (w, task) = store
        .start_writer(retention(), Default::default())
        .await
        .unwrap();
    (dir, store, w, task)
}

fn retention() -> crate::store::Retention {
    crate::store::Retention {
        history: HistoryConfig::default(),
        max_size_bytes: 2048 * 1024 * 1024,
    }
}

fn mark(topic: &str, partition: i32, next: i64) -> crate::store::OffsetMark {
    crate::store::OffsetMark {
        topic: topic.into(),
        partition,
        next,
        fingerprint: None,
        cluster_id: None,
    }
}

#[tokio::test]
async fn batch_commits_with_offsets_and_stats_add_up() {
    let (_dir, store, w, _task) = fresh_store().await;
    let mut b = WriteBatch::default();
    for i in 0..600 {
        b.positions.push((
            pos(&format!("car-{}", i % 7), i),
            Origin {
                topic: Some("gps".into()),
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
    b.offsets = vec![mark("gps", 0, 600), mark("gps", 1, 4)];
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
    run_housekeeping(&store, &retention(), now).await.unwrap();
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
        text.lines().nth(3).unwrap().starts_with("\"b,1\",,3,"),
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
        offsets: vec![mark("t", 0, 1)],
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

/// SPEC §7 / issue 10 defect 3: a message is stored at most once, whatever re-delivers it.
#[tokio::test]
async fn the_same_kafka_message_is_stored_once() {
    let (_dir, store, w, _task) = fresh_store().await;
    let origin = |topic: &str, offset| Origin {
        topic: Some(topic.into()),
        partition: Some(0),
        offset: Some(offset),
    };
    for _ in 0..2 {
        let mut b = WriteBatch::default();
        b.positions.push((pos("car-1", 1), origin("gps", 7)));
        b.statuses.push((
            fleet_model::StatusSample {
                vehicle: "car-1".into(),
                ts_ms: 1,
                known: Default::default(),
                fields: "{}".into(),
            },
            origin("status", 7),
        ));
        w.write(b).await.unwrap();
    }
    // The same offset on another topic is another message.
    let mut b = WriteBatch::default();
    b.positions.push((pos("car-1", 2), origin("gps2", 7)));
    // Redis samples carry no offset and never collide.
    b.positions.push((pos("car-1", 3), Origin::default()));
    b.positions.push((pos("car-1", 4), Origin::default()));
    w.write(b).await.unwrap();
    w.flush().await.unwrap();
    let s = store.stats().await.unwrap();
    assert_eq!((s.positions, s.status_samples), (4, 1));
}

/// SPEC §7: gaps are committed with their batch and counted by `stats`; a resume point keeps
/// its fingerprint and cluster until a newer mark replaces them.
#[tokio::test]
async fn gaps_and_resume_points_round_trip() {
    let (_dir, store, w, _task) = fresh_store().await;
    let mut b = WriteBatch::default();
    b.offsets.push(crate::store::OffsetMark {
        fingerprint: Some(42),
        cluster_id: Some("c1".into()),
        ..mark("gps", 0, 900)
    });
    w.write(b).await.unwrap();
    // A start mark at the same offset without a fingerprint keeps the stored one.
    let mut b = WriteBatch::default();
    b.offsets.push(mark("gps", 0, 900));
    b.gaps.push(crate::store::GapRow {
        topic: "gps".into(),
        partition: 1,
        from: 10,
        to: 50,
        reason: "expired",
        detail: "offsets 10..50 expired".into(),
        detected_ms: 5,
    });
    w.write(b).await.unwrap();
    w.flush().await.unwrap();
    let rp = &store.resume_points().await.unwrap()[&("gps".to_string(), 0)];
    assert_eq!(
        (rp.next, rp.fingerprint, rp.cluster_id.as_deref()),
        (900, Some(42), Some("c1"))
    );
    let s = store.stats().await.unwrap();
    assert_eq!(s.gaps, 1);
    assert_eq!(
        (
            s.recent_gaps[0].from,
            s.recent_gaps[0].to,
            s.recent_gaps[0].reason.as_str()
        ),
        (10, 50, "expired")
    );
    assert_eq!(w.committed().borrow().gaps, 1);
    // Moving the offset without a fingerprint (a gap's restart point) drops the old one.
    let mut b = WriteBatch::default();
    b.offsets.push(mark("gps", 0, 0));
    w.write(b).await.unwrap();
    w.flush().await.unwrap();
    let rp = &store.resume_points().await.unwrap()[&("gps".to_string(), 0)];
    assert_eq!((rp.next, rp.fingerprint), (0, None));
}

/// Issue 10 defect 2: a permanent write error (here SQLITE_FULL) is published at once as a
/// permanent fault instead of being retried silently, and the writer stops on cancel.
#[tokio::test]
async fn a_full_disk_is_reported_as_permanent_and_shutdown_does_not_hang() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.sqlite");
    let store = Store::open(&path).await.unwrap();
    let mut conn = sqlx::SqliteConnection::connect_with(&Store::options(&path, 1000))
        .await
        .unwrap();
    // The file may not grow: every insert that needs a new page fails with SQLITE_FULL.
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    sqlx::query(&format!("PRAGMA max_page_count = {pages}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let (w, task) = super::writer::spawn(conn, retention(), cancel.clone());
    let mut b = WriteBatch::default();
    for i in 0..5_000 {
        b.positions
            .push((pos(&format!("car-{i}"), i), Origin::default()));
    }
    w.write(b).await.unwrap();
    let mut committed = w.committed();
    let started = std::time::Instant::now();
    let fault = loop {
        if let Some(f) = committed.borrow_and_update().fault.clone() {
            break f;
        }
        tokio::time::timeout(std::time::Duration::from_secs(5), committed.changed())
            .await
            .expect("a fault within 5 s")
            .unwrap();
    };
    assert!(fault.permanent, "{fault:?}");
    assert!(fault.message.contains("full"), "{fault:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    cancel.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(5), task)
        .await
        .expect("the writer stops on cancel while failing")
        .unwrap();
    assert_eq!(store.stats().await.unwrap().positions, 0);
}

/// Issue 10 defect 4: retention applies to every table, not only history.
#[tokio::test]
async fn housekeeping_bounds_every_table() {
    let (_dir, store, w, _task) = fresh_store().await;
    let now = 100 * 3_600_000;
    let old = now - 80 * 3_600_000;
    let fresh = now - 1000;
    let mut b = WriteBatch::default();
    for (id, ts) in [("old", old), ("new", fresh)] {
        b.snapshots.push(VehicleSnapshot {
            vehicle: id.into(),
            first_seen: ts,
            position: Some(pos(id, ts)),
            status_json: None,
        });
        b.quarantine.push(QuarantineRow {
            topic: "gps".into(),
            partition: 0,
            offset: 1,
            reason: RejectReason::NotJson,
            detail: "x".into(),
            key: None,
            raw: None,
            raw_len: 0,
            received_ms: ts,
        });
        b.gaps.push(crate::store::GapRow {
            topic: "gps".into(),
            partition: 0,
            from: 0,
            to: 1,
            reason: "expired",
            detail: "x".into(),
            detected_ms: ts,
        });
        b.acks.push(fleet_model::Ack {
            alert_id: format!("a-{id}"),
            operator: "op".into(),
            note: String::new(),
            ts,
        });
        for (state, suffix) in [(AlertState::Open, "open"), (AlertState::Resolved, "res")] {
            b.alerts.push((
                Alert {
                    id: format!("{id}-{suffix}"),
                    vehicle: id.into(),
                    rule: "r".into(),
                    severity: Severity::Info,
                    message: "m".into(),
                    ts_ms: ts,
                    state,
                    acked_by: None,
                    acked_ms: None,
                    ack_note: None,
                    resolved_ms: None,
                    plate: None,
                },
                crate::store::AlertOrigin::Rule,
            ));
        }
    }
    b.rule_states.push(("old".into(), "{}".into()));
    w.write(b).await.unwrap();
    w.flush().await.unwrap();
    run_housekeeping(&store, &retention(), now).await.unwrap();
    let count = |sql: &'static str| {
        let pool = store.pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(count("SELECT COUNT(*) FROM quarantine").await, 1);
    assert_eq!(count("SELECT COUNT(*) FROM gaps").await, 1);
    assert_eq!(count("SELECT COUNT(*) FROM acks").await, 1);
    assert_eq!(count("SELECT COUNT(*) FROM vehicles").await, 1);
    assert_eq!(count("SELECT COUNT(*) FROM rule_state").await, 0);
    // The old open alert stays until it resolves; the old resolved one goes.
    let mut ids: Vec<String> = sqlx::query_scalar("SELECT id FROM alerts")
        .fetch_all(store.pool())
        .await
        .unwrap();
    ids.sort();
    assert_eq!(ids, ["new-open", "new-res", "old-open"]);
}

/// SPEC §7 `store.max_size_mb`: over the cap, the oldest history goes first, and the
/// file gives the space back.
#[tokio::test]
async fn the_size_cap_drops_the_oldest_history_first() {
    let (_dir, store, w, _task) = fresh_store().await;
    let now = crate::store::now_ms();
    for chunk in 0..10 {
        let mut b = WriteBatch::default();
        for i in 0..5_000 {
            let ts = now - 3_600_000 + chunk * 5_000 + i;
            b.positions
                .push((pos(&format!("car-{}", i % 100), ts), Origin::default()));
        }
        w.write(b).await.unwrap();
    }
    w.flush().await.unwrap();
    let cap = 1024 * 1024;
    let r = crate::store::Retention {
        max_size_bytes: cap,
        ..retention()
    };
    run_housekeeping(&store, &r, now).await.unwrap();
    let (n, min_ts): (i64, i64) = sqlx::query_as("SELECT COUNT(*), MIN(ts) FROM positions")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(n > 0 && n < 50_000, "some history dropped, some kept: {n}");
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT MAX(ts) FROM positions")
            .fetch_one(store.pool())
            .await
            .unwrap(),
        now - 3_600_000 + 9 * 5_000 + 4_999,
        "the newest sample is kept"
    );
    assert!(min_ts > now - 3_600_000, "the oldest went first");
    let file = std::fs::metadata(store.path()).unwrap().len();
    assert!(
        file <= cap + 256 * 1024,
        "the file shrank to about the cap: {file}"
    );
}
