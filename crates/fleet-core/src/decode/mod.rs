//! Decoding: raw Kafka bytes + key → a typed sample, or a rejection with a reason.
//!
//! Pure and allocation-light; never panics on input. Every rejection carries a
//! [`RejectReason`] so the quarantine can say why (SPEC §2).

pub mod dms;
pub mod json;
mod snooze;
pub mod ts;

use crate::config::{TopicConfig, TopicFormat, default_fields, optional_fields};
use dms::DmsOp;
use fleet_model::{
    Ack, Alert, AlertState, PositionSample, RejectReason, Severity, Snooze, Source, StatusFields,
    StatusSample, TopicKind, VehicleInfo,
};
use json::{FieldPath, as_f64, as_switch, as_text, flatten, flatten_to_json};
use serde_json::{Map, Value};

/// Largest payload accepted (SPEC §2: oversized > 1 MiB).
pub const MAX_PAYLOAD: usize = 1024 * 1024;

/// Longest id accepted (SPEC §7 `bad_id`): every per-vehicle map is keyed by it.
pub const MAX_ID_BYTES: usize = 256;

/// Earliest timestamp accepted: 2000-01-01T00:00:00Z (SPEC §7 `bad_ts`).
pub const MIN_TS_MS: i64 = 946_684_800_000;

/// Default for `fleet.max_future_skew_s` in ms.
pub const DEFAULT_MAX_FUTURE_SKEW_MS: i64 = 300_000;

/// Checks an id (vehicle, device or alert) against SPEC §7: at most [`MAX_ID_BYTES`] and no
/// control characters. Shared by every source so Kafka and Redis agree on what an id is.
pub fn check_id(id: &str) -> Result<(), Rejection> {
    if id.len() > MAX_ID_BYTES {
        return Err(reject(
            RejectReason::BadId,
            format!("id is {} bytes, limit is {MAX_ID_BYTES}", id.len()),
        ));
    }
    if id.chars().any(char::is_control) {
        return Err(reject(
            RejectReason::BadId,
            format!("id {:?} contains control characters", truncate(id, 40)),
        ));
    }
    Ok(())
}

/// Checks a message time against SPEC §7: not before 2000 and not more than `skew_ms` ahead
/// of the local clock `now_ms`.
pub fn check_ts(ts_ms: i64, now_ms: i64, skew_ms: i64) -> Result<(), Rejection> {
    if ts_ms < MIN_TS_MS {
        return Err(reject(
            RejectReason::BadTs,
            format!("ts {ts_ms} is before 2000-01-01"),
        ));
    }
    if ts_ms > now_ms.saturating_add(skew_ms) {
        return Err(reject(
            RejectReason::BadTs,
            format!(
                "ts {ts_ms} is {} s ahead of the local clock (limit {} s)",
                (ts_ms - now_ms) / 1000,
                skew_ms / 1000
            ),
        ));
    }
    Ok(())
}

fn truncate(s: &str, max: usize) -> &str {
    &s[..s.floor_char_boundary(max)]
}

/// One message as it came off the wire.
#[derive(Debug, Clone, Copy)]
pub struct RawMessage<'a> {
    /// Message key (vehicle or alert id).
    pub key: Option<&'a [u8]>,
    /// Payload; `None` is a tombstone.
    pub payload: Option<&'a [u8]>,
    /// Kafka message timestamp, used when the payload has no `ts`.
    pub kafka_ts_ms: Option<i64>,
}

/// A decoded message.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A position fix.
    Position(PositionSample),
    /// A status message.
    Status(StatusSample),
    /// Vehicle metadata: columns the message carried as null are `Some("")` (cleared), columns
    /// it did not carry are `None` (kept): info topics merge column by column (SPEC §8).
    Info(VehicleInfo),
    /// The vehicle's record was deleted upstream (a DMS `delete`).
    InfoDelete(String),
    /// A device → vehicle mapping, or its removal (`vehicle: None`).
    Device(DeviceMapping),
    /// An upstream alert (or an upstream resolution when `state` says so).
    Alert(Alert),
    /// An acknowledgement.
    Ack(Ack),
    /// A snooze, read from the ack topic.
    Snooze(Snooze),
    /// A null payload on a compacted topic: nothing to do, not an error.
    Tombstone,
}

