//! The CDC shape of SOCAR's pipeline (`fleetctl sim --cdc`, SPEC §8): car and device tables as
//! AWS DMS change envelopes, two or three devices per car, and one device-keyed telemetry
//! message carrying both the position and the status, whose firmware gains nested fields at a
//! chosen time (so a drift notice appears).
//!
//! It reshapes what [`super::Fleet`] generates instead of generating anew, so the vehicles
//! drive exactly as in the plain shape and the output stays deterministic for a seed.

use super::SimMessage;
use crate::config::{TopicConfig, TopicFormat};
use fleet_model::TopicKind;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};

/// Device kinds a car carries, in order: every car has the first two, some the third.
const DEVICE_TYPES: [&str; 3] = ["gps", "obd", "dashcam"];

/// The firmware version before and after the change.
const FIRMWARE: [&str; 2] = ["1.8.4", "2.0.1"];

/// Reshapes plain simulator messages into the CDC shape.
#[derive(Debug)]
pub(crate) struct CdcShaper {
    /// Sim time (ms) from which telemetry carries the new firmware's fields.
    firmware_at_ms: Option<i64>,
    /// Devices per car; `None` = two, three on every third car.
    devices_per_car: Option<usize>,
    cars: HashMap<String, Car>,
    next_device: u32,
}

#[derive(Debug, Default)]
struct Car {
    devices: Vec<String>,
    turn: usize,
    gps: Option<Value>,
    engine: Option<Value>,
    body: Option<Value>,
}

impl CdcShaper {
    pub(crate) fn new(firmware_at_ms: Option<i64>, devices_per_car: Option<u32>) -> Self {
        CdcShaper {
            firmware_at_ms,
            devices_per_car: devices_per_car.map(|n| (n as usize).clamp(1, DEVICE_TYPES.len())),
            cars: HashMap::new(),
            next_device: 1,
        }
    }

    /// Replaces `msgs` by their CDC shape.
    pub(crate) fn reshape(&mut self, msgs: &mut Vec<SimMessage>) {
        let plain = std::mem::take(msgs);
        for m in plain {
            self.shape(m, msgs);
        }
    }

    fn shape(&mut self, m: SimMessage, out: &mut Vec<SimMessage>) {
        let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(&m.payload) else {
            return;
        };
        match m.kind {
            TopicKind::Info => self.car_info(&m, &obj, out),
            TopicKind::Position => {
                let car = self.car(&m.key, m.ts_ms, out);
                car.gps = Some(json!({
                    "lat": obj.get("lat"),
                    "lng": obj.get("lng"),
                    "speed": obj.get("speed"),
                    "heading": obj.get("heading"),
                }));
                out.push(self.telemetry(&m.key, m.ts_ms));
            }
            TopicKind::Status => {
                let car = self.car(&m.key, m.ts_ms, out);
                let detail = obj.get("engine_detail");
                car.engine = Some(json!({
                    "state": obj.get("engine"),
                    "rpm": detail.and_then(|d| d.get("rpm")),
                    "temp_c": detail.and_then(|d| d.get("temp_c")),
                    "fuel": obj.get("fuel"),
                    "battery": obj.get("battery"),
                }));
                car.body = Some(json!({
                    "doors": obj.get("doors"),
                    "headlights": obj.get("headlights"),
                }));
                out.push(self.telemetry(&m.key, m.ts_ms));
            }
            _ => out.push(m),
        }
    }

    /// The car's `carinfo` row and its devices' `deviceinfo` rows (DMS full load).
    fn car_info(&mut self, m: &SimMessage, info: &Map<String, Value>, out: &mut Vec<SimMessage>) {
        // A car already published changes by an ongoing-replication update, as DMS sends it.
        let operation = if self.cars.contains_key(&m.key) {
            "update"
        } else {
            "load"
        };
        out.push(SimMessage {
            kind: TopicKind::Info,
            key: m.key.clone(),
            payload: envelope(
                "carinfo",
                operation,
                m.ts_ms,
                json!({
                    "car_id": m.key,
                    "car_number": info.get("plate"),
                    "car_name": info.get("model"),
                    "driver_name": info.get("driver"),
                    "region": info.get("group"),
                    "year": info.get("year"),
                }),
            ),
            ts_ms: m.ts_ms,
        });
        self.car(&m.key, m.ts_ms, out);
    }

