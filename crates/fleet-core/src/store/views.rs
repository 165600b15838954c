//! Reads for the app and the rule engine: trails, the quarantine list, the alert feed, and
//! the rule state restored after a restart.

use super::read::parse_alert;
use super::{Store, StoreError};
use fleet_model::{Alert, AlertFilter, AlertGroup, AlertState, Severity};
use sqlx::{QueryBuilder, Row, Sqlite};

impl Store {
    /// A vehicle's history since `from_ms`, oldest first, at most `limit` points (the newest).
    pub async fn trail(
        &self,
        vehicle: &str,
        from_ms: i64,
        limit: i64,
    ) -> Result<Vec<fleet_model::TrailPoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT lat, lng, ts FROM (SELECT lat, lng, ts FROM positions WHERE vehicle = ?1 AND ts >= ?2 ORDER BY ts DESC LIMIT ?3) ORDER BY ts",
        )
        .bind(vehicle)
        .bind(from_ms)
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| fleet_model::TrailPoint {
                lat: r.get("lat"),
                lng: r.get("lng"),
                ts_ms: r.get("ts"),
            })
            .collect())
    }

    /// The newest quarantined messages.
    pub async fn quarantine(
        &self,
        limit: i64,
    ) -> Result<Vec<fleet_model::QuarantineEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT topic, kpartition, koffset, reason, detail, raw, received_ms FROM quarantine ORDER BY id DESC LIMIT ?1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| {
                let raw: Option<Vec<u8>> = r.get("raw");
                let preview = raw
                    .map(|b| String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned())
                    .unwrap_or_default();
                fleet_model::QuarantineEntry {
                    topic: r.get("topic"),
                    partition: r.get("kpartition"),
                    offset: r.get("koffset"),
                    reason: r.get("reason"),
                    detail: r.get("detail"),
                    preview,
                    received_ms: r.get("received_ms"),
                }
            })
            .collect())
    }
}

impl Store {
    /// Rule alerts not yet resolved (the rule engine reloads them after a restart).
    pub async fn open_rule_alerts(&self) -> Result<Vec<Alert>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM alerts WHERE origin = 'rule' AND state != 'resolved'")
                .fetch_all(self.pool())
                .await
                .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(parse_alert).collect())
    }

    /// Vehicles with an alert that is not resolved (any origin).
    pub async fn alerting_vehicles(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT DISTINCT vehicle FROM alerts WHERE state != 'resolved'")
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.err(e))
    }

    /// Persisted rule state per vehicle (JSON, see `rules::Persisted`).
    pub async fn rule_states(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT vehicle, state_json FROM rule_state")
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| (r.get("vehicle"), r.get("state_json")))
            .collect())
    }
}

/// Alerts with their vehicle's plate (SPEC §8: the feed and notifications name the car).
const WITH_PLATE: &str = "SELECT alerts.*, vehicles.plate AS plate FROM alerts
     LEFT JOIN vehicles ON vehicles.id = alerts.vehicle";

/// The feed's vehicle filter: the id or the plate contains the text (as the vehicle search
/// does). The query must join `vehicles`.
fn push_vehicle_filter(q: &mut QueryBuilder<'_, Sqlite>, filter: &AlertFilter) {
    if let Some(v) = filter.vehicle.as_deref().filter(|v| !v.is_empty()) {
        q.push(" AND (instr(lower(alerts.vehicle), ")
            .push_bind(v.to_lowercase())
            .push(") > 0 OR instr(lower(COALESCE(vehicles.plate, '')), ")
            .push_bind(v.to_lowercase())
            .push(") > 0)");
    }
}

/// What the alert feed shows.
#[derive(Debug, Clone, Default)]
pub struct AlertFeed {
    /// Open first, then acknowledged, then resolved; newest first within each.
    pub alerts: Vec<Alert>,
    /// Open (unacknowledged) alerts in total.
    pub open: u64,
    /// Vehicles with an open alert (drawn as alerting).
    pub alerting: Vec<String>,
    /// Open alerts per rule through the filter's group, vehicle and severity, newest rule
    /// first (snoozed ones left out).
    pub groups: Vec<AlertGroup>,
    /// Snoozes running now.
    pub snoozes: Vec<fleet_model::Snooze>,
}

