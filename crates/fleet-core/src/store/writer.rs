//! The single writer: owns one SQLite connection and commits each batch — samples, alerts,
//! quarantine *and the Kafka offsets they consumed* — in one transaction.
//!
//! One writer means no lock contention and a total order of commits; readers use the pool.

use super::batch::{QUARANTINE_KEEP, WriteBatch};
use super::retention::{Retention, enforce_size_cap, housekeeping};
use super::{StoreError, now_ms};
use sqlx::sqlite::{Sqlite, SqliteConnection};
use sqlx::{Connection, QueryBuilder};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

/// Rows per multi-row INSERT: fixed so SQLite's prepared statement is reused, and well under
/// SQLite's 32,766 bound-parameter limit.
const CHUNK: usize = 256;

/// How many queued batches one transaction may absorb.
const COALESCE_MAX_ROWS: usize = 50_000;

/// A request to the writer.
pub enum WriterMsg {
    /// Commit this batch.
    Batch(Box<WriteBatch>),
    /// Reply once everything sent before has been committed.
    Flush(oneshot::Sender<()>),
    /// Alerts changed outside the writer (an ack made here): bump `alerts_version`.
    AlertsChanged,
}

/// A commit that failed, as the operator sees it (SPEC §7 `cache-status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheFault {
    /// SQLite's message, one line.
    pub message: String,
    /// Disk full, read-only, corrupt, I/O error: retrying alone will not fix it, so it is
    /// shown at once (and `fleetctl ingest` stops). Lock contention is not permanent.
    pub permanent: bool,
    /// When the failures began (ms).
    pub since_ms: i64,
}

/// What the writer has committed so far.
#[derive(Debug, Clone, Default)]
pub struct Committed {
    /// Transactions committed.
    pub transactions: u64,
    /// Rows written.
    pub rows: u64,
    /// Latest committed next-offset per (topic, partition).
    pub offsets: Vec<(String, i32, i64)>,
    /// Set while commits fail; cleared by the next successful commit.
    pub fault: Option<CacheFault>,
    /// The last permanent fault and when it last happened (ms), kept after a commit
    /// succeeds: on a nearly full disk commits alternate, and the window must not flicker.
    pub last_permanent: Option<(String, i64)>,
    /// Gaps recorded since start (SPEC §7).
    pub gaps: u64,
    /// Increases whenever committed data changed alerts or acks: the UI re-reads its feed
    /// on a change instead of polling the table.
    pub alerts_version: u64,
}

/// Handle to the writer task.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<WriterMsg>,
    committed: watch::Receiver<Committed>,
}

impl WriterHandle {
    /// Queues a batch (waits when the writer is behind: that is the backpressure that keeps
    /// memory bounded when the disk is slower than the broker).
    pub async fn write(&self, batch: WriteBatch) -> Result<(), StoreError> {
        self.tx
            .send(WriterMsg::Batch(Box::new(batch)))
            .await
            .map_err(|_| StoreError::WriterGone)
    }

    /// Waits until everything queued so far is committed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(WriterMsg::Flush(tx))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)
    }

    /// Signals an alert change made outside the writer (see [`Committed::alerts_version`]).
    pub async fn alerts_changed(&self) {
        let _ = self.tx.send(WriterMsg::AlertsChanged).await;
    }

    /// Watches commits (offsets, counts).
    pub fn committed(&self) -> watch::Receiver<Committed> {
        self.committed.clone()
    }
}

/// Starts the writer on its own connection. It stops when every handle is dropped, or on
/// `cancel` if a commit is failing then (the batch is not committed, so its messages are
/// read again on the next start: nothing is lost, and shutdown never waits on a full disk).
pub fn spawn(
    conn: SqliteConnection,
    retention: Retention,
    cancel: CancellationToken,
) -> (WriterHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(8);
    let (ctx, crx) = watch::channel(Committed::default());
    let task = tokio::spawn(run(conn, rx, ctx, retention, cancel));
    (WriterHandle { tx, committed: crx }, task)
}

/// True for SQLite errors that retrying will not cure: disk full, read-only file or
/// directory, corrupt database, not a database, I/O errors, cannot open. Busy and locked
/// (another process, WAL recovery) are transient.
pub fn is_permanent(e: &sqlx::Error) -> bool {
    match e {
        // SQLITE_PERM 3, READONLY 8, IOERR 10, CORRUPT 11, FULL 13, CANTOPEN 14, NOTADB 26.
        sqlx::Error::Database(_) => {
            matches!(sqlite_primary_code(e), Some(3 | 8 | 10 | 11 | 13 | 14 | 26))
        }
        sqlx::Error::Io(_) => true,
        _ => false,
    }
}

