//! `[[alerts.thresholds]]` (SPEC §8): a rule on any field of the status messages — engine
//! temperature, a crash flag, tyre pressure — with the built-in rules' lifecycle.

use fleet_model::Severity;
use serde::{Deserialize, Serialize};

/// One threshold rule. Exactly one of `above`, `below`, `equals`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdRule {
    /// The rule's name, as stored and shown (`engine_overheat`).
    pub name: String,
    /// The status field, as a dotted path into the message (`engine.temp_c`).
    pub field: String,
    /// Fires while the field's number is above this.
    #[serde(default)]
    pub above: Option<f64>,
    /// Fires while the field's number is below this.
    #[serde(default)]
    pub below: Option<f64>,
    /// Fires while the field equals this (a number, `true`/`false`, or a string).
    #[serde(default)]
    pub equals: Option<ThresholdValue>,
    /// The condition must hold this long to fire, and be gone this long to resolve (s):
    /// a reading that flickers around the threshold raises one alert, not one per flicker.
    #[serde(default)]
    pub for_s: f64,
    /// Severity.
    #[serde(default = "warning")]
    pub severity: Severity,
    /// On/off.
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// What `equals` compares with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ThresholdValue {
    /// `true` / `false` (crash flags).
    Bool(bool),
    /// A number.
    Number(f64),
    /// A string (`"fault"`).
    Text(String),
}

fn warning() -> Severity {
    Severity::Warning
}
fn yes() -> bool {
    true
}

/// Longest rule name (it is part of every alert id and shown in the feed).
const MAX_NAME: usize = 64;

/// Checks the thresholds: `(dotted key, message)` on failure. `taken` are the built-in rule
/// names a threshold may not reuse (their alerts would be confused).
pub(super) fn validate(rules: &[ThresholdRule], taken: &[&str]) -> Result<(), (String, String)> {
    let mut names = std::collections::HashSet::new();
    for (i, t) in rules.iter().enumerate() {
        let key = |f: &str| format!("alerts.thresholds[{i}].{f}");
        let name = t.name.trim();
        if name.is_empty()
            || name.len() > MAX_NAME
            || t.name.chars().any(|c| c.is_control() || c == ':')
        {
            return Err((
                key("name"),
                format!("must be 1–{MAX_NAME} characters without `:` or control characters"),
            ));
        }
        if taken.contains(&name) || name.starts_with("geofence") || name == "schema_drift" {
            return Err((key("name"), format!("`{name}` is a built-in rule's name")));
        }
        if !names.insert(name) {
            return Err((
                key("name"),
                format!("`{name}` is used by another threshold"),
            ));
        }
        if t.field.trim().is_empty() {
            return Err((
                key("field"),
                "must be a dotted path like `engine.temp_c`".into(),
            ));
        }
        let given = [t.above.is_some(), t.below.is_some(), t.equals.is_some()];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err((
                key("above"),
                "give exactly one of `above`, `below` or `equals`".into(),
            ));
        }
        for (f, v) in [("above", t.above), ("below", t.below)] {
            if v.is_some_and(|v| !v.is_finite()) {
                return Err((key(f), "must be a finite number".into()));
            }
        }
        if let Some(ThresholdValue::Number(v)) = t.equals
            && !v.is_finite()
        {
            return Err((key("equals"), "must be a finite number".into()));
        }
        if !(t.for_s.is_finite() && (0.0..=31_536_000.0).contains(&t.for_s)) {
            return Err((key("for_s"), "must be a number of seconds ≥ 0".into()));
        }
    }
    Ok(())
}
