//! Looking back (issue 11): one vehicle's history over a range (the timeline, the chart,
//! `fleetctl history`), the whole fleet as it was at a time T (the replay frame), and the
//! numeric fields a vehicle has sent (the chart's field picker).

use super::read::{position_row, source_of};
use super::{Store, StoreError};
use fleet_model::{
    AlertState, HistoryAlert, PositionSample, Severity, StatusPoint, TrackPoint, VehicleHistory,
};
use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::sqlite::SqliteConnection;

impl Store {
    /// Everything stored about `vehicle` with `from_ms <= ts <= to_ms`, each list ordered by
    /// time. `None` when the cache has never heard of the vehicle (no vehicles row and no
    /// sample or alert at any time), so callers can tell "unknown vehicle" from "no data in
    /// this range" (an empty history).
    ///
    /// All reads run in one read transaction: in WAL mode that is one snapshot, so a batch
    /// the writer commits meanwhile cannot show up in the positions but not in the alerts.
    #[tracing::instrument(level = "debug", err, skip(self))]
    pub async fn history(
        &self,
        vehicle: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Option<VehicleHistory>, StoreError> {
        let mut tx = self.pool().begin().await.map_err(|e| self.err(e))?;
        let conn: &mut SqliteConnection = &mut tx;
        let info = match vehicle_info(conn, vehicle).await.map_err(|e| self.err(e))? {
            Some(info) => info,
            None if known_by_rows(conn, vehicle)
                .await
                .map_err(|e| self.err(e))? =>
            {
                Map::new()
            }
            None => return Ok(None),
        };
        let positions = in_range(
            conn,
            "SELECT ts, lat, lng, speed, heading, source FROM positions
             WHERE vehicle = ?1 AND ts BETWEEN ?2 AND ?3 ORDER BY ts, rowid",
            (vehicle, from_ms, to_ms),
        )
        .await
        .map_err(|e| self.err(e))?
        .iter()
        .map(|r| TrackPoint {
            ts_ms: r.get("ts"),
            lat: r.get("lat"),
            lng: r.get("lng"),
            speed: r.get("speed"),
            heading: r.get("heading"),
            source: source_of(r.get::<Option<&str>, _>("source")),
        })
        .collect();
        let status = in_range(
            conn,
            "SELECT ts, fields_json FROM status_samples
             WHERE vehicle = ?1 AND ts BETWEEN ?2 AND ?3 ORDER BY ts, rowid",
            (vehicle, from_ms, to_ms),
        )
        .await
        .map_err(|e| self.err(e))?
        .iter()
        .map(|r| StatusPoint {
            ts_ms: r.get("ts"),
            fields: json_object(r.get::<Option<&str>, _>("fields_json")),
        })
        .collect();
        let alerts = in_range(
            conn,
            "SELECT id, rule, severity, ts, state FROM alerts
             WHERE vehicle = ?1 AND ts BETWEEN ?2 AND ?3 ORDER BY ts, id",
            (vehicle, from_ms, to_ms),
        )
        .await
        .map_err(|e| self.err(e))?
        .iter()
        .map(|r| HistoryAlert {
            id: r.get("id"),
            rule: r.get("rule"),
            severity: Severity::parse(r.get::<&str, _>("severity")).unwrap_or(Severity::Warning),
            ts_ms: r.get("ts"),
            state: AlertState::parse(r.get::<&str, _>("state")).unwrap_or(AlertState::Open),
        })
        .collect();
        tx.rollback().await.map_err(|e| self.err(e))?;
        Ok(Some(VehicleHistory {
            vehicle: vehicle.to_string(),
            info,
            positions,
            status,
            alerts,
        }))
    }

    /// The fleet as it was at `t_ms`: every vehicle's last stored position with
    /// `t_ms - lookback_ms <= ts <= t_ms`, one per vehicle, ordered by vehicle id. Vehicles
    /// with nothing in that window are left out (not yet there, or silent too long to draw).
    ///
    /// One index seek per vehicle in `positions (vehicle, ts)`, walking the vehicles table
    /// (every vehicle with history has a row: the engine writes a snapshot when it first sees
    /// one). The cost grows with the fleet, not with the history or the look-back, which is
    /// what keeps scrubbing smooth; a scan of the `ts` index over the window would grow with
    /// the samples in it instead.
    #[tracing::instrument(level = "debug", err, skip(self))]
    pub async fn fleet_at(
        &self,
        t_ms: i64,
        lookback_ms: i64,
    ) -> Result<Vec<PositionSample>, StoreError> {
        let rows = sqlx::query(FLEET_AT_SQL)
            .bind(t_ms)
            .bind(t_ms.saturating_sub(lookback_ms.max(0)))
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(position_row).collect())
    }

