//! Property tests for the flattener ([`flatten`]): on arbitrary nested objects every leaf
//! appears exactly once under its dotted path, no object values remain, and un-flattening
//! gives the object back (minus empty objects, which hold no leaf).
//!
//! Keys are generated without dots: a key `a.b` next to `{"a":{"b":…}}` names the same path
//! twice, and which one wins is a choice, not a property. Nesting stays well inside the
//! flattener's depth bound (16), which only exists against hostile input.

use super::json::{flatten, flatten_to_json};
use proptest::prelude::*;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A leaf: anything but an object (arrays are kept whole, so they are leaves too).
fn leaf() -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::num::f64::NORMAL.prop_map(Value::from),
        "[ -~가-힣]{0,8}".prop_map(Value::String),
    ];
    prop_oneof![
        4 => scalar.clone(),
        1 => prop::collection::vec(scalar, 0..4).prop_map(Value::Array),
    ]
}

fn key() -> impl Strategy<Value = String> {
    // Includes the empty key and non-ASCII: both are legal JSON keys.
    "[a-z_0-9가]{0,6}"
}

/// A JSON object nested up to 5 levels, up to 6 keys per level.
fn object() -> impl Strategy<Value = Map<String, Value>> {
    let value = leaf().prop_recursive(5, 64, 6, |inner| {
        prop::collection::btree_map(key(), inner, 0..6)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    });
    prop::collection::btree_map(key(), value, 0..8).prop_map(|m| m.into_iter().collect())
}

/// The leaves with their dotted paths, by a walk independent of the flattener.
fn leaves(obj: &Map<String, Value>, prefix: Option<&str>, out: &mut Vec<(String, Value)>) {
    for (k, v) in obj {
        let path = match prefix {
            Some(p) => format!("{p}.{k}"),
            None => k.clone(),
        };
        match v {
            Value::Object(inner) => leaves(inner, Some(&path), out),
            _ => out.push((path, v.clone())),
        }
    }
}

/// Rebuilds nested objects from dotted paths.
fn unflatten(flat: &BTreeMap<String, Value>) -> Map<String, Value> {
    let mut root = Map::new();
    for (path, v) in flat {
        let mut segments: Vec<&str> = path.split('.').collect();
        let last = segments.pop().expect("split yields at least one segment");
        let mut cur = &mut root;
        for s in segments {
            cur = cur
                .entry(s)
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("a path prefix is never a leaf");
        }
        assert!(
            cur.insert(last.to_string(), v.clone()).is_none(),
            "{path} twice"
        );
    }
    root
}

/// The object without empty objects (recursively): what un-flattening can give back.
fn prune_empty(obj: &Map<String, Value>) -> Map<String, Value> {
    obj.iter()
        .filter_map(|(k, v)| match v {
            Value::Object(inner) => {
                let pruned = prune_empty(inner);
                (!pruned.is_empty()).then(|| (k.clone(), Value::Object(pruned)))
            }
            _ => Some((k.clone(), v.clone())),
        })
        .collect()
}

proptest! {
    #[test]
    fn prop_flatten_every_leaf_once_under_its_path(obj in object()) {
        let flat = flatten(&obj);
        let mut expected = Vec::new();
        leaves(&obj, None, &mut expected);
        // Exactly once: as many entries as leaves, and each leaf's path maps to that leaf.
        prop_assert_eq!(flat.len(), expected.len());
        for (path, v) in &expected {
            prop_assert_eq!(flat.get(path), Some(v), "leaf at {}", path);
        }
    }

    #[test]
    fn prop_flatten_leaves_no_objects(obj in object()) {
        let flat = flatten(&obj);
        prop_assert!(flat.values().all(|v| !v.is_object()));
    }

    #[test]
    fn prop_flatten_to_json_is_the_flattened_maps_text(obj in object()) {
        prop_assert_eq!(
            flatten_to_json(&obj),
            serde_json::to_string(&flatten(&obj)).unwrap()
        );
    }

    #[test]
    fn prop_flatten_round_trips(obj in object()) {
        let flat = flatten(&obj);
        prop_assert_eq!(unflatten(&flat), prune_empty(&obj));
        // Flattening is idempotent on its own output.
        let again: Map<String, Value> = flat.clone().into_iter().collect();
        prop_assert_eq!(flatten(&again), flat);
    }
}
