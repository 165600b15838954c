//! Telemetry samples as the engine understands them after decoding.

use serde::{Deserialize, Serialize};

/// A vehicle id: the Kafka message key or the Redis geo-set member.
pub type VehicleId = String;

/// What a topic carries; decides which decoder and field mapping apply (SPEC §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TopicKind {
    /// `{"lat","lng","ts"?,"speed"?,"heading"?}`
    Position,
    /// engine/doors/headlights/speed/fuel/battery and any nested fields.
    Status,
    /// vehicle metadata (plate, model, driver, group), usually a compacted topic.
    Info,
    /// alerts raised upstream.
    Alert,
    /// alert acknowledgements from every operator.
    Ack,
    /// device → vehicle mapping (SPEC §8): telemetry keyed by a device id lands on its vehicle.
    Device,
}

impl TopicKind {
    /// Lower-case name as used in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            TopicKind::Position => "position",
            TopicKind::Status => "status",
            TopicKind::Info => "info",
            TopicKind::Alert => "alert",
            TopicKind::Ack => "ack",
            TopicKind::Device => "device",
        }
    }
}

/// Where a sample came from; the UI shows it in the vehicle panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A Kafka telemetry topic.
    Kafka,
    /// A Redis geo set.
    Redis,
}

impl Source {
    /// Stable lower-case name (stored in the cache).
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Kafka => "kafka",
            Source::Redis => "redis",
        }
    }
}

/// One position fix of one vehicle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionSample {
    /// Vehicle id.
    pub vehicle: VehicleId,
    /// Event time in ms since the Unix epoch (message `ts`, else the Kafka timestamp, else arrival).
    pub ts_ms: i64,
    /// Latitude in degrees, always within ±90.
    pub lat: f64,
    /// Longitude in degrees, always within ±180.
    pub lng: f64,
    /// Speed in km/h when the device reports it.
    pub speed: Option<f64>,
    /// Heading in degrees (0 = north, clockwise) when reported.
    pub heading: Option<f64>,
    /// Kafka or Redis.
    pub source: Source,
}

/// The status fields the engine and rules understand, extracted from a status message.
///
/// Every other field is kept verbatim (flattened to dotted paths) in [`StatusSample::fields`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusFields {
    /// Engine running.
    pub engine_on: Option<bool>,
    /// Any door open.
    pub doors_open: Option<bool>,
    /// Headlights on.
    pub headlights_on: Option<bool>,
    /// Speed in km/h.
    pub speed: Option<f64>,
    /// Fuel level in %.
    pub fuel: Option<f64>,
    /// Battery level in %.
    pub battery: Option<f64>,
}

/// One status message of one vehicle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusSample {
    /// Vehicle id.
    pub vehicle: VehicleId,
    /// Event time in ms since the Unix epoch.
    pub ts_ms: i64,
    /// The normalised fields the rules use.
    pub known: StatusFields,
    /// Every field of the message flattened to dotted paths (`engine.rpm`), as one compact
    /// JSON object. Kept as text because it is only ever stored and shown, never queried:
    /// a parsed map per vehicle cost ~1 KB, ~20 MB of live state at 20,000 vehicles.
    pub fields: String,
}

/// Vehicle metadata from an `info` topic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VehicleInfo {
    /// Vehicle id.
    pub vehicle: VehicleId,
    /// Licence plate.
    pub plate: Option<String>,
    /// Make and model.
    pub model: Option<String>,
    /// Current driver.
    pub driver: Option<String>,
    /// Fleet group (depot, city, customer).
    pub group: Option<String>,
    /// Every other field, flattened to dotted paths, as one compact JSON object (empty when
    /// unknown). Text for the same reason as [`StatusSample::fields`]: a parsed map per
    /// vehicle cost ~630 bytes, ~12 MB at 20,000 vehicles, and it is only stored.
    pub extra: String,
}

/// Why a message was rejected and quarantined (SPEC §2). The string codes are stable:
/// they are stored in the cache, printed by `fleetctl stats` and shown in the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// Payload larger than the 1 MiB limit.
    Oversized,
    /// Payload is not valid UTF-8.
    NotUtf8,
    /// Payload is not JSON (or not a JSON object).
    NotJson,
    /// No vehicle / alert id in the mapped field or key.
    MissingId,
    /// lat or lng missing.
    MissingCoordinates,
    /// lat or lng is not a number.
    InvalidCoordinates,
    /// NaN or infinite number.
    NonFinite,
    /// |lat| > 90.
    LatOutOfRange,
    /// |lng| > 180.
    LngOutOfRange,
    /// The `ts` field is neither ms-epoch nor RFC 3339.
    InvalidTimestamp,
    /// A required field (other than coordinates) is missing or has the wrong type.
    InvalidField,
    /// The topic is not configured with a known kind.
    UnknownKind,
    /// A timestamp too far in the future (beyond `fleet.max_future_skew_s`) or before
    /// 2000-01-01 (SPEC §7): one such message would pin a vehicle and freeze its timers.
    BadTs,
    /// An id over 256 bytes or with control characters (SPEC §7): unbounded ids would make
    /// every per-vehicle map unbounded too.
    BadId,
}

impl RejectReason {
    /// Every reason, for counters that list all of them.
    pub const ALL: [RejectReason; 14] = [
        RejectReason::Oversized,
        RejectReason::NotUtf8,
        RejectReason::NotJson,
        RejectReason::MissingId,
        RejectReason::MissingCoordinates,
        RejectReason::InvalidCoordinates,
        RejectReason::NonFinite,
        RejectReason::LatOutOfRange,
        RejectReason::LngOutOfRange,
        RejectReason::InvalidTimestamp,
        RejectReason::InvalidField,
        RejectReason::UnknownKind,
        RejectReason::BadTs,
        RejectReason::BadId,
    ];

    /// Stable snake_case code.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Oversized => "oversized",
            RejectReason::NotUtf8 => "not_utf8",
            RejectReason::NotJson => "not_json",
            RejectReason::MissingId => "missing_id",
            RejectReason::MissingCoordinates => "missing_coordinates",
            RejectReason::InvalidCoordinates => "invalid_coordinates",
            RejectReason::NonFinite => "non_finite",
            RejectReason::LatOutOfRange => "lat_out_of_range",
            RejectReason::LngOutOfRange => "lng_out_of_range",
            RejectReason::InvalidTimestamp => "invalid_timestamp",
            RejectReason::InvalidField => "invalid_field",
            RejectReason::UnknownKind => "unknown_kind",
            RejectReason::BadTs => "bad_ts",
            RejectReason::BadId => "bad_id",
        }
    }

    /// Parses a stored code back.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == code)
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
