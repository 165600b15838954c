//! Threshold rules on any status field (`[[alerts.thresholds]]`, SPEC §8).
//!
//! The value is read straight from the status sample's flattened-fields JSON, which the
//! decoder writes compactly as `{"path":scalar,…}`: a substring search for the precomputed
//! `"path":` and a parse of the token after it. Nothing is allocated per message (the built-in
//! rules' standard); a match preceded by anything but `{` or `,` is inside a string value and
//! is skipped.

use crate::config::{ThresholdRule, ThresholdValue};
use fleet_model::Alert;

/// A scalar as found in the JSON text (strings raw, still escaped).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Scalar<'a> {
    Number(f64),
    Bool(bool),
    Text(&'a str),
}

/// A compiled threshold rule.
pub(super) struct Threshold {
    pub rule: ThresholdRule,
    /// `"path":` as it appears in the flattened JSON.
    needle: String,
}

impl Threshold {
    pub fn new(rule: &ThresholdRule) -> Self {
        let key = serde_json::to_string(&rule.field).unwrap_or_default();
        Self {
            needle: format!("{key}:"),
            rule: rule.clone(),
        }
    }

    /// The field's value in `fields_json`, if the message has it (null counts as absent).
    pub fn read<'a>(&self, fields_json: &'a str) -> Option<Scalar<'a>> {
        let bytes = fields_json.as_bytes();
        let mut from = 0;
        while let Some(i) = fields_json[from..].find(&self.needle) {
            let at = from + i;
            if at > 0 && matches!(bytes[at - 1], b'{' | b',') {
                return scalar(&fields_json[at + self.needle.len()..]);
            }
            from = at + 1;
        }
        None
    }

    /// Whether `v` meets the condition (`None` when the comparison does not apply, e.g. text
    /// against `above`: the rule then neither fires nor resolves).
    pub fn holds(&self, v: Scalar<'_>) -> Option<bool> {
        let r = &self.rule;
        match (v, &r.equals) {
            (Scalar::Number(x), None) => r.above.map(|a| x > a).or_else(|| r.below.map(|b| x < b)),
            (Scalar::Number(x), Some(ThresholdValue::Number(e))) => Some((x - e).abs() < 1e-9),
            (Scalar::Bool(b), Some(ThresholdValue::Bool(e))) => Some(b == *e),
            (Scalar::Text(t), Some(ThresholdValue::Text(e))) => Some(t == e),
            _ => None,
        }
    }

    /// One line for the alert.
    pub fn describe(&self, v: Scalar<'_>, held_s: f64) -> String {
        let r = &self.rule;
        let value = match v {
            Scalar::Number(x) => format!("{x}"),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Text(t) => format!("\"{t}\""),
        };
        let cond = match (&r.above, &r.below, &r.equals) {
            (Some(a), _, _) => format!("above {a}"),
            (_, Some(b), _) => format!("below {b}"),
            (_, _, Some(ThresholdValue::Number(e))) => format!("= {e}"),
            (_, _, Some(ThresholdValue::Bool(e))) => format!("= {e}"),
            (_, _, Some(ThresholdValue::Text(e))) => format!("= \"{e}\""),
            _ => String::new(),
        };
        if held_s >= 1.0 {
            format!("{} = {value} ({cond}) for {held_s:.0} s", r.field)
        } else {
            format!("{} = {value} ({cond})", r.field)
        }
    }
}

