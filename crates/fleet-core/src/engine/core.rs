//! The engine's single task state: turns source batches into live-state updates, rule
//! evaluations and one cache write batch each.

use super::Live;
use crate::decode::Decoded;
use crate::history::HistoryPolicy;
use crate::kafka::KafkaBatch;
use crate::redis_geo::RedisEvent;
use crate::rules::RuleEngine;
use crate::state::LiveFleet;
use crate::store::{AlertOrigin, Origin, VehicleSnapshot, WriteBatch, WriterHandle, now_ms};
use fleet_model::{Alert, ConnState, PositionSample, StatusFields};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tracing::{debug, warn};

/// Vehicles taken out of the shared live state per lock hold when evicting.
const EVICT_CHUNK: usize = 2_000;
/// Messages of a batch applied per hold of the live-state lock.
const LOCK_SLICE: usize = 1_000;
/// Status samples: keep when a state changed (engine, doors, headlights), a level moved by
/// a step worth charting (fuel or battery by 1 point, speed by 5 km/h), or the interval
/// passed. Floats change in every message of a real device: compared exactly, every sample
/// was kept — a full row with all its fields per message, twice the rows of the positions,
/// and half the CDC shape's ingest rate. Positions carry speed at their own rate.
pub(super) struct StatusPolicy {
    pub(super) min_interval_ms: i64,
    pub(super) last: HashMap<String, (i64, StatusFields)>,
}

/// The steps that make a status sample worth keeping before the interval (`StatusPolicy`).
const LEVEL_STEP: f64 = 1.0;
const SPEED_STEP_KMH: f64 = 5.0;

impl StatusPolicy {
    pub(super) fn keep(&mut self, vehicle: &str, ts: i64, known: &StatusFields) -> bool {
        let keep = match self.last.get(vehicle) {
            None => true,
            Some((t, k)) => changed(k, known) || (ts - t).abs() >= self.min_interval_ms,
        };
        if keep {
            self.last.insert(vehicle.to_string(), (ts, known.clone()));
        }
        keep
    }
}

/// Whether `now` differs from the last kept `was` by a state or a step (see [`StatusPolicy`]).
fn changed(was: &StatusFields, now: &StatusFields) -> bool {
    let moved = |a: Option<f64>, b: Option<f64>, step: f64| match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() >= step || a.is_nan() != b.is_nan(),
        (a, b) => a.is_some() != b.is_some(),
    };
    was.engine_on != now.engine_on
        || was.doors_open != now.doors_open
        || was.headlights_on != now.headlights_on
        || moved(was.fuel, now.fuel, LEVEL_STEP)
        || moved(was.battery, now.battery, LEVEL_STEP)
        || moved(was.speed, now.speed, SPEED_STEP_KMH)
}

pub(super) struct Core {
    pub(super) live: Live,
    pub(super) history: HistoryPolicy,
    pub(super) status_policy: StatusPolicy,
    pub(super) writer: WriterHandle,
    pub(super) dirty: HashSet<String>,
    /// fleetdash's own alert rules (`None` when `[alerts] enabled = false`).
    pub(super) rules: Option<RuleEngine>,
    /// Alerts raised or resolved by the rules since the last batch was built.
    pub(super) raised: Vec<Alert>,
    /// Vehicles silent this long are evicted from memory (the retention period).
    pub(super) evict_silent_ms: i64,
    /// At most this many vehicles in memory (`fleet.max_live_vehicles`).
    pub(super) max_live: usize,
    /// Paths seen per topic (SPEC §8 schema registry).
    pub(super) schema: crate::schema::Registry,
    /// The lag panel and stuck partitions.
    pub(super) lag: super::lag::LagTracker,
    /// Device → vehicle mapping (SPEC §8).
    pub(super) devices: super::devices::Devices,
}

impl Core {
    /// Moves what the rules raised, and their changed state, into the batch: alerts commit
    /// with the offsets of the messages that raised them (exactly-once, like telemetry).
    pub(super) fn take_rule_output(&mut self, wb: &mut WriteBatch) {
        wb.alerts
            .extend(self.raised.drain(..).map(|a| (a, AlertOrigin::Rule)));
        if let Some(r) = &mut self.rules {
            wb.rule_states.extend(
                r.take_dirty()
                    .into_iter()
                    .filter_map(|(v, p)| serde_json::to_string(&p).ok().map(|j| (v, j))),
            );
        }
    }

