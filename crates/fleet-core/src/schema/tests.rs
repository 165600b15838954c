use super::*;
use fleet_model::Severity;
use serde_json::json;
use std::sync::Arc;

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(o) => o,
        _ => unreachable!(),
    }
}

#[test]
fn the_shape_hash_follows_paths_and_types_not_values() {
    let a = shape_hash(&obj(json!({"lat": 1.0, "engine": {"rpm": 900}})));
    assert_eq!(
        a,
        shape_hash(&obj(json!({"engine": {"rpm": 3}, "lat": 55.5})))
    );
    assert_ne!(
        a,
        shape_hash(&obj(json!({"lat": 1.0, "engine": {"rpm": "900"}})))
    );
    assert_ne!(
        a,
        shape_hash(&obj(json!({"lat": 1.0, "engine": {"rpm": 9, "oil": 1}})))
    );
    assert_ne!(a, shape_hash(&obj(json!({"lat": 1.0, "engine": 900}))));
}

#[test]
fn fields_are_dotted_paths_with_arrays_marked() {
    let f = fields_of(&obj(json!({
        "engine": {"rpm": 900, "on": true},
        "tags": ["a", "b"],
        "sensors": [null, {"id": 7}],
        "empty": [],
        "note": null
    })));
    let got: Vec<(&str, &str, &str)> = f
        .iter()
        .map(|f| (f.path.as_str(), f.ty.as_str(), f.example.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("empty[]", "null", "[]"),
            ("engine.on", "boolean", "true"),
            ("engine.rpm", "number", "900"),
            ("note", "null", "null"),
            ("sensors[].id", "number", "7"),
            ("tags[]", "string", "\"a\""),
        ]
    );
}

fn shape(topic: &str, ts: i64, v: Value) -> ShapeObs {
    ShapeObs {
        topic: Arc::from(topic),
        count: 1,
        first_ts: ts,
        last_ts: ts,
        fields: fields_of(&obj(v)),
    }
}

const MIN: i64 = 60_000;

#[test]
fn new_fields_after_the_baseline_raise_one_drift_alert_with_a_stable_id() {
    let mut r = Registry::default();
    let mut out = Vec::new();
    r.observe(&[shape("s", 0, json!({"speed": 1}))], &mut out);
    // Within the first 10 minutes: part of the baseline.
    r.observe(
        &[shape("s", 5 * MIN, json!({"speed": 1, "fuel": 50}))],
        &mut out,
    );
    assert!(out.is_empty(), "{out:?}");
    let late = json!({"speed": 1, "fuel": 50, "engine": {"oil": {"temp_c": 92.5}}, "fw": "2.1"});
    r.observe(&[shape("s", 11 * MIN, late.clone())], &mut out);
    assert_eq!(out.len(), 1, "{out:?}");
    let a = &out[0];
    assert_eq!((a.rule.as_str(), a.severity), (RULE, Severity::Info));
    assert!(
        a.message
            .contains("new field engine.oil.temp_c (number, e.g. 92.5)"),
        "{}",
        a.message
    );
    assert!(a.message.contains("new field fw (string"), "{}", a.message);
    // The same change seen by another desktop gets the same id; once known, no repeat.
    let mut other = Registry::default();
    let mut out2 = Vec::new();
    other.observe(&[shape("s", 0, json!({"speed": 1, "fuel": 2}))], &mut out2);
    other.observe(&[shape("s", 12 * MIN, late.clone())], &mut out2);
    assert_eq!(out2.len(), 1);
    assert_eq!(out2[0].id, a.id);
    r.observe(&[shape("s", 13 * MIN, late)], &mut out);
    assert_eq!(out.len(), 1);
}

#[test]
fn a_type_change_is_drift_but_null_is_not() {
    let mut r = Registry::default();
    let mut out = Vec::new();
    r.observe(
        &[shape("s", 0, json!({"rpm": 900, "gear": null}))],
        &mut out,
    );
    r.observe(
        &[shape("s", 20 * MIN, json!({"rpm": null, "gear": 3}))],
        &mut out,
    );
    assert!(out.is_empty(), "{out:?}");
    r.observe(
        &[shape("s", 21 * MIN, json!({"rpm": "900", "gear": 3}))],
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert!(
        out[0].message.contains("rpm changed from number to string"),
        "{}",
        out[0].message
    );
    let rows = r.take_dirty();
    let rpm = rows.iter().find(|r| r.path == "rpm").unwrap();
    assert_eq!(
        (rpm.ty, rpm.count, rpm.first_seen, rpm.last_seen),
        (JsonType::String, 3, 0, 21 * MIN)
    );
    assert!(r.take_dirty().is_empty());
}

#[test]
fn what_the_cache_knew_is_not_drift_after_a_restart() {
    let row = |path: &str| SchemaRow {
        topic: "s".into(),
        path: path.into(),
        ty: JsonType::Number,
        first_seen: 0,
        last_seen: 30 * MIN,
        count: 10,
        example: "1".into(),
    };
    let mut r = Registry::default();
    r.seed(vec![row("speed"), row("engine.oil.temp_c")]);
    let mut out = Vec::new();
    r.observe(
        &[shape(
            "s",
            40 * MIN,
            json!({"speed": 1, "engine": {"oil": {"temp_c": 90}}}),
        )],
        &mut out,
    );
    assert!(out.is_empty(), "{out:?}");
    r.observe(
        &[shape("s", 41 * MIN, json!({"speed": 1, "tpms": 31}))],
        &mut out,
    );
    assert_eq!(out.len(), 1);
}
