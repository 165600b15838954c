//! Enrichment in the cache (SPEC §8): vehicle metadata merged column by column from several
//! info topics, the device → vehicle mapping, and the hand-over of what an unmapped device
//! reported to its vehicle once the mapping arrives.
//!
//! The merge happens in SQL, not only in memory: a vehicle evicted from the live state (or a
//! cache written by an earlier run) must still get the columns other topics set.

use super::batch::{DeviceChange, WriteBatch};
use super::now_ms;
use sqlx::SqliteConnection;

/// Tables whose rows name a vehicle and move with a device's re-attribution.
const VEHICLE_TABLES: [&str; 3] = ["positions", "status_samples", "alerts"];

/// Metadata deletes, then merged updates.
pub(super) async fn write_infos(
    tx: &mut SqliteConnection,
    b: &WriteBatch,
) -> Result<(), sqlx::Error> {
    for id in &b.info_deletes {
        sqlx::query(
            "UPDATE vehicles SET plate = NULL, model = NULL, driver = NULL, grp = NULL, info_json = NULL
             WHERE id = ?1",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    for i in &b.infos {
        // NULL = the message did not carry the column (keep); '' = carried as null (clear).
        sqlx::query(
            "INSERT INTO vehicles (id, plate, model, driver, grp, info_json, first_seen)
             VALUES (?1, NULLIF(?2, ''), NULLIF(?3, ''), NULLIF(?4, ''), NULLIF(?5, ''), ?6, ?7)
             ON CONFLICT(id) DO UPDATE SET
               plate = CASE WHEN ?2 IS NULL THEN vehicles.plate ELSE NULLIF(?2, '') END,
               model = CASE WHEN ?3 IS NULL THEN vehicles.model ELSE NULLIF(?3, '') END,
               driver = CASE WHEN ?4 IS NULL THEN vehicles.driver ELSE NULLIF(?4, '') END,
               grp = CASE WHEN ?5 IS NULL THEN vehicles.grp ELSE NULLIF(?5, '') END,
               info_json = CASE WHEN json_valid(vehicles.info_json)
                                THEN json_patch(vehicles.info_json, excluded.info_json)
                                ELSE excluded.info_json END",
        )
        .bind(&i.vehicle)
        .bind(&i.plate)
        .bind(&i.model)
        .bind(&i.driver)
        .bind(&i.group)
        .bind(if i.extra.is_empty() { "{}" } else { &i.extra })
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Device mapping changes, in order. Returns the (device, vehicle) pairs whose device the
/// cache had seen unmapped: their rows must move to the vehicle ([`reattribute`]) even when
/// the engine no longer remembered the device (evicted from the live state while silent,
/// SPEC §7), so nothing it reported stays stranded under its id.
///
/// A device table's full load brings tens of thousands of rows at once; consecutive changes
/// of one kind go in one statement each (a JSON array read with `json_each`), not one
/// round trip per device.
pub(super) async fn write_devices(
    tx: &mut SqliteConnection,
    b: &WriteBatch,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let mut moved = Vec::new();
    let now = now_ms();
    let mut rest = &b.devices[..];
    while let Some((_, first)) = rest.first() {
        let n = rest.iter().take_while(|(_, c)| same_kind(c, first)).count();
        let (run, tail) = rest.split_at(n);
        rest = tail;
        match first {
            DeviceChange::Map(_) => {
                let pairs: Vec<[&str; 2]> = run
                    .iter()
                    .filter_map(|(d, c)| match c {
                        DeviceChange::Map(v) => Some([d.as_str(), v.as_str()]),
                        _ => None,
                    })
                    .collect();
                let json = serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".into());
                let unmapped: Vec<String> = sqlx::query_scalar(
                    "SELECT device FROM devices WHERE vehicle IS NULL AND device IN
                       (SELECT json_extract(value, '$[0]') FROM json_each(?1))",
                )
                .bind(&json)
                .fetch_all(&mut *tx)
                .await?;
                // The last mapping of a device in the run is the one that holds.
                let last: std::collections::HashMap<&str, &str> =
                    pairs.iter().map(|[d, v]| (*d, *v)).collect();
                for d in unmapped {
                    if let Some(v) = last.get(d.as_str()).map(|v| v.to_string()) {
                        moved.push((d, v));
                    }
                }
                sqlx::query(
                    "INSERT INTO devices (device, vehicle, updated_ms)
                     SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), ?2
                     FROM json_each(?1) WHERE true
                     ON CONFLICT(device) DO UPDATE SET vehicle = excluded.vehicle,
                       updated_ms = excluded.updated_ms",
                )
                .bind(&json)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            DeviceChange::Unmap => {
                sqlx::query(
                    "DELETE FROM devices WHERE device IN (SELECT value FROM json_each(?1))",
                )
                .bind(ids_json(run))
                .execute(&mut *tx)
                .await?;
            }
            DeviceChange::SeenUnmapped => {
                sqlx::query(
                    "INSERT OR IGNORE INTO devices (device, vehicle, updated_ms)
                     SELECT value, NULL, ?2 FROM json_each(?1)",
                )
                .bind(ids_json(run))
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    Ok(moved)
}

fn same_kind(a: &DeviceChange, b: &DeviceChange) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// The device ids of `run` as a JSON array.
fn ids_json(run: &[(String, DeviceChange)]) -> String {
    let ids: Vec<&str> = run.iter().map(|(d, _)| d.as_str()).collect();
    serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into())
}

/// Moves every row stored under an unmapped device id to its vehicle: the batch's
/// re-attributions and `moved` ([`write_devices`]). The device's `vehicles` row becomes the
/// vehicle's if the vehicle has none yet, else it goes (the vehicle's snapshot in the same
/// batch carries the merged latest state); its rule state goes.
pub(super) async fn reattribute(
    tx: &mut SqliteConnection,
    b: &WriteBatch,
    moved: &[(String, String)],
) -> Result<(), sqlx::Error> {
    let mut done = std::collections::HashSet::new();
    for (device, vehicle) in b.reattribute.iter().chain(moved) {
        if !done.insert(device) {
            continue;
        }
        for table in VEHICLE_TABLES {
            sqlx::query(&format!(
                "UPDATE {table} SET vehicle = ?2 WHERE vehicle = ?1"
            ))
            .bind(device)
            .bind(vehicle)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE OR IGNORE vehicles SET id = ?2 WHERE id = ?1")
            .bind(device)
            .bind(vehicle)
            .execute(&mut *tx)
            .await?;
        for sql in [
            "DELETE FROM vehicles WHERE id = ?1",
            "DELETE FROM rule_state WHERE vehicle = ?1",
        ] {
            sqlx::query(sql).bind(device).execute(&mut *tx).await?;
        }
    }
    Ok(())
}

/// One row of the device table: (device, its vehicle or `None` while unmapped).
pub type DeviceRow = (String, Option<String>);

impl super::Store {
    /// Every device the cache knows, mapped or not (engine start, `fleetctl vehicles`).
    pub async fn devices(&self) -> Result<Vec<DeviceRow>, super::StoreError> {
        sqlx::query_as("SELECT device, vehicle FROM devices ORDER BY device")
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.err(e))
    }

    /// The devices mapped to `vehicle` (the vehicle panel lists them); an unmapped device
    /// shown under its own id lists itself.
    pub async fn devices_of(&self, vehicle: &str) -> Result<Vec<String>, super::StoreError> {
        sqlx::query_scalar(
            "SELECT device FROM devices WHERE vehicle = ?1
             UNION SELECT device FROM devices WHERE device = ?1 AND vehicle IS NULL
             ORDER BY device",
        )
        .bind(vehicle)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))
    }
}
