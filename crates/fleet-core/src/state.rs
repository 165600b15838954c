//! The live fleet: latest position, status and metadata per vehicle, merged from Kafka and
//! Redis, plus the counters the UI shows. Owned by the engine; readers take snapshots.

use fleet_model::{
    ConnState, FleetCounters, PositionSample, RejectReason, Source, StatusSample, TopicCounters,
    VehicleInfo,
};
use std::collections::{BTreeMap, HashMap};

/// Everything known about one vehicle right now.
#[derive(Debug, Clone, Default)]
pub struct VehicleState {
    /// Metadata.
    pub info: Option<VehicleInfo>,
    /// Latest position.
    pub position: Option<PositionSample>,
    /// Latest status.
    pub status: Option<StatusSample>,
    /// Arrival time of the latest message about it (ms).
    pub last_seen_ms: i64,
    /// First arrival (ms).
    pub first_seen_ms: i64,
}

/// `known` with the columns `update` carried (see [`LiveFleet::apply_info`]); `extra` fields
/// merge key by key.
pub fn merge_info(mut known: VehicleInfo, update: &VehicleInfo) -> VehicleInfo {
    fn col(known: &mut Option<String>, update: &Option<String>) {
        match update.as_deref() {
            None => {}
            Some("") => *known = None,
            Some(s) => *known = Some(s.to_string()),
        }
    }
    col(&mut known.plate, &update.plate);
    col(&mut known.model, &update.model);
    col(&mut known.driver, &update.driver);
    col(&mut known.group, &update.group);
    known.extra = merge_extra(&known.extra, &update.extra);
    known
}

/// Merges two flattened JSON objects (text); the update's keys win.
fn merge_extra(known: &str, update: &str) -> String {
    type Obj = serde_json::Map<String, serde_json::Value>;
    let parse = |t: &str| serde_json::from_str::<Obj>(t).unwrap_or_default();
    if known.is_empty() || known == "{}" {
        return update.to_string();
    }
    if update.is_empty() || update == "{}" {
        return known.to_string();
    }
    let mut out = parse(known);
    out.extend(parse(update));
    serde_json::to_string(&out).unwrap_or_else(|_| update.to_string())
}

/// How recent another source's fix must be to lend its speed and heading (ms).
const CARRY_OVER_MS: i64 = 10_000;

/// A rate over a sliding window of one-second buckets.
#[derive(Debug, Clone, Default)]
struct Rate {
    buckets: [(i64, u64); RATE_WINDOW],
}

const RATE_WINDOW: usize = 5;

impl Rate {
    fn add(&mut self, now_ms: i64, n: u64) {
        let sec = now_ms.div_euclid(1000);
        let slot = &mut self.buckets[sec.rem_euclid(RATE_WINDOW as i64) as usize];
        if slot.0 != sec {
            *slot = (sec, 0);
        }
        slot.1 += n;
    }

    /// Messages per second over the last complete seconds of the window.
    fn per_second(&self, now_ms: i64) -> f64 {
        let sec = now_ms.div_euclid(1000);
        let lo = sec - RATE_WINDOW as i64 + 1;
        let total: u64 = self
            .buckets
            .iter()
            .filter(|(s, _)| *s >= lo && *s < sec)
            .map(|(_, n)| n)
            .sum();
        total as f64 / (RATE_WINDOW - 1) as f64
    }
}

#[derive(Debug, Clone, Default)]
struct TopicState {
    messages: u64,
    rejected: u64,
    rate: Rate,
    lag: BTreeMap<i32, i64>,
}