/// One row of a `device` topic (SPEC §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceMapping {
    /// The device id telemetry is keyed by.
    pub device: String,
    /// Its vehicle; `None` when the mapping was deleted.
    pub vehicle: Option<String>,
}

/// Why a message could not be used.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// Stable reason code.
    pub reason: RejectReason,
    /// One line for the operator (`lat 95.2 is outside ±90`).
    pub detail: String,
}

fn reject(reason: RejectReason, detail: impl Into<String>) -> Rejection {
    Rejection {
        reason,
        detail: detail.into(),
    }
}

/// The compiled handler for one topic.
#[derive(Debug, Clone)]
pub struct Decoder {
    kind: TopicKind,
    paths: Vec<(&'static str, FieldPath)>,
    max_future_skew_ms: i64,
    format: TopicFormat,
    /// `fields.device`: the message is keyed by this device id, not by a vehicle id.
    device: Option<FieldPath>,
    /// The topic is also read by a decoder of the other telemetry kind (SPEC §8): a message
    /// that carries nothing of this kind is not an error here.
    shared: bool,
}

impl Decoder {
    /// Compiles a topic's field mapping, filling in the kind's defaults.
    pub fn new(topic: &TopicConfig) -> Self {
        let paths = default_fields(topic.kind)
            .iter()
            .map(|(name, default)| {
                let spec = topic
                    .fields
                    .get(*name)
                    .map(String::as_str)
                    .unwrap_or(default);
                (*name, FieldPath::parse(spec))
            })
            .collect();
        let device = optional_fields(topic.kind)
            .iter()
            .find(|n| **n == "device")
            .and_then(|n| topic.fields.get(*n))
            .map(|spec| FieldPath::parse(spec));
        Self {
            kind: topic.kind,
            paths,
            max_future_skew_ms: DEFAULT_MAX_FUTURE_SKEW_MS,
            format: topic.format,
            device,
            shared: false,
        }
    }

    /// Marks the topic as read by a `position` and a `status` decoder both.
    pub fn with_shared(mut self, shared: bool) -> Self {
        self.shared = shared;
        self
    }

    /// Whether the ids this decoder yields are device ids (`fields.device`), to be mapped to
    /// their vehicles by the engine.
    pub fn device_keyed(&self) -> bool {
        self.device.is_some()
    }

    /// Whether messages come in DMS envelopes (their schema is the `data` row).
    pub fn is_dms(&self) -> bool {
        self.format == TopicFormat::Dms
    }

    /// Sets how far ahead of the local clock a timestamp may be (`fleet.max_future_skew_s`).
    pub fn with_max_future_skew_ms(mut self, ms: i64) -> Self {
        self.max_future_skew_ms = ms;
        self
    }

    /// The kind this decoder handles.
    pub fn kind(&self) -> TopicKind {
        self.kind
    }

    fn path(&self, name: &str) -> &FieldPath {
        // Every name asked for is in default_fields(kind); the fallback keeps this total.
        static NONE: FieldPath = FieldPath::Key;
        self.paths
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| p)
            .unwrap_or(&NONE)
    }

