//! Reads from the cache: what the engine needs at start-up, and what `fleetctl stats` and
//! `alerts` print.

use super::{Store, StoreError};
use fleet_model::{Alert, AlertState, PositionSample, Severity, Source};
use serde::Serialize;
use sqlx::Row;
use std::collections::{BTreeMap, HashMap};

/// `fleetctl stats --json` (SPEC §4).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CacheStats {
    /// Vehicles known.
    pub vehicles: i64,
    /// Position samples in history.
    pub positions: i64,
    /// Status samples in history.
    pub status_samples: i64,
    /// Quarantined messages.
    pub rejected: i64,
    /// Quarantined messages by reason code.
    pub rejected_by_reason: BTreeMap<String, i64>,
    /// Alerts by state.
    pub alerts: AlertCounts,
    /// Per topic.
    pub topics: BTreeMap<String, TopicStats>,
    /// Gaps recorded (SPEC §7): offsets that could not be read, never skipped silently.
    pub gaps: i64,
    /// The newest gaps (at most 20).
    pub recent_gaps: Vec<super::GapInfo>,
    /// The ack outbox: acks waiting to be published and dead letters (`crate::acks`).
    pub outbox: fleet_model::ui::OutboxStatus,
}

/// Alerts by state.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct AlertCounts {
    /// Open.
    pub open: i64,
    /// Acknowledged.
    pub acknowledged: i64,
    /// Resolved.
    pub resolved: i64,
}

/// One topic in [`CacheStats`].
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TopicStats {
    /// Messages consumed into the cache.
    pub messages: i64,
    /// Of which rejected.
    pub rejected: i64,
    /// Next offset per partition.
    pub offsets: BTreeMap<i32, i64>,
}

/// A vehicle row as stored, used to seed the live state after a restart.
#[derive(Debug, Clone, Default)]
pub struct StoredVehicle {
    /// Id.
    pub id: String,
    /// Metadata.
    pub plate: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Driver.
    pub driver: Option<String>,
    /// Group.
    pub group: Option<String>,
    /// First seen.
    pub first_seen: i64,
    /// Last position.
    pub last: Option<PositionSample>,
}

pub(super) fn parse_alert(r: &sqlx::sqlite::SqliteRow) -> Alert {
    Alert {
        id: r.get("id"),
        vehicle: r.get("vehicle"),
        rule: r.get("rule"),
        severity: Severity::parse(r.get::<&str, _>("severity")).unwrap_or(Severity::Warning),
        message: r.get("message"),
        ts_ms: r.get("ts"),
        state: AlertState::parse(r.get::<&str, _>("state")).unwrap_or(AlertState::Open),
        acked_by: r.get("acked_by"),
        acked_ms: r.get("acked_ms"),
        ack_note: r.get("ack_note"),
        resolved_ms: r.get("resolved_ms"),
        // Only the reads that join `vehicles` select it (see views.rs).
        plate: r.try_get("plate").ok().flatten(),
    }
}