    /// Evicts vehicles from every per-vehicle map (live state, history and status policies,
    /// rules, pending snapshots) so memory follows the fleet that is actually reporting, not
    /// every id ever seen (SPEC §7). They stay in the cache; a vehicle that reports again is
    /// new to memory. Vehicles with an open rule alert stay. Returns how many went.
    ///
    /// Over the cap, the fleet is cut to 90 % of it ([`Core::evict_over_cap`]), not to the
    /// cap itself: a flood of new ids then pays for one eviction per tenth of the cap, not
    /// one per batch.
    pub(super) fn evict(&mut self, now: i64) -> usize {
        let handle = self.live.clone();
        let rules = &self.rules;
        let gone = {
            let live = handle.lock();
            let max = if live.len() > self.max_live {
                self.max_live - self.max_live / 10
            } else {
                self.max_live
            };
            live.eviction_candidates(now - self.evict_silent_ms, max, |id| {
                rules.as_ref().is_some_and(|r| r.has_open(id))
            })
        };
        // Out of the shared live state a chunk at a time, letting a waiting frame in
        // between: 25,000 removals in one hold were a 1 s frame interval (issue 10).
        for chunk in gone.chunks(EVICT_CHUNK) {
            let mut live = handle.lock();
            for id in chunk {
                live.remove(id);
            }
            Live::unlock_fair(live);
        }
        // The engine's own maps are not shared: no lock needed.
        for id in &gone {
            if let Some(r) = &mut self.rules {
                r.forget(id);
            }
            self.devices.forget(id);
            self.history.forget(id);
            self.status_policy.last.remove(id);
            self.dirty.remove(id);
        }
        gone.len()
    }

    /// Evicts as soon as a batch took the fleet over `fleet.max_live_vehicles`: a flood of
    /// new ids (10 million an hour, SPEC §7) must not wait for the next tick, which let the
    /// live fleet reach 340,000 under a cap of 250,000 (issue 10).
    pub(super) fn evict_over_cap(&mut self, now: i64) {
        if self.live.lock().len() > self.max_live {
            let n = self.evict(now);
            debug!(
                evicted = n,
                "vehicles evicted: over fleet.max_live_vehicles"
            );
        }
    }

    /// Wall-clock rules (stale devices), once per tick.
    pub(super) async fn tick_rules(&mut self, now: i64) {
        let Some(r) = &mut self.rules else {
            // Alerts of the engine's own (stuck partitions) are written all the same.
            self.write_raised().await;
            return;
        };
        {
            let live = self.live.lock();
            // A configured source that is not up (down, or still connecting) pauses the
            // stale rule: silence is then the source's, not the vehicles'.
            let down = |c: &ConnState| !matches!(c, ConnState::Up | ConnState::Disabled);
            if down(&live.kafka) || down(&live.redis) {
                r.sources_down(now);
            }
            // Nobody silent long enough (the census's oldest second says so): no walk over
            // the fleet under the lock a frame waits for.
            let anyone = r.stale_after_ms().is_some_and(|after| {
                live.oldest_seen_ms()
                    .is_some_and(|oldest| oldest <= now - after)
            });
            if anyone {
                r.on_tick(
                    now,
                    live.vehicles().map(|(id, v)| (id.as_str(), v.last_seen_ms)),
                    &mut self.raised,
                );
            }
        }
        self.write_raised().await;
    }

    /// Writes what was raised outside a Kafka batch (wall-clock rules, stuck partitions).
    async fn write_raised(&mut self) {
        if !self.raised.is_empty() {
            let mut wb = WriteBatch::default();
            self.take_rule_output(&mut wb);
            let _ = self.writer.write(wb).await;
        }
    }

