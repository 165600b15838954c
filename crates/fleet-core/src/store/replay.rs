//! Replay's step between two frames: the positions stored in a short slice of time, so a
//! playing timeline moves the replayed fleet on by what happened since the previous frame
//! instead of rebuilding it from [`Store::fleet_at`] every tick.

use super::read::{known_fields, position_row};
use super::{Store, StoreError};
use fleet_model::{PositionSample, StatusSample};
use sqlx::Row;

impl Store {
    /// Positions with `after_ms < ts <= upto_ms`, oldest first, at most `limit` (the caller
    /// rebuilds from [`Store::fleet_at`] when a step would be larger: a jump, not a step).
    /// Reads the `positions (ts)` index, so the cost is the slice's rows, not the history's.
    pub async fn positions_between(
        &self,
        after_ms: i64,
        upto_ms: i64,
        limit: i64,
    ) -> Result<Vec<PositionSample>, StoreError> {
        let rows = sqlx::query(
            "SELECT vehicle, ts, lat, lng, speed, heading, source FROM positions
             WHERE ts > ?1 AND ts <= ?2 ORDER BY ts LIMIT ?3",
        )
        .bind(after_ms)
        .bind(upto_ms)
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(position_row).collect())
    }

    /// `vehicle`'s last stored status sample at or before `t_ms`: the panel's status while a
    /// replay shows that instant. One seek in `status_samples (vehicle, ts)`.
    pub async fn status_at(
        &self,
        vehicle: &str,
        t_ms: i64,
    ) -> Result<Option<StatusSample>, StoreError> {
        let row = sqlx::query(
            "SELECT ts, engine_on, doors_open, headlights_on, speed, fuel, battery, fields_json
             FROM status_samples WHERE vehicle = ?1 AND ts <= ?2 ORDER BY ts DESC LIMIT 1",
        )
        .bind(vehicle)
        .bind(t_ms)
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(row.map(|r| StatusSample {
            vehicle: vehicle.to_string(),
            ts_ms: r.get("ts"),
            known: known_fields(&r),
            fields: r
                .get::<Option<String>, _>("fields_json")
                .unwrap_or_else(|| "{}".into()),
        }))
    }
}