    /// The numeric fields `vehicle` has sent in its stored status samples (flattened names
    /// such as `fuel` or `engine.rpm`, sorted), for the chart's field picker. `ts` is left
    /// out: it is the time axis, not a measurement. Rows whose JSON is damaged are skipped.
    pub async fn status_fields(&self, vehicle: &str) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT DISTINCT j.key FROM
               (SELECT fields_json FROM status_samples
                WHERE vehicle = ?1 AND json_valid(fields_json)) AS s,
               json_each(s.fields_json) AS j
             WHERE j.type IN ('integer', 'real') AND j.key != 'ts'
             ORDER BY j.key",
        )
        .bind(vehicle)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))
    }
}

/// The rows of `sql` (binding `?1` vehicle, `?2` from, `?3` to) on the history's snapshot.
async fn in_range(
    conn: &mut SqliteConnection,
    sql: &str,
    (vehicle, from_ms, to_ms): (&str, i64, i64),
) -> Result<Vec<sqlx::sqlite::SqliteRow>, sqlx::Error> {
    sqlx::query(sql)
        .bind(vehicle)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(conn)
        .await
}

/// The replay frame's query (see [`Store::fleet_at`]); public to the tests, which check its
/// plan seeks instead of scanning.
pub(crate) const FLEET_AT_SQL: &str =
    "SELECT p.vehicle, p.ts, p.lat, p.lng, p.speed, p.heading, p.source
     FROM vehicles AS v
     JOIN positions AS p ON p.rowid = (
         SELECT rowid FROM positions
         WHERE vehicle = v.id AND ts <= ?1 AND ts >= ?2
         ORDER BY ts DESC LIMIT 1)
     ORDER BY v.id";

/// The vehicles row's metadata as one object (`plate`, `model`, `driver`, `group`, then the
/// other info fields), or `None` without a row.
async fn vehicle_info(
    conn: &mut SqliteConnection,
    vehicle: &str,
) -> Result<Option<Map<String, Value>>, sqlx::Error> {
    let row =
        sqlx::query("SELECT plate, model, driver, grp, info_json FROM vehicles WHERE id = ?1")
            .bind(vehicle)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map(|r| {
        let mut info = Map::new();
        for (key, col) in [
            ("plate", "plate"),
            ("model", "model"),
            ("driver", "driver"),
            ("group", "grp"),
        ] {
            if let Some(v) = r.get::<Option<String>, _>(col) {
                info.insert(key.into(), Value::String(v));
            }
        }
        // The named columns win over a same-named extra field.
        for (k, v) in json_object(r.get::<Option<&str>, _>("info_json")) {
            info.entry(k).or_insert(v);
        }
        info
    }))
}

/// Whether any sample or alert of `vehicle` is stored (a vehicle can outlive its vehicles
/// row only briefly, between retention passes; it is still known then).
async fn known_by_rows(conn: &mut SqliteConnection, vehicle: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM positions WHERE vehicle = ?1)
             OR EXISTS (SELECT 1 FROM status_samples WHERE vehicle = ?1)
             OR EXISTS (SELECT 1 FROM alerts WHERE vehicle = ?1)",
    )
    .bind(vehicle)
    .fetch_one(&mut *conn)
    .await
}

/// A stored JSON object column as a map; empty for NULL or damaged text (shown as "no
/// fields", never an error for the whole history).
fn json_object(text: Option<&str>) -> Map<String, Value> {
    match text.map(serde_json::from_str::<Map<String, Value>>) {
        Some(Ok(m)) => m,
        Some(Err(e)) => {
            tracing::debug!(error = %e, "stored JSON object unreadable; shown empty");
            Map::new()
        }
        None => Map::new(),
    }
}