/// The live fleet and its counters.
#[derive(Debug)]
pub struct LiveFleet {
    vehicles: HashMap<String, VehicleState>,
    topics: BTreeMap<String, TopicState>,
    rejected_by_reason: BTreeMap<RejectReason, u64>,
    redis_rate: Rate,
    last_message_ms: Option<i64>,
    stale_after_ms: i64,
    /// Kafka connection health.
    pub kafka: ConnState,
    /// Redis connection health.
    pub redis: ConnState,
    /// Gaps recorded in the cache, in all (SPEC §7).
    pub gaps: u64,
    /// Why the cache cannot be written, while it cannot.
    pub cache_error: Option<String>,
    /// The lag panel's rows, refreshed every second by the engine.
    pub partitions: Vec<fleet_model::PartitionLag>,
}

/// What applying a position or status did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The vehicle was new.
    pub new_vehicle: bool,
    /// The live state changed (a newer sample).
    pub changed: bool,
}

impl LiveFleet {
    /// An empty fleet; vehicles go stale after `stale_after_s`.
    pub fn new(stale_after_s: f64) -> Self {
        Self {
            vehicles: HashMap::new(),
            topics: BTreeMap::new(),
            rejected_by_reason: BTreeMap::new(),
            redis_rate: Rate::default(),
            last_message_ms: None,
            stale_after_ms: (stale_after_s * 1000.0) as i64,
            kafka: ConnState::Disabled,
            redis: ConnState::Disabled,
            gaps: 0,
            cache_error: None,
            partitions: Vec::new(),
        }
    }

    fn entry(&mut self, id: &str, now_ms: i64) -> (&mut VehicleState, bool) {
        let new = !self.vehicles.contains_key(id);
        let v = self
            .vehicles
            .entry(id.to_string())
            .or_insert_with(|| VehicleState {
                first_seen_ms: now_ms,
                ..Default::default()
            });
        v.last_seen_ms = v.last_seen_ms.max(now_ms);
        (v, new)
    }

    /// Picks the vehicles to evict (SPEC §7 bounded): every vehicle not heard from since
    /// `silent_before_ms`, and, while more than `max` remain, the longest silent ones. Those
    /// for which `keep` says so (an open rule alert) stay. The caller removes the returned
    /// ids here ([`LiveFleet::remove`]) and from every other per-vehicle map.
    pub fn eviction_candidates(
        &self,
        silent_before_ms: i64,
        max: usize,
        keep: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let mut by_age: Vec<(i64, &String)> = self
            .vehicles
            .iter()
            .map(|(id, v)| (v.last_seen_ms, id))
            .collect();
        let over = by_age.len().saturating_sub(max);
        if over > 0 {
            by_age.select_nth_unstable(over - 1);
        }
        by_age
            .iter()
            .enumerate()
            .filter(|(i, (seen, _))| *i < over || *seen < silent_before_ms)
            .map(|(_, (_, id))| *id)
            .filter(|id| !keep(id))
            .cloned()
            .collect()
    }

    /// Removes a vehicle from the live state, returning what was known of it.
    pub fn remove(&mut self, id: &str) -> Option<VehicleState> {
        self.vehicles.remove(id)
    }

    /// Hands what was known under `from` (an unmapped device) over to vehicle `to` (SPEC §8):
    /// the newer position and status win, metadata already known for `to` stays. Returns
    /// whether `from` was known.
    pub fn reattribute(&mut self, from: &str, to: &str, now_ms: i64) -> bool {
        let Some(old) = self.vehicles.remove(from) else {
            return false;
        };
        if let Some(mut p) = old.position {
            p.vehicle = to.to_string();
            self.apply_position(&p, now_ms);
        }
        if let Some(mut s) = old.status {
            s.vehicle = to.to_string();
            self.apply_status(&s, now_ms);
        }
        let (v, _) = self.entry(to, now_ms);
        v.first_seen_ms = v.first_seen_ms.min(old.first_seen_ms);
        v.last_seen_ms = v.last_seen_ms.max(old.last_seen_ms);
        true
    }