    pub(super) async fn kafka_batch(&mut self, mut b: KafkaBatch) {
        let now = b.arrival_ms;
        // Schema drift alerts join the rules' output; registry rows commit with the offsets.
        self.schema.observe(&b.shapes, &mut self.raised);
        b.shapes.clear();
        let mut wb = WriteBatch {
            offsets: b.offsets,
            gaps: b.gaps,
            schema: self.schema.take_dirty(),
            ..Default::default()
        };
        let mut deltas: HashMap<Arc<str>, (u64, u64)> = HashMap::new();
        // A handle of our own, so the guard does not borrow `self` (see `position`).
        let handle = self.live.clone();
        // Maps that must grow for this batch grow now, not inside a slice under the lock.
        let n = b.items.len();
        self.history.reserve(n);
        self.status_policy.last.reserve(n);
        if let Some(r) = &mut self.rules {
            r.reserve(n);
        }
        handle.lock().reserve(n);
        let mut items = b.items.into_iter().peekable();
        // The batch is applied in slices, each under one hold of the live-state lock, and the
        // task yields between them: a waiting frame (on this runtime, or the lock) gets in
        // (issue 10: a batch of 5,000 new vehicles held both for over 100 ms).
        while items.peek().is_some() {
            {
                let mut live = handle.lock();
                for mut item in items.by_ref().take(LOCK_SLICE) {
                    let d = deltas.entry(item.topic.clone()).or_default();
                    if !item.secondary {
                        d.0 += 1;
                    }
                    if item.by_device
                        && let Ok(decoded) = &mut item.outcome
                    {
                        self.devices.attribute(decoded, &mut wb);
                    }
                    let origin = Origin {
                        topic: Some(item.topic.clone()),
                        partition: Some(item.partition),
                        offset: Some(item.offset),
                    };
                    match item.outcome {
                        Ok(Decoded::Position(p)) => {
                            self.position(&mut live, p, origin, now, &mut wb)
                        }
                        Ok(Decoded::Status(s)) => {
                            let (a, known_changed) = live.apply_status(&s, now);
                            if let Some(r) = &mut self.rules {
                                r.on_status(&s, &mut self.raised);
                            }
                            if known_changed {
                                self.history.status_changed(&s.vehicle);
                            }
                            if a.new_vehicle {
                                wb.snapshots.push(VehicleSnapshot {
                                    vehicle: s.vehicle.clone(),
                                    first_seen: now,
                                    position: None,
                                    status_json: Some(s.fields.clone()),
                                });
                            } else {
                                mark_dirty(&mut self.dirty, &s.vehicle);
                            }
                            if self.status_policy.keep(&s.vehicle, s.ts_ms, &s.known) {
                                wb.statuses.push((s, origin));
                            }
                        }
                        Ok(Decoded::Info(i)) => {
                            live.apply_info(&i, now);
                            wb.infos.push(i);
                        }
                        Ok(Decoded::InfoDelete(id)) => {
                            live.delete_info(&id);
                            wb.delete_info(id);
                        }
                        Ok(Decoded::Device(m)) => {
                            if let Some((device, vehicle)) = self.devices.apply(m, &mut wb) {
                                self.reattribute(&mut live, device, vehicle, now, &mut wb);
                            }
                        }
                        Ok(Decoded::Alert(a)) => wb.alerts.push((a, AlertOrigin::Upstream)),
                        Ok(Decoded::Ack(k)) => {
                            if let Some(r) = &mut self.rules {
                                r.acknowledged(&k.alert_id, &k.operator, k.ts, &k.note);
                            }
                            wb.acks.push(k);
                        }
                        Ok(Decoded::Snooze(z)) => wb.snoozes.push(z),
                        Ok(Decoded::Tombstone) => {}
                        Err(q) => {
                            d.1 += 1;
                            live.count_rejection(q.reason);
                            wb.quarantine.push(*q);
                        }
                    }
                }
                Live::unlock_fair(live);
            }
            tokio::task::yield_now().await;
        }
        {
            let mut live = handle.lock();
            for (t, (m, r)) in &deltas {
                live.count(t, *m, *r, now);
            }
            // The batch's vehicles commit their latest state with its offsets: a snapshot left
            // for the timer would be lost by a crash after the commit, and the messages behind
            // it are never read again (the cache's `vehicles` row would stay behind for good).
            self.drain_snapshots(&live, &mut wb);
        }
        wb.topic_deltas = deltas
            .into_iter()
            .map(|(t, (m, r))| (t.to_string(), m, r))
            .collect();
        self.take_rule_output(&mut wb);
        if let Err(e) = self.writer.write(wb).await {
            warn!(error = %e, "cache writer gone; batch not stored");
        }
    }

    /// Hands what an unmapped device reported over to its vehicle, in memory and (with the
    /// batch) in the cache: its position, status and history then belong to the vehicle.
    fn reattribute(
        &mut self,
        live: &mut LiveFleet,
        device: String,
        vehicle: String,
        now: i64,
        wb: &mut WriteBatch,
    ) {
        if live.reattribute(&device, &vehicle, now) {
            mark_dirty(&mut self.dirty, &vehicle);
        }
        if let Some(r) = &mut self.rules {
            r.forget(&device);
        }
        self.history.forget(&device);
        self.status_policy.last.remove(&device);
        self.dirty.remove(&device);
        wb.snapshots.retain(|s| s.vehicle != device);
        wb.reattribute.push((device, vehicle));
    }

