//! The fleet generator: a city plus N vehicles and a sim clock. Pure (no I/O, no wall clock),
//! so tests, demos and benchmarks can replay exactly the same traffic from a seed.

use super::SimMessage;
use super::city::City;
use super::vehicle::Vehicle;
use fleet_model::TopicKind;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// SplitMix64 finaliser: turns nearby inputs (seed, seed+1, vehicle 0, 1, …) into unrelated
/// 64-bit values, so neighbouring seeds and vehicles get independent random streams.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Random stream of one vehicle: depends on the seed and the vehicle's index only, never on
/// how many vehicles there are or in which order they are stepped.
fn vehicle_rng(seed: u64, index: u32) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(seed ^ mix(u64::from(index) + 1)))
}

/// A simulated fleet. See the [module docs](super) for what the vehicles do.
#[derive(Debug, Clone)]
pub struct Fleet {
    city: City,
    vehicles: Vec<Vehicle>,
    now_ms: i64,
    start_ms: i64,
}

impl Fleet {
    /// Builds the city and the vehicles (about a third parked) at `start_ts_ms`.
    ///
    /// Out-of-range arguments are clamped rather than rejected, because the generator is also
    /// used directly by tests and the demo; [`super::SimOptions::validate`] reports them
    /// properly for user input. `radius_km` is clamped to 0.1–100 km and the centre latitude to
    /// ±84°.
    pub fn new(
        seed: u64,
        vehicles: u32,
        center: (f64, f64),
        radius_km: f64,
        start_ts_ms: i64,
    ) -> Self {
        let radius_km = if radius_km.is_finite() {
            radius_km.clamp(0.1, 100.0)
        } else {
            5.0
        };
        let lat = if center.0.is_finite() {
            center.0.clamp(-84.0, 84.0)
        } else {
            0.0
        };
        let lng = if center.1.is_finite() {
            center.1.clamp(-180.0, 180.0)
        } else {
            0.0
        };
        let mut city_rng = ChaCha8Rng::seed_from_u64(mix(seed ^ 0xC17C_17C1_7C17_C17C));
        let city = City::new(&mut city_rng, (lat, lng), radius_km);
        let vehicles = (0..vehicles)
            .map(|i| Vehicle::new(i, &city, vehicle_rng(seed, i), start_ts_ms))
            .collect();
        Fleet {
            city,
            vehicles,
            now_ms: start_ts_ms,
            start_ms: start_ts_ms,
        }
    }

    /// One `info` message per vehicle: `{"plate","model","driver","group","year"}`.
    pub fn info_messages(&self) -> Vec<SimMessage> {
        self.vehicles
            .iter()
            .map(|v| SimMessage {
                kind: TopicKind::Info,
                key: v.id.clone(),
                payload: serde_json::to_vec(&v.info).unwrap_or_default(),
                ts_ms: self.start_ms,
            })
            .collect()
    }

    /// Advances the sim clock by `dt_ms` and appends everything the fleet sent meanwhile:
    /// a position per reporting vehicle (parked ones every 10th step), statuses (periodic and
    /// on change), upstream alerts. `dt_ms <= 0` does nothing.
    pub fn step(&mut self, dt_ms: i64, out: &mut Vec<SimMessage>) {
        if dt_ms <= 0 {
            return;
        }
        let t0 = self.now_ms;
        for v in &mut self.vehicles {
            v.advance(&self.city, t0, dt_ms, out);
        }
        self.now_ms = t0 + dt_ms;
    }

    /// (vehicle id, lat, lng) of every vehicle whose device is currently reporting; what the
    /// upstream loader would `GEOADD`.
    pub fn positions(&self) -> impl Iterator<Item = (&str, f64, f64)> {
        let now = self.now_ms;
        self.vehicles
            .iter()
            .filter(move |v| v.is_reporting(now))
            .map(|v| (v.id.as_str(), v.lat, v.lng))
    }

    /// The sim clock (ms epoch).
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// Number of vehicles.
    pub fn len(&self) -> usize {
        self.vehicles.len()
    }

    /// True for a fleet of zero vehicles.
    pub fn is_empty(&self) -> bool {
        self.vehicles.is_empty()
    }

    /// The street grid (tests check positions against it).
    #[cfg(test)]
    pub(crate) fn city(&self) -> &City {
        &self.city
    }
}
