//! The schema registry (SPEC §8): every flattened path seen on each topic, with its JSON type,
//! first/last seen, count and an example, and a `schema_drift` alert when a topic's messages
//! change shape after its baseline (a firmware update adding nested fields, a field turning
//! from number to string).
//!
//! # Cost on the hot path
//! Flattening every message would cost the ingest rate, so the decoder only hashes each
//! message's *shape* (its paths and leaf types, no allocation: [`shape_hash`]). The poll thread
//! counts messages per (topic, shape) in a batch and flattens one message per distinct shape
//! ([`fields_of`]); the engine's [`Registry`] folds those into the per-path entries. A fleet
//! on one firmware has one or two shapes, so the registry costs a hash per message and a few
//! map updates per batch.
//!
//! # Arrays
//! An array is recorded as `path[]` with its elements' type (the first non-null element's);
//! objects inside arrays continue the path (`sensors[].id`), which is how SOCAR pivots array
//! columns out.

mod registry;
#[cfg(test)]
mod tests;

pub use registry::{BASELINE_MS, MAX_PATHS_PER_TOPIC, RULE, Registry};

use serde_json::{Map, Value};

/// Objects nested deeper than this are recorded as leaves (hostile input must not recurse
/// without bound; the flattener uses the same limit).
const MAX_DEPTH: usize = 16;

/// Longest example kept (bytes).
const EXAMPLE_MAX: usize = 64;

/// A leaf's JSON type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JsonType {
    /// `null` (or an empty array's elements): known to exist, type not yet known.
    Null,
    /// `true` / `false`.
    Boolean,
    /// A number.
    Number,
    /// A string.
    String,
    /// An object deeper than the recorded depth.
    Object,
}

impl JsonType {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            JsonType::Null => "null",
            JsonType::Boolean => "boolean",
            JsonType::Number => "number",
            JsonType::String => "string",
            JsonType::Object => "object",
        }
    }

    /// Parses a stored name (unknown names read as `null`: "type not known").
    pub fn parse(s: &str) -> Self {
        match s {
            "boolean" => JsonType::Boolean,
            "number" => JsonType::Number,
            "string" => JsonType::String,
            "object" => JsonType::Object,
            _ => JsonType::Null,
        }
    }

    fn of(v: &Value) -> Self {
        match v {
            Value::Null | Value::Array(_) => JsonType::Null,
            Value::Bool(_) => JsonType::Boolean,
            Value::Number(_) => JsonType::Number,
            Value::String(_) => JsonType::String,
            Value::Object(_) => JsonType::Object,
        }
    }
}

/// One path of one message, as the registry records it.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldObs {
    /// Dotted path (`engine.rpm`, `tags[]`, `sensors[].id`).
    pub path: String,
    /// Leaf type.
    pub ty: JsonType,
    /// The value as JSON text, shortened.
    pub example: String,
}

/// A distinct message shape seen in one Kafka batch: how many messages had it, when, and its
/// fields (from the first message of the batch that had it).
#[derive(Debug, Clone)]
pub struct ShapeObs {
    /// Topic.
    pub topic: std::sync::Arc<str>,
    /// Messages of this shape in the batch.
    pub count: u64,
    /// Earliest and latest message time among them (ms).
    pub first_ts: i64,
    /// See `first_ts`.
    pub last_ts: i64,
    /// The shape's paths.
    pub fields: Vec<FieldObs>,
}

/// A registry row (the `schema_fields` table; `fleetctl fields`).
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaRow {
    /// Topic.
    pub topic: String,
    /// Dotted path.
    pub path: String,
    /// Leaf type.
    pub ty: JsonType,
    /// First message time with this path (ms).
    pub first_seen: i64,
    /// Latest message time with this path (ms).
    pub last_seen: i64,
    /// Messages with this path.
    pub count: u64,
    /// An example value (JSON text).
    pub example: String,
}

/// FNV-1a over the shape's keys and leaf types: same paths and types → same hash, without
/// allocating. (Key order is serde_json's map order, sorted, so it does not matter.)
pub fn shape_hash(obj: &Map<String, Value>) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325_u64;
    hash_object(obj, &mut h, 0);
    h
}

fn eat(h: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *h ^= u64::from(*b);
        *h = h.wrapping_mul(0x0100_0000_01b3);
    }
}

fn hash_object(obj: &Map<String, Value>, h: &mut u64, depth: usize) {
    eat(h, b"{");
    for (k, v) in obj {
        eat(h, k.as_bytes());
        eat(h, b":");
        hash_value(v, h, depth);
    }
    eat(h, b"}");
}

fn hash_value(v: &Value, h: &mut u64, depth: usize) {
    match v {
        Value::Object(o) if depth < MAX_DEPTH => hash_object(o, h, depth + 1),
        Value::Array(items) => {
            eat(h, b"[");
            if let Some(first) = items.iter().find(|x| !x.is_null()) {
                hash_value(first, h, depth + 1);
            }
            eat(h, b"]");
        }
        other => eat(h, JsonType::of(other).as_str().as_bytes()),
    }
}

/// Every path of a message with its type and an example ([`shape_hash`]'s walk, spelled out).
pub fn fields_of(obj: &Map<String, Value>) -> Vec<FieldObs> {
    let mut out = Vec::new();
    walk_object(obj, None, &mut out, 0);
    out
}

/// [`fields_of`] of a raw payload (`None` if it is not a JSON object); of its `data` row
/// when `dms` (a DMS envelope's schema is the table's, not the envelope's).
pub fn fields_of_payload(payload: &[u8], dms: bool) -> Option<Vec<FieldObs>> {
    match serde_json::from_slice::<Value>(payload).ok()? {
        Value::Object(mut o) if dms => match o.remove("data")? {
            Value::Object(data) => Some(fields_of(&data)),
            _ => None,
        },
        Value::Object(o) => Some(fields_of(&o)),
        _ => None,
    }
}

fn join(prefix: Option<&str>, k: &str) -> String {
    match prefix {
        None => k.to_string(),
        Some(p) => format!("{p}.{k}"),
    }
}

fn walk_object(obj: &Map<String, Value>, prefix: Option<&str>, out: &mut Vec<FieldObs>, d: usize) {
    for (k, v) in obj {
        walk_value(v, join(prefix, k), out, d);
    }
}

fn walk_value(v: &Value, path: String, out: &mut Vec<FieldObs>, d: usize) {
    match v {
        Value::Object(o) if d < MAX_DEPTH && !o.is_empty() => {
            walk_object(o, Some(&path), out, d + 1)
        }
        Value::Array(items) => {
            let path = format!("{path}[]");
            match items.iter().find(|x| !x.is_null()) {
                Some(first) => walk_value(first, path, out, d + 1),
                None => out.push(FieldObs {
                    path,
                    ty: JsonType::Null,
                    example: "[]".into(),
                }),
            }
        }
        other => {
            let mut example = other.to_string();
            if example.len() > EXAMPLE_MAX {
                let cut = example.floor_char_boundary(EXAMPLE_MAX);
                example.truncate(cut);
                example.push('…');
            }
            out.push(FieldObs {
                path,
                ty: JsonType::of(other),
                example,
            });
        }
    }
}
