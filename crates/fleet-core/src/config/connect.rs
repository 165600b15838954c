//! `[connect]`: the Kafka → Redis loader (`fleetctl connect`, SPEC §9). It uses `[kafka]`'s
//! brokers and properties (so its security settings are the app's) and `[redis]`'s URL; this
//! section says which topics go to which geo sets and under which consumer group.

use super::model::StartFrom;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `[connect]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectConfig {
    /// Consumer group shared by every loader instance: Kafka spreads the partitions over them.
    #[serde(default = "default_group")]
    pub group_id: String,
    /// This instance's static identity in the group (Kafka's `group.instance.id`): a loader
    /// restarted under the same id takes its partitions back at once instead of waiting for
    /// the group to give up on the crashed one. Unique per instance; default: none.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// Where a group with no committed offsets starts. Default `earliest`: a loader's job is
    /// to load what the topic holds, and `GEOADD` is idempotent.
    #[serde(default = "earliest")]
    pub start: StartFrom,
    /// Topic → geo set routes.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Largest batch written to Redis in one pipeline (messages read).
    #[serde(default = "default_batch_max")]
    pub batch_max_messages: usize,
    /// Longest a batch gathers before it is written (ms): bounds Kafka → Redis latency.
    #[serde(default = "default_batch_ms")]
    pub batch_max_ms: u64,
}

/// `[[connect.routes]]`: one topic into one geo set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Source topic.
    pub topic: String,
    /// `GEOADD` target key.
    pub geo_key: String,
    /// `id`, `lat`, `lng` (and `ts`) → JSON path or `$key`; defaults as a position topic's.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

/// The fields a route may map (a position topic's, minus the ones a geo set cannot hold).
pub const ROUTE_FIELDS: &[&str] = &["id", "lat", "lng", "ts"];

fn default_group() -> String {
    "fleetdash-connect".into()
}
fn earliest() -> StartFrom {
    StartFrom::Earliest
}
fn default_batch_max() -> usize {
    5000
}
fn default_batch_ms() -> u64 {
    50
}

/// Checks `[connect]`: at least one route, names non-empty, one route per topic, only known
/// fields, sane batch limits. Returns (dotted key, message).
pub(super) fn validate(c: &ConnectConfig) -> Result<(), (String, String)> {
    let bad = |k: String, m: &str| Err((k, m.to_string()));
    if c.group_id.trim().is_empty() {
        return bad("connect.group_id".into(), "must not be empty");
    }
    if c.instance_id.as_ref().is_some_and(|i| i.trim().is_empty()) {
        return bad("connect.instance_id".into(), "must not be empty");
    }
    if c.routes.is_empty() {
        return bad(
            "connect.routes".into(),
            "must list at least one [[connect.routes]] (topic, geo_key)",
        );
    }
    if let StartFrom::At(_) = c.start {
        return bad(
            "connect.start".into(),
            "must be `earliest` or `latest` (a group's start cannot be a time)",
        );
    }
    if c.batch_max_messages == 0 {
        return bad("connect.batch_max_messages".into(), "must be at least 1");
    }
    if c.batch_max_ms == 0 {
        return bad("connect.batch_max_ms".into(), "must be at least 1");
    }
    let mut topics = std::collections::HashSet::new();
    for (i, r) in c.routes.iter().enumerate() {
        if r.topic.trim().is_empty() {
            return bad(format!("connect.routes[{i}].topic"), "must not be empty");
        }
        if !topics.insert(r.topic.as_str()) {
            return bad(
                format!("connect.routes[{i}].topic"),
                "this topic already has a route (one geo set per topic)",
            );
        }
        if r.geo_key.is_empty() {
            return bad(format!("connect.routes[{i}].geo_key"), "must not be empty");
        }
        for (field, path) in &r.fields {
            let key = format!("connect.routes[{i}].fields.{field}");
            if !ROUTE_FIELDS.contains(&field.as_str()) {
                return Err((
                    key,
                    format!("unknown field; expected one of {}", ROUTE_FIELDS.join(", ")),
                ));
            }
            if path.trim().is_empty() {
                return bad(key, "must be a JSON path like `pos.lat` or `$key`");
            }
        }
    }
    Ok(())
}
