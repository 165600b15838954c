//! The engine's side of the schema registry: per-topic path entries, the baseline, drift.

use super::{FieldObs, JsonType, SchemaRow, ShapeObs};
use fleet_model::{Alert, Severity, alert_id};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tracing::warn;

/// The drift alert's rule name.
pub const RULE: &str = "schema_drift";

/// A topic's baseline: its first 10 minutes of messages (by message time). Paths and types
/// first seen after it raise a drift alert; the cache's registry counts as known.
pub const BASELINE_MS: i64 = 10 * 60 * 1000;

/// Paths recorded per topic (a message with keys made of ids or times would otherwise grow
/// the registry without bound; further paths are ignored, with one warning).
pub const MAX_PATHS_PER_TOPIC: usize = 2000;

#[derive(Debug)]
struct Entry {
    ty: JsonType,
    first_seen: i64,
    last_seen: i64,
    count: u64,
    example: String,
    dirty: bool,
}

#[derive(Debug, Default)]
struct Topic {
    fields: BTreeMap<String, Entry>,
    /// Earliest message time seen on the topic (start of its baseline).
    first_seen: Option<i64>,
    full_warned: bool,
    /// Paths whose entry changed since the last [`Registry::take_dirty`]: each batch writes
    /// only what its shapes touched, without walking every entry of every topic.
    dirty: Vec<String>,
}

/// Per-topic path registry.
#[derive(Debug, Default)]
pub struct Registry {
    topics: HashMap<Arc<str>, Topic>,
}

impl Registry {
    /// Starts from what the cache knows (those paths are part of the baseline).
    pub fn seed(&mut self, rows: Vec<SchemaRow>) {
        for r in rows {
            let t = self.topics.entry(Arc::from(r.topic.as_str())).or_default();
            t.first_seen = Some(t.first_seen.map_or(r.first_seen, |f| f.min(r.first_seen)));
            t.fields.insert(
                r.path,
                Entry {
                    ty: r.ty,
                    first_seen: r.first_seen,
                    last_seen: r.last_seen,
                    count: r.count,
                    example: r.example,
                    dirty: false,
                },
            );
        }
    }

    /// Folds one batch's shapes in. New paths or changed types after the topic's baseline
    /// become one `schema_drift` alert per topic and batch, pushed to `out`; its id derives
    /// from the topic and the changes only, so every desktop raises the same one.
    pub fn observe(&mut self, shapes: &[ShapeObs], out: &mut Vec<Alert>) {
        let mut changes: BTreeMap<Arc<str>, (i64, Vec<String>)> = BTreeMap::new();
        for s in shapes {
            let t = self.topics.entry(s.topic.clone()).or_default();
            let first = *t.first_seen.get_or_insert(s.first_ts);
            t.first_seen = Some(first.min(s.first_ts));
            let baseline_until = first.min(s.first_ts) + BASELINE_MS;
            for f in &s.fields {
                let drift = Self::fold(t, &s.topic, f, s);
                if let Some(line) = drift.filter(|_| s.first_ts >= baseline_until) {
                    let c = changes
                        .entry(s.topic.clone())
                        .or_insert((s.first_ts, Vec::new()));
                    c.0 = c.0.min(s.first_ts);
                    if !c.1.contains(&line) {
                        c.1.push(line);
                    }
                }
            }
        }
        for (topic, (ts, mut lines)) in changes {
            lines.sort();
            let key = lines.join("\n");
            let digest = {
                let mut h = 0xcbf2_9ce4_8422_2325_u64;
                super::eat(&mut h, key.as_bytes());
                h as i64
            };
            out.push(Alert::open(
                alert_id(RULE, &topic, digest),
                topic.to_string(),
                RULE,
                Severity::Info,
                format!("Schema change on {topic}: {}", lines.join("; ")),
                ts,
            ));
        }
    }

    /// Updates one path's entry; returns the drift line when the path is new or its type
    /// changed (`null` ↔ a type is not a change: a field that is sometimes empty).
    fn fold(t: &mut Topic, topic: &str, f: &FieldObs, s: &ShapeObs) -> Option<String> {
        if let Some(e) = t.fields.get_mut(&f.path) {
            e.count += s.count;
            e.last_seen = e.last_seen.max(s.last_ts);
            e.first_seen = e.first_seen.min(s.first_ts);
            if !e.dirty {
                e.dirty = true;
                t.dirty.push(f.path.clone());
            }
            if f.ty == e.ty || f.ty == JsonType::Null {
                return None;
            }
            let was = e.ty;
            e.ty = f.ty;
            e.example.clone_from(&f.example);
            return (was != JsonType::Null).then(|| {
                format!(
                    "{} changed from {} to {}",
                    f.path,
                    was.as_str(),
                    f.ty.as_str()
                )
            });
        }
        if t.fields.len() >= MAX_PATHS_PER_TOPIC {
            if !t.full_warned {
                t.full_warned = true;
                warn!(%topic, limit = MAX_PATHS_PER_TOPIC, "schema registry: too many distinct fields on this topic; further new fields are not recorded");
            }
            return None;
        }
        t.fields.insert(
            f.path.clone(),
            Entry {
                ty: f.ty,
                first_seen: s.first_ts,
                last_seen: s.last_ts,
                count: s.count,
                example: f.example.clone(),
                dirty: true,
            },
        );
        t.dirty.push(f.path.clone());
        Some(format!(
            "new field {} ({}, e.g. {})",
            f.path,
            f.ty.as_str(),
            f.example
        ))
    }

    /// Entries changed since the last call, as rows to write.
    pub fn take_dirty(&mut self) -> Vec<SchemaRow> {
        let mut out = Vec::new();
        for (topic, t) in &mut self.topics {
            for path in t.dirty.drain(..) {
                let Some(e) = t.fields.get_mut(&path) else {
                    continue;
                };
                e.dirty = false;
                out.push(SchemaRow {
                    topic: topic.to_string(),
                    path,
                    ty: e.ty,
                    first_seen: e.first_seen,
                    last_seen: e.last_seen,
                    count: e.count,
                    example: e.example.clone(),
                });
            }
        }
        out
    }
}
