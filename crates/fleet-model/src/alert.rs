//! Alerts and acknowledgements (SPEC §6).

use serde::{Deserialize, Serialize};

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// For the record.
    Info,
    /// Someone should look.
    Warning,
    /// Someone must act now.
    Critical,
}

impl Severity {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
    /// Parses the lower-case name (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Some(Severity::Info),
            "warning" | "warn" => Some(Severity::Warning),
            "critical" | "crit" => Some(Severity::Critical),
            _ => None,
        }
    }
}

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// Raised, nobody has acknowledged it.
    Open,
    /// An operator has taken it.
    Acknowledged,
    /// The condition cleared (or upstream resolved it).
    Resolved,
}

impl AlertState {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Open => "open",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Resolved => "resolved",
        }
    }
    /// Parses the lower-case name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(AlertState::Open),
            "acknowledged" => Some(AlertState::Acknowledged),
            "resolved" => Some(AlertState::Resolved),
            _ => None,
        }
    }
}

/// One alert as every desktop sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Deterministic id (see [`alert_id`]) or the upstream id.
    pub id: String,
    /// The vehicle concerned.
    pub vehicle: String,
    /// Rule name (`headlights_on`, `low_battery`, or the upstream rule).
    pub rule: String,
    /// Severity.
    pub severity: Severity,
    /// Human-readable text.
    pub message: String,
    /// When it was raised (ms epoch).
    pub ts_ms: i64,
    /// Current state.
    pub state: AlertState,
    /// Who acknowledged it.
    pub acked_by: Option<String>,
    /// When it was acknowledged.
    pub acked_ms: Option<i64>,
    /// The operator's note.
    pub ack_note: Option<String>,
    /// When it was resolved.
    pub resolved_ms: Option<i64>,
    /// The vehicle's plate, when its metadata is known (SPEC §8: shown next to the id). Not
    /// part of the alert: filled in when alerts are read for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plate: Option<String>,
}

impl Alert {
    /// A newly raised alert: open, not acknowledged, not resolved.
    pub fn open(
        id: String,
        vehicle: String,
        rule: &str,
        severity: Severity,
        message: String,
        ts_ms: i64,
    ) -> Self {
        Alert {
            id,
            vehicle,
            rule: rule.to_string(),
            severity,
            message,
            ts_ms,
            state: AlertState::Open,
            acked_by: None,
            acked_ms: None,
            ack_note: None,
            resolved_ms: None,
            plate: None,
        }
    }

    /// `vehicle (plate)` when the plate is known, else the id: how people name the car.
    pub fn vehicle_label(&self) -> String {
        match self.plate.as_deref() {
            Some(p) if !p.is_empty() => format!("{} ({p})", self.vehicle),
            _ => self.vehicle.clone(),
        }
    }

    /// Whether this alert is escalated at `now_ms`: critical, still open, and raised at
    /// least `escalate_after_ms` ago. The desktop notifier and the feed's highlight both ask
    /// this, so they always agree.
    pub fn is_escalated(&self, escalate_after_ms: i64, now_ms: i64) -> bool {
        self.severity == Severity::Critical
            && self.state == AlertState::Open
            && now_ms - self.ts_ms >= escalate_after_ms
    }
}

/// One rule's open alerts in the feed (issue 12: the feed grouped by rule, so a flood of one
/// rule is one line with a count, acknowledged in one go).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertGroup {
    /// The rule.
    pub rule: String,
    /// Its open alerts through the feed's filter.
    pub open: u64,
    /// When the newest of them was raised (ms).
    pub newest_ms: i64,
    /// The highest severity among them.
    pub severity: Severity,
}

/// Which alerts the feed shows; every field narrows it, `None`/empty = any.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertFilter {
    /// Only this severity.
    pub severity: Option<Severity>,
    /// Only this rule (`headlights_on`, an upstream rule name, …).
    pub rule: Option<String>,
    /// Only this state.
    pub state: Option<AlertState>,
    /// Only vehicles whose id contains this text (case-insensitive).
    pub vehicle: Option<String>,
    /// Only vehicles of this group (SPEC §8 `group-filter`); applied by the cache, which
    /// knows each vehicle's group ([`AlertFilter::matches`] cannot).
    pub group: Option<String>,
}

impl AlertFilter {
    /// True when the filter lets every alert through.
    pub fn is_empty(&self) -> bool {
        self.severity.is_none()
            && self.rule.is_none()
            && self.state.is_none()
            && self.vehicle.as_deref().is_none_or(str::is_empty)
            && self.group.as_deref().is_none_or(str::is_empty)
    }

