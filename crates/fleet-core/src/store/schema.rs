//! The `schema_fields` table: the schema registry's rows (SPEC §8, [`crate::schema`]).

use super::{Store, StoreError};
use crate::schema::{JsonType, SchemaRow};
use sqlx::{Row, SqliteConnection};

/// Writes registry rows inside the batch's transaction. Rows carry absolute values (the
/// engine's registry is seeded from this table and is its only writer), so a later row for
/// the same path simply replaces an earlier one.
pub(super) async fn write(
    tx: &mut SqliteConnection,
    rows: &[SchemaRow],
) -> Result<(), sqlx::Error> {
    for r in rows {
        sqlx::query(
            "INSERT INTO schema_fields (topic, path, type, first_seen, last_seen, count, example)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(topic, path) DO UPDATE SET type = excluded.type,
               first_seen = MIN(first_seen, excluded.first_seen), last_seen = excluded.last_seen,
               count = excluded.count, example = excluded.example",
        )
        .bind(&r.topic)
        .bind(&r.path)
        .bind(r.ty.as_str())
        .bind(r.first_seen)
        .bind(r.last_seen)
        .bind(r.count as i64)
        .bind(&r.example)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

impl Store {
    /// The registry, by topic and path: all of it, one topic's, or only the paths first seen
    /// at or after `since` (ms).
    pub async fn schema_fields(
        &self,
        topic: Option<&str>,
        since: Option<i64>,
    ) -> Result<Vec<SchemaRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT topic, path, type, first_seen, last_seen, count, example FROM schema_fields
             WHERE (?1 IS NULL OR topic = ?1) AND (?2 IS NULL OR first_seen >= ?2)
             ORDER BY topic, path",
        )
        .bind(topic)
        .bind(since)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| SchemaRow {
                topic: r.get("topic"),
                path: r.get("path"),
                ty: JsonType::parse(r.get::<&str, _>("type")),
                first_seen: r.get("first_seen"),
                last_seen: r.get("last_seen"),
                count: r.get::<i64, _>("count").max(0) as u64,
                example: r.get("example"),
            })
            .collect())
    }
}
