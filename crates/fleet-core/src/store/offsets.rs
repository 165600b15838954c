//! Where consumption resumes, and the gaps recorded when it could not resume where it
//! stopped (SPEC §7).

use super::{Store, StoreError};
use serde::Serialize;
use std::collections::HashMap;

/// A partition's cached position and the identity of the data it came from.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ResumePoint {
    /// Topic.
    pub topic: String,
    /// Partition.
    #[sqlx(rename = "kpartition")]
    pub partition: i32,
    /// Next offset to consume.
    #[sqlx(rename = "next_offset")]
    pub next: i64,
    /// Fingerprint of the message at `next - 1`.
    #[sqlx(rename = "last_fp")]
    pub fingerprint: Option<i64>,
    /// Cluster the offsets came from.
    pub cluster_id: Option<String>,
}

/// A recorded gap, as `fleetctl stats` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct GapInfo {
    /// Topic.
    pub topic: String,
    /// Partition.
    #[sqlx(rename = "kpartition")]
    pub partition: i32,
    /// First offset not read.
    #[sqlx(rename = "from_offset")]
    pub from: i64,
    /// Where reading resumed.
    #[sqlx(rename = "to_offset")]
    pub to: i64,
    /// Reason code.
    pub reason: String,
    /// One line for the operator.
    pub detail: String,
    /// When it was found (ms).
    #[sqlx(rename = "detected_ms")]
    pub ts: i64,
}

impl Store {
    /// Every partition's resume point, keyed by (topic, partition).
    pub async fn resume_points(&self) -> Result<HashMap<(String, i32), ResumePoint>, StoreError> {
        let rows: Vec<ResumePoint> = sqlx::query_as(
            "SELECT topic, kpartition, next_offset, last_fp, cluster_id FROM offsets",
        )
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|r| ((r.topic.clone(), r.partition), r))
            .collect())
    }

    /// How many gaps were recorded, and the newest `limit` of them.
    pub async fn gaps(&self, limit: i64) -> Result<(i64, Vec<GapInfo>), StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM gaps")
            .fetch_one(self.pool())
            .await
            .map_err(|e| self.err(e))?;
        let recent = sqlx::query_as(
            "SELECT topic, kpartition, from_offset, to_offset, reason, detail, detected_ms
             FROM gaps ORDER BY id DESC LIMIT ?1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok((count, recent))
    }
}
