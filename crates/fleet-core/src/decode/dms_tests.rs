//! The DMS envelope, device-keyed telemetry and shared topics (SPEC §8).

use super::*;
use std::collections::BTreeMap;

fn decoder(kind: TopicKind, format: TopicFormat, fields: &[(&str, &str)]) -> Decoder {
    Decoder::new(&TopicConfig {
        name: "t".into(),
        kind,
        format,
        fields: fields
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<BTreeMap<_, _>>(),
    })
}

fn run(d: &Decoder, key: Option<&str>, payload: &str) -> Result<Decoded, Rejection> {
    d.decode(
        RawMessage {
            key: key.map(str::as_bytes),
            payload: Some(payload.as_bytes()),
            kafka_ts_ms: Some(1_000_000_000_000),
        },
        2_000_000_000_000,
    )
}

fn carinfo() -> Decoder {
    decoder(
        TopicKind::Info,
        TopicFormat::Dms,
        &[
            ("id", "car_id"),
            ("plate", "car_number"),
            ("driver", "driver_name"),
        ],
    )
}

#[test]
fn dms_rows_are_read_inside_data() {
    let d = carinfo();
    for op in ["load", "insert", "update"] {
        let msg = format!(
            r#"{{"data":{{"car_id":"car-1","car_number":"12가3456"}},"metadata":{{"operation":"{op}","table-name":"carinfo"}}}}"#
        );
        let Ok(Decoded::Info(i)) = run(&d, None, &msg) else {
            panic!("{op}")
        };
        assert_eq!(i.vehicle, "car-1");
        assert_eq!(i.plate.as_deref(), Some("12가3456"));
        assert_eq!(i.driver, None, "not carried: kept when merged");
    }
}

#[test]
fn a_null_column_clears_and_a_delete_removes_the_record() {
    let d = carinfo();
    let Ok(Decoded::Info(i)) = run(
        &d,
        None,
        r#"{"data":{"car_id":"car-1","driver_name":null},"metadata":{"operation":"update"}}"#,
    ) else {
        panic!()
    };
    assert_eq!(i.driver.as_deref(), Some(""), "present as null = cleared");
    assert_eq!(
        run(
            &d,
            None,
            r#"{"data":{"car_id":"car-1"},"metadata":{"operation":"delete"}}"#
        ),
        Ok(Decoded::InfoDelete("car-1".into()))
    );
}

#[test]
fn control_records_change_nothing_and_broken_envelopes_are_rejected() {
    let d = carinfo();
    assert_eq!(
        run(
            &d,
            None,
            r#"{"data":{},"metadata":{"record-type":"control","operation":"create-table"}}"#
        ),
        Ok(Decoded::Tombstone)
    );
    for bad in [
        r#"{"car_id":"car-1"}"#,
        r#"{"data":[1],"metadata":{"operation":"insert"}}"#,
        r#"{"data":{"car_id":"car-1"},"metadata":{"operation":"upsert"}}"#,
        r#"{"data":{"car_id":"car-1"},"metadata":{"operation":7}}"#,
    ] {
        let r = run(&d, None, bad).unwrap_err();
        assert_eq!(r.reason, RejectReason::InvalidField, "{bad}: {r:?}");
    }
}

#[test]
fn device_rows_map_and_unmap() {
    let d = decoder(
        TopicKind::Device,
        TopicFormat::Dms,
        &[("id", "device_id"), ("vehicle", "car_id")],
    );
    assert_eq!(
        run(
            &d,
            None,
            r#"{"data":{"device_id":"D1","car_id":"car-1"},"metadata":{"operation":"load"}}"#
        ),
        Ok(Decoded::Device(DeviceMapping {
            device: "D1".into(),
            vehicle: Some("car-1".into())
        }))
    );
    assert_eq!(
        run(
            &d,
            None,
            r#"{"data":{"device_id":"D1"},"metadata":{"operation":"delete"}}"#
        ),
        Ok(Decoded::Device(DeviceMapping {
            device: "D1".into(),
            vehicle: None
        }))
    );
    let r = run(
        &d,
        None,
        r#"{"data":{"device_id":"D1"},"metadata":{"operation":"insert"}}"#,
    );
    assert_eq!(r.unwrap_err().reason, RejectReason::MissingId);
}

