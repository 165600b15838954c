//! A vehicle's history as the timeline replays it and `fleetctl history --json` prints it
//! (SPEC §4). Field names on the wire are the SPEC's (`ts`, not `ts_ms`), so the CLI's JSON
//! and the app's IPC are one shape.

use crate::{AlertState, Severity, Source};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One stored position of a vehicle (its id is the enclosing [`VehicleHistory::vehicle`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackPoint {
    /// Event time (ms epoch).
    #[serde(rename = "ts")]
    pub ts_ms: i64,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lng: f64,
    /// Speed in km/h, when reported.
    pub speed: Option<f64>,
    /// Heading in degrees, when reported.
    pub heading: Option<f64>,
    /// Kafka or Redis.
    pub source: Source,
}

/// One stored status sample: every flattened field the vehicle sent (`engine.rpm`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusPoint {
    /// Event time (ms epoch).
    #[serde(rename = "ts")]
    pub ts_ms: i64,
    /// The flattened fields as a JSON object.
    pub fields: Map<String, Value>,
}

impl StatusPoint {
    /// A field as a number: JSON numbers, and numeric strings as the decoder accepts them
    /// (`"12.5"`); anything else (text, booleans, missing) is `None`.
    pub fn number(&self, field: &str) -> Option<f64> {
        match self.fields.get(field)? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .filter(|v| v.is_finite())
    }
}

/// An alert of the vehicle in the range, as the timeline marks it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryAlert {
    /// Alert id (the one `fleetctl ack` takes).
    pub id: String,
    /// Rule name.
    pub rule: String,
    /// Severity (colours the mark).
    pub severity: Severity,
    /// When it was raised (ms epoch).
    #[serde(rename = "ts")]
    pub ts_ms: i64,
    /// Current state.
    pub state: AlertState,
}

/// Everything the cache holds about one vehicle over a time range, each list ordered by time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VehicleHistory {
    /// Vehicle id.
    pub vehicle: String,
    /// Metadata: `plate`, `model`, `driver`, `group` and every other info field (empty when
    /// no info message was ever read for it).
    pub info: Map<String, Value>,
    /// Stored positions in the range.
    pub positions: Vec<TrackPoint>,
    /// Stored status samples in the range.
    pub status: Vec<StatusPoint>,
    /// Alerts raised in the range.
    pub alerts: Vec<HistoryAlert>,
}

impl VehicleHistory {
    /// True when the range holds no sample and no alert ("no data in this range").
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty() && self.status.is_empty() && self.alerts.is_empty()
    }
}