    /// Seeds a vehicle from the cache (not counted as seen now).
    pub fn seed(
        &mut self,
        id: &str,
        info: Option<VehicleInfo>,
        last: Option<PositionSample>,
        first_seen_ms: i64,
    ) {
        let last_seen = last.as_ref().map(|p| p.ts_ms).unwrap_or(0);
        self.vehicles.insert(
            id.to_string(),
            VehicleState {
                info,
                position: last,
                status: None,
                last_seen_ms: last_seen,
                first_seen_ms,
            },
        );
    }

    /// Merges a position. Within one source the newer event time wins; across sources the
    /// later arrival wins (Redis has no event time: its samples carry their arrival time).
    pub fn apply_position(&mut self, p: &PositionSample, now_ms: i64) -> Applied {
        if p.source == Source::Redis {
            self.redis_rate.add(now_ms, 1);
        }
        let (v, new_vehicle) = self.entry(&p.vehicle, now_ms);
        let changed = match &v.position {
            None => true,
            Some(cur) => cur.source != p.source || p.ts_ms >= cur.ts_ms,
        };
        if changed {
            let mut next = p.clone();
            // Redis geo sets carry no speed or heading: keep those of a recent Kafka fix, so a
            // moving vehicle does not flip to "parked" whenever the geo set is read.
            if let Some(cur) = &v.position
                && cur.source != p.source
                && (p.ts_ms - cur.ts_ms).abs() <= CARRY_OVER_MS
            {
                next.speed = next.speed.or(cur.speed);
                next.heading = next.heading.or(cur.heading);
            }
            v.position = Some(next);
        }
        Applied {
            new_vehicle,
            changed,
        }
    }

    /// Merges a status; returns whether the rule-relevant fields changed.
    pub fn apply_status(&mut self, s: &StatusSample, now_ms: i64) -> (Applied, bool) {
        let (v, new_vehicle) = self.entry(&s.vehicle, now_ms);
        let newer = v.status.as_ref().is_none_or(|cur| s.ts_ms >= cur.ts_ms);
        let known_changed = v.status.as_ref().is_none_or(|cur| cur.known != s.known);
        if newer {
            v.status = Some(s.clone());
        }
        (
            Applied {
                new_vehicle,
                changed: newer,
            },
            newer && known_changed,
        )
    }

    /// Merges metadata column by column (SPEC §8: several info topics, newest wins): a column
    /// the message carried replaces the known one (`Some("")` clears it), a column it did not
    /// carry stays.
    pub fn apply_info(&mut self, i: &VehicleInfo, now_ms: i64) -> Applied {
        let (v, new_vehicle) = self.entry(&i.vehicle, now_ms);
        v.info = Some(match v.info.take() {
            Some(known) => merge_info(known, i),
            None => merge_info(
                VehicleInfo {
                    vehicle: i.vehicle.clone(),
                    ..Default::default()
                },
                i,
            ),
        });
        Applied {
            new_vehicle,
            changed: true,
        }
    }

    /// Forgets a vehicle's metadata (its record was deleted upstream).
    pub fn delete_info(&mut self, id: &str) {
        if let Some(v) = self.vehicles.get_mut(id) {
            v.info = None;
        }
    }

    /// Counts messages of a topic.
    pub fn count(&mut self, topic: &str, messages: u64, rejected: u64, now_ms: i64) {
        let t = self.topics.entry(topic.to_string()).or_default();
        t.messages += messages;
        t.rejected += rejected;
        t.rate.add(now_ms, messages);
        if messages > 0 {
            self.last_message_ms = Some(now_ms);
        }
    }

    /// Counts a rejection by reason.
    pub fn count_rejection(&mut self, reason: RejectReason) {
        *self.rejected_by_reason.entry(reason).or_default() += 1;
    }

    /// Replaces the lag figures of a topic's partitions.
    pub fn set_lag(&mut self, topic: &str, partition: i32, lag: i64) {
        self.topics
            .entry(topic.to_string())
            .or_default()
            .lag
            .insert(partition, lag);
    }

    /// One vehicle.
    pub fn vehicle(&self, id: &str) -> Option<&VehicleState> {
        self.vehicles.get(id)
    }