/// SQLite's primary result code of a database error (the low byte of the extended code).
pub(crate) fn sqlite_primary_code(e: &sqlx::Error) -> Option<i32> {
    match e {
        sqlx::Error::Database(d) => d
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .map(|c| c & 0xff),
        _ => None,
    }
}

async fn run(
    mut conn: SqliteConnection,
    mut rx: mpsc::Receiver<WriterMsg>,
    committed: watch::Sender<Committed>,
    retention: Retention,
    cancel: CancellationToken,
) {
    // First housekeeping a minute after start (not in the way of start-up), then every 10 min;
    // the size cap is checked every minute (one PRAGMA when under it).
    let mut last_housekeeping = Instant::now() - Duration::from_secs(540);
    let mut last_size_check = Instant::now();
    let mut offsets: std::collections::BTreeMap<(String, i32), i64> = Default::default();
    'outer: while let Some(msg) = rx.recv().await {
        let mut batch = WriteBatch::default();
        let mut waiters = Vec::new();
        match msg {
            WriterMsg::Batch(b) => batch = *b,
            WriterMsg::Flush(w) => waiters.push(w),
            WriterMsg::AlertsChanged => {
                committed.send_modify(|c| c.alerts_version += 1);
                continue;
            }
        }
        // Coalesce whatever else is queued: fewer, larger transactions under load.
        while batch.rows() < COALESCE_MAX_ROWS {
            match rx.try_recv() {
                Ok(WriterMsg::Batch(b)) => batch.absorb(*b),
                Ok(WriterMsg::Flush(w)) => {
                    waiters.push(w);
                    break;
                }
                Ok(WriterMsg::AlertsChanged) => committed.send_modify(|c| c.alerts_version += 1),
                Err(_) => break,
            }
        }
        batch.coalesce_snapshots();
        if !batch.is_empty() {
            let rows = batch.rows() as u64;
            let alerts_changed = !batch.alerts.is_empty()
                || !batch.acks.is_empty()
                || !batch.snoozes.is_empty()
                || !batch.reattribute.is_empty();
            let gaps = batch.gaps.len() as u64;
            // A failed commit is retried with backoff: dropping it would lose data, and the
            // offsets were not advanced, so nothing is half-applied. A permanent error is
            // published at once so the app shows it and `ingest` can stop.
            let mut attempt = 0u32;
            loop {
                match commit(&mut conn, &batch).await {
                    Ok(()) => break,
                    Err(e) => {
                        attempt += 1;
                        let permanent = is_permanent(&e);
                        // SQLite's own words ("database or disk is full"), not sqlx's wrapping.
                        let message = match &e {
                            sqlx::Error::Database(d) => d.message().to_string(),
                            other => other.to_string(),
                        };
                        if permanent {
                            error!(error = %message, attempt, "cache commit failed permanently; retrying until it is fixed or shut down");
                        } else {
                            warn!(error = %message, attempt, "cache commit failed; retrying");
                        }
                        committed.send_modify(|c| {
                            if permanent {
                                c.last_permanent = Some((message.clone(), now_ms()));
                            }
                            let since_ms = c.fault.as_ref().map_or_else(now_ms, |f| f.since_ms);
                            c.fault = Some(CacheFault {
                                message,
                                permanent,
                                since_ms,
                            });
                        });
                        let backoff = Duration::from_millis((100 * u64::from(attempt)).min(2000));
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = cancel.cancelled() => {
                                warn!("shutdown while the cache cannot be written: the last batch is not committed and will be read again on the next start");
                                break 'outer;
                            }
                        }
                    }
                }
            }
            for o in &batch.offsets {
                offsets.insert((o.topic.clone(), o.partition), o.next);
            }
            committed.send_modify(|c| {
                c.transactions += 1;
                c.alerts_version += u64::from(alerts_changed);
                c.rows += rows;
                c.gaps += gaps;
                c.fault = None;
                c.offsets = offsets
                    .iter()
                    .map(|((t, p), o)| (t.clone(), *p, *o))
                    .collect();
            });
        }
        for w in waiters {
            let _ = w.send(());
        }
        if last_housekeeping.elapsed() > Duration::from_secs(600) {
            last_housekeeping = Instant::now();
            last_size_check = Instant::now();
            if let Err(e) = housekeeping(&mut conn, &retention, now_ms()).await {
                warn!(error = %e, "cache housekeeping failed");
            }
        } else if last_size_check.elapsed() > Duration::from_secs(60) {
            last_size_check = Instant::now();
            if let Err(e) = enforce_size_cap(&mut conn, retention.max_size_bytes).await {
                warn!(error = %e, "cache size check failed");
            }
        }
    }
    debug!("cache writer stopped");
}

