//! The history policy (SPEC §2): which position samples the cache keeps.
//!
//! A sample is kept when the vehicle moved ≥ `min_distance_m` or ≥ `min_interval_s` passed
//! since the last kept sample, or its status changed since then. Decisions depend only on
//! message contents and the last kept sample (which is in the cache), so a restart keeps
//! exactly what an uninterrupted run would have kept.

use crate::config::HistoryConfig;
use crate::geo::distance_m;
use fleet_model::PositionSample;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy)]
struct Kept {
    ts_ms: i64,
    lat: f64,
    lng: f64,
}

/// Per-vehicle memory of the last kept sample.
#[derive(Debug, Default)]
pub struct HistoryPolicy {
    min_distance_m: f64,
    min_interval_ms: i64,
    last: HashMap<String, Kept>,
    status_changed: HashMap<String, bool>,
}

impl HistoryPolicy {
    /// A policy from config.
    pub fn new(cfg: &HistoryConfig) -> Self {
        Self {
            min_distance_m: cfg.min_distance_m,
            min_interval_ms: (cfg.min_interval_s * 1000.0) as i64,
            ..Default::default()
        }
    }

    /// Seeds the memory from the cache after a restart.
    pub fn seed(&mut self, kept: impl IntoIterator<Item = PositionSample>) {
        for p in kept {
            self.last.insert(
                p.vehicle,
                Kept {
                    ts_ms: p.ts_ms,
                    lat: p.lat,
                    lng: p.lng,
                },
            );
        }
    }

    /// Forgets a vehicle evicted from the live state (its next sample is kept, as for a new
    /// vehicle).
    pub fn forget(&mut self, vehicle: &str) {
        self.last.remove(vehicle);
        self.status_changed.remove(vehicle);
    }

    /// Makes room for `n` more vehicles now (see [`crate::state::LiveFleet::reserve`]).
    pub fn reserve(&mut self, n: usize) {
        self.last.reserve(n);
    }

    /// Vehicles remembered (for tests and metrics).
    pub fn len(&self) -> usize {
        self.last.len().max(self.status_changed.len())
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Notes that a vehicle's status changed: its next position is kept.
    pub fn status_changed(&mut self, vehicle: &str) {
        if let Some(f) = self.status_changed.get_mut(vehicle) {
            *f = true;
        } else {
            self.status_changed.insert(vehicle.to_string(), true);
        }
    }

    /// Decides for one sample and remembers it when kept. Samples older than the last kept
    /// one (out of order) are kept only if they are far enough in time, so late data is not
    /// silently lost but does not flood the cache either.
    pub fn keep(&mut self, p: &PositionSample) -> bool {
        let changed = self
            .status_changed
            .get_mut(&p.vehicle)
            .map(std::mem::take)
            .unwrap_or(false);
        let keep = match self.last.get(&p.vehicle) {
            None => true,
            Some(k) => {
                changed
                    || (p.ts_ms - k.ts_ms).abs() >= self.min_interval_ms
                    || distance_m(k.lat, k.lng, p.lat, p.lng) >= self.min_distance_m
            }
        };
        if keep {
            let newer = self.last.get(&p.vehicle).is_none_or(|k| p.ts_ms >= k.ts_ms);
            if newer {
                self.last.insert(
                    p.vehicle.clone(),
                    Kept {
                        ts_ms: p.ts_ms,
                        lat: p.lat,
                        lng: p.lng,
                    },
                );
            }
        }
        keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_model::Source;

    fn p(ts: i64, lat: f64) -> PositionSample {
        PositionSample {
            vehicle: "v".into(),
            ts_ms: ts,
            lat,
            lng: 127.0,
            speed: None,
            heading: None,
            source: Source::Kafka,
        }
    }

    #[test]
    fn keeps_by_distance_time_and_status() {
        let mut h = HistoryPolicy::new(&HistoryConfig {
            min_distance_m: 25.0,
            min_interval_s: 30.0,
            ..Default::default()
        });
        assert!(h.keep(&p(0, 37.0)));
        assert!(!h.keep(&p(1000, 37.0001))); // 11 m, 1 s
        assert!(h.keep(&p(2000, 37.0003))); // 33 m from last kept
        assert!(!h.keep(&p(3000, 37.0003)));
        assert!(h.keep(&p(32_000, 37.0003))); // 30 s passed
        h.status_changed("v");
        assert!(h.keep(&p(33_000, 37.0003)));
        assert!(!h.keep(&p(34_000, 37.0003)));
    }

    #[test]
    fn zero_policy_keeps_everything() {
        let mut h = HistoryPolicy::new(&HistoryConfig {
            min_distance_m: 0.0,
            min_interval_s: 0.0,
            ..Default::default()
        });
        assert!((0..10).all(|i| h.keep(&p(1000, 37.0 + f64::from(i) * 0.0))));
    }

    #[test]
    fn seeded_policy_continues() {
        let mut h = HistoryPolicy::new(&HistoryConfig::default());
        h.seed([p(0, 37.0)]);
        assert!(!h.keep(&p(1000, 37.0)));
    }
}
