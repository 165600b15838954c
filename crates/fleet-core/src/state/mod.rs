//! The live fleet: latest position, status and metadata per vehicle, merged from Kafka and
//! Redis, plus the counters the UI shows. Owned by the engine; readers take snapshots.

use census::Census;
use fleet_model::Viewport;
use fleet_model::{ConnState, PositionSample, RejectReason, Source, StatusSample, VehicleInfo};
use grid::Grid;
pub use grid::Member;
use std::collections::{BTreeMap, HashMap};

mod census;
mod counters;
pub mod grid;
mod merge;

use counters::{Rate, TopicState};
pub use merge::merge_info;

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

/// How recent another source's fix must be to lend its speed and heading (ms).
const CARRY_OVER_MS: i64 = 10_000;

/// A vehicle in its slot.
#[derive(Debug)]
struct Slot {
    id: String,
    v: VehicleState,
}

/// The live fleet and its counters.
///
/// Vehicles live in slots (stable small integers) so that the spatial index
/// ([`grid::Grid`]) and the per-second census ([`census::Census`]) refer to them without
/// hashing ids; both are kept up to date on every message, so a frame costs what its
/// viewport shows and the counters cost nothing per vehicle (issue 13).
#[derive(Debug)]
pub struct LiveFleet {
    index: HashMap<String, u32>,
    /// Boxed: growing the vector moves pointers, not 250,000 vehicles' state under the
    /// lock a frame waits for.
    slots: Vec<Option<Box<Slot>>>,
    free: Vec<u32>,
    /// Per slot: the second it was last heard from (its census bucket).
    seen_s: Vec<i64>,
    /// Per slot: its group's number in `group_names` (0: none).
    group_of: Vec<u32>,
    group_names: Vec<String>,
    group_ix: HashMap<String, u32>,
    /// Per group number: its census (0: vehicles with no group).
    group_census: Vec<Census>,
    census: Census,
    grid: Grid,
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

fn second(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

impl LiveFleet {
    /// An empty fleet; vehicles go stale after `stale_after_s`.
    pub fn new(stale_after_s: f64) -> Self {
        Self {
            index: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            seen_s: Vec::new(),
            group_of: Vec::new(),
            group_names: vec![String::new()],
            group_ix: HashMap::new(),
            group_census: vec![Census::default()],
            census: Census::default(),
            grid: Grid::default(),
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

    fn slot(&self, slot: u32) -> &Slot {
        self.slots[slot as usize].as_ref().expect("live slot")
    }

    fn state_mut(&mut self, slot: u32) -> &mut VehicleState {
        &mut self.slots[slot as usize].as_mut().expect("live slot").v
    }

    /// Puts a new vehicle in a slot and counts it.
    fn insert(&mut self, id: &str, v: VehicleState) -> u32 {
        let seen = second(v.last_seen_ms);
        let at = v.position.as_ref().map(|p| (p.lat, p.lng));
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                self.seen_s.push(0);
                self.group_of.push(0);
                (self.slots.len() - 1) as u32
            }
        };
        let s = slot as usize;
        self.slots[s] = Some(Box::new(Slot {
            id: id.to_string(),
            v,
        }));
        self.seen_s[s] = seen;
        self.group_of[s] = 0;
        self.census.add(seen);
        self.group_census[0].add(seen);
        self.index.insert(id.to_string(), slot);
        if let Some((lat, lng)) = at {
            self.grid.set(slot, lat, lng);
        }
        self.regroup(slot);
        slot
    }

    /// Records that a slot was heard from at `now_ms`.
    fn touch(&mut self, slot: u32, now_ms: i64) {
        let v = self.state_mut(slot);
        if now_ms <= v.last_seen_ms {
            return;
        }
        v.last_seen_ms = now_ms;
        let (s, to) = (slot as usize, second(now_ms));
        let from = self.seen_s[s];
        if from != to {
            self.seen_s[s] = to;
            self.census.moved(from, to);
            self.group_census[self.group_of[s] as usize].moved(from, to);
        }
    }

    /// Moves a slot to the census of the group its metadata names.
    fn regroup(&mut self, slot: u32) {
        let s = slot as usize;
        let name = self.slots[s]
            .as_ref()
            .and_then(|x| x.v.info.as_ref())
            .and_then(|i| i.group.as_deref());
        let known = name.map(|g| self.group_ix.get(g).copied().ok_or(g));
        let to = match known {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(g)) => {
                let g = g.to_string();
                let n = self.group_names.len() as u32;
                self.group_ix.insert(g.clone(), n);
                self.group_names.push(g);
                self.group_census.push(Census::default());
                n
            }
        };
        let from = self.group_of[s];
        if from != to {
            self.group_census[from as usize].sub(self.seen_s[s]);
            self.group_census[to as usize].add(self.seen_s[s]);
            self.group_of[s] = to;
        }
    }

    fn entry(&mut self, id: &str, now_ms: i64) -> (u32, bool) {
        match self.index.get(id) {
            Some(&slot) => {
                self.touch(slot, now_ms);
                (slot, false)
            }
            None => {
                let v = VehicleState {
                    first_seen_ms: now_ms,
                    last_seen_ms: now_ms,
                    ..Default::default()
                };
                (self.insert(id, v), true)
            }
        }
    }

    /// Picks the vehicles to evict (SPEC §7 bounded): every vehicle not heard from since
    /// `silent_before_ms`, and, while more than `max` remain, the longest silent ones. Those
    /// for which `keep` says so (an open rule alert) stay. The caller removes the returned
    /// ids here ([`LiveFleet::remove`]) and from every other per-vehicle map. The census
    /// says up to which second to look, and only the compact per-slot seconds are scanned
    /// (not every vehicle's state): this runs under the lock frames wait for.
    pub fn eviction_candidates(
        &self,
        silent_before_ms: i64,
        max: usize,
        keep: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let over = self.len().saturating_sub(max);
        let mut upto = second(silent_before_ms);
        if over > 0 {
            upto = upto.max(self.census.second_holding(over as u64));
        }
        if self.census.oldest().is_none_or(|o| o > upto) {
            return Vec::new();
        }
        // Free slots hold i64::MAX.
        let mut by_age: Vec<(i64, u32)> = self
            .seen_s
            .iter()
            .enumerate()
            .filter(|(_, s)| **s <= upto)
            .map(|(i, _)| (self.slot(i as u32).v.last_seen_ms, i as u32))
            .collect();
        if over > 0 && by_age.len() > over {
            by_age.select_nth_unstable(over - 1);
        }
        by_age
            .iter()
            .enumerate()
            .filter(|(i, (seen, _))| *i < over || *seen < silent_before_ms)
            .map(|(_, (_, slot))| &self.slot(*slot).id)
            .filter(|id| !keep(id))
            .cloned()
            .collect()
    }

    /// Makes room for `n` more vehicles now. The engine calls it (and the same for its own
    /// per-vehicle maps, outside this lock) before applying a batch: a map doubling at 131,072
    /// vehicles rehashes all of them, and when every map doubled inside one slice of a batch
    /// a frame waited 240 ms (`bench churn`, issue 10).
    pub fn reserve(&mut self, n: usize) {
        self.index.reserve(n);
        self.slots.reserve(n);
        self.seen_s.reserve(n);
        self.group_of.reserve(n);
    }

    /// Removes a vehicle from the live state, returning what was known of it.
    pub fn remove(&mut self, id: &str) -> Option<VehicleState> {
        let slot = self.index.remove(id)?;
        let s = slot as usize;
        let gone = self.slots[s].take().expect("indexed slot");
        self.census.sub(self.seen_s[s]);
        self.group_census[self.group_of[s] as usize].sub(self.seen_s[s]);
        self.group_of[s] = 0;
        self.seen_s[s] = i64::MAX;
        self.grid.remove(slot);
        self.free.push(slot);
        Some(gone.v)
    }

    /// Hands what was known under `from` (an unmapped device) over to vehicle `to` (SPEC §8):
    /// the newer position and status win, metadata already known for `to` stays. Returns
    /// whether `from` was known.
    pub fn reattribute(&mut self, from: &str, to: &str, now_ms: i64) -> bool {
        let Some(old) = self.remove(from) else {
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
        let (slot, _) = self.entry(to, now_ms);
        self.touch(slot, old.last_seen_ms);
        let v = self.state_mut(slot);
        v.first_seen_ms = v.first_seen_ms.min(old.first_seen_ms);
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
        self.remove(id);
        let last_seen = last.as_ref().map(|p| p.ts_ms).unwrap_or(0);
        self.insert(
            id,
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
        let (slot, new_vehicle) = self.entry(&p.vehicle, now_ms);
        let v = self.state_mut(slot);
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
            self.grid.set(slot, p.lat, p.lng);
        }
        Applied {
            new_vehicle,
            changed,
        }
    }

    /// Merges a status; returns whether the rule-relevant fields changed.
    pub fn apply_status(&mut self, s: &StatusSample, now_ms: i64) -> (Applied, bool) {
        let (slot, new_vehicle) = self.entry(&s.vehicle, now_ms);
        let v = self.state_mut(slot);
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
        let (slot, new_vehicle) = self.entry(&i.vehicle, now_ms);
        let v = self.state_mut(slot);
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
        self.regroup(slot);
        Applied {
            new_vehicle,
            changed: true,
        }
    }

    /// Forgets a vehicle's metadata (its record was deleted upstream).
    pub fn delete_info(&mut self, id: &str) {
        if let Some(&slot) = self.index.get(id) {
            self.state_mut(slot).info = None;
            self.regroup(slot);
        }
    }

    /// One vehicle.
    pub fn vehicle(&self, id: &str) -> Option<&VehicleState> {
        self.index.get(id).map(|&slot| &self.slot(slot).v)
    }

    /// All vehicles.
    pub fn vehicles(&self) -> impl Iterator<Item = (&String, &VehicleState)> {
        self.slots.iter().flatten().map(|s| (&s.id, &s.v))
    }

    /// The vehicle in a slot (from [`LiveFleet::visible`]).
    pub fn at_slot(&self, slot: u32) -> (&String, &VehicleState) {
        let s = self.slot(slot);
        (&s.id, &s.v)
    }

    /// A vehicle's slot.
    pub fn slot_of(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }

    /// Number of vehicles.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// No vehicles.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The second before which a vehicle last heard from is stale at `now_ms`.
    fn cutoff_s(&self, now_ms: i64) -> i64 {
        second(now_ms - self.stale_after_ms)
    }

    /// Whether a vehicle is stale at `now_ms`: not heard from for longer than the stale
    /// threshold, counted in whole seconds (as the census counts it).
    pub fn is_stale(&self, v: &VehicleState, now_ms: i64) -> bool {
        second(v.last_seen_ms) < self.cutoff_s(now_ms)
    }

    /// [`LiveFleet::is_stale`] for a slot, without touching its state.
    pub fn slot_is_stale(&self, slot: u32, now_ms: i64) -> bool {
        self.seen_s[slot as usize] < self.cutoff_s(now_ms)
    }

    /// (vehicles, stale) of one group, from its census.
    pub fn group_counts(&self, group: &str, now_ms: i64) -> (u64, u64) {
        self.group_ix
            .get(group)
            .map(|&n| &self.group_census[n as usize])
            .map_or((0, 0), |c| (c.total(), c.before(self.cutoff_s(now_ms))))
    }

    /// Every group some vehicle belongs to, sorted.
    pub fn groups(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .group_names
            .iter()
            .zip(&self.group_census)
            .skip(1)
            .filter(|(_, c)| c.total() > 0)
            .map(|(g, _)| g.clone())
            .collect();
        out.sort_unstable();
        out
    }

    /// Every vehicle with a position in `vp` (and in `group`, when given), as index members:
    /// the cost is the cells the viewport covers, not the fleet.
    pub fn visible(&self, vp: &Viewport, group: Option<&str>) -> Vec<Member> {
        let want = match group {
            None => None,
            Some(g) => match self.group_ix.get(g) {
                Some(&n) => Some(n),
                None => return Vec::new(),
            },
        };
        let mut out = Vec::new();
        self.grid.visit(vp, |m, inside| {
            if want.is_some_and(|g| self.group_of[m.slot as usize] != g) {
                return;
            }
            if !inside {
                let p = self.slot(m.slot).v.position.as_ref();
                if !p.is_some_and(|p| vp.contains(p.lat, p.lng)) {
                    return;
                }
            }
            out.push(*m);
        });
        out
    }

    /// The earliest any vehicle was last heard from, to the second (rounded down).
    pub fn oldest_seen_ms(&self) -> Option<i64> {
        self.census.oldest().map(|s| s * 1000)
    }

    /// Where a vehicle is in the spatial index.
    pub fn member(&self, slot: u32) -> Option<Member> {
        self.grid.member(slot)
    }
}

#[cfg(test)]
mod index_proptests;
#[cfg(test)]
mod tests;