impl super::RuleEngine {
    /// The threshold rules on one status message: fire once the condition held `for_s`,
    /// resolve once it has been gone `for_s`. Allocates only when a timer starts or stops.
    pub(super) fn thresholds_on(&mut self, v: &str, ts: i64, fields: &str, out: &mut Vec<Alert>) {
        // Moved out (no allocation) so the loop can use `self` mutably.
        let ths = std::mem::take(&mut self.thresholds);
        for th in &ths {
            let Some(val) = th.read(fields) else { continue };
            let Some(holds) = th.holds(val) else { continue };
            let name = th.rule.name.as_str();
            let for_ms = (th.rule.for_s * 1000.0) as i64;
            let st = self.state(v);
            let mut changed = holds && st.p.thresholds_clear.remove(name).is_some();
            if holds {
                let since = match st.p.thresholds.get(name) {
                    Some(t) => *t,
                    None => {
                        st.p.thresholds.insert(name.to_string(), ts);
                        changed = true;
                        ts
                    }
                };
                if changed {
                    self.mark(v);
                }
                let held = ts - since;
                if held >= for_ms && !self.is_open(name, v) {
                    let msg = th.describe(val, held as f64 / 1000.0);
                    self.raise(name, v, since, ts, th.rule.severity, msg, out);
                }
                continue;
            }
            if st.p.thresholds.remove(name).is_some() {
                self.mark(v);
            }
            if !self.is_open(name, v) {
                continue;
            }
            let st = self.state(v);
            let gone = match st.p.thresholds_clear.get(name) {
                Some(t) => *t,
                None => {
                    st.p.thresholds_clear.insert(name.to_string(), ts);
                    self.mark(v);
                    ts
                }
            };
            if ts - gone >= for_ms {
                self.state(v).p.thresholds_clear.remove(name);
                self.mark(v);
                self.resolve(name, v, ts, out);
            }
        }
        self.thresholds = ths;
    }
}

/// Parses the scalar at the start of `s` (compact JSON: no whitespace to skip, but tolerate it).
fn scalar(s: &str) -> Option<Scalar<'_>> {
    let s = s.trim_start();
    match s.as_bytes().first()? {
        b'"' => {
            let body = &s[1..];
            let bytes = body.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                match bytes[i] {
                    b'\\' => i += 2,
                    b'"' => return Some(Scalar::Text(&body[..i])),
                    _ => i += 1,
                }
            }
            None
        }
        b't' if s.starts_with("true") => Some(Scalar::Bool(true)),
        b'f' if s.starts_with("false") => Some(Scalar::Bool(false)),
        _ => {
            let end = s
                .find(|c: char| !matches!(c, '0'..='9' | '-' | '+' | '.' | 'e' | 'E'))
                .unwrap_or(s.len());
            s[..end].parse().ok().map(Scalar::Number)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_model::Severity;

    fn t(field: &str, above: Option<f64>, equals: Option<ThresholdValue>) -> Threshold {
        Threshold::new(&ThresholdRule {
            name: "r".into(),
            field: field.into(),
            above,
            below: None,
            equals,
            for_s: 0.0,
            severity: Severity::Warning,
            enabled: true,
        })
    }

    #[test]
    fn values_are_read_from_the_flattened_json_without_confusing_keys_and_values() {
        let json = r#"{"doors":"engine.temp_c:","engine.temp_c":104.5,"engine.temp_c_max":120,"crash":true,"mode":"fault \"x\""}"#;
        assert_eq!(
            t("engine.temp_c", Some(100.0), None).read(json),
            Some(Scalar::Number(104.5))
        );
        assert_eq!(t("crash", None, None).read(json), Some(Scalar::Bool(true)));
        assert_eq!(
            t("mode", None, None).read(json),
            Some(Scalar::Text(r#"fault \"x\""#))
        );
        assert_eq!(t("engine", None, None).read(json), None);
        assert_eq!(t("missing", None, None).read(json), None);
        // A key that appears only inside a string value is not a field.
        let tricky = r#"{"note":"x\",\"tyre.psi\":12","speed":3}"#;
        assert_eq!(t("tyre.psi", Some(1.0), None).read(tricky), None);
        assert_eq!(t("x", None, None).read(r#"{"x":null}"#), None);
    }

    #[test]
    fn conditions_compare_like_with_like() {
        let above = t("f", Some(100.0), None);
        assert_eq!(above.holds(Scalar::Number(100.5)), Some(true));
        assert_eq!(above.holds(Scalar::Number(100.0)), Some(false));
        assert_eq!(above.holds(Scalar::Text("hot")), None);
        let flag = t("f", None, Some(ThresholdValue::Bool(true)));
        assert_eq!(flag.holds(Scalar::Bool(true)), Some(true));
        assert_eq!(flag.holds(Scalar::Number(1.0)), None);
        let text = t("f", None, Some(ThresholdValue::Text("fault".into())));
        assert_eq!(text.holds(Scalar::Text("fault")), Some(true));
        assert_eq!(text.holds(Scalar::Text("ok")), Some(false));
    }
}