#[test]
fn device_keyed_telemetry_carries_the_device_id() {
    let d = decoder(
        TopicKind::Position,
        TopicFormat::Plain,
        &[
            ("device", "device_id"),
            ("lat", "gps.lat"),
            ("lng", "gps.lng"),
        ],
    );
    assert!(d.device_keyed());
    let Ok(Decoded::Position(p)) = run(
        &d,
        Some("ignored-key"),
        r#"{"device_id":"D7","gps":{"lat":37.5,"lng":127.0}}"#,
    ) else {
        panic!()
    };
    assert_eq!(p.vehicle, "D7");
    assert!(!carinfo().device_keyed());
}

#[test]
fn a_shared_topic_skips_what_a_message_does_not_carry() {
    let pos = decoder(
        TopicKind::Position,
        TopicFormat::Plain,
        &[("lat", "gps.lat"), ("lng", "gps.lng")],
    )
    .with_shared(true);
    let status = decoder(
        TopicKind::Status,
        TopicFormat::Plain,
        &[("engine", "engine.state")],
    )
    .with_shared(true);
    let status_only = r#"{"engine":{"state":"on"}}"#;
    let gps_only = r#"{"gps":{"lat":1,"lng":2}}"#;
    assert_eq!(run(&pos, Some("c"), status_only), Ok(Decoded::Tombstone));
    assert!(matches!(
        run(&pos, Some("c"), gps_only),
        Ok(Decoded::Position(_))
    ));
    assert_eq!(run(&status, Some("c"), gps_only), Ok(Decoded::Tombstone));
    assert!(matches!(
        run(&status, Some("c"), status_only),
        Ok(Decoded::Status(_))
    ));
    // A broken coordinate is still an error, shared or not.
    let r = run(&pos, Some("c"), r#"{"gps":{"lat":95,"lng":2}}"#).unwrap_err();
    assert_eq!(r.reason, RejectReason::LatOutOfRange);
    // Unshared, a message without coordinates is rejected as before.
    let alone = decoder(TopicKind::Position, TopicFormat::Plain, &[]);
    let r = run(&alone, Some("c"), status_only).unwrap_err();
    assert_eq!(r.reason, RejectReason::MissingCoordinates);
}

#[test]
fn a_snooze_on_the_ack_topic_is_read_as_one() {
    let d = decoder(TopicKind::Ack, TopicFormat::Plain, &[]);
    let z = fleet_model::Snooze {
        snooze: fleet_model::SnoozeKind::Rule,
        target: "harsh_braking".into(),
        until: 1_900_000_000_000,
        operator: "olga".into(),
        ts: 1_800_000_000_000,
    };
    let msg = serde_json::to_string(&z).unwrap();
    assert_eq!(run(&d, Some(&z.key()), &msg), Ok(Decoded::Snooze(z)));
    let r = run(
        &d,
        None,
        r#"{"snooze":"depot","target":"x","until":1,"operator":"o"}"#,
    );
    assert_eq!(r.unwrap_err().reason, RejectReason::InvalidField);
}

#[test]
fn a_dms_tables_shape_is_its_row_not_the_envelope() {
    let d = carinfo();
    let shape = |payload: &str| {
        d.decode_shaped(
            RawMessage {
                key: None,
                payload: Some(payload.as_bytes()),
                kafka_ts_ms: Some(1_000_000_000_000),
            },
            2_000_000_000_000,
        )
        .1
    };
    // The full load and an ongoing change of the same row: DMS adds transaction-id (and a
    // before-image when configured) to changes only. Same table schema, same shape.
    let load = shape(
        r#"{"data":{"car_id":"c1","car_number":"12가3456"},"metadata":{"operation":"load","record-type":"data"}}"#,
    );
    let update = shape(
        r#"{"data":{"car_id":"c1","car_number":"34나5678"},"before-image":{"car_number":"12가3456"},
            "metadata":{"operation":"update","record-type":"data","transaction-id":12345}}"#,
    );
    assert!(load.is_some());
    assert_eq!(load, update);
    // A new column is a new shape.
    let wider = shape(
        r#"{"data":{"car_id":"c1","car_number":"1","ev":true},"metadata":{"operation":"insert","transaction-id":7}}"#,
    );
    assert_ne!(load, wider);
    // Control records have no table shape.
    assert_eq!(
        shape(r#"{"data":{},"metadata":{"record-type":"control","operation":"create-table"}}"#),
        None
    );
    // The registry's paths are the row's columns.
    let paths: Vec<String> = crate::schema::fields_of_payload(
        br#"{"data":{"car_id":"c1","car_number":"1"},"metadata":{"operation":"load"}}"#,
        true,
    )
    .unwrap()
    .into_iter()
    .map(|f| f.path)
    .collect();
    assert_eq!(paths, ["car_id", "car_number"]);
}