    /// The car's state, creating it (and publishing its devices) on first sight.
    fn car(&mut self, id: &str, ts_ms: i64, out: &mut Vec<SimMessage>) -> &mut Car {
        if !self.cars.contains_key(id) {
            // Two devices, a third (dashcam) on every third car: deterministic per fleet.
            let n = self
                .devices_per_car
                .unwrap_or(if self.cars.len() % 3 == 2 { 3 } else { 2 });
            let mut car = Car::default();
            for kind in &DEVICE_TYPES[..n] {
                let device = format!("DEV{:07}", self.next_device);
                self.next_device += 1;
                out.push(SimMessage {
                    kind: TopicKind::Device,
                    key: device.clone(),
                    payload: envelope(
                        "deviceinfo",
                        "load",
                        ts_ms,
                        json!({"device_id": device, "car_id": id, "device_type": kind}),
                    ),
                    ts_ms,
                });
                car.devices.push(device);
            }
            self.cars.insert(id.to_string(), car);
        }
        self.cars.get_mut(id).expect("inserted above")
    }

    /// One device-keyed message with the car's latest position and status; the car's devices
    /// take turns sending it.
    fn telemetry(&mut self, id: &str, ts_ms: i64) -> SimMessage {
        let upgraded = self.firmware_at_ms.is_some_and(|at| ts_ms >= at);
        let car = self.cars.get_mut(id).expect("car() ran first");
        let device = car.devices[car.turn % car.devices.len()].clone();
        car.turn += 1;
        let mut msg = Map::new();
        msg.insert("device_id".into(), json!(device));
        msg.insert("ts".into(), json!(ts_ms));
        msg.insert("fw".into(), json!(FIRMWARE[usize::from(upgraded)]));
        for (name, part) in [
            ("gps", &car.gps),
            ("engine", &car.engine),
            ("body", &car.body),
        ] {
            if let Some(v) = part {
                msg.insert(name.into(), v.clone());
            }
        }
        if upgraded {
            // Firmware 2.0 reports tyre pressures and driver assistance (nested, new paths).
            let bar = 2.2 + (ts_ms / 1000 % 4) as f64 * 0.05;
            msg.insert(
                "tpms".into(),
                json!({"fl": bar, "fr": bar, "rl": bar - 0.1, "rr": bar - 0.1}),
            );
            msg.insert(
                "adas".into(),
                json!({"lane_departure": false, "forward_collision": false}),
            );
        }
        SimMessage {
            kind: TopicKind::Position,
            key: device,
            payload: serde_json::to_vec(&Value::Object(msg)).unwrap_or_default(),
            ts_ms,
        }
    }
}

