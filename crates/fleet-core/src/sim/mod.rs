//! A realistic simulated fleet (SPEC §4 `fleetctl sim`, the ingest benchmark and the desktop
//! demo all use it).
//!
//! The simulator is split in two on purpose:
//! - [`Fleet`] is a pure, deterministic generator: the same seed, size, place and start time
//!   always yield byte-identical messages, whatever the machine or the timing. Tests, demos and
//!   benchmark runs can therefore be reproduced and compared.
//! - [`run`] drives a `Fleet` against real infrastructure: JSON telemetry to Kafka and `GEOADD`
//!   of positions to Redis, paced to the wall clock or as fast as the broker takes it.
//!
//! Vehicles drive along a rotated street grid (`city.rs`), stop at lights, park (engine off,
//! doors briefly open), and produce the anomalies the alert rules look for: headlights left
//! on, low battery or fuel, speeding, harsh braking, devices going silent, upstream alerts.

mod cdc;
mod city;
mod drive;
mod error;
mod fleet;
mod geo;
mod names;
mod payload;
mod produce;
mod vehicle;

#[cfg(test)]
mod live_tests;
#[cfg(test)]
mod rates_tests;
#[cfg(test)]
mod tests;

pub use cdc::{CARINFO_TOPIC, DEVICEINFO_TOPIC, TELEMETRY_TOPIC, cdc_mapping, cdc_topics};
pub use error::SimError;
pub use fleet::Fleet;
pub use produce::run;

use fleet_model::TopicKind;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Topic names the simulator writes to; the defaults match SPEC §1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTopics {
    /// Position messages (`{"lat","lng","ts","speed","heading"}`).
    pub gps: String,
    /// Status messages (engine, doors, headlights, fuel, battery, nested `engine_detail`).
    pub status: String,
    /// Vehicle metadata, one message per vehicle at start (meant for a compacted topic).
    pub info: String,
    /// Upstream alerts, keyed by alert id.
    pub alerts: String,
    /// Device → car rows (the CDC shape only).
    pub devices: String,
}

impl Default for SimTopics {
    fn default() -> Self {
        SimTopics {
            gps: "cars.gps.json".into(),
            status: "cars.status.json".into(),
            info: "cars.info.json".into(),
            alerts: "fleet.alerts.json".into(),
            devices: DEVICEINFO_TOPIC.into(),
        }
    }
}

impl SimTopics {
    /// The topics of the CDC shape ([`SimOptions::cdc`]): telemetry on one device-keyed topic,
    /// metadata and devices as DMS tables.
    pub fn cdc() -> Self {
        SimTopics {
            gps: TELEMETRY_TOPIC.into(),
            info: CARINFO_TOPIC.into(),
            ..SimTopics::default()
        }
    }
}

impl SimTopics {
    /// The topic a message of `kind` goes to; `None` for kinds the simulator never produces
    /// (acknowledgements belong to operators, not to vehicles).
    pub fn name_for(&self, kind: TopicKind) -> Option<&str> {
        match kind {
            TopicKind::Position => Some(&self.gps),
            TopicKind::Status => Some(&self.status),
            TopicKind::Info => Some(&self.info),
            TopicKind::Alert => Some(&self.alerts),
            TopicKind::Device => Some(&self.devices),
            TopicKind::Ack => None,
        }
    }
}

/// Everything [`run`] needs. `Default` gives a small fleet in Seoul Gangnam for one minute.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Extra librdkafka properties, passed verbatim; they override the simulator's defaults
    /// (`linger.ms`, `batch.num.messages`, `queue.buffering.max.messages`, `compression.type`).
    pub kafka_properties: BTreeMap<String, String>,
    /// Redis to `GEOADD` positions into; `None` for Kafka only.
    pub redis_url: Option<String>,
    /// Geo set key (default `cars#gps`).
    pub geo_key: String,
    /// Fleet size (ids `car-00001` …).
    pub vehicles: u32,
    /// Position messages per moving vehicle per second (parked ones report every 10th tick).
    pub rate_hz: f64,
    /// Simulated time to cover. `Duration::ZERO` means "until cancelled or `max_messages`",
    /// which is what the embedded demo wants.
    pub duration: Duration,
    /// Everything the fleet does follows from this seed.
    pub seed: u64,
    /// Centre of the city as (lat, lng).
    pub center: (f64, f64),
    /// Radius of the street grid around the centre, in km.
    pub radius_km: f64,
    /// Where each kind of message goes.
    pub topics: SimTopics,
    /// Stop after this many position messages (benchmark prefill).
    pub max_messages: Option<u64>,
    /// Produce as fast as the broker takes it instead of pacing to the wall clock; the sim clock
    /// then starts in the past so the newest timestamps end near "now".
    pub unthrottled: bool,
    /// Produce SOCAR's CDC shape instead of the plain one (use [`SimTopics::cdc`] too).
    pub cdc: Option<CdcOptions>,
}

/// The CDC shape's options (`fleetctl sim --cdc`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CdcOptions {
    /// Sim seconds after the start at which the devices' firmware changes and telemetry gains
    /// nested fields (`tpms.*`, `adas.*`); `None` = never.
    pub firmware_change_s: Option<f64>,
    /// Devices per car (1–3); `None` = two, three on every third car.
    pub devices_per_car: Option<u32>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            brokers: "127.0.0.1:9092".into(),
            kafka_properties: BTreeMap::new(),
            redis_url: None,
            geo_key: "cars#gps".into(),
            vehicles: 100,
            rate_hz: 1.0,
            duration: Duration::from_secs(60),
            seed: 42,
            center: DEFAULT_CENTER,
            radius_km: 5.0,
            topics: SimTopics::default(),
            max_messages: None,
            unthrottled: false,
            cdc: None,
        }
    }
}

