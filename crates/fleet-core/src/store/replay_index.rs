//! The replay's in-memory time index (issue 11 item 7): every position of a timeline range,
//! read once in time order into a compact array, with keyframes, so the whole fleet at any
//! instant of the range costs microseconds per vehicle instead of one or two cache page reads.
//!
//! A whole-fleet frame from the cache ([`Store::fleet_at`]) seeks the `(vehicle, ts)` index
//! once per vehicle: 5–20 µs each, 150–450 ms for 20,000 vehicles on a 72-hour cache. Here a
//! frame is a binary search, a copy of the nearest earlier keyframe (one `u32` per vehicle)
//! and at most [`KEY_EVERY`] array writes. Samples take 24 bytes; a range holding more than
//! the cap is not indexed and replay keeps using the cache (see `Replayer`).

use super::{Store, StoreError};
use fleet_model::{PositionSample, Source};
use futures::TryStreamExt;
use sqlx::Row;
use std::collections::HashMap;

/// Samples between two keyframes: bounds a frame's catch-up work (~0.1 ms).
pub const KEY_EVERY: usize = 1 << 16;
/// The default cap on indexed samples (24 bytes each: ~290 MB).
pub const DEFAULT_MAX_SAMPLES: usize = 12_000_000;

/// The top bit of [`Sample::vehicle`] marks a Redis fix.
const REDIS_BIT: u32 = 1 << 31;

/// One position, compact: milliseconds after the index's start, the vehicle's number,
/// coordinates in 1e-7 degrees (~1 cm), speed and heading (`NaN` when not sent).
#[derive(Debug, Clone, Copy)]
struct Sample {
    dt_ms: u32,
    vehicle: u32,
    lat: i32,
    lng: i32,
    speed: f32,
    heading: f32,
}

/// Every position of `[start_ms, end_ms]`, time-ordered, with keyframes.
#[derive(Debug, Default)]
pub struct ReplayIndex {
    start_ms: i64,
    end_ms: i64,
    vehicles: Vec<String>,
    samples: Vec<Sample>,
    /// `keyframes[k][v]`: 1 + the index of vehicle `v`'s last sample before sample
    /// `k * key_every` (0: none yet).
    keyframes: Vec<Vec<u32>>,
    /// [`KEY_EVERY`], smaller in tests so they cross many keyframes.
    key_every: usize,
}

/// Why a range was not indexed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Reading the cache failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The range holds more positions than the cap allows in memory.
    #[error("the range holds more than {0} positions; replay reads the cache instead")]
    TooLarge(usize),
    /// The range is empty, reversed or longer than 49 days (the offsets are `u32` ms).
    #[error("range {0}..{1} cannot be indexed")]
    BadRange(i64, i64),
}

const E7: f64 = 1e7;

/// The range's positions in table order (see [`ReplayIndex::build_keyed`]).
pub(crate) const RANGE_SQL: &str =
    "WITH bounds AS (SELECT MIN(rowid) AS lo, MAX(rowid) AS hi FROM positions
                     WHERE ts >= ?1 AND ts <= ?2)
     SELECT vehicle, ts, lat, lng, speed, heading, source FROM positions, bounds
     WHERE positions.rowid BETWEEN bounds.lo AND bounds.hi AND +ts >= ?1 AND +ts <= ?2";

impl ReplayIndex {
    /// Reads the positions of `[start_ms, end_ms]` from `store`, in time order, into an index;
    /// gives up with [`IndexError::TooLarge`] past `max_samples`.
    pub async fn build(
        store: &Store,
        start_ms: i64,
        end_ms: i64,
        max_samples: usize,
    ) -> Result<ReplayIndex, IndexError> {
        Self::build_keyed(store, (start_ms, end_ms), max_samples, KEY_EVERY).await
    }

    /// [`ReplayIndex::build`] with a keyframe every `key_every` samples.
    pub(crate) async fn build_keyed(
        store: &Store,
        (start_ms, end_ms): (i64, i64),
        max_samples: usize,
        key_every: usize,
    ) -> Result<ReplayIndex, IndexError> {
        if end_ms < start_ms || end_ms - start_ms > i64::from(u32::MAX) {
            return Err(IndexError::BadRange(start_ms, end_ms));
        }
        let mut ix = ReplayIndex {
            start_ms,
            end_ms,
            key_every: key_every.max(1),
            ..Default::default()
        };
        let mut numbers: HashMap<String, u32> = HashMap::new();
        // Rows come in table order, not through the `ts` index: the table is written in
        // roughly time order, so the rowids of the range form one run of pages read in
        // sequence (the index order costs a random page read per row: 91 s instead of 40 s
        // for 8.6 M positions). The bounds come from an index-only scan of `positions (ts)`;
        // rows in between that fall outside the range (late data) are filtered out, and the
        // samples are sorted by time afterwards.
        let mut rows = sqlx::query(RANGE_SQL)
            .bind(start_ms)
            .bind(end_ms)
            .fetch(store.pool());
        let mut samples = Vec::new();
        while let Some(r) = rows.try_next().await.map_err(|e| store.err(e))? {
            if samples.len() >= max_samples {
                return Err(IndexError::TooLarge(max_samples));
            }
            let vehicle: &str = r.get("vehicle");
            let n = match numbers.get(vehicle) {
                Some(n) => *n,
                None => {
                    let n = ix.vehicles.len() as u32;
                    ix.vehicles.push(vehicle.to_string());
                    numbers.insert(vehicle.to_string(), n);
                    n
                }
            };
            let redis = r.get::<Option<&str>, _>("source") == Some(Source::Redis.as_str());
            samples.push(Sample {
                dt_ms: (r.get::<i64, _>("ts") - start_ms) as u32,
                vehicle: n | if redis { REDIS_BIT } else { 0 },
                lat: (r.get::<f64, _>("lat") * E7).round() as i32,
                lng: (r.get::<f64, _>("lng") * E7).round() as i32,
                speed: r
                    .get::<Option<f64>, _>("speed")
                    .map_or(f32::NAN, |s| s as f32),
                heading: r
                    .get::<Option<f64>, _>("heading")
                    .map_or(f32::NAN, |h| h as f32),
            });
        }
        drop(rows);
        // Stable: equal times keep table (arrival) order.
        samples.sort_by_key(|s| s.dt_ms);
        samples.shrink_to_fit();
        ix.samples = samples;
        ix.keyframes = keyframes(&ix.samples, ix.vehicles.len(), ix.key_every);
        Ok(ix)
    }

