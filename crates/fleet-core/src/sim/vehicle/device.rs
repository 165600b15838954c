//! The vehicle's telematics unit: what it reports and when. Statuses go out every ~10 s and
//! at once on a change; the unit sometimes goes silent for minutes (the "stale vehicle" case
//! the UI must show); upstream systems occasionally raise alerts about the vehicle.

use super::super::SimMessage;
use super::super::names::UPSTREAM_RULES;
use super::super::payload::{self, Status};
use super::Vehicle;
use fleet_model::TopicKind;
use rand::Rng;
use rand::seq::IndexedRandom;

/// Periodic status interval.
pub(super) const STATUS_EVERY_MS: i64 = 10_000;
/// Mean time between two silent episodes of one device (≈ 1 in 25 h).
const SILENT_MEAN_S: f64 = 90_000.0;
/// Upstream alerts: about 1 per 1000 vehicles per minute.
const ALERT_MEAN_S: f64 = 60_000.0;

impl Vehicle {
    /// The telematics unit: silent episodes and upstream alerts about this vehicle.
    pub(super) fn device_events(&mut self, now: i64, h: f64, out: &mut Vec<SimMessage>) {
        if self.is_reporting(now) && self.rng.random_bool((h / SILENT_MEAN_S).min(1.0)) {
            self.silent_until = now + self.rng.random_range(2 * 60_000..15 * 60_000);
            self.was_silent = true;
        }
        if self.rng.random_bool((h / ALERT_MEAN_S).min(1.0)) {
            let rule = UPSTREAM_RULES
                .choose(&mut self.rng)
                .map_or("tamper", |r| r.0);
            self.emit_alert(now, rule, out);
        }
    }

    pub(super) fn emit_alert(&mut self, now: i64, rule: &str, out: &mut Vec<SimMessage>) {
        let (rule, severity, message) = UPSTREAM_RULES
            .iter()
            .copied()
            .find(|r| r.0 == rule)
            .unwrap_or(UPSTREAM_RULES[0]);
        let id = format!("up-{:016x}", self.rng.random::<u64>());
        let message = format!("{message} ({})", self.info.plate);
        out.push(SimMessage {
            kind: TopicKind::Alert,
            payload: payload::alert(&id, &self.id, rule, severity, &message, now),
            key: id,
            ts_ms: now,
        });
    }

    pub(super) fn emit_status(&mut self, now: i64, out: &mut Vec<SimMessage>) {
        let kmh = self.motion.v * 3.6;
        let rpm = if !self.engine || self.info.electric {
            0
        } else if kmh < 1.0 {
            self.rng.random_range(700..820)
        } else {
            (850.0 + kmh * 28.0 + self.rng.random_range(-60.0..60.0)).min(5500.0) as u32
        };
        let status = Status {
            engine: self.engine,
            doors_open: self.doors_open,
            headlights: self.headlights,
            speed_kmh: kmh,
            fuel: self.fuel,
            battery: self.battery,
            rpm,
            temp_c: self.temp_c,
        };
        out.push(SimMessage {
            kind: TopicKind::Status,
            key: self.id.clone(),
            payload: payload::status(now, &status),
            ts_ms: now,
        });
        self.next_status = now + STATUS_EVERY_MS;
    }
}
