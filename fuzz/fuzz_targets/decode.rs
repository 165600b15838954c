//! Arbitrary key + payload bytes through a decoder of every topic kind, with the default and
//! a nested field mapping. Decoding must never panic, and whatever it accepts must satisfy
//! SPEC §2/§7 (coordinates in range and finite, ids and timestamps checked).
//!
//! Input layout: `KEY \n PAYLOAD`; without a newline there is no key and the whole input is
//! the payload (the seeds in corpus/decode are readable this way).
#![no_main]

use std::collections::BTreeMap;
use std::sync::LazyLock;

use fleet_core::config::{TopicConfig, TopicFormat};
use fleet_core::decode::{
    DEFAULT_MAX_FUTURE_SKEW_MS, Decoded, Decoder, MIN_TS_MS, RawMessage, check_id,
};
use fleet_model::TopicKind;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const NOW_MS: i64 = 1_700_000_000_000;

const KINDS: [TopicKind; 6] = [
    TopicKind::Position,
    TopicKind::Status,
    TopicKind::Info,
    TopicKind::Alert,
    TopicKind::Ack,
    TopicKind::Device,
];

/// A nested mapping per kind, so dotted-path lookups and `$key` mappings are exercised too.
fn nested(kind: TopicKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        TopicKind::Position => &[
            ("id", "vehicle.id"),
            ("lat", "pos.lat"),
            ("lng", "pos.lng"),
            ("ts", "meta.ts"),
            ("speed", "pos.speed"),
            ("heading", "pos.heading"),
        ],
        TopicKind::Status => &[("id", "id"), ("ts", "meta.ts"), ("engine", "engine.on")],
        TopicKind::Info => &[("id", "id"), ("plate", "vehicle.plate")],
        TopicKind::Alert => &[("id", "$key"), ("vehicle", "car.id"), ("ts", "at")],
        TopicKind::Ack => &[("alert_id", "alert.id"), ("operator", "by.name")],
        TopicKind::Device => &[("id", "device_id"), ("vehicle", "car_id")],
    }
}

static DECODERS: LazyLock<Vec<Decoder>> = LazyLock::new(|| {
    let mut out = Vec::new();
    for kind in KINDS {
        for (fields, format) in [
            (&[][..], TopicFormat::Plain),
            (nested(kind), TopicFormat::Plain),
            (nested(kind), TopicFormat::Dms),
        ] {
            let topic = TopicConfig {
                name: format!("fuzz.{}", kind.as_str()),
                kind,
                fields: fields
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                    .collect::<BTreeMap<_, _>>(),
                format,
            };
            out.push(Decoder::new(&topic));
        }
    }
    out
});

fn check_ts_ok(ts: i64) {
    assert!(
        (MIN_TS_MS..=NOW_MS + DEFAULT_MAX_FUTURE_SKEW_MS).contains(&ts),
        "accepted ts {ts}"
    );
}

fn check(decoded: &Decoded) {
    match decoded {
        Decoded::Position(p) => {
            assert!(check_id(&p.vehicle).is_ok(), "accepted id {:?}", p.vehicle);
            assert!(p.lat.is_finite() && p.lat.abs() <= 90.0, "lat {}", p.lat);
            assert!(p.lng.is_finite() && p.lng.abs() <= 180.0, "lng {}", p.lng);
            check_ts_ok(p.ts_ms);
            assert!(p.speed.is_none_or(f64::is_finite));
            // rem_euclid may round a tiny negative heading up to exactly 360.0.
            assert!(p.heading.is_none_or(|h| (0.0..=360.0).contains(&h)));
        }
        Decoded::Status(s) => {
            assert!(check_id(&s.vehicle).is_ok(), "accepted id {:?}", s.vehicle);
            check_ts_ok(s.ts_ms);
            let fields: Value = serde_json::from_str(&s.fields).expect("status fields are JSON");
            assert!(fields.is_object());
        }
        Decoded::Info(i) => {
            assert!(check_id(&i.vehicle).is_ok(), "accepted id {:?}", i.vehicle);
            let extra: Value = serde_json::from_str(&i.extra).expect("info extra is JSON");
            assert!(extra.is_object());
        }
        Decoded::Alert(a) => {
            assert!(check_id(&a.id).is_ok() && check_id(&a.vehicle).is_ok());
            check_ts_ok(a.ts_ms);
        }
        Decoded::Ack(a) => {
            assert!(check_id(&a.alert_id).is_ok());
            check_ts_ok(a.ts);
        }
        Decoded::InfoDelete(id) => assert!(check_id(id).is_ok(), "accepted id {id:?}"),
        Decoded::Device(d) => {
            assert!(check_id(&d.device).is_ok(), "accepted id {:?}", d.device);
            assert!(d.vehicle.as_deref().is_none_or(|v| check_id(v).is_ok()));
        }
        Decoded::Snooze(z) => {
            assert!(check_id(&z.target).is_ok());
            check_ts_ok(z.ts);
        }
        Decoded::Tombstone => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let (key, payload) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (Some(&data[..i]), &data[i + 1..]),
        None => (None, data),
    };
    for decoder in DECODERS.iter() {
        for kafka_ts_ms in [None, Some(NOW_MS - 5_000)] {
            let msg = RawMessage {
                key,
                payload: Some(payload),
                kafka_ts_ms,
            };
            if let Ok(decoded) = decoder.decode(msg, NOW_MS) {
                check(&decoded);
            }
        }
        // A tombstone with this key: fine for compacted kinds, rejected for the others.
        let msg = RawMessage {
            key,
            payload: None,
            kafka_ts_ms: None,
        };
        let _ = decoder.decode(msg, NOW_MS);
    }
});