/// Seoul, Gangnam station.
pub const DEFAULT_CENTER: (f64, f64) = (37.4979, 127.0276);

/// Limits that keep the simulation meaningful: tick ≥ 10 ms, a city that fits on one side of
/// the poles and the antimeridian stays representable, ids that fit in memory.
const MAX_VEHICLES: u32 = 1_000_000;
const MAX_RATE_HZ: f64 = 100.0;
const MIN_RADIUS_KM: f64 = 0.1;
const MAX_RADIUS_KM: f64 = 100.0;
/// Redis refuses latitudes beyond ±85.05°; keep the whole city inside that.
const MAX_CENTER_LAT: f64 = 84.0;

impl SimOptions {
    /// Checks every option and names the first bad one, so `fleetctl` can exit with code 2 and
    /// a one-line reason before touching the network.
    pub fn validate(&self) -> Result<(), SimError> {
        if self.brokers.trim().is_empty() {
            return Err(SimError::option("brokers", "must name at least one broker"));
        }
        if self.vehicles == 0 || self.vehicles > MAX_VEHICLES {
            return Err(SimError::option(
                "vehicles",
                format!(
                    "must be between 1 and {MAX_VEHICLES}, got {}",
                    self.vehicles
                ),
            ));
        }
        if !(self.rate_hz.is_finite() && self.rate_hz > 0.0 && self.rate_hz <= MAX_RATE_HZ) {
            return Err(SimError::option(
                "rate_hz",
                format!(
                    "must be > 0 and ≤ {MAX_RATE_HZ} messages/s, got {}",
                    self.rate_hz
                ),
            ));
        }
        let (lat, lng) = self.center;
        if !(lat.is_finite() && lat.abs() <= MAX_CENTER_LAT) {
            return Err(SimError::option(
                "center",
                format!("latitude must be within ±{MAX_CENTER_LAT}°, got {lat}"),
            ));
        }
        if !(lng.is_finite() && lng.abs() <= 180.0) {
            return Err(SimError::option(
                "center",
                format!("longitude must be within ±180°, got {lng}"),
            ));
        }
        if !(self.radius_km.is_finite()
            && (MIN_RADIUS_KM..=MAX_RADIUS_KM).contains(&self.radius_km))
        {
            return Err(SimError::option(
                "radius_km",
                format!(
                    "must be between {MIN_RADIUS_KM} and {MAX_RADIUS_KM} km, got {}",
                    self.radius_km
                ),
            ));
        }
        let t = &self.topics;
        for (name, value) in [
            ("topics.gps", &t.gps),
            ("topics.status", &t.status),
            ("topics.info", &t.info),
            ("topics.alerts", &t.alerts),
            ("topics.devices", &t.devices),
        ] {
            if value.is_empty() || value.contains('\0') {
                return Err(SimError::option(name, "topic name must be non-empty"));
            }
        }
        if let Some(n) = self.cdc.as_ref().and_then(|c| c.devices_per_car)
            && !(1..=3).contains(&n)
        {
            return Err(SimError::option(
                "devices_per_car",
                format!("must be 1, 2 or 3, got {n}"),
            ));
        }
        if let Some(at) = self.cdc.as_ref().and_then(|c| c.firmware_change_s)
            && !(at.is_finite() && at >= 0.0)
        {
            return Err(SimError::option(
                "firmware_change_s",
                format!("must be a number of seconds ≥ 0, got {at}"),
            ));
        }
        if self.redis_url.is_some() && self.geo_key.is_empty() {
            return Err(SimError::option(
                "geo_key",
                "must be non-empty when Redis is used",
            ));
        }
        Ok(())
    }

    /// Length of one simulation tick: one position per moving vehicle per tick.
    pub(crate) fn tick_ms(&self) -> i64 {
        ((1000.0 / self.rate_hz).round() as i64).max(1)
    }
}

/// What a run produced; `fleetctl sim --json` prints it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SimReport {
    /// Messages handed to the producer, per topic name (every topic listed, zeros included).
    pub produced: BTreeMap<String, u64>,
    /// Positions written to the Redis geo set (members, summed over pipelines).
    pub geoadds: u64,
    /// Messages the broker did not accept in the end (delivery reports with an error, plus
    /// anything still queued when the final flush timed out).
    pub delivery_errors: u64,
    /// Wall-clock duration of the run, including the final flush.
    pub elapsed_s: f64,
    /// Simulated time covered; larger than `elapsed_s` in unthrottled runs.
    pub sim_seconds: f64,
}

/// One message as the generator emits it, before it is addressed to a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimMessage {
    /// Decides the topic (see [`SimTopics::name_for`]).
    pub kind: TopicKind,
    /// Kafka key: the vehicle id, or the alert id for alerts.
    pub key: String,
    /// The JSON value.
    pub payload: Vec<u8>,
    /// Event time in ms since the Unix epoch (also used as the Kafka timestamp).
    pub ts_ms: i64,
}
