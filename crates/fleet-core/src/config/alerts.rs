//! `[alerts]`: fleetdash's own rules on live telemetry (thresholds, durations, severities,
//! on/off) and geofences. Every rule has working defaults; `enabled = false` turns one off.

use fleet_model::Severity;
use serde::{Deserialize, Serialize};

fn yes() -> bool {
    true
}

/// `[alerts]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Master switch for fleetdash's own rules (upstream alerts are always shown).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// An unacknowledged critical alert escalates (notifies again, highlighted) after this (s).
    #[serde(default = "default_escalate")]
    pub escalate_after_s: f64,
    /// Desktop notifications for warning and critical alerts (and escalations).
    #[serde(default = "yes")]
    pub desktop_notifications: bool,
    /// Engine off, doors closed, headlights on.
    #[serde(default)]
    pub headlights_on: DurationRule,
    /// Battery below a threshold (%).
    #[serde(default = "default_low_battery")]
    pub low_battery: LevelRule,
    /// Fuel below a threshold (%).
    #[serde(default = "default_low_fuel")]
    pub low_fuel: LevelRule,
    /// Above a speed for a while.
    #[serde(default)]
    pub overspeed: OverspeedRule,
    /// Deceleration between samples above a threshold.
    #[serde(default)]
    pub harsh_braking: HarshBrakingRule,
    /// No message from a vehicle for a while (and back online).
    #[serde(default)]
    pub stale: DurationRule2,
    /// Geofences.
    #[serde(default)]
    pub geofences: Vec<Geofence>,
    /// Rules on any status field (SPEC §8).
    #[serde(default)]
    pub thresholds: Vec<super::ThresholdRule>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            escalate_after_s: default_escalate(),
            desktop_notifications: true,
            headlights_on: DurationRule::default(),
            low_battery: default_low_battery(),
            low_fuel: default_low_fuel(),
            overspeed: OverspeedRule::default(),
            harsh_braking: HarshBrakingRule::default(),
            stale: DurationRule2::default(),
            geofences: Vec::new(),
            thresholds: Vec::new(),
        }
    }
}

fn default_escalate() -> f64 {
    300.0
}

/// A condition that must hold for `after_s` (headlights left on).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DurationRule {
    /// On/off.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// How long the condition must hold (s).
    #[serde(default = "sixty")]
    pub after_s: f64,
    /// Severity.
    #[serde(default = "warning")]
    pub severity: Severity,
}

impl Default for DurationRule {
    fn default() -> Self {
        Self {
            enabled: true,
            after_s: 60.0,
            severity: Severity::Warning,
        }
    }
}

/// The stale-device rule (its own defaults: 10 minutes, info).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DurationRule2 {
    /// On/off.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Silence that makes a device stale (s).
    #[serde(default = "six_hundred")]
    pub after_s: f64,
    /// Severity.
    #[serde(default = "info")]
    pub severity: Severity,
}

impl Default for DurationRule2 {
    fn default() -> Self {
        Self {
            enabled: true,
            after_s: 600.0,
            severity: Severity::Info,
        }
    }
}

/// A level below a threshold (battery, fuel); resolves `hysteresis` above it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelRule {
    /// On/off.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Fires when the level is below this (%).
    pub below: f64,
    /// Resolves when the level is back at `below + hysteresis` or more.
    #[serde(default = "five")]
    pub hysteresis: f64,
    /// Severity.
    #[serde(default = "warning")]
    pub severity: Severity,
}

fn default_low_battery() -> LevelRule {
    LevelRule {
        enabled: true,
        below: 15.0,
        hysteresis: 5.0,
        severity: Severity::Warning,
    }
}
fn default_low_fuel() -> LevelRule {
    LevelRule {
        enabled: true,
        below: 10.0,
        hysteresis: 5.0,
        severity: Severity::Warning,
    }
}

/// Speeding.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverspeedRule {
    /// On/off.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Limit (km/h).
    #[serde(default = "default_limit")]
    pub above_kmh: f64,
    /// For at least (s).
    #[serde(default = "ten")]
    pub after_s: f64,
    /// Severity.
    #[serde(default = "critical")]
    pub severity: Severity,
}

impl Default for OverspeedRule {
    fn default() -> Self {
        Self {
            enabled: true,
            above_kmh: default_limit(),
            after_s: 10.0,
            severity: Severity::Critical,
        }
    }
}

/// Harsh braking.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HarshBrakingRule {
    /// On/off.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Deceleration threshold (m/s²); 4 m/s² ≈ 14 km/h lost per second.
    #[serde(default = "four")]
    pub decel_ms2: f64,
    /// Samples further apart than this are not compared (s).
    #[serde(default = "five")]
    pub max_gap_s: f64,
    /// The alert resolves once this long passed without another harsh brake (s).
    #[serde(default = "sixty")]
    pub clear_after_s: f64,
    /// Severity.
    #[serde(default = "warning")]
    pub severity: Severity,
}

