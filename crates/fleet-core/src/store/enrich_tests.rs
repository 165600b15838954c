//! Enrichment in the cache (SPEC §8): the SQL merge of info columns, deletes, devices and
//! re-attribution, and the plate where alerts and exports are read.

use super::tests::{alert, fresh_store, pos};
use super::*;
use fleet_model::{AlertFilter, VehicleInfo};

fn info(v: &str, plate: Option<&str>, driver: Option<&str>, extra: &str) -> VehicleInfo {
    VehicleInfo {
        vehicle: v.into(),
        plate: plate.map(Into::into),
        driver: driver.map(Into::into),
        extra: extra.into(),
        ..Default::default()
    }
}

async fn one(store: &Store, id: &str) -> read::StoredVehicle {
    store
        .vehicles()
        .await
        .unwrap()
        .into_iter()
        .find(|v| v.id == id)
        .unwrap()
}

#[tokio::test]
async fn info_columns_merge_in_the_cache_and_a_delete_clears_them() {
    let (_dir, store, w, _task) = fresh_store().await;
    // Two batches (two topics): each carries its own columns.
    w.write(WriteBatch {
        infos: vec![info("car-1", Some("12가3456"), None, r#"{"year":2024}"#)],
        ..Default::default()
    })
    .await
    .unwrap();
    w.write(WriteBatch {
        infos: vec![info("car-1", None, Some("Kim"), r#"{"seats":5}"#)],
        ..Default::default()
    })
    .await
    .unwrap();
    w.flush().await.unwrap();
    let v = one(&store, "car-1").await;
    assert_eq!(v.plate.as_deref(), Some("12가3456"));
    assert_eq!(v.driver.as_deref(), Some("Kim"));
    let extra: String = sqlx::query_scalar("SELECT info_json FROM vehicles WHERE id = 'car-1'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let extra: serde_json::Value = serde_json::from_str(&extra).unwrap();
    assert_eq!(extra, serde_json::json!({"year": 2024, "seats": 5}));
    // A column carried as null clears; then a delete (with an update queued before it in the
    // same batch, which must not survive it) clears everything.
    w.write(WriteBatch {
        infos: vec![info("car-1", None, Some(""), "{}")],
        ..Default::default()
    })
    .await
    .unwrap();
    w.flush().await.unwrap();
    let v = one(&store, "car-1").await;
    assert_eq!(
        (v.plate.as_deref(), v.driver.as_deref()),
        (Some("12가3456"), None)
    );
    let mut b = WriteBatch {
        infos: vec![info("car-1", Some("99하9999"), None, "{}")],
        ..Default::default()
    };
    b.delete_info("car-1".into());
    w.write(b).await.unwrap();
    w.flush().await.unwrap();
    assert_eq!(one(&store, "car-1").await.plate, None);
}

#[tokio::test]
async fn an_unmapped_devices_rows_move_to_its_vehicle() {
    let (_dir, store, w, _task) = fresh_store().await;
    let mut dev_alert = alert("a-1");
    dev_alert.vehicle = "DEV-1".into();
    w.write(WriteBatch {
        positions: vec![
            (pos("DEV-1", 1), Origin::default()),
            (pos("DEV-1", 2), Origin::default()),
        ],
        snapshots: vec![VehicleSnapshot {
            vehicle: "DEV-1".into(),
            first_seen: 1,
            position: Some(pos("DEV-1", 2)),
            status_json: None,
        }],
        devices: vec![("DEV-1".into(), DeviceChange::SeenUnmapped)],
        alerts: vec![(dev_alert, AlertOrigin::Rule)],
        ..Default::default()
    })
    .await
    .unwrap();
    w.flush().await.unwrap();
    assert_eq!(store.devices().await.unwrap(), vec![("DEV-1".into(), None)]);
    w.write(WriteBatch {
        devices: vec![("DEV-1".into(), DeviceChange::Map("car-1".into()))],
        reattribute: vec![("DEV-1".into(), "car-1".into())],
        snapshots: vec![VehicleSnapshot {
            vehicle: "car-1".into(),
            first_seen: 1,
            position: Some(pos("car-1", 2)),
            status_json: None,
        }],
        ..Default::default()
    })
    .await
    .unwrap();
    w.flush().await.unwrap();
    assert_eq!(
        store.devices().await.unwrap(),
        vec![("DEV-1".into(), Some("car-1".into()))]
    );
    let ids: Vec<String> = store
        .vehicles()
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.id)
        .collect();
    assert_eq!(ids, vec!["car-1".to_string()]);
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM positions WHERE vehicle = 'car-1'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(n, 2);
    let feed = store.feed(&AlertFilter::default(), 10).await.unwrap();
    assert_eq!(feed.alerts[0].vehicle, "car-1", "the alert moved too");
    w.write(WriteBatch {
        devices: vec![("DEV-1".into(), DeviceChange::Unmap)],
        ..Default::default()
    })
    .await
    .unwrap();
    w.flush().await.unwrap();
    assert!(store.devices().await.unwrap().is_empty());
}

/// A device the engine forgot (evicted from the live state while silent, SPEC §7) still has
/// its rows moved when its mapping arrives: the cache remembers it was seen unmapped.
#[tokio::test]
async fn a_mapping_for_a_device_the_engine_forgot_still_moves_its_rows() {
    let (_dir, store, w, _task) = fresh_store().await;
    w.write(WriteBatch {
        positions: vec![
            (pos("DEV-9", 1), Origin::default()),
            (pos("DEV-9", 2), Origin::default()),
        ],
        snapshots: vec![VehicleSnapshot {
            vehicle: "DEV-9".into(),
            first_seen: 1,
            position: Some(pos("DEV-9", 2)),
            status_json: None,
        }],
        devices: vec![("DEV-9".into(), DeviceChange::SeenUnmapped)],
        ..Default::default()
    })
    .await
    .unwrap();
    // The mapping alone: no re-attribution asked for, no snapshot of the vehicle.
    w.write(WriteBatch {
        devices: vec![("DEV-9".into(), DeviceChange::Map("car-9".into()))],
        ..Default::default()
    })
    .await
    .unwrap();
    w.flush().await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM positions WHERE vehicle = 'car-9'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(n, 2, "the device's history moved to its vehicle");
    let vehicles = store.vehicles().await.unwrap();
    let ids: Vec<&str> = vehicles.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids, vec!["car-9"], "the device's row became the vehicle's");
    assert_eq!(one(&store, "car-9").await.last.map(|p| p.ts_ms), Some(2));
    // A mapping of a device never seen unmapped moves nothing.
    w.write(WriteBatch {
        devices: vec![("DEV-10".into(), DeviceChange::Map("car-10".into()))],
        ..Default::default()
    })
    .await
    .unwrap();
    w.flush().await.unwrap();
    assert_eq!(store.vehicles().await.unwrap().len(), 1);
}

#[tokio::test]
async fn alerts_and_exports_carry_the_plate_and_the_feed_filters_by_group() {
    let (_dir, store, w, _task) = fresh_store().await;
    let mut other = alert("a-2");
    other.vehicle = "car-2".into();
    let mut car1 = info("car-1", Some("12가3456"), None, "{}");
    car1.group = Some("gangnam".into());
    let mut car2 = info("car-2", Some("34나5678"), None, "{}");
    car2.group = Some("mapo".into());
    w.write(WriteBatch {
        infos: vec![car1, car2],
        alerts: vec![
            (alert("a-1"), AlertOrigin::Rule),
            (other, AlertOrigin::Rule),
        ],
        positions: vec![(pos("car-1", 7), Origin::default())],
        ..Default::default()
    })
    .await
    .unwrap();
    w.flush().await.unwrap();
    let feed = store
        .feed(
            &AlertFilter {
                group: Some("gangnam".into()),
                ..Default::default()
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(feed.alerts.len(), 1);
    assert_eq!(feed.alerts[0].plate.as_deref(), Some("12가3456"));
    assert_eq!(feed.open, 1, "the unacknowledged count is the group's");
    let all = store.feed(&AlertFilter::default(), 10).await.unwrap();
    assert_eq!(all.open, 2, "and the fleet's without a group");
    let by_plate = store
        .feed(
            &AlertFilter {
                vehicle: Some("나56".into()),
                ..Default::default()
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(by_plate.alerts.len(), 1);
    assert_eq!(by_plate.alerts[0].vehicle, "car-2");
    let open = store
        .open_alerts_at_least(fleet_model::Severity::Info)
        .await
        .unwrap();
    assert!(open.iter().all(|a| a.plate.is_some()), "{open:?}");
    let mut out = Vec::new();
    store
        .export(&ExportFilter::default(), ExportFormat::Csv, &mut out)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .starts_with("car-1,12가3456,7,"),
        "{text}"
    );
}