    /// Whether `a` passes (the cache applies the same test in SQL; this one is for tests and
    /// for alerts that are already in memory).
    pub fn matches(&self, a: &Alert) -> bool {
        self.severity.is_none_or(|s| a.severity == s)
            && self.rule.as_deref().is_none_or(|r| a.rule == r)
            && self.state.is_none_or(|s| a.state == s)
            && self
                .vehicle
                .as_deref()
                .is_none_or(|v| a.vehicle.to_lowercase().contains(&v.to_lowercase()))
    }
}

/// An acknowledgement, as published on `fleet.alert-acks.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    /// The alert acknowledged.
    pub alert_id: String,
    /// Who acknowledged it.
    pub operator: String,
    /// Optional note.
    #[serde(default)]
    pub note: String,
    /// When (ms epoch).
    pub ts: i64,
}

/// What a snooze silences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnoozeKind {
    /// Every alert of a rule.
    Rule,
    /// Every alert of a vehicle.
    Vehicle,
}

impl SnoozeKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SnoozeKind::Rule => "rule",
            SnoozeKind::Vehicle => "vehicle",
        }
    }

    /// The inverse of [`SnoozeKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rule" => Some(SnoozeKind::Rule),
            "vehicle" => Some(SnoozeKind::Vehicle),
            _ => None,
        }
    }
}

/// A snooze (issue 12 §8): a rule's or a vehicle's open alerts leave the feed and raise no
/// notification until `until`. Published on the ack topic like an acknowledgement (keyed
/// [`Snooze::key`]), so every desk snoozes alike; `until <= ts` lifts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snooze {
    /// A rule or a vehicle.
    pub snooze: SnoozeKind,
    /// The rule name or the vehicle id.
    pub target: String,
    /// Until when (ms epoch).
    pub until: i64,
    /// Who snoozed it.
    pub operator: String,
    /// When (ms epoch); the newest snooze of a target wins.
    pub ts: i64,
}

impl Snooze {
    /// The Kafka key: one per target, so a compacted ack topic keeps the latest.
    pub fn key(&self) -> String {
        format!("snooze:{}:{}", self.snooze.as_str(), self.target)
    }
}

/// Deterministic alert id: the same rule, vehicle and triggering event time give the same id
/// on every desktop, so acknowledgements from one desktop find the alert on all others.
///
/// FNV-1a (64 bit) over the three parts; stable across platforms and releases.
pub fn alert_id(rule: &str, vehicle: &str, opened_ts_ms: i64) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(rule.as_bytes());
    eat(&[0]);
    eat(vehicle.as_bytes());
    eat(&[0]);
    eat(&opened_ts_ms.to_le_bytes());
    format!("{rule}-{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_ids_are_deterministic_and_distinct() {
        let a = alert_id("headlights_on", "car-1", 1_700_000_000_000);
        assert_eq!(a, alert_id("headlights_on", "car-1", 1_700_000_000_000));
        assert_ne!(a, alert_id("headlights_on", "car-2", 1_700_000_000_000));
        assert_ne!(a, alert_id("headlights_on", "car-1", 1_700_000_000_001));
        assert_ne!(a, alert_id("low_battery", "car-1", 1_700_000_000_000));
        assert!(a.starts_with("headlights_on-"));
    }

    fn alert(rule: &str, vehicle: &str, severity: Severity, state: AlertState) -> Alert {
        Alert {
            id: alert_id(rule, vehicle, 1),
            vehicle: vehicle.into(),
            rule: rule.into(),
            severity,
            message: String::new(),
            ts_ms: 1,
            state,
            acked_by: None,
            acked_ms: None,
            ack_note: None,
            resolved_ms: None,
            plate: None,
        }
    }

    #[test]
    fn filters_narrow_by_every_field() {
        let a = alert("overspeed", "Car-0042", Severity::Warning, AlertState::Open);
        assert!(AlertFilter::default().matches(&a));
        assert!(AlertFilter::default().is_empty());
        let f = |f: AlertFilter| f.matches(&a);
        assert!(f(AlertFilter {
            vehicle: Some("car-004".into()),
            ..Default::default()
        }));
        assert!(!f(AlertFilter {
            vehicle: Some("car-005".into()),
            ..Default::default()
        }));
        assert!(f(AlertFilter {
            severity: Some(Severity::Warning),
            ..Default::default()
        }));
        assert!(!f(AlertFilter {
            severity: Some(Severity::Critical),
            ..Default::default()
        }));
        assert!(!f(AlertFilter {
            rule: Some("low_fuel".into()),
            ..Default::default()
        }));
        assert!(!f(AlertFilter {
            state: Some(AlertState::Resolved),
            ..Default::default()
        }));
        assert!(f(AlertFilter {
            rule: Some("overspeed".into()),
            state: Some(AlertState::Open),
            ..Default::default()
        }));
        assert!(
            AlertFilter {
                vehicle: Some(String::new()),
                ..Default::default()
            }
            .is_empty()
        );
    }
}