impl Default for HarshBrakingRule {
    fn default() -> Self {
        Self {
            enabled: true,
            decel_ms2: 4.0,
            max_gap_s: 5.0,
            clear_after_s: 60.0,
            severity: Severity::Warning,
        }
    }
}

/// When a geofence alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FenceTrigger {
    /// Leaving the area.
    Leave,
    /// Entering the area.
    Enter,
    /// Either.
    Both,
}

/// `[[alerts.geofences]]`: a circle (`center` + `radius_m`) or a polygon (`points`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Geofence {
    /// Name (part of the rule name: `geofence:<name>`).
    pub name: String,
    /// Circle centre `[lat, lng]`.
    #[serde(default)]
    pub center: Option<[f64; 2]>,
    /// Circle radius (m).
    #[serde(default)]
    pub radius_m: Option<f64>,
    /// Polygon vertices `[[lat, lng], …]`.
    #[serde(default)]
    pub points: Option<Vec<[f64; 2]>>,
    /// Leave, enter or both.
    #[serde(default = "leave")]
    pub alert_on: FenceTrigger,
    /// Severity.
    #[serde(default = "warning")]
    pub severity: Severity,
}

fn leave() -> FenceTrigger {
    FenceTrigger::Leave
}
fn warning() -> Severity {
    Severity::Warning
}
fn critical() -> Severity {
    Severity::Critical
}
fn info() -> Severity {
    Severity::Info
}
fn sixty() -> f64 {
    60.0
}
fn six_hundred() -> f64 {
    600.0
}
fn five() -> f64 {
    5.0
}
fn four() -> f64 {
    4.0
}
fn ten() -> f64 {
    10.0
}
fn default_limit() -> f64 {
    110.0
}

/// Checks what serde cannot: `(key, message)` on failure.
pub(super) fn validate(a: &AlertsConfig) -> Result<(), (String, String)> {
    let pos = |key: &str, v: f64| -> Result<(), (String, String)> {
        if v.is_finite() && v >= 0.0 {
            Ok(())
        } else {
            Err((key.to_string(), "must be a number ≥ 0".into()))
        }
    };
    pos("alerts.escalate_after_s", a.escalate_after_s)?;
    pos("alerts.headlights_on.after_s", a.headlights_on.after_s)?;
    pos("alerts.low_battery.below", a.low_battery.below)?;
    pos("alerts.low_fuel.below", a.low_fuel.below)?;
    pos("alerts.overspeed.above_kmh", a.overspeed.above_kmh)?;
    pos("alerts.overspeed.after_s", a.overspeed.after_s)?;
    pos("alerts.harsh_braking.decel_ms2", a.harsh_braking.decel_ms2)?;
    pos("alerts.stale.after_s", a.stale.after_s)?;
    super::thresholds::validate(
        &a.thresholds,
        &[
            crate::rules::names::HEADLIGHTS,
            crate::rules::names::LOW_BATTERY,
            crate::rules::names::LOW_FUEL,
            crate::rules::names::OVERSPEED,
            crate::rules::names::HARSH_BRAKING,
            crate::rules::names::STALE,
        ],
    )?;
    let mut names = std::collections::HashSet::new();
    for (i, g) in a.geofences.iter().enumerate() {
        let key = |f: &str| format!("alerts.geofences[{i}].{f}");
        if g.name.trim().is_empty() || !names.insert(g.name.clone()) {
            return Err((key("name"), "must be non-empty and unique".into()));
        }
        match (&g.center, g.radius_m, &g.points) {
            (Some(c), Some(r), None) => {
                if c[0].abs() > 90.0 || c[1].abs() > 180.0 {
                    return Err((key("center"), "must be [lat, lng] within ±90, ±180".into()));
                }
                if !(r.is_finite() && r > 0.0) {
                    return Err((key("radius_m"), "must be > 0".into()));
                }
            }
            (None, None, Some(p)) => {
                if p.len() < 3 {
                    return Err((
                        key("points"),
                        "a polygon needs at least 3 [lat, lng] points".into(),
                    ));
                }
                if p.iter().any(|q| q[0].abs() > 90.0 || q[1].abs() > 180.0) {
                    return Err((
                        key("points"),
                        "points must be [lat, lng] within ±90, ±180".into(),
                    ));
                }
            }
            _ => {
                return Err((
                    key("center"),
                    "give either `center` + `radius_m` (circle) or `points` (polygon)".into(),
                ));
            }
        }
    }
    Ok(())
}