/// Writes one batch in one transaction.
#[tracing::instrument(level = "debug", err(level = "warn"), skip_all, fields(positions = b.positions.len(), statuses = b.statuses.len()))]
pub async fn commit(conn: &mut SqliteConnection, b: &WriteBatch) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin().await?;
    for chunk in b.positions.chunks(CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT OR IGNORE INTO positions (vehicle, ts, lat, lng, speed, heading, source, ktopic, kpartition, koffset) ",
        );
        q.push_values(chunk, |mut r, (p, o)| {
            r.push_bind(&p.vehicle)
                .push_bind(p.ts_ms)
                .push_bind(p.lat)
                .push_bind(p.lng)
                .push_bind(p.speed)
                .push_bind(p.heading)
                .push_bind(p.source.as_str())
                .push_bind(o.topic.as_deref())
                .push_bind(o.partition)
                .push_bind(o.offset);
        });
        q.build().persistent(true).execute(&mut *tx).await?;
    }
    for chunk in b.statuses.chunks(CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT OR IGNORE INTO status_samples (vehicle, ts, engine_on, doors_open, headlights_on, speed, fuel, battery, fields_json, ktopic, kpartition, koffset) ",
        );
        q.push_values(chunk, |mut r, (s, o)| {
            r.push_bind(&s.vehicle)
                .push_bind(s.ts_ms)
                .push_bind(s.known.engine_on)
                .push_bind(s.known.doors_open)
                .push_bind(s.known.headlights_on)
                .push_bind(s.known.speed)
                .push_bind(s.known.fuel)
                .push_bind(s.known.battery)
                .push_bind(&s.fields)
                .push_bind(o.topic.as_deref())
                .push_bind(o.partition)
                .push_bind(o.offset);
        });
        q.build().persistent(true).execute(&mut *tx).await?;
    }
    // Multi-row upserts: a snapshot of 20,000 vehicles is ~80 statements, not 20,000, so the
    // periodic flush does not stall the commits behind it (alert latency).
    for chunk in b.snapshots.chunks(CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO vehicles (id, first_seen, last_ts, last_lat, last_lng, last_speed, last_heading, last_source, status_json) ",
        );
        q.push_values(chunk, |mut r, s| {
            let p = s.position.as_ref();
            r.push_bind(&s.vehicle)
                .push_bind(s.first_seen)
                .push_bind(p.map(|p| p.ts_ms))
                .push_bind(p.map(|p| p.lat))
                .push_bind(p.map(|p| p.lng))
                .push_bind(p.and_then(|p| p.speed))
                .push_bind(p.and_then(|p| p.heading))
                .push_bind(p.map(|p| p.source.as_str()))
                .push_bind(&s.status_json);
        });
        q.push(
            " ON CONFLICT(id) DO UPDATE SET
               last_ts = COALESCE(excluded.last_ts, vehicles.last_ts),
               last_lat = COALESCE(excluded.last_lat, vehicles.last_lat),
               last_lng = COALESCE(excluded.last_lng, vehicles.last_lng),
               last_speed = COALESCE(excluded.last_speed, vehicles.last_speed),
               last_heading = COALESCE(excluded.last_heading, vehicles.last_heading),
               last_source = COALESCE(excluded.last_source, vehicles.last_source),
               status_json = COALESCE(excluded.status_json, vehicles.status_json)",
        );
        q.build().persistent(true).execute(&mut *tx).await?;
    }
    super::enrich::write_infos(&mut tx, b).await?;
    let moved = super::enrich::write_devices(&mut tx, b).await?;
    super::snooze::write(&mut tx, &b.snoozes).await?;
    for (a, origin) in &b.alerts {
        sqlx::query(
            "INSERT INTO alerts (id, vehicle, rule, severity, message, ts, state, origin, resolved_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT(id) DO UPDATE SET
               severity = excluded.severity, message = excluded.message,
               state = CASE WHEN excluded.state = 'resolved' THEN 'resolved' ELSE alerts.state END,
               resolved_ms = COALESCE(alerts.resolved_ms, excluded.resolved_ms)",
        )
        .bind(&a.id)
        .bind(&a.vehicle)
        .bind(&a.rule)
        .bind(a.severity.as_str())
        .bind(&a.message)
        .bind(a.ts_ms)
        .bind(a.state.as_str())
        .bind(origin.as_str())
        .bind(a.resolved_ms)
        .execute(&mut *tx)
        .await?;
        // An ack that overtook its alert is applied now.
        apply_ack_to_alert(&mut tx, &a.id).await?;
    }
    for k in &b.acks {
        record_ack(&mut tx, k).await?;
    }
    for q in &b.quarantine {
        let keep = |v: &Option<Vec<u8>>| {
            v.as_ref()
                .map(|v| v[..v.len().min(QUARANTINE_KEEP)].to_vec())
        };
        sqlx::query(
            "INSERT INTO quarantine (topic, kpartition, koffset, reason, detail, msg_key, raw, raw_len, received_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .bind(&q.topic)
        .bind(q.partition)
        .bind(q.offset)
        .bind(q.reason.as_str())
        .bind(&q.detail)
        .bind(keep(&q.key))
        .bind(keep(&q.raw))
        .bind(q.raw_len as i64)
        .bind(q.received_ms)
        .execute(&mut *tx)
        .await?;
    }
    for (topic, m, r) in &b.topic_deltas {
        sqlx::query(
            "INSERT INTO topic_counters (topic, messages, rejected) VALUES (?1, ?2, ?3)
             ON CONFLICT(topic) DO UPDATE SET messages = messages + excluded.messages, rejected = rejected + excluded.rejected",
        )
        .bind(topic)
        .bind(*m as i64)
        .bind(*r as i64)
        .execute(&mut *tx)
        .await?;
    }
    super::schema::write(&mut tx, &b.schema).await?;
    for (vehicle, state) in &b.rule_states {
        sqlx::query(
            "INSERT INTO rule_state (vehicle, state_json) VALUES (?1, ?2)
             ON CONFLICT(vehicle) DO UPDATE SET state_json = excluded.state_json",
        )
        .bind(vehicle)
        .bind(state)
        .execute(&mut *tx)
        .await?;
    }
    for g in &b.gaps {
        sqlx::query(
            "INSERT INTO gaps (topic, kpartition, from_offset, to_offset, reason, detail, detected_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(&g.topic)
        .bind(g.partition)
        .bind(g.from)
        .bind(g.to)
        .bind(g.reason)
        .bind(&g.detail)
        .bind(g.detected_ms)
        .execute(&mut *tx)
        .await?;
        if g.reason != "expired" {
            // A new incarnation of the partition numbers its messages from `to` again: the
            // old rows keep their data but give up their coordinates, so the unique
            // (topic, partition, offset) holds for the messages that reuse them.
            for table in ["positions", "status_samples"] {
                sqlx::query(&format!(
                    "UPDATE {table} SET koffset = NULL
                     WHERE ktopic = ?1 AND kpartition = ?2 AND koffset >= ?3"
                ))
                .bind(&g.topic)
                .bind(g.partition)
                .bind(g.to)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    for o in &b.offsets {
        // A mark without a fingerprint (a start offset, nothing consumed yet) keeps the one
        // stored only if the offset did not move.
        sqlx::query(
            "INSERT INTO offsets (topic, kpartition, next_offset, last_fp, cluster_id)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(topic, kpartition) DO UPDATE SET
               last_fp = CASE WHEN excluded.last_fp IS NOT NULL
                                OR excluded.next_offset != offsets.next_offset
                              THEN excluded.last_fp ELSE offsets.last_fp END,
               next_offset = excluded.next_offset,
               cluster_id = COALESCE(excluded.cluster_id, offsets.cluster_id)",
        )
        .bind(&o.topic)
        .bind(o.partition)
        .bind(o.next)
        .bind(o.fingerprint)
        .bind(&o.cluster_id)
        .execute(&mut *tx)
        .await?;
    }
    // Last: rows this batch wrote under a device id move with it.
    super::enrich::reattribute(&mut tx, b, &moved).await?;
    tx.commit().await
}

/// Copies the latest ack of an alert onto the alert row; an open alert becomes acknowledged,
/// a resolved one keeps its state but records who acknowledged it.
/// Keeps the latest ack per alert (an ack may arrive before its alert) and applies it to the
/// alert if the alert is known. Used for acks read from Kafka and acks made here alike.
pub(crate) async fn record_ack(
    tx: &mut SqliteConnection,
    k: &fleet_model::Ack,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO acks (alert_id, operator, note, ts) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(alert_id) DO UPDATE SET operator = excluded.operator, note = excluded.note, ts = excluded.ts
         WHERE excluded.ts >= acks.ts",
    )
    .bind(&k.alert_id)
    .bind(&k.operator)
    .bind(&k.note)
    .bind(k.ts)
    .execute(&mut *tx)
    .await?;
    apply_ack_to_alert(tx, &k.alert_id).await
}

async fn apply_ack_to_alert(tx: &mut SqliteConnection, alert_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE alerts SET
           state = CASE WHEN alerts.state = 'open' THEN 'acknowledged' ELSE alerts.state END,
           acked_by = k.operator, acked_ms = k.ts, ack_note = k.note
         FROM acks AS k WHERE k.alert_id = alerts.id AND alerts.id = ?1",
    )
    .bind(alert_id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