    fn get<'a>(&self, name: &str, obj: &'a Map<String, Value>) -> Option<&'a Value> {
        self.path(name).lookup(obj)
    }

    fn absent(&self, name: &str, obj: &Map<String, Value>) -> bool {
        self.get(name, obj).is_none_or(Value::is_null)
    }

    /// The text of a field, or of the key when the field is mapped to `$key` (or absent and
    /// the key exists, for id-like fields).
    fn text_or_key(
        &self,
        name: &str,
        obj: &Map<String, Value>,
        key: Option<&str>,
    ) -> Option<String> {
        match self.path(name) {
            FieldPath::Key => key.map(str::to_string),
            p => p
                .lookup(obj)
                .and_then(as_text)
                .or_else(|| key.map(str::to_string)),
        }
    }

    fn timestamp(
        &self,
        obj: &Map<String, Value>,
        msg: &RawMessage,
        now_ms: i64,
    ) -> Result<i64, Rejection> {
        let ts = match self.get("ts", obj) {
            Some(Value::Null) | None => msg.kafka_ts_ms.filter(|t| *t > 0).unwrap_or(now_ms),
            Some(v) => ts::parse_ts(v).map_err(|_| {
                reject(
                    RejectReason::InvalidTimestamp,
                    format!("ts {} is neither ms-epoch nor RFC 3339", short(v)),
                )
            })?,
        };
        check_ts(ts, now_ms, self.max_future_skew_ms)?;
        Ok(ts)
    }

    /// Decodes one message. `now_ms` is the arrival time (fallback timestamp).
    pub fn decode(&self, msg: RawMessage, now_ms: i64) -> Result<Decoded, Rejection> {
        self.decode_shaped(msg, now_ms).0
    }

    /// [`Decoder::decode`], plus the message's shape hash ([`crate::schema::shape_hash`])
    /// when it was a JSON object, decoded or not: a firmware change that renames a field
    /// shows in the schema registry even while its messages are rejected.
    pub fn decode_shaped(
        &self,
        msg: RawMessage,
        now_ms: i64,
    ) -> (Result<Decoded, Rejection>, Option<u64>) {
        match self.parse(&msg) {
            Ok(Some((obj, key))) => self.decode_object(&obj, key, &msg, now_ms),
            Ok(None) => (Ok(Decoded::Tombstone), None),
            Err(r) => (Err(r), None),
        }
    }

    /// [`Decoder::decode_shaped`] of a message already parsed ([`Decoder::parse`]): a topic
    /// read both as positions and as status parses each message once for both readings.
    pub fn decode_object(
        &self,
        obj: &Map<String, Value>,
        key: Option<&str>,
        msg: &RawMessage,
        now_ms: i64,
    ) -> (Result<Decoded, Rejection>, Option<u64>) {
        // A DMS table's shape is its row (`data`): the envelope's metadata differs between
        // the full load and ongoing changes (`transaction-id`, `before-image`) and is not
        // the table's schema, so it must not raise drift notices.
        let obj = match self.format {
            TopicFormat::Plain => obj,
            TopicFormat::Dms => match dms::unwrap(obj) {
                Ok((data, DmsOp::Upsert)) => data,
                Ok((data, DmsOp::Delete)) => {
                    let shape = crate::schema::shape_hash(data);
                    return (self.deleted(data, key), Some(shape));
                }
                Ok((_, DmsOp::Control)) => return (Ok(Decoded::Tombstone), None),
                Err(r) => return (Err(r), None),
            },
        };
        let shape = crate::schema::shape_hash(obj);
        let decoded = match self.kind {
            TopicKind::Position => self.position(obj, key, msg, now_ms),
            TopicKind::Status => self.status(obj, key, msg, now_ms),
            TopicKind::Info => self.info(obj, key),
            TopicKind::Alert => self.alert(obj, key, msg, now_ms),
            TopicKind::Ack => self.ack(obj, key, msg, now_ms),
            TopicKind::Device => self.device(obj, key),
        };
        (decoded, Some(shape))
    }

    /// The payload as a JSON object and the key as text; `None` for a tombstone the kind
    /// accepts.
    #[allow(clippy::type_complexity)]
    pub fn parse<'a>(
        &self,
        msg: &RawMessage<'a>,
    ) -> Result<Option<(Map<String, Value>, Option<&'a str>)>, Rejection> {
        let Some(payload) = msg.payload else {
            return match self.kind {
                TopicKind::Info | TopicKind::Ack | TopicKind::Alert | TopicKind::Device => Ok(None),
                _ => Err(reject(RejectReason::NotJson, "empty (null) payload")),
            };
        };
        if payload.len() > MAX_PAYLOAD {
            return Err(reject(
                RejectReason::Oversized,
                format!("payload is {} bytes, limit is {MAX_PAYLOAD}", payload.len()),
            ));
        }
        let text = std::str::from_utf8(payload).map_err(|e| {
            reject(
                RejectReason::NotUtf8,
                format!("invalid UTF-8 at byte {}", e.valid_up_to()),
            )
        })?;
        let key = match msg.key {
            Some(k) => Some(
                std::str::from_utf8(k)
                    .map_err(|_| reject(RejectReason::NotUtf8, "message key is not valid UTF-8"))?,
            ),
            None => None,
        }
        .filter(|k| !k.is_empty());
        let value: Value = serde_json::from_str(text).map_err(|e| {
            let reason = if text.contains("NaN") || text.contains("Infinity") {
                RejectReason::NonFinite
            } else {
                RejectReason::NotJson
            };
            reject(reason, format!("not JSON: {e}"))
        })?;
        let Value::Object(obj) = value else {
            return Err(reject(RejectReason::NotJson, "JSON is not an object"));
        };
        Ok(Some((obj, key)))
    }

    /// The record's id: the vehicle's, or on a device-keyed topic the device's.
    fn vehicle_id(&self, obj: &Map<String, Value>, key: Option<&str>) -> Result<String, Rejection> {
        let id = match &self.device {
            Some(FieldPath::Key) => key.map(str::to_string),
            Some(p) => p
                .lookup(obj)
                .and_then(as_text)
                .or_else(|| key.map(str::to_string)),
            None => self.text_or_key("id", obj, key),
        };
        let id = id.ok_or_else(|| {
            reject(
                RejectReason::MissingId,
                "no vehicle id in key or mapped field",
            )
        })?;
        check_id(&id)?;
        Ok(id)
    }

    fn coordinate(
        &self,
        name: &str,
        obj: &Map<String, Value>,
        limit: f64,
        out_of_range: RejectReason,
    ) -> Result<f64, Rejection> {
        let v = self
            .get(name, obj)
            .filter(|v| !v.is_null())
            .ok_or_else(|| {
                reject(
                    RejectReason::MissingCoordinates,
                    format!("{name} is missing"),
                )
            })?;
        let x = as_f64(v).ok_or_else(|| {
            reject(
                RejectReason::InvalidCoordinates,
                format!("{name} {} is not a number", short(v)),
            )
        })?;
        if !x.is_finite() {
            return Err(reject(RejectReason::NonFinite, format!("{name} is {x}")));
        }
        if x.abs() > limit {
            return Err(reject(
                out_of_range,
                format!("{name} {x} is outside ±{limit}"),
            ));
        }
        Ok(x)
    }

    /// An optional number: absent or null is `None`; garbage is ignored rather than fatal,
    /// because a bad speed must not cost us a good position.
    fn optional_number(&self, name: &str, obj: &Map<String, Value>) -> Option<f64> {
        self.get(name, obj)
            .and_then(as_f64)
            .filter(|x| x.is_finite())
    }

    fn position(
        &self,
        obj: &Map<String, Value>,
        key: Option<&str>,
        msg: &RawMessage,
        now_ms: i64,
    ) -> Result<Decoded, Rejection> {
        if self.shared && self.absent("lat", obj) && self.absent("lng", obj) {
            // A status-only message on a topic that carries both (SPEC §8).
            return Ok(Decoded::Tombstone);
        }
        let vehicle = self.vehicle_id(obj, key)?;
        let lat = self.coordinate("lat", obj, 90.0, RejectReason::LatOutOfRange)?;
        let lng = self.coordinate("lng", obj, 180.0, RejectReason::LngOutOfRange)?;
        let ts_ms = self.timestamp(obj, msg, now_ms)?;
        Ok(Decoded::Position(PositionSample {
            vehicle,
            ts_ms,
            lat,
            lng,
            speed: self.optional_number("speed", obj),
            heading: self
                .optional_number("heading", obj)
                // rem_euclid of a tiny negative rounds to exactly 360.0 (found by fuzzing).
                .map(|h| {
                    let h = h.rem_euclid(360.0);
                    if h >= 360.0 { 0.0 } else { h }
                }),
            source: Source::Kafka,
        }))
    }

    fn status(
        &self,
        obj: &Map<String, Value>,
        key: Option<&str>,
        msg: &RawMessage,
        now_ms: i64,
    ) -> Result<Decoded, Rejection> {
        if self.shared
            && ["engine", "doors", "headlights", "fuel", "battery"]
                .iter()
                .all(|n| self.absent(n, obj))
        {
            // A position-only message on a topic that carries both (SPEC §8).
            return Ok(Decoded::Tombstone);
        }
        let vehicle = self.vehicle_id(obj, key)?;
        let ts_ms = self.timestamp(obj, msg, now_ms)?;
        let switch = |name: &str| self.get(name, obj).and_then(as_switch);
        let known = StatusFields {
            engine_on: switch("engine"),
            doors_open: switch("doors"),
            headlights_on: switch("headlights"),
            speed: self.optional_number("speed", obj),
            fuel: self.optional_number("fuel", obj),
            battery: self.optional_number("battery", obj),
        };
        Ok(Decoded::Status(StatusSample {
            vehicle,
            ts_ms,
            known,
            fields: flatten_to_json(obj),
        }))
    }

    fn info(&self, obj: &Map<String, Value>, key: Option<&str>) -> Result<Decoded, Rejection> {
        let vehicle = self.vehicle_id(obj, key)?;
        // Present as null clears the column (`Some("")`); absent keeps it (`None`).
        let text = |name: &str| match self.get(name, obj) {
            Some(Value::Null) => Some(String::new()),
            v => v.and_then(as_text),
        };
        let mut extra = flatten(obj);
        for name in ["plate", "model", "driver", "group"] {
            if let FieldPath::Path { full, .. } = self.path(name) {
                extra.remove(full);
            }
        }
        Ok(Decoded::Info(VehicleInfo {
            vehicle,
            plate: text("plate"),
            model: text("model"),
            driver: text("driver"),
            group: text("group"),
            extra: serde_json::to_string(&extra).unwrap_or_else(|_| "{}".into()),
        }))
    }

    fn alert(
        &self,
        obj: &Map<String, Value>,
        key: Option<&str>,
        msg: &RawMessage,
        now_ms: i64,
    ) -> Result<Decoded, Rejection> {
        let id = self
            .text_or_key("id", obj, key)
            .ok_or_else(|| reject(RejectReason::MissingId, "alert has no id (field or key)"))?;
        check_id(&id)?;
        let vehicle = self
            .get("vehicle", obj)
            .and_then(as_text)
            .ok_or_else(|| reject(RejectReason::InvalidField, "alert has no vehicle"))?;
        check_id(&vehicle)?;
        let rule = self
            .get("rule", obj)
            .and_then(as_text)
            .unwrap_or_else(|| "upstream".into());
        let severity = match self.get("severity", obj) {
            None | Some(Value::Null) => Severity::Warning,
            Some(v) => v.as_str().and_then(Severity::parse).ok_or_else(|| {
                reject(
                    RejectReason::InvalidField,
                    format!("severity {} is not info/warning/critical", short(v)),
                )
            })?,
        };
        let ts_ms = self.timestamp(obj, msg, now_ms)?;
        let resolved = self
            .get("state", obj)
            .and_then(Value::as_str)
            .is_some_and(|s| s.eq_ignore_ascii_case("resolved"))
            || obj.get("resolved").and_then(as_switch) == Some(true);
        Ok(Decoded::Alert(Alert {
            id,
            vehicle,
            message: self
                .get("message", obj)
                .and_then(as_text)
                .unwrap_or_else(|| rule.clone()),
            rule,
            severity,
            ts_ms,
            state: if resolved {
                AlertState::Resolved
            } else {
                AlertState::Open
            },
            acked_by: None,
            acked_ms: None,
            ack_note: None,
            resolved_ms: resolved.then_some(ts_ms),
            plate: None,
        }))
    }

    fn ack(
        &self,
        obj: &Map<String, Value>,
        key: Option<&str>,
        msg: &RawMessage,
        now_ms: i64,
    ) -> Result<Decoded, Rejection> {
        if let Some(kind) = obj.get("snooze") {
            return self.snooze(kind, obj, msg, now_ms);
        }
        let alert_id = self.text_or_key("alert_id", obj, key).ok_or_else(|| {
            reject(
                RejectReason::MissingId,
                "ack has no alert_id (field or key)",
            )
        })?;
        check_id(&alert_id)?;
        let operator = self
            .get("operator", obj)
            .and_then(as_text)
            .ok_or_else(|| reject(RejectReason::InvalidField, "ack has no operator"))?;
        let note = self.get("note", obj).and_then(as_text).unwrap_or_default();
        let ts = self.timestamp(obj, msg, now_ms)?;
        Ok(Decoded::Ack(Ack {
            alert_id,
            operator,
            note,
            ts,
        }))
    }
}

/// A value shortened for an error message.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 40 {
        format!("{}…", truncate(&s, 40))
    } else {
        s
    }
}

#[cfg(test)]
mod dms_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