    /// One position from either source: live state, rules, snapshot, history.
    fn position(
        &mut self,
        live: &mut LiveFleet,
        p: PositionSample,
        origin: Origin,
        now: i64,
        wb: &mut WriteBatch,
    ) {
        let a = live.apply_position(&p, now);
        if let Some(r) = &mut self.rules {
            r.on_position(&p, &mut self.raised);
        }
        if a.new_vehicle {
            wb.snapshots.push(VehicleSnapshot {
                vehicle: p.vehicle.clone(),
                first_seen: now,
                position: Some(p.clone()),
                status_json: None,
            });
        } else if a.changed {
            mark_dirty(&mut self.dirty, &p.vehicle);
        }
        if self.history.keep(&p) {
            wb.positions.push((p, origin));
        }
    }

    pub(super) async fn redis_event(&mut self, e: RedisEvent) {
        match e {
            RedisEvent::Conn(c) => self.live.lock().redis = c,
            // Bad members of a geo set (SPEC §7 `bad_id`, …): counted and quarantined like bad
            // Kafka messages; the source reports each once while it stays in the set.
            RedisEvent::Rejected(rows) => {
                {
                    let mut live = self.live.lock();
                    for q in &rows {
                        live.count_rejection(q.reason);
                        live.count(&q.topic, 0, 1, q.received_ms);
                    }
                }
                let wb = WriteBatch {
                    quarantine: rows,
                    ..Default::default()
                };
                if let Err(e) = self.writer.write(wb).await {
                    warn!(error = %e, "cache writer gone; redis rejections not stored");
                }
            }
            RedisEvent::Positions(ps) => {
                let now = now_ms();
                let mut wb = WriteBatch::default();
                {
                    // A handle of our own, so the guard does not borrow `self` (see `position`).
                    let handle = self.live.clone();
                    let mut live = handle.lock();
                    for p in ps {
                        self.position(&mut live, p, Origin::default(), now, &mut wb);
                    }
                }
                self.take_rule_output(&mut wb);
                if !wb.is_empty() {
                    let _ = self.writer.write(wb).await;
                }
            }
        }
    }

    /// Writes the latest state of vehicles that changed since the last snapshot (those of the
    /// Redis source: Kafka batches carry their own, see `kafka_batch`).
    pub(super) async fn flush_snapshots(&mut self) {
        if self.dirty.is_empty() {
            return;
        }
        let mut wb = WriteBatch::default();
        {
            let handle = self.live.clone();
            let live = handle.lock();
            self.drain_snapshots(&live, &mut wb);
        }
        let _ = self.writer.write(wb).await;
    }

    /// Moves the latest state of every dirty vehicle into `wb`.
    fn drain_snapshots(&mut self, live: &LiveFleet, wb: &mut WriteBatch) {
        for id in self.dirty.drain() {
            if let Some(v) = live.vehicle(&id) {
                wb.snapshots.push(VehicleSnapshot {
                    vehicle: id,
                    first_seen: v.first_seen_ms,
                    position: v.position.clone(),
                    status_json: v.status.as_ref().map(|s| s.fields.clone()),
                });
            }
        }
    }
}

fn mark_dirty(dirty: &mut HashSet<String>, id: &str) {
    if !dirty.contains(id) {
        dirty.insert(id.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(engine_on: bool, fuel: f64, speed: f64) -> StatusFields {
        StatusFields {
            engine_on: Some(engine_on),
            fuel: Some(fuel),
            speed: Some(speed),
            ..Default::default()
        }
    }

    #[test]
    fn status_samples_are_kept_on_a_state_change_a_step_or_the_interval() {
        let mut p = StatusPolicy {
            min_interval_ms: 30_000,
            last: HashMap::new(),
        };
        assert!(p.keep("v", 0, &fields(true, 50.0, 30.0)), "the first");
        assert!(
            !p.keep("v", 1_000, &fields(true, 49.9, 31.5)),
            "a device's noise is not a change"
        );
        assert!(
            p.keep("v", 2_000, &fields(true, 48.9, 31.5)),
            "fuel 1 point down"
        );
        assert!(
            p.keep("v", 3_000, &fields(false, 48.9, 31.5)),
            "the engine stopped"
        );
        assert!(
            p.keep("v", 4_000, &fields(false, 48.9, 37.0)),
            "5 km/h faster"
        );
        assert!(!p.keep("v", 5_000, &fields(false, 48.5, 38.0)));
        assert!(
            p.keep("v", 34_000, &fields(false, 48.5, 38.0)),
            "the interval"
        );
        let mut all = StatusPolicy {
            min_interval_ms: 0,
            last: HashMap::new(),
        };
        assert!(all.keep("v", 0, &fields(true, 1.0, 1.0)));
        assert!(
            all.keep("v", 0, &fields(true, 1.0, 1.0)),
            "min_interval_s = 0 keeps all"
        );
    }
}
