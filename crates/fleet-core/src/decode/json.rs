//! JSON helpers: dotted-path lookup and flattening of nested objects.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A compiled field mapping entry: where a logical field lives in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldPath {
    /// The Kafka message key (`$key`).
    Key,
    /// A dotted JSON path; a flat object key that contains dots also matches.
    Path {
        /// The whole path, tried first as a literal key.
        full: String,
        /// Its segments, for nested lookup.
        segments: Vec<String>,
    },
}

impl FieldPath {
    /// Compiles `$key` or `a.b.c`.
    pub fn parse(spec: &str) -> Self {
        if spec == "$key" {
            FieldPath::Key
        } else {
            FieldPath::Path {
                full: spec.to_string(),
                segments: spec.split('.').map(str::to_string).collect(),
            }
        }
    }

    /// Looks the path up in `obj`; `Key` is handled by the caller.
    pub fn lookup<'a>(&self, obj: &'a Map<String, Value>) -> Option<&'a Value> {
        match self {
            FieldPath::Key => None,
            FieldPath::Path { full, segments } => {
                if let Some(v) = obj.get(full) {
                    return Some(v);
                }
                if segments.len() < 2 {
                    return None;
                }
                let mut cur = obj.get(&segments[0])?;
                for s in &segments[1..] {
                    cur = cur.as_object()?.get(s)?;
                }
                Some(cur)
            }
        }
    }
}

/// Flattens nested objects into dotted paths (`{"engine":{"rpm":900}}` → `engine.rpm`).
/// Arrays are kept as values: they rarely carry telemetry and flattening them would explode keys.
pub fn flatten(obj: &Map<String, Value>) -> BTreeMap<String, Value> {
    let mut flat = Vec::with_capacity(obj.len() * 2);
    flatten_refs(obj, None, &mut flat, 0);
    let mut out = BTreeMap::new();
    for (k, v) in flat {
        // Of equal paths the later wins.
        out.insert(k, v.clone());
    }
    out
}

/// [`flatten`] written straight to compact JSON text (keys sorted, as [`flatten`]'s map
/// serializes): the status path's per-message form, without a map of cloned values.
pub fn flatten_to_json(obj: &Map<String, Value>) -> String {
    let mut flat: Vec<(String, &Value)> = Vec::with_capacity(obj.len() * 2);
    flatten_refs(obj, None, &mut flat, 0);
    // Stable: of equal paths the later wins, as with the map's inserts.
    flat.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::with_capacity(flat.len() * 24 + 2);
    out.push(b'{');
    let mut first = true;
    for (i, (k, v)) in flat.iter().enumerate() {
        if flat.get(i + 1).is_some_and(|(next, _)| next == k) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        // Writing a string or a Value into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, k);
        out.push(b':');
        let _ = serde_json::to_writer(&mut out, v);
    }
    out.push(b'}');
    String::from_utf8(out).unwrap_or_else(|_| "{}".into())
}

/// The leaves of `obj` under their dotted paths, in the object's order (see [`flatten`]).
fn flatten_refs<'a>(
    obj: &'a Map<String, Value>,
    prefix: Option<&str>,
    out: &mut Vec<(String, &'a Value)>,
    depth: usize,
) {
    for (k, v) in obj {
        // `None` at the top level only: an empty key below it still adds its segment, so
        // `{"": {"a": 1}}` is `.a` and does not collide with a top-level `a`.
        let key = match prefix {
            None => k.clone(),
            Some(prefix) => format!("{prefix}.{k}"),
        };
        match v {
            // Depth bound: hostile input must not recurse without limit.
            Value::Object(inner) if depth < 16 => flatten_refs(inner, Some(&key), out, depth + 1),
            _ => out.push((key, v)),
        }
    }
}

/// Reads a number that may be sent as a JSON number or a numeric string.
pub fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

/// Reads a boolean-ish status value: `true/false`, `"on"/"off"`, `"open"/"closed"`, `1/0`.
pub fn as_switch(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_f64().map(|x| x != 0.0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "on" | "open" | "opened" | "true" | "yes" | "1" => Some(true),
            "off" | "closed" | "close" | "shut" | "false" | "no" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Reads a string-ish value (numbers are stringified, e.g. numeric vehicle ids).
pub fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lookup_nested_and_literal_dotted() {
        let v = json!({"pos": {"lat": 1.5}, "a.b": 2});
        let o = v.as_object().unwrap();
        assert_eq!(FieldPath::parse("pos.lat").lookup(o), Some(&json!(1.5)));
        assert_eq!(FieldPath::parse("a.b").lookup(o), Some(&json!(2)));
        assert_eq!(FieldPath::parse("pos.lng").lookup(o), None);
        assert_eq!(FieldPath::parse("$key"), FieldPath::Key);
    }

    #[test]
    fn flatten_nested() {
        let v = json!({"engine": {"rpm": 900, "temp": {"c": 80}}, "doors": "open", "tags": [1, 2]});
        let f = flatten(v.as_object().unwrap());
        assert_eq!(f["engine.rpm"], json!(900));
        assert_eq!(f["engine.temp.c"], json!(80));
        assert_eq!(f["doors"], json!("open"));
        assert_eq!(f["tags"], json!([1, 2]));
    }

    /// Found by decode/proptests.rs: an empty key below the top level lost its segment, so
    /// `{"": {"a": 2}}` flattened to `a` and overwrote a top-level `a`.
    #[test]
    fn flatten_keeps_empty_key_segments() {
        let v = json!({"a": 1, "": {"a": 2, "": null}});
        let f = flatten(v.as_object().unwrap());
        assert_eq!(f.len(), 3, "{f:?}");
        assert_eq!(f["a"], json!(1));
        assert_eq!(f[".a"], json!(2));
        assert_eq!(f["."], Value::Null);
    }

    #[test]
    fn switches() {
        assert_eq!(as_switch(&json!("ON")), Some(true));
        assert_eq!(as_switch(&json!("closed")), Some(false));
        assert_eq!(as_switch(&json!(0)), Some(false));
        assert_eq!(as_switch(&json!("maybe")), None);
    }
}
