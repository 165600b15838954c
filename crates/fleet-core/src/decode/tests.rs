use super::*;
use std::collections::BTreeMap;

fn decoder(kind: TopicKind, fields: &[(&str, &str)]) -> Decoder {
    Decoder::new(&TopicConfig {
        name: "t".into(),
        kind,
        fields: fields
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<BTreeMap<_, _>>(),
        format: Default::default(),
    })
}

fn run(d: &Decoder, key: Option<&str>, payload: &[u8]) -> Result<Decoded, Rejection> {
    d.decode(
        RawMessage {
            key: key.map(str::as_bytes),
            payload: Some(payload),
            kafka_ts_ms: Some(1_000_000_000_000),
        },
        2_000_000_000_000,
    )
}

fn reason(d: &Decoder, payload: &[u8]) -> RejectReason {
    run(d, Some("car-1"), payload).unwrap_err().reason
}

#[test]
fn position_with_and_without_ts() {
    let d = decoder(TopicKind::Position, &[]);
    let Decoded::Position(p) = run(&d, Some("car-1"), br#"{"lat":37.51,"lng":127.03}"#).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (p.vehicle.as_str(), p.lat, p.lng, p.ts_ms),
        ("car-1", 37.51, 127.03, 1_000_000_000_000)
    );
    let Decoded::Position(p) = run(
        &d,
        Some("car-1"),
        br#"{"lat":1,"lng":2,"ts":"2023-11-14T22:13:20Z","speed":40,"heading":-90}"#,
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(p.ts_ms, 1_700_000_000_000);
    assert_eq!(p.speed, Some(40.0));
    assert_eq!(p.heading, Some(270.0));
}

#[test]
fn position_custom_mapping() {
    let d = decoder(
        TopicKind::Position,
        &[
            ("id", "device.id"),
            ("lat", "pos.y"),
            ("lng", "pos.x"),
            ("ts", "time"),
        ],
    );
    let Decoded::Position(p) = run(
        &d,
        None,
        br#"{"device":{"id":"v9"},"pos":{"x":10.5,"y":-3.25},"time":1700000000000}"#,
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!((p.vehicle.as_str(), p.lat, p.lng), ("v9", -3.25, 10.5));
}

#[test]
fn every_malformed_kind_is_rejected_with_its_reason() {
    let d = decoder(TopicKind::Position, &[]);
    assert_eq!(reason(&d, b"not json"), RejectReason::NotJson);
    assert_eq!(reason(&d, b"[1,2]"), RejectReason::NotJson);
    assert_eq!(reason(&d, &[0xff, 0xfe, b'{']), RejectReason::NotUtf8);
    assert_eq!(
        reason(&d, br#"{"lng":1}"#),
        RejectReason::MissingCoordinates
    );
    assert_eq!(
        reason(&d, br#"{"lat":"north","lng":1}"#),
        RejectReason::InvalidCoordinates
    );
    assert_eq!(
        reason(&d, br#"{"lat":91,"lng":1}"#),
        RejectReason::LatOutOfRange
    );
    assert_eq!(
        reason(&d, br#"{"lat":-90.5,"lng":1}"#),
        RejectReason::LatOutOfRange
    );
    assert_eq!(
        reason(&d, br#"{"lat":1,"lng":180.01}"#),
        RejectReason::LngOutOfRange
    );
    assert_eq!(
        reason(&d, br#"{"lat":NaN,"lng":1}"#),
        RejectReason::NonFinite
    );
    assert_eq!(
        reason(&d, br#"{"lat":"NaN","lng":1}"#),
        RejectReason::NonFinite
    );
    assert_eq!(
        reason(&d, br#"{"lat":1,"lng":"inf"}"#),
        RejectReason::NonFinite
    );
    assert_eq!(
        reason(&d, br#"{"lat":1,"lng":2,"ts":"soon"}"#),
        RejectReason::InvalidTimestamp
    );
    let big = format!(r#"{{"lat":1,"lng":2,"pad":"{}"}}"#, "x".repeat(MAX_PAYLOAD));
    assert_eq!(reason(&d, big.as_bytes()), RejectReason::Oversized);
    assert_eq!(
        run(&d, None, br#"{"lat":1,"lng":2}"#).unwrap_err().reason,
        RejectReason::MissingId
    );
    // exactly ±90 / ±180 are valid
    assert!(run(&d, Some("c"), br#"{"lat":-90,"lng":180}"#).is_ok());
}

#[test]
fn status_flattens_and_normalises() {
    let d = decoder(TopicKind::Status, &[]);
    let Decoded::Status(s) = run(&d, Some("car-2"), br#"{"engine":"off","doors":"closed","headlights":true,"battery":"12.5","engine_detail":{"rpm":0}}"#).unwrap() else { panic!() };
    assert_eq!(s.known.engine_on, Some(false));
    assert_eq!(s.known.doors_open, Some(false));
    assert_eq!(s.known.headlights_on, Some(true));
    assert_eq!(s.known.battery, Some(12.5));
    let fields: serde_json::Value = serde_json::from_str(&s.fields).unwrap();
    assert_eq!(fields["engine_detail.rpm"], serde_json::json!(0));
}

#[test]
fn info_alert_ack() {
    let d = decoder(TopicKind::Info, &[]);
    let Decoded::Info(i) = run(
        &d,
        Some("car-3"),
        br#"{"plate":"12A3456","model":"Ioniq 5","driver":"Kim","group":"north","seats":5}"#,
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(i.plate.as_deref(), Some("12A3456"));
    assert_eq!(i.extra, r#"{"seats":5}"#);
    let d = decoder(TopicKind::Alert, &[]);
    let Decoded::Alert(a) = run(&d, Some("k"), br#"{"id":"up-1","vehicle":"car-3","rule":"crash","severity":"critical","message":"boom","ts":1700000000000}"#).unwrap() else { panic!() };
    assert_eq!(
        (a.id.as_str(), a.severity, a.state),
        ("up-1", Severity::Critical, AlertState::Open)
    );
    assert_eq!(
        reason(&d, br#"{"id":"x","vehicle":"v","severity":"apocalyptic"}"#),
        RejectReason::InvalidField
    );
    let d = decoder(TopicKind::Ack, &[]);
    let Decoded::Ack(k) = run(
        &d,
        Some("up-1"),
        br#"{"operator":"bob","note":"on it","ts":1700000000001}"#,
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(
        (k.alert_id.as_str(), k.operator.as_str(), k.note.as_str()),
        ("up-1", "bob", "on it")
    );
    assert_eq!(
        d.decode(
            RawMessage {
                key: Some(b"x"),
                payload: None,
                kafka_ts_ms: None
            },
            0
        ),
        Ok(Decoded::Tombstone)
    );
}

/// SPEC §7: one message dated in the year 5000 (or 1980) must not pin a vehicle; it is
/// quarantined as `bad_ts`, in every kind that carries a time.
#[test]
fn timestamps_out_of_bounds_are_bad_ts() {
    let d = decoder(TopicKind::Position, &[]);
    // now = 2033 (see `run`); year 5000 as ms and as RFC 3339, and 1980.
    for ts in [
        "95617584000000",
        "\"5000-01-01T00:00:00Z\"",
        "315532800000",
        "\"1980-01-01T00:00:00Z\"",
        "2000000301000",
    ] {
        let payload = format!(r#"{{"lat":1,"lng":2,"ts":{ts}}}"#);
        assert_eq!(reason(&d, payload.as_bytes()), RejectReason::BadTs, "{ts}");
    }
    // Within the skew (299 s ahead) and exactly 2000-01-01 are fine.
    for ts in ["2000000299000", "946684800000"] {
        let payload = format!(r#"{{"lat":1,"lng":2,"ts":{ts}}}"#);
        assert!(run(&d, Some("car-1"), payload.as_bytes()).is_ok(), "{ts}");
    }
    // The skew is configurable.
    let strict = decoder(TopicKind::Position, &[]).with_max_future_skew_ms(1_000);
    assert_eq!(
        reason(&strict, br#"{"lat":1,"lng":2,"ts":2000000002000}"#),
        RejectReason::BadTs
    );
    // A message without ts takes the Kafka timestamp, which is checked as well.
    let s = decoder(TopicKind::Status, &[]);
    let out = s.decode(
        RawMessage {
            key: Some(b"car-1"),
            payload: Some(br#"{"engine":"on"}"#),
            kafka_ts_ms: Some(95_617_584_000_000),
        },
        2_000_000_000_000,
    );
    assert_eq!(out.unwrap_err().reason, RejectReason::BadTs);
    let a = decoder(TopicKind::Alert, &[]);
    assert_eq!(
        reason(
            &a,
            br#"{"id":"a1","vehicle":"car-1","ts":"5000-01-01T00:00:00Z"}"#
        ),
        RejectReason::BadTs
    );
}

/// SPEC §7: ids over 256 bytes or with control characters are `bad_id`.
#[test]
fn oversized_and_control_ids_are_bad_id() {
    let d = decoder(TopicKind::Position, &[]);
    let long = "x".repeat(257);
    let out = run(&d, Some(&long), br#"{"lat":1,"lng":2}"#);
    assert_eq!(out.unwrap_err().reason, RejectReason::BadId);
    let out = run(&d, Some("car\n1"), br#"{"lat":1,"lng":2}"#);
    assert_eq!(out.unwrap_err().reason, RejectReason::BadId);
    assert!(run(&d, Some(&"x".repeat(256)), br#"{"lat":1,"lng":2}"#).is_ok());
    let mapped = decoder(TopicKind::Position, &[("id", "car")]);
    assert_eq!(
        reason(&mapped, br#"{"car":"a\u0000b","lat":1,"lng":2}"#),
        RejectReason::BadId
    );
    let a = decoder(TopicKind::Alert, &[]);
    assert_eq!(
        reason(
            &a,
            format!(r#"{{"id":"{long}","vehicle":"car-1"}}"#).as_bytes()
        ),
        RejectReason::BadId
    );
}

/// Found by `./dev fuzz decode`: a heading of -1e-20 came out as 360.0, outside [0, 360).
#[test]
fn heading_is_normalised_into_0_360() {
    let d = decoder(TopicKind::Position, &[]);
    let Decoded::Position(p) =
        run(&d, Some("car-1"), br#"{"lat":1,"lng":2,"heading":-1e-20}"#).unwrap()
    else {
        panic!()
    };
    assert_eq!(p.heading, Some(0.0));
}
