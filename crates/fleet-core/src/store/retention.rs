//! Keeping the cache bounded (SPEC §2, §7): retention on every table, downsampling of old
//! history, a cap on the file size, and giving the space back.
//!
//! Runs inside the single writer (no second writer to contend with), but in chunks of
//! [`CHUNK_ROWS`] over time-indexed columns, so one pass never holds the database for long.

use crate::config::HistoryConfig;
use sqlx::sqlite::SqliteConnection;
use std::time::Instant;
use tracing::info;

/// Rows deleted per statement.
const CHUNK_ROWS: i64 = 10_000;

/// What the cache may keep.
#[derive(Debug, Clone)]
pub struct Retention {
    /// History policy (retention and downsampling).
    pub history: HistoryConfig,
    /// `store.max_size_mb` in bytes.
    pub max_size_bytes: u64,
}

/// Deletes rows of `table` matching `cond` (one `?1` parameter) in chunks; returns the count.
async fn delete_chunked(
    conn: &mut SqliteConnection,
    table: &str,
    cond: &str,
    param: i64,
) -> Result<u64, sqlx::Error> {
    let sql = format!(
        "DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {cond} LIMIT {CHUNK_ROWS})"
    );
    let mut total = 0;
    loop {
        let n = sqlx::query(&sql)
            .bind(param)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        total += n;
        if n < CHUNK_ROWS as u64 {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

/// Retention on every table, downsampling, the size cap, and space given back.
pub async fn housekeeping(
    conn: &mut SqliteConnection,
    r: &Retention,
    now: i64,
) -> Result<(), sqlx::Error> {
    let started = Instant::now();
    let h = &r.history;
    let cutoff = now - (h.retention_hours * 3_600_000.0) as i64;
    let mut pruned = 0;
    for (table, cond) in [
        ("positions", "ts < ?1"),
        ("status_samples", "ts < ?1"),
        ("quarantine", "received_ms < ?1"),
        ("gaps", "detected_ms < ?1"),
        // Open alerts stay until they resolve, however old; the rest follow retention.
        ("alerts", "state != 'open' AND ts < ?1"),
        // Vehicles unseen for the whole retention period.
        ("vehicles", "COALESCE(last_ts, first_seen, 0) < ?1"),
    ] {
        pruned += delete_chunked(conn, table, cond, cutoff).await?;
    }
    // WITHOUT ROWID tables, small: one statement each.
    pruned += sqlx::query("DELETE FROM acks WHERE ts < ?1")
        .bind(cutoff)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    // A device never mapped whose vehicle row (its own id) has gone with retention.
    pruned += sqlx::query(
        "DELETE FROM devices WHERE vehicle IS NULL AND updated_ms < ?1
           AND device NOT IN (SELECT id FROM vehicles)",
    )
    .bind(cutoff)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    pruned += sqlx::query("DELETE FROM rule_state WHERE vehicle NOT IN (SELECT id FROM vehicles)")
        .execute(&mut *conn)
        .await?
        .rows_affected();
    let thin_before = now - (h.downsample_after_hours * 3_600_000.0) as i64;
    let bucket = ((h.downsample_interval_s * 1000.0) as i64).max(1);
    let mut thinned = 0;
    for table in ["positions", "status_samples"] {
        thinned += sqlx::query(&format!(
            "DELETE FROM {table} WHERE ts < ?1 AND ts >= ?3 AND rowid NOT IN (
               SELECT MIN(rowid) FROM {table} WHERE ts < ?1 AND ts >= ?3 GROUP BY vehicle, ts / ?2)"
        ))
        .bind(thin_before)
        .bind(bucket)
        .bind(cutoff)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    }
    let capped = enforce_size_cap(conn, r.max_size_bytes).await?;
    give_space_back(conn).await?;
    if pruned + thinned + capped > 0 {
        info!(
            pruned,
            thinned,
            capped,
            ms = started.elapsed().as_millis() as u64,
            "cache housekeeping"
        );
    }
    Ok(())
}

/// Bytes the database's pages hold (free pages excluded).
async fn used_bytes(conn: &mut SqliteConnection) -> Result<u64, sqlx::Error> {
    let (pages, free, size): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT page_count FROM pragma_page_count()),
                (SELECT freelist_count FROM pragma_freelist_count()),
                (SELECT page_size FROM pragma_page_size())",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(((pages - free).max(0) * size) as u64)
}

/// `store.max_size_mb`: while the data is over the cap, the oldest history goes first (5 %
/// of positions and status samples at a time). Returns rows deleted.
pub async fn enforce_size_cap(conn: &mut SqliteConnection, max: u64) -> Result<u64, sqlx::Error> {
    let mut deleted = 0;
    while used_bytes(conn).await? > max {
        let mut round = 0;
        for table in ["positions", "status_samples"] {
            let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(&mut *conn)
                .await?;
            let take = (n / 20).max(1000);
            // The ts of the take-th oldest row: everything up to it goes.
            let edge: Option<i64> = sqlx::query_scalar(&format!(
                "SELECT ts FROM {table} ORDER BY ts LIMIT 1 OFFSET ?1"
            ))
            .bind(take.min(n.max(1) - 1))
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(edge) = edge {
                round += delete_chunked(conn, table, "ts <= ?1", edge).await?;
            }
        }
        deleted += round;
        if round == 0 {
            break; // nothing left to delete: the rest is not history
        }
        give_space_back(conn).await?;
    }
    if deleted > 0 {
        info!(
            deleted,
            max_bytes = max,
            "cache over its size cap: oldest history dropped"
        );
    }
    Ok(deleted)
}

/// Returns free pages to the file system (incremental vacuum, for caches created with it)
/// and truncates the WAL.
async fn give_space_back(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    sqlx::query("PRAGMA incremental_vacuum")
        .execute(&mut *conn)
        .await?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut *conn)
        .await?;
    Ok(())
}