    /// Whether [`ReplayIndex::fleet_at`] at `t_ms` with `lookback_ms` is complete: the
    /// instant and its look-back lie inside the indexed range.
    pub fn covers(&self, t_ms: i64, lookback_ms: i64) -> bool {
        t_ms.saturating_sub(lookback_ms) >= self.start_ms && t_ms <= self.end_ms
    }

    /// Positions held.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True when the range held no positions.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Bytes the index holds (samples, keyframes, names), for logs and the benchmark.
    pub fn bytes(&self) -> usize {
        self.samples.capacity() * std::mem::size_of::<Sample>()
            + self.keyframes.iter().map(|k| k.len() * 4).sum::<usize>()
            + self.vehicles.iter().map(|v| v.len() + 24).sum::<usize>()
    }

    /// Each vehicle's last position at or before `t_ms` and no older than `lookback_ms`
    /// (what [`Store::fleet_at`] answers from the cache), in no particular order.
    pub fn fleet_at(&self, t_ms: i64, lookback_ms: i64) -> Vec<PositionSample> {
        let upto = self.upto(t_ms);
        let last = self.state_before(upto);
        let oldest = t_ms.saturating_sub(lookback_ms.max(0));
        last.iter()
            .filter(|i| **i > 0)
            .map(|i| self.sample(*i as usize - 1))
            .filter(|p| p.ts_ms >= oldest)
            .collect()
    }

    /// The positions with `after_ms < ts <= upto_ms`, oldest first: a playing replay's step.
    pub fn between(&self, after_ms: i64, upto_ms: i64) -> Vec<PositionSample> {
        (self.upto(after_ms)..self.upto(upto_ms))
            .map(|i| self.sample(i))
            .collect()
    }

    /// The number of samples with `ts <= t_ms`.
    fn upto(&self, t_ms: i64) -> usize {
        if t_ms < self.start_ms {
            return 0;
        }
        let dt = (t_ms - self.start_ms).min(i64::from(u32::MAX)) as u32;
        self.samples.partition_point(|s| s.dt_ms <= dt)
    }

    /// Per vehicle, 1 + its last sample among the first `n` (0: none).
    fn state_before(&self, n: usize) -> Vec<u32> {
        let k = n / self.key_every;
        let mut state = match self.keyframes.get(k) {
            Some(key) => key.clone(),
            None => Vec::new(),
        };
        state.resize(self.vehicles.len(), 0);
        let from = (k * self.key_every).min(n);
        catch_up(&mut state, &self.samples[from..n], from);
        state
    }

    fn sample(&self, i: usize) -> PositionSample {
        let s = &self.samples[i];
        let opt = |x: f32| (!x.is_nan()).then_some(f64::from(x));
        PositionSample {
            vehicle: self.vehicles[(s.vehicle & !REDIS_BIT) as usize].clone(),
            ts_ms: self.start_ms + i64::from(s.dt_ms),
            lat: f64::from(s.lat) / E7,
            lng: f64::from(s.lng) / E7,
            speed: opt(s.speed),
            heading: opt(s.heading),
            source: if s.vehicle & REDIS_BIT != 0 {
                Source::Redis
            } else {
                Source::Kafka
            },
        }
    }
}

/// A keyframe every `every` samples: keyframe `k` is the state before sample `k * every`.
fn keyframes(samples: &[Sample], vehicles: usize, every: usize) -> Vec<Vec<u32>> {
    let mut out = Vec::with_capacity(samples.len().div_ceil(every));
    let mut state = vec![0u32; vehicles];
    for (k, chunk) in samples.chunks(every).enumerate() {
        out.push(state.clone());
        catch_up(&mut state, chunk, k * every);
    }
    out
}

/// Applies `samples` (the first at index `first`) to a per-vehicle state.
fn catch_up(state: &mut Vec<u32>, samples: &[Sample], first: usize) {
    for (j, s) in samples.iter().enumerate() {
        let v = (s.vehicle & !REDIS_BIT) as usize;
        if v >= state.len() {
            state.resize(v + 1, 0);
        }
        state[v] = (first + j + 1) as u32;
    }
}

#[cfg(test)]
mod tests;
