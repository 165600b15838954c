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
}