/// An AWS DMS change record as DMS writes it to Kafka (ongoing changes, unlike the full
/// load, carry a `transaction-id`).
fn envelope(table: &str, operation: &str, ts_ms: i64, data: Value) -> Vec<u8> {
    let ts = chrono::DateTime::from_timestamp_millis(ts_ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default();
    let mut metadata = json!({
        "timestamp": ts,
        "record-type": "data",
        "operation": operation,
        "partition-key-type": "primary-key",
        "schema-name": "socar",
        "table-name": table,
    });
    if operation != "load" {
        metadata["transaction-id"] = json!(ts_ms);
    }
    serde_json::to_vec(&json!({ "data": data, "metadata": metadata })).unwrap_or_default()
}

/// Topic names of the CDC shape.
pub const CARINFO_TOPIC: &str = "carinfo";
/// Device table topic.
pub const DEVICEINFO_TOPIC: &str = "deviceinfo";
/// Device-keyed telemetry topic.
pub const TELEMETRY_TOPIC: &str = "cars.telemetry.json";

/// How fleetdash reads the CDC shape (the README's SOCAR example says the same in TOML, and
/// a test holds them equal): carinfo and deviceinfo as DMS tables, the telemetry topic as
/// both position and status, plus the alerts and acks topics.
pub fn cdc_topics() -> Vec<TopicConfig> {
    let mut topics = cdc_mapping(CARINFO_TOPIC, DEVICEINFO_TOPIC, TELEMETRY_TOPIC);
    topics.push(TopicConfig::new("fleet.alerts.json", TopicKind::Alert));
    topics.push(TopicConfig::new("fleet.alert-acks.json", TopicKind::Ack));
    topics
}

/// The CDC shape's four topic entries on the given topic names (the benchmark names its
/// topics per run): the one place the mapping from SOCAR's columns is spelled.
pub fn cdc_mapping(carinfo: &str, deviceinfo: &str, telemetry: &str) -> Vec<TopicConfig> {
    let topic = |name: &str, kind, format, fields: &[(&str, &str)]| TopicConfig {
        name: name.into(),
        kind,
        format,
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect::<BTreeMap<_, _>>(),
    };
    vec![
        topic(
            carinfo,
            TopicKind::Info,
            TopicFormat::Dms,
            &[
                ("id", "car_id"),
                ("plate", "car_number"),
                ("model", "car_name"),
                ("driver", "driver_name"),
                ("group", "region"),
            ],
        ),
        topic(
            deviceinfo,
            TopicKind::Device,
            TopicFormat::Dms,
            &[("id", "device_id"), ("vehicle", "car_id")],
        ),
        topic(
            telemetry,
            TopicKind::Position,
            TopicFormat::Plain,
            &[
                ("device", "device_id"),
                ("lat", "gps.lat"),
                ("lng", "gps.lng"),
                ("speed", "gps.speed"),
                ("heading", "gps.heading"),
            ],
        ),
        topic(
            telemetry,
            TopicKind::Status,
            TopicFormat::Plain,
            &[
                ("device", "device_id"),
                ("engine", "engine.state"),
                ("doors", "body.doors"),
                ("headlights", "body.headlights"),
                ("speed", "gps.speed"),
                ("fuel", "engine.fuel"),
                ("battery", "engine.battery"),
            ],
        ),
    ]
}

#[cfg(test)]
mod mapping_tests {
    use super::*;
    use crate::config::topics_toml;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct File {
        kafka: Kafka,
    }
    #[derive(Deserialize)]
    struct Kafka {
        topics: Vec<TopicConfig>,
    }

    fn topics_of(text: &str) -> Vec<TopicConfig> {
        toml::from_str::<File>(text).expect("parses").kafka.topics
    }

    #[test]
    fn the_readmes_socar_example_is_the_mapping_the_simulator_and_demo_use() {
        let readme = include_str!("../../../../README.md");
        let start = readme
            .find("```toml\n[[kafka.topics]]\nname = \"carinfo\"")
            .expect("the SOCAR example in the README")
            + "```toml\n".len();
        let block = &readme[start..];
        let block = &block[..block.find("```").expect("the example's end")];
        assert_eq!(
            topics_of(block),
            cdc_mapping(CARINFO_TOPIC, DEVICEINFO_TOPIC, TELEMETRY_TOPIC)
        );
    }

    #[test]
    fn written_topics_read_back_the_same() {
        let topics = cdc_topics();
        let text = topics_toml(&topics);
        assert!(text.contains("[[kafka.topics]]"), "{text}");
        assert!(
            !text.lines().any(|l| l.trim() == "[kafka]"),
            "only topic tables, so the text can follow another [kafka] table: {text}"
        );
        assert_eq!(topics_of(&text), topics);
    }
}
