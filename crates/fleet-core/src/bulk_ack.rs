//! Acknowledging many alerts at once (issue 12 §8): a rule's whole group, or a selection, with
//! one note. At 20,000 vehicles a bad minute raises hundreds of alerts of one rule; one click
//! must clear them, on every desk, without one transaction per alert.
//!
//! Each alert still gets its own ack (cache row, outbox row, message on the ack topic), so
//! other desks apply them exactly as single acks; only the local write is batched.

use crate::acks::AckError;
use crate::store::{Store, now_ms};
use fleet_model::ui::cap_ack_note;
use fleet_model::{Ack, AlertFilter};
use sqlx::{QueryBuilder, Sqlite};

/// Most alerts one bulk acknowledgement takes (a runaway click must not write for minutes).
pub const BULK_MAX: usize = 10_000;

impl Store {
    /// Ids of open alerts through `filter` (its rule, group and vehicle; its state is ignored:
    /// only open alerts can be acknowledged), newest first, at most [`BULK_MAX`].
    pub async fn open_alert_ids(&self, filter: &AlertFilter) -> Result<Vec<String>, AckError> {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT alerts.id FROM alerts LEFT JOIN vehicles ON vehicles.id = alerts.vehicle
             WHERE alerts.state = 'open'",
        );
        if let Some(r) = &filter.rule {
            q.push(" AND alerts.rule = ").push_bind(r.clone());
        }
        if let Some(s) = filter.severity {
            q.push(" AND alerts.severity = ").push_bind(s.as_str());
        }
        if let Some(g) = filter.group.as_deref().filter(|g| !g.is_empty()) {
            q.push(" AND vehicles.grp = ").push_bind(g.to_string());
        }
        if let Some(v) = filter.vehicle.as_deref().filter(|v| !v.is_empty()) {
            q.push(" AND instr(lower(alerts.vehicle), ")
                .push_bind(v.to_lowercase())
                .push(") > 0");
        }
        q.push(" ORDER BY alerts.ts DESC LIMIT ")
            .push_bind(BULK_MAX as i64);
        Ok(q.build_query_scalar()
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.err(e))?)
    }

    /// Records one acknowledgement per open alert of `ids` by `operator` with `note`, all in
    /// one transaction with their outbox rows. Alerts that are unknown or no longer open are
    /// skipped. Returns how many were acknowledged.
    pub async fn record_local_acks(
        &self,
        ids: &[String],
        operator: &str,
        note: &str,
    ) -> Result<u64, AckError> {
        let note = cap_ack_note(note);
        let ts = now_ms();
        let mut tx = self
            .pool()
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| self.err(e))?;
        let mut n = 0;
        for id in ids.iter().take(BULK_MAX) {
            let open: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM alerts WHERE id = ?1 AND state = 'open'")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| self.err(e))?;
            if open.is_none() {
                continue;
            }
            let ack = Ack {
                alert_id: id.clone(),
                operator: operator.to_string(),
                note: note.to_string(),
                ts,
            };
            crate::store::writer::record_ack(&mut tx, &ack)
                .await
                .map_err(|e| self.err(e))?;
            sqlx::query("INSERT INTO outbox (alert_id, payload, created_ms) VALUES (?1, ?2, ?3)")
                .bind(id)
                .bind(serde_json::to_string(&ack).unwrap_or_default())
                .bind(ts)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
            n += 1;
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::tests::{alert, fresh_store};
    use crate::store::{AlertOrigin, WriteBatch};
    use fleet_model::{AlertFilter, AlertState};

    #[tokio::test]
    async fn a_rules_open_alerts_are_acknowledged_in_one_go_with_one_note() {
        let (_dir, store, w, _task) = fresh_store().await;
        let mut alerts = Vec::new();
        for i in 0..30 {
            let mut a = alert(&format!("hb-{i}"));
            a.rule = "harsh_braking".into();
            a.vehicle = format!("car-{i}");
            alerts.push((a, AlertOrigin::Rule));
        }
        alerts.push((alert("crash-1"), AlertOrigin::Rule));
        w.write(WriteBatch {
            alerts,
            ..Default::default()
        })
        .await
        .unwrap();
        w.flush().await.unwrap();
        let ids = store
            .open_alert_ids(&AlertFilter {
                rule: Some("harsh_braking".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(ids.len(), 30);
        let n = store
            .record_local_acks(&ids, "alice", "known hotspot")
            .await
            .unwrap();
        assert_eq!(n, 30);
        assert_eq!(
            store.outbox_len().await.unwrap(),
            30,
            "each goes to the other desks"
        );
        let again = store.record_local_acks(&ids, "bob", "x").await.unwrap();
        assert_eq!(again, 0, "already acknowledged");
        let hb = store.alert("hb-7").await.unwrap().unwrap();
        assert_eq!(hb.state, AlertState::Acknowledged);
        assert_eq!(hb.ack_note.as_deref(), Some("known hotspot"));
        let crash = store.alert("crash-1").await.unwrap().unwrap();
        assert_eq!(crash.state, AlertState::Open, "another rule is untouched");
    }
}