    /// All vehicles.
    pub fn vehicles(&self) -> impl Iterator<Item = (&String, &VehicleState)> {
        self.vehicles.iter()
    }

    /// Number of vehicles.
    pub fn len(&self) -> usize {
        self.vehicles.len()
    }

    /// No vehicles.
    pub fn is_empty(&self) -> bool {
        self.vehicles.is_empty()
    }

    /// Whether a vehicle is stale at `now_ms`.
    pub fn is_stale(&self, v: &VehicleState, now_ms: i64) -> bool {
        now_ms - v.last_seen_ms > self.stale_after_ms
    }

    /// The counters bar.
    pub fn counters(&self, now_ms: i64) -> FleetCounters {
        let stale = self
            .vehicles
            .values()
            .filter(|v| self.is_stale(v, now_ms))
            .count() as u64;
        let mut c = FleetCounters {
            vehicles_total: self.vehicles.len() as u64,
            vehicles_online: self.vehicles.len() as u64 - stale,
            vehicles_stale: stale,
            last_message_ms: self.last_message_ms,
            redis_rate: self.redis_rate.per_second(now_ms),
            kafka: self.kafka.clone(),
            redis: self.redis.clone(),
            gaps: self.gaps,
            cache_error: self.cache_error.clone(),
            partitions: self.partitions.clone(),
            ..Default::default()
        };
        for (name, t) in &self.topics {
            let lag = (!t.lag.is_empty()).then(|| t.lag.values().map(|l| (*l).max(0)).sum::<i64>());
            let rate = t.rate.per_second(now_ms);
            c.rate += rate;
            c.rejected += t.rejected;
            if let Some(l) = lag {
                *c.lag.get_or_insert(0) += l;
            }
            c.topics.insert(
                name.clone(),
                TopicCounters {
                    messages: t.messages,
                    rejected: t.rejected,
                    rate,
                    lag,
                },
            );
        }
        c.rejected_by_reason = self
            .rejected_by_reason
            .iter()
            .map(|(r, n)| (r.as_str().to_string(), *n))
            .collect();
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(src: Source, ts: i64) -> PositionSample {
        PositionSample {
            vehicle: "v".into(),
            ts_ms: ts,
            lat: 1.0,
            lng: 2.0,
            speed: None,
            heading: None,
            source: src,
        }
    }

    /// SPEC §8: info topics merge column by column; `Some("")` clears, `None` keeps.
    #[test]
    fn info_merges_column_by_column() {
        let mut f = LiveFleet::new(60.0);
        let info = |plate: Option<&str>, driver: Option<&str>, extra: &str| VehicleInfo {
            vehicle: "v".into(),
            plate: plate.map(Into::into),
            driver: driver.map(Into::into),
            extra: extra.into(),
            ..Default::default()
        };
        f.apply_info(&info(Some("12가3456"), None, r#"{"year":2024}"#), 1);
        f.apply_info(&info(None, Some("Kim"), r#"{"seats":5}"#), 2);
        let got = f.vehicle("v").unwrap().info.clone().unwrap();
        assert_eq!(got.plate.as_deref(), Some("12가3456"));
        assert_eq!(got.driver.as_deref(), Some("Kim"));
        let extra: serde_json::Value = serde_json::from_str(&got.extra).unwrap();
        assert_eq!(extra, serde_json::json!({"seats": 5, "year": 2024}));
        f.apply_info(&info(None, Some(""), "{}"), 3);
        let got = f.vehicle("v").unwrap().info.clone().unwrap();
        assert_eq!(got.driver, None, "cleared");
        assert_eq!(got.plate.as_deref(), Some("12가3456"), "kept");
        f.delete_info("v");
        assert!(f.vehicle("v").unwrap().info.is_none());
    }

    /// What an unmapped device reported moves to its vehicle; the newer fix wins.
    #[test]
    fn reattribute_moves_a_device_to_its_vehicle() {
        let mut f = LiveFleet::new(60.0);
        let mut dev = p(Source::Kafka, 200);
        dev.vehicle = "D1".into();
        f.apply_position(&dev, 10);
        f.apply_position(&p(Source::Kafka, 100), 20);
        assert!(f.reattribute("D1", "v", 30));
        assert!(f.vehicle("D1").is_none());
        let v = f.vehicle("v").unwrap();
        assert_eq!(v.position.as_ref().unwrap().ts_ms, 200);
        assert_eq!(v.position.as_ref().unwrap().vehicle, "v");
        assert_eq!(v.first_seen_ms, 10);
        assert!(!f.reattribute("D1", "v", 40), "nothing left to move");
    }

    #[test]
    fn merge_rules() {
        let mut f = LiveFleet::new(60.0);
        assert!(f.apply_position(&p(Source::Kafka, 100), 1000).new_vehicle);
        assert!(
            !f.apply_position(&p(Source::Kafka, 50), 1001).changed,
            "older kafka sample loses"
        );
        assert!(
            f.apply_position(&p(Source::Redis, 10), 1002).changed,
            "other source: arrival wins"
        );
        assert_eq!(
            f.vehicle("v").unwrap().position.as_ref().unwrap().source,
            Source::Redis
        );
        // speed and heading of a recent Kafka fix carry over to a Redis fix that has none
        let mut k = p(Source::Kafka, 5_000);
        k.speed = Some(42.0);
        f.apply_position(&k, 1003);
        f.apply_position(&p(Source::Redis, 9_000), 1003);
        let cur = f.vehicle("v").unwrap().position.clone().unwrap();
        assert_eq!((cur.source, cur.speed), (Source::Redis, Some(42.0)));
        f.apply_position(&p(Source::Kafka, 30_000), 1003);
        f.apply_position(&p(Source::Redis, 60_000), 1003);
        assert_eq!(
            f.vehicle("v").unwrap().position.as_ref().unwrap().speed,
            None,
            "too old to carry over"
        );
        let c = f.counters(1003);
        assert_eq!((c.vehicles_total, c.vehicles_online), (1, 1));
        let c = f.counters(1003 + 61_000);
        assert_eq!(c.vehicles_stale, 1);
    }

    #[test]
    fn rate_and_lag() {
        let mut f = LiveFleet::new(60.0);
        for s in 0..5 {
            f.count("gps", 100, 1, s * 1000 + 10);
        }
        let c = f.counters(5_000);
        assert!((c.rate - 100.0).abs() < 1e-9, "{}", c.rate);
        assert_eq!(c.rejected, 5);
        f.set_lag("gps", 0, 7);
        f.set_lag("gps", 1, 3);
        assert_eq!(f.counters(5_000).lag, Some(10));
    }

    /// SPEC §7 bounded: silent vehicles go, the fleet is capped by evicting the longest
    /// silent first, and vehicles the caller must keep stay.
    #[test]
    fn eviction_takes_the_silent_and_the_oldest_over_the_cap() {
        let mut l = LiveFleet::new(300.0);
        for i in 0..10 {
            l.apply_position(
                &PositionSample {
                    vehicle: format!("v{i}"),
                    ..p(Source::Kafka, 1)
                },
                1_000 * i,
            );
        }
        let mut gone = l.eviction_candidates(2_500, usize::MAX, |_| false);
        gone.sort();
        assert_eq!(gone, ["v0", "v1", "v2"]);
        let mut gone = l.eviction_candidates(0, 6, |id| id == "v1");
        gone.sort();
        assert_eq!(gone, ["v0", "v2", "v3"], "the 4 oldest, v1 kept");
        for id in &gone {
            l.remove(id);
        }
        assert_eq!(l.len(), 7);
        assert!(l.eviction_candidates(0, 7, |_| false).is_empty());
    }
}
