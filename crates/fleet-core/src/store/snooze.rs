//! Snoozes in the cache (issue 12 §8): recorded from the ack topic (every desk) and made
//! here (with an outbox row, published like an acknowledgement).

use super::{Store, StoreError, now_ms};
use fleet_model::{Snooze, SnoozeKind};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

/// The condition an open alert's row must meet to be shown and notified: no snooze of its
/// rule or vehicle is running at now (the SQL between these two halves).
const NOT_SNOOZED_HEAD: &str = "NOT EXISTS (SELECT 1 FROM snoozes s WHERE s.until_ms > ";
const NOT_SNOOZED_TAIL: &str = " AND ((s.kind = 'rule' AND s.target = alerts.rule)
      OR (s.kind = 'vehicle' AND s.target = alerts.vehicle)))";

/// The not-snoozed condition with `now` as SQL (a placeholder such as `?1`).
pub(super) fn not_snoozed(now: &str) -> String {
    format!("{NOT_SNOOZED_HEAD}{now}{NOT_SNOOZED_TAIL}")
}

/// The not-snoozed condition pushed onto a query being built, binding `now`.
pub(super) fn push_not_snoozed(q: &mut QueryBuilder<'_, Sqlite>, now: i64) {
    q.push(NOT_SNOOZED_HEAD)
        .push_bind(now)
        .push(NOT_SNOOZED_TAIL);
}

/// Records snoozes read from Kafka (or made here); the newest of a target wins.
pub(super) async fn write(
    tx: &mut SqliteConnection,
    snoozes: &[Snooze],
) -> Result<(), sqlx::Error> {
    for z in snoozes {
        sqlx::query(
            "INSERT INTO snoozes (kind, target, until_ms, operator, ts) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(kind, target) DO UPDATE SET until_ms = excluded.until_ms,
               operator = excluded.operator, ts = excluded.ts
             WHERE excluded.ts >= snoozes.ts",
        )
        .bind(z.snooze.as_str())
        .bind(&z.target)
        .bind(z.until)
        .bind(&z.operator)
        .bind(z.ts)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Records a snooze made here and queues it for the ack topic, atomically.
    pub async fn record_local_snooze(&self, z: &Snooze) -> Result<(), StoreError> {
        let mut tx = self
            .pool()
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| self.err(e))?;
        write(&mut tx, std::slice::from_ref(z))
            .await
            .map_err(|e| self.err(e))?;
        sqlx::query("INSERT INTO outbox (alert_id, payload, created_ms) VALUES (?1, ?2, ?3)")
            .bind(z.key())
            .bind(serde_json::to_string(z).unwrap_or_default())
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))
    }

    /// Snoozes still running at `now`, soonest ending first.
    pub async fn active_snoozes(&self, now: i64) -> Result<Vec<Snooze>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, target, until_ms, operator, ts FROM snoozes WHERE until_ms > ?1
             ORDER BY until_ms",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(Snooze {
                    snooze: SnoozeKind::parse(r.get::<&str, _>("kind"))?,
                    target: r.get("target"),
                    until: r.get("until_ms"),
                    operator: r.get("operator"),
                    ts: r.get("ts"),
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{alert, fresh_store};
    use super::super::{AlertOrigin, WriteBatch, now_ms};
    use fleet_model::{AlertFilter, Severity, Snooze, SnoozeKind};

    fn snooze(kind: SnoozeKind, target: &str, until: i64, ts: i64) -> Snooze {
        Snooze {
            snooze: kind,
            target: target.into(),
            until,
            operator: "olga".into(),
            ts,
        }
    }

    #[tokio::test]
    async fn a_snoozed_rule_or_vehicle_leaves_the_feed_and_the_notifications_until_it_ends() {
        let (_dir, store, w, _task) = fresh_store().await;
        let mut hb = alert("hb-1");
        hb.rule = "harsh_braking".into();
        hb.severity = Severity::Warning;
        let mut other = alert("c-2");
        other.vehicle = "car-2".into();
        w.write(WriteBatch {
            alerts: vec![
                (alert("c-1"), AlertOrigin::Rule),
                (hb, AlertOrigin::Rule),
                (other, AlertOrigin::Rule),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
        w.flush().await.unwrap();
        let now = now_ms();
        let ids = |f: &super::super::views::AlertFeed| {
            let mut v: Vec<String> = f.alerts.iter().map(|a| a.id.clone()).collect();
            v.sort();
            v
        };
        let all = store.feed(&AlertFilter::default(), 10).await.unwrap();
        assert_eq!(all.open, 3);
        // A rule snooze (read from Kafka) and a vehicle snooze (made here).
        w.write(WriteBatch {
            snoozes: vec![snooze(SnoozeKind::Rule, "harsh_braking", now + 60_000, now)],
            ..Default::default()
        })
        .await
        .unwrap();
        w.flush().await.unwrap();
        store
            .record_local_snooze(&snooze(SnoozeKind::Vehicle, "car-2", now + 60_000, now))
            .await
            .unwrap();
        assert_eq!(
            store.outbox_len().await.unwrap(),
            1,
            "published like an ack"
        );
        let feed = store.feed(&AlertFilter::default(), 10).await.unwrap();
        assert_eq!(ids(&feed), vec!["c-1".to_string()]);
        assert_eq!(feed.open, 1);
        assert_eq!(feed.groups.len(), 1);
        assert_eq!(feed.snoozes.len(), 2);
        let notify = store.open_alerts_at_least(Severity::Info).await.unwrap();
        assert_eq!(notify.len(), 1, "{notify:?}");
        // An older snooze of the same rule does not override the newer one; a newer one that
        // ends now lifts it.
        w.write(WriteBatch {
            snoozes: vec![
                snooze(SnoozeKind::Rule, "harsh_braking", now + 999_000, now - 5),
                snooze(SnoozeKind::Rule, "harsh_braking", now, now + 1),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
        w.flush().await.unwrap();
        let feed = store.feed(&AlertFilter::default(), 10).await.unwrap();
        assert_eq!(ids(&feed), vec!["c-1".to_string(), "hb-1".to_string()]);
        assert_eq!(store.active_snoozes(now).await.unwrap().len(), 1);
    }
}