impl Store {
    /// The alert feed through `filter`: up to `limit` alerts, each state read through the
    /// (state, ts) index so the cost does not grow with the history of resolved alerts. The
    /// open count is the filter's group's (else the fleet's), whatever the other filters; the
    /// alerting vehicles are the whole fleet's.
    pub async fn feed(&self, filter: &AlertFilter, limit: i64) -> Result<AlertFeed, StoreError> {
        let now = super::now_ms();
        let mut alerts = Vec::new();
        let states = match filter.state {
            Some(s) => vec![s],
            None => vec![
                AlertState::Open,
                AlertState::Acknowledged,
                AlertState::Resolved,
            ],
        };
        for state in states {
            let left = limit - alerts.len() as i64;
            if left <= 0 {
                break;
            }
            let mut q = QueryBuilder::<Sqlite>::new(WITH_PLATE);
            q.push(" WHERE state = ").push_bind(state.as_str());
            if state == AlertState::Open {
                q.push(" AND ");
                super::snooze::push_not_snoozed(&mut q, now);
            }
            if let Some(s) = filter.severity {
                q.push(" AND severity = ").push_bind(s.as_str());
            }
            if let Some(r) = &filter.rule {
                q.push(" AND rule = ").push_bind(r.clone());
            }
            push_vehicle_filter(&mut q, filter);
            if let Some(g) = filter.group.as_deref().filter(|g| !g.is_empty()) {
                q.push(" AND vehicles.grp = ").push_bind(g.to_string());
            }
            q.push(" ORDER BY alerts.ts DESC LIMIT ").push_bind(left);
            let rows = q
                .build()
                .fetch_all(self.pool())
                .await
                .map_err(|e| self.err(e))?;
            alerts.extend(rows.iter().map(parse_alert));
        }
        // Snoozed alerts are not counted as waiting for an operator; with a group chosen,
        // the count is the group's (the counters bar shows one group's counts, SPEC §8).
        let group = filter.group.as_deref().filter(|g| !g.is_empty());
        let open: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM alerts LEFT JOIN vehicles ON vehicles.id = alerts.vehicle
             WHERE state = 'open' AND (?2 IS NULL OR vehicles.grp = ?2) AND {}",
            super::snooze::not_snoozed("?1")
        ))
        .bind(now)
        .bind(group)
        .fetch_one(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        let alerting =
            sqlx::query_scalar("SELECT DISTINCT vehicle FROM alerts WHERE state = 'open'")
                .fetch_all(self.pool())
                .await
                .map_err(|e| self.err(e))?;
        Ok(AlertFeed {
            alerts,
            open: open as u64,
            alerting,
            groups: self.open_groups(filter).await?,
            snoozes: self.active_snoozes(now).await?,
        })
    }

    /// Open alerts per rule (see [`AlertFeed::groups`]); the open alerts are read through the
    /// (state, ts) index, so this costs what the open alerts number, not the history.
    pub async fn open_groups(&self, filter: &AlertFilter) -> Result<Vec<AlertGroup>, StoreError> {
        if filter.state.is_some_and(|s| s != AlertState::Open) {
            return Ok(Vec::new());
        }
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT alerts.rule AS rule, COUNT(*) AS n, MAX(alerts.ts) AS newest,
                    MAX(CASE alerts.severity WHEN 'critical' THEN 2 WHEN 'warning' THEN 1 ELSE 0 END) AS sev
             FROM alerts LEFT JOIN vehicles ON vehicles.id = alerts.vehicle
             WHERE alerts.state = 'open' AND ",
        );
        super::snooze::push_not_snoozed(&mut q, super::now_ms());
        if let Some(s) = filter.severity {
            q.push(" AND alerts.severity = ").push_bind(s.as_str());
        }
        if let Some(r) = &filter.rule {
            q.push(" AND alerts.rule = ").push_bind(r.clone());
        }
        if let Some(g) = filter.group.as_deref().filter(|g| !g.is_empty()) {
            q.push(" AND vehicles.grp = ").push_bind(g.to_string());
        }
        push_vehicle_filter(&mut q, filter);
        q.push(" GROUP BY alerts.rule ORDER BY newest DESC");
        let rows = q
            .build()
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| AlertGroup {
                rule: r.get("rule"),
                open: r.get::<i64, _>("n").max(0) as u64,
                newest_ms: r.get("newest"),
                severity: match r.get::<i64, _>("sev") {
                    2 => Severity::Critical,
                    1 => Severity::Warning,
                    _ => Severity::Info,
                },
            })
            .collect())
    }

    /// Every rule name that has raised an alert here (the feed's rule filter offers these).
    pub async fn alert_rules(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT DISTINCT rule FROM alerts ORDER BY rule")
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.err(e))
    }

    /// Open alerts at or above `min` severity, oldest first (desktop notifications and
    /// escalation watch these).
    pub async fn open_alerts_at_least(&self, min: Severity) -> Result<Vec<Alert>, StoreError> {
        let mut q = QueryBuilder::<Sqlite>::new(WITH_PLATE);
        // Snoozed alerts notify nobody.
        q.push(" WHERE state = 'open' AND ");
        super::snooze::push_not_snoozed(&mut q, super::now_ms());
        q.push(" AND severity IN (");
        let mut list = q.separated(", ");
        for s in [Severity::Info, Severity::Warning, Severity::Critical] {
            if s >= min {
                list.push_bind(s.as_str());
            }
        }
        q.push(") ORDER BY alerts.ts");
        let rows = q
            .build()
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(parse_alert).collect())
    }
}
