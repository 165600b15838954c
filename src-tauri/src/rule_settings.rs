//! Per-rule switches and severities in the Settings view (issue 12 §8: alert volume an
//! operator can handle). The rules stay configured in `[alerts.<rule>]`; the view edits only
//! `enabled` and `severity`, and only of the rules it changed, so everything else in the file
//! (thresholds, comments, inline tables) stays as written.

use crate::error::AppError;
use crate::settings::{child, set_value};
use fleet_core::config::AlertsConfig;
use fleet_model::Severity;
use fleetdash_ipc::RuleForm;
use toml_edit::{DocumentMut, Item, Value};

/// The built-in rules: (name, enabled, severity, the rule's table as TOML).
fn rules(a: &AlertsConfig) -> Vec<(&'static str, bool, Severity, String)> {
    vec![
        (
            "headlights_on",
            a.headlights_on.enabled,
            a.headlights_on.severity,
            toml(&a.headlights_on),
        ),
        (
            "low_battery",
            a.low_battery.enabled,
            a.low_battery.severity,
            toml(&a.low_battery),
        ),
        (
            "low_fuel",
            a.low_fuel.enabled,
            a.low_fuel.severity,
            toml(&a.low_fuel),
        ),
        (
            "overspeed",
            a.overspeed.enabled,
            a.overspeed.severity,
            toml(&a.overspeed),
        ),
        (
            "harsh_braking",
            a.harsh_braking.enabled,
            a.harsh_braking.severity,
            toml(&a.harsh_braking),
        ),
        ("stale", a.stale.enabled, a.stale.severity, toml(&a.stale)),
    ]
}

/// A rule's settings as TOML text, for writing a table the file does not have yet (some
/// rules have keys without defaults, such as `low_battery.below`).
fn toml<T: serde::Serialize>(rule: &T) -> String {
    toml::to_string(rule).unwrap_or_default()
}

/// The rules as the form shows them.
pub fn rule_forms(a: &AlertsConfig) -> Vec<RuleForm> {
    rules(a)
        .into_iter()
        .map(|(name, enabled, severity, _)| RuleForm {
            name: name.into(),
            enabled,
            severity: severity.as_str().into(),
        })
        .collect()
}

/// Writes what the form changed into `[alerts.<rule>]`. An unknown rule or severity is a
/// form error naming the key.
pub fn edit_rules(
    doc: &mut DocumentMut,
    form: &[RuleForm],
    old: &AlertsConfig,
) -> Result<(), AppError> {
    let known = rules(old);
    for f in form {
        let Some((name, enabled, severity, table)) = known.iter().find(|r| r.0 == f.name) else {
            return Err(AppError::Form(format!("alerts.{}: no such rule", f.name)));
        };
        let wanted = Severity::parse(f.severity.trim()).ok_or_else(|| {
            AppError::Form(format!(
                "alerts.{name}.severity: `{}` is not info, warning or critical",
                f.severity
            ))
        })?;
        if f.enabled == *enabled && wanted == *severity {
            continue;
        }
        let alerts = child(doc.as_item_mut(), "alerts");
        let missing = alerts.get(name).is_none_or(|r| !r.is_table_like());
        let rule = child(alerts, name);
        if missing
            && let Ok(full) = table.parse::<DocumentMut>()
            && let Some(t) = rule.as_table_like_mut()
        {
            for (k, v) in full.iter() {
                if let Item::Value(v) = v {
                    set_value(t, k, v.clone());
                }
            }
        }
        let Some(t) = rule.as_table_like_mut() else {
            continue;
        };
        set_value(t, "enabled", Value::from(f.enabled));
        set_value(t, "severity", Value::from(wanted.as_str()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_core::Config;
    use std::path::Path;

    fn edited(text: &str, change: impl Fn(&mut Vec<RuleForm>)) -> (String, Config) {
        let old = Config::parse(text, Path::new("t.toml")).unwrap();
        let mut form = rule_forms(&old.alerts);
        change(&mut form);
        let mut doc: DocumentMut = text.parse().unwrap();
        edit_rules(&mut doc, &form, &old.alerts).unwrap();
        let out = doc.to_string();
        let cfg = Config::parse(&out, Path::new("t.toml")).unwrap();
        (out, cfg)
    }

    #[test]
    fn a_rule_switched_off_and_a_severity_changed_land_in_the_file() {
        let text = "# my rules\n[alerts]\nlow_fuel = { below = 12 }   # depot policy\n";
        let (out, cfg) = edited(text, |f| {
            f.iter_mut()
                .find(|r| r.name == "harsh_braking")
                .unwrap()
                .enabled = false;
            let lf = f.iter_mut().find(|r| r.name == "low_fuel").unwrap();
            lf.severity = "critical".into();
        });
        assert!(!cfg.alerts.harsh_braking.enabled);
        assert_eq!(cfg.alerts.low_fuel.severity, Severity::Critical);
        assert_eq!(
            cfg.alerts.low_fuel.below, 12.0,
            "the rest of the rule stays: {out}"
        );
        assert!(
            out.contains("# my rules") && out.contains("# depot policy"),
            "{out}"
        );
        // Untouched rules are not written out.
        assert!(!out.contains("overspeed"), "{out}");
    }

    #[test]
    fn a_rule_without_a_table_gets_its_whole_settings() {
        // low_battery's `below` has no default: the new table must carry it.
        let (_, cfg) = edited("", |f| {
            f.iter_mut()
                .find(|r| r.name == "low_battery")
                .unwrap()
                .severity = "info".into();
        });
        assert_eq!(cfg.alerts.low_battery.severity, Severity::Info);
        assert_eq!(cfg.alerts.low_battery.below, 15.0);
    }

    #[test]
    fn bad_input_names_the_key() {
        let old = AlertsConfig::default();
        let mut doc = DocumentMut::new();
        let mut form = rule_forms(&old);
        form[0].severity = "loud".into();
        let e = edit_rules(&mut doc, &form, &old).unwrap_err().to_string();
        assert!(e.contains("alerts.headlights_on.severity"), "{e}");
    }
}