impl Store {
    /// Next offset per (topic, partition): where consumption resumes.
    pub async fn offsets(&self) -> Result<HashMap<(String, i32), i64>, StoreError> {
        let rows = sqlx::query("SELECT topic, kpartition, next_offset FROM offsets")
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| ((r.get("topic"), r.get("kpartition")), r.get("next_offset")))
            .collect())
    }

    /// The last *kept* history sample per vehicle: the history policy resumes from these, so
    /// a restart keeps exactly the samples an uninterrupted run would have kept.
    pub async fn last_kept_positions(&self) -> Result<Vec<PositionSample>, StoreError> {
        // SQLite returns the other columns from the row holding MAX(ts).
        let rows = sqlx::query(
            "SELECT vehicle, MAX(ts) AS ts, lat, lng, speed, heading, source FROM positions GROUP BY vehicle",
        )
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(position_row).collect())
    }

    /// Every vehicle with its metadata and last snapshot.
    pub async fn vehicles(&self) -> Result<Vec<StoredVehicle>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, plate, model, driver, grp, first_seen, last_ts, last_lat, last_lng, last_speed, last_heading, last_source FROM vehicles ORDER BY id",
        )
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| {
                let id: String = r.get("id");
                let last = match (
                    r.get::<Option<i64>, _>("last_ts"),
                    r.get::<Option<f64>, _>("last_lat"),
                    r.get::<Option<f64>, _>("last_lng"),
                ) {
                    (Some(ts), Some(lat), Some(lng)) => Some(PositionSample {
                        vehicle: id.clone(),
                        ts_ms: ts,
                        lat,
                        lng,
                        speed: r.get("last_speed"),
                        heading: r.get("last_heading"),
                        source: source_of(r.get::<Option<&str>, _>("last_source")),
                    }),
                    _ => None,
                };
                StoredVehicle {
                    id,
                    plate: r.get("plate"),
                    model: r.get("model"),
                    driver: r.get("driver"),
                    group: r.get("grp"),
                    first_seen: r.get::<Option<i64>, _>("first_seen").unwrap_or(0),
                    last,
                }
            })
            .collect())
    }

    /// Counts for `fleetctl stats`.
    pub async fn stats(&self) -> Result<CacheStats, StoreError> {
        let e = |e| self.err(e);
        let count = |sql: &'static str| async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(self.pool())
                .await
        };
        let mut s = CacheStats {
            vehicles: count("SELECT COUNT(*) FROM vehicles").await.map_err(e)?,
            positions: count("SELECT COUNT(*) FROM positions").await.map_err(e)?,
            status_samples: count("SELECT COUNT(*) FROM status_samples")
                .await
                .map_err(e)?,
            rejected: count("SELECT COUNT(*) FROM quarantine").await.map_err(e)?,
            ..Default::default()
        };
        for r in sqlx::query("SELECT reason, COUNT(*) AS n FROM quarantine GROUP BY reason")
            .fetch_all(self.pool())
            .await
            .map_err(e)?
        {
            s.rejected_by_reason.insert(r.get("reason"), r.get("n"));
        }
        for r in sqlx::query("SELECT state, COUNT(*) AS n FROM alerts GROUP BY state")
            .fetch_all(self.pool())
            .await
            .map_err(e)?
        {
            let n: i64 = r.get("n");
            match r.get::<&str, _>("state") {
                "open" => s.alerts.open = n,
                "acknowledged" => s.alerts.acknowledged = n,
                "resolved" => s.alerts.resolved = n,
                _ => {}
            }
        }
        for r in sqlx::query("SELECT topic, messages, rejected FROM topic_counters")
            .fetch_all(self.pool())
            .await
            .map_err(e)?
        {
            let t = s.topics.entry(r.get("topic")).or_default();
            t.messages = r.get("messages");
            t.rejected = r.get("rejected");
        }
        for ((topic, p), o) in self.offsets().await? {
            s.topics.entry(topic).or_default().offsets.insert(p, o);
        }
        (s.gaps, s.recent_gaps) = self.gaps(20).await?;
        s.outbox = self.outbox_status().await?;
        Ok(s)
    }

    /// Alerts, newest first, optionally in one state.
    pub async fn alerts(&self, state: Option<AlertState>) -> Result<Vec<Alert>, StoreError> {
        let rows = match state {
            Some(s) => {
                sqlx::query("SELECT * FROM alerts WHERE state = ?1 ORDER BY ts DESC")
                    .bind(s.as_str())
                    .fetch_all(self.pool())
                    .await
            }
            None => {
                sqlx::query("SELECT * FROM alerts ORDER BY ts DESC")
                    .fetch_all(self.pool())
                    .await
            }
        }
        .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(parse_alert).collect())
    }

    /// One alert.
    pub async fn alert(&self, id: &str) -> Result<Option<Alert>, StoreError> {
        let row = sqlx::query("SELECT * FROM alerts WHERE id = ?1")
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| self.err(e))?;
        Ok(row.as_ref().map(parse_alert))
    }
}

/// The stored source name back as a [`Source`] (anything but `redis` was read from Kafka).
pub(super) fn source_of(s: Option<&str>) -> Source {
    if s == Some("redis") {
        Source::Redis
    } else {
        Source::Kafka
    }
}

pub(super) fn position_row(r: &sqlx::sqlite::SqliteRow) -> PositionSample {
    PositionSample {
        vehicle: r.get("vehicle"),
        ts_ms: r.get("ts"),
        lat: r.get("lat"),
        lng: r.get("lng"),
        speed: r.get("speed"),
        heading: r.get("heading"),
        source: source_of(r.get::<Option<&str>, _>("source")),
    }
}

impl Store {
    /// The last kept status sample per vehicle (its time and rule-relevant fields), so the
    /// status history policy resumes where it stopped.
    pub async fn last_kept_status(
        &self,
    ) -> Result<Vec<(String, i64, fleet_model::StatusFields)>, StoreError> {
        let rows = sqlx::query(
            "SELECT vehicle, MAX(ts) AS ts, engine_on, doors_open, headlights_on, speed, fuel, battery
             FROM status_samples GROUP BY vehicle",
        )
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| (r.get("vehicle"), r.get("ts"), known_fields(r)))
            .collect())
    }
}

/// A status row's rule-relevant columns (`engine_on` … `battery`).
pub(super) fn known_fields(r: &sqlx::sqlite::SqliteRow) -> fleet_model::StatusFields {
    fleet_model::StatusFields {
        engine_on: r.get("engine_on"),
        doors_open: r.get("doors_open"),
        headlights_on: r.get("headlights_on"),
        speed: r.get("speed"),
        fuel: r.get("fuel"),
        battery: r.get("battery"),
    }
}
