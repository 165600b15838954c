//! fleetdash's own alert rules, evaluated on every status and position message (SPEC §6).
//!
//! Rules run on *event time* (the messages' `ts`), so every desktop reading the same topics
//! raises the same alerts with the same deterministic ids ([`fleet_model::alert_id`] of rule,
//! vehicle and the time the condition began). Out-of-order and duplicate messages are ignored
//! by the time-based rules. One alert per rule and vehicle is open at a time; it resolves when
//! the condition clears and may fire again afterwards. Only the stale-device rule runs on the
//! wall clock (silence has no event time).
//!
//! What must survive a restart — condition timers and geofence sides — is [`Persisted`] and
//! written in the same transaction as the offsets; open alerts are reloaded from the cache.

mod geofence;
#[cfg(test)]
mod tests;
mod threshold;

pub use geofence::Fence;

use crate::config::{AlertsConfig, FenceTrigger};
use fleet_model::{Alert, AlertState, PositionSample, Severity, StatusSample, alert_id};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Rule names as stored and shown.
pub mod names {
    /// Engine off, doors closed, headlights on.
    pub const HEADLIGHTS: &str = "headlights_on";
    /// Battery low.
    pub const LOW_BATTERY: &str = "low_battery";
    /// Fuel low.
    pub const LOW_FUEL: &str = "low_fuel";
    /// Speeding.
    pub const OVERSPEED: &str = "overspeed";
    /// Harsh braking.
    pub const HARSH_BRAKING: &str = "harsh_braking";
    /// Device silent.
    pub const STALE: &str = "stale_device";
}

/// Per-vehicle rule state that must survive a restart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Persisted {
    /// Since when the headlights condition holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headlights_since: Option<i64>,
    /// Since when the vehicle is above the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overspeed_since: Option<i64>,
    /// Last harsh brake (for the clear-after timer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_harsh_ts: Option<i64>,
    /// Inside (true) or outside each geofence, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fences: BTreeMap<String, bool>,
    /// Per threshold rule (by name): since when its condition holds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub thresholds: BTreeMap<String, i64>,
    /// Per threshold rule with an open alert: since when its condition is gone.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub thresholds_clear: BTreeMap<String, i64>,
}

#[derive(Debug, Default)]
struct VehicleRules {
    p: Persisted,
    last_status_ts: i64,
    /// Last position time and speed (km/h), for braking and ordering.
    last_pos: Option<(i64, Option<f64>)>,
    /// Latest event time of any message.
    last_event_ts: i64,
}

/// The rule engine.
pub struct RuleEngine {
    cfg: AlertsConfig,
    fences: Vec<Fence>,
    /// The enabled `[[alerts.thresholds]]`.
    thresholds: Vec<threshold::Threshold>,
    vehicles: HashMap<String, VehicleRules>,
    /// Open (or acknowledged) rule alerts per vehicle: a handful at most, looked up by `&str`
    /// on every message without allocating.
    open: HashMap<String, Vec<Alert>>,
    dirty: HashSet<String>,
    /// Wall-clock time before which the stale rule stays quiet (start-up grace).
    stale_quiet_until_ms: i64,
}

impl RuleEngine {
    /// A rule engine for `cfg`, started at `now_ms`.
    pub fn new(cfg: &AlertsConfig, now_ms: i64) -> Self {
        Self {
            fences: cfg.geofences.iter().map(Fence::new).collect(),
            thresholds: (cfg.thresholds.iter())
                .filter(|t| t.enabled)
                .map(threshold::Threshold::new)
                .collect(),
            cfg: cfg.clone(),
            vehicles: HashMap::new(),
            open: HashMap::new(),
            dirty: HashSet::new(),
            // After a restart every vehicle looks silent until its next message arrives.
            stale_quiet_until_ms: now_ms + (cfg.stale.after_s * 1000.0) as i64,
        }
    }

    /// Restores open rule alerts and persisted state from the cache.
    pub fn seed(&mut self, open: Vec<Alert>, states: Vec<(String, Persisted)>) {
        for a in open {
            self.open.entry(a.vehicle.clone()).or_default().push(a);
        }
        for (v, p) in states {
            self.vehicles.entry(v).or_default().p = p;
        }
    }

    /// Restores each vehicle's previous fix (time, speed) from the cache's latest stored
    /// position, so the first fix after a restart is compared with the last one before it
    /// (exact when history keeps every fix, the closest kept one otherwise).
    pub fn seed_last_fixes(&mut self, fixes: Vec<(String, i64, Option<f64>)>) {
        for (v, ts, speed) in fixes {
            self.vehicles.entry(v).or_default().last_pos = Some((ts, speed));
        }
    }

    /// Vehicles with an open (or acknowledged, not resolved) rule alert.
    pub fn alerting(&self) -> impl Iterator<Item = &str> {
        self.open
            .iter()
            .filter(|(_, a)| !a.is_empty())
            .map(|(v, _)| v.as_str())
    }

    /// Applies an acknowledgement to the in-memory copy (so a later resolution keeps it).
    pub fn acknowledged(&mut self, alert_id: &str, operator: &str, ts: i64, note: &str) {
        if let Some(a) = self.open.values_mut().flatten().find(|a| a.id == alert_id) {
            a.state = AlertState::Acknowledged;
            a.acked_by = Some(operator.to_string());
            a.acked_ms = Some(ts);
            a.ack_note = Some(note.to_string());
        }
    }

    /// Whether the vehicle has an open (or acknowledged, not resolved) rule alert.
    pub fn has_open(&self, vehicle: &str) -> bool {
        self.open.get(vehicle).is_some_and(|a| !a.is_empty())
    }

    /// Makes room for `n` more vehicles now (see [`crate::state::LiveFleet::reserve`]).
    pub fn reserve(&mut self, n: usize) {
        self.vehicles.reserve(n);
    }

    /// Forgets a vehicle evicted from the live state. The caller keeps vehicles that
    /// [`RuleEngine::has_open`] alerts for: that state is needed to resolve them.
    pub fn forget(&mut self, vehicle: &str) {
        self.open.remove(vehicle);
        self.vehicles.remove(vehicle);
        self.dirty.remove(vehicle);
    }

    /// Persisted states changed since the last call.
    pub fn take_dirty(&mut self) -> Vec<(String, Persisted)> {
        self.dirty
            .drain()
            .filter_map(|v| self.vehicles.get(&v).map(|s| (v, s.p.clone())))
            .collect()
    }

    fn is_open(&self, rule: &str, vehicle: &str) -> bool {
        self.open
            .get(vehicle)
            .is_some_and(|v| v.iter().any(|a| a.rule == rule))
    }

    /// The vehicle's rule state, created on first sight (no allocation when it exists).
    fn state(&mut self, vehicle: &str) -> &mut VehicleRules {
        if !self.vehicles.contains_key(vehicle) {
            self.vehicles
                .insert(vehicle.to_string(), VehicleRules::default());
        }
        self.vehicles.get_mut(vehicle).expect("inserted above")
    }

    fn mark(&mut self, vehicle: &str) {
        if !self.dirty.contains(vehicle) {
            self.dirty.insert(vehicle.to_string());
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn raise(
        &mut self,
        rule: &str,
        vehicle: &str,
        since: i64,
        ts: i64,
        severity: Severity,
        message: String,
        out: &mut Vec<Alert>,
    ) {
        if self.is_open(rule, vehicle) {
            return;
        }
        let a = Alert::open(
            alert_id(rule, vehicle, since),
            vehicle.to_string(),
            rule,
            severity,
            message,
            ts,
        );
        out.push(a.clone());
        self.open.entry(vehicle.to_string()).or_default().push(a);
    }

    fn resolve(&mut self, rule: &str, vehicle: &str, ts: i64, out: &mut Vec<Alert>) {
        let Some(list) = self.open.get_mut(vehicle) else {
            return;
        };
        let Some(i) = list.iter().position(|a| a.rule == rule) else {
            return;
        };
        let mut a = list.swap_remove(i);
        if list.is_empty() {
            self.open.remove(vehicle);
        }
        a.state = AlertState::Resolved;
        a.resolved_ms = Some(ts.max(a.ts_ms));
        out.push(a);
    }

    /// Any message from a vehicle: it is not silent any more.
    fn heard(&mut self, vehicle: &str, ts: i64, out: &mut Vec<Alert>) {
        let st = self.state(vehicle);
        st.last_event_ts = st.last_event_ts.max(ts);
        self.resolve(names::STALE, vehicle, ts, out);
    }

    /// Evaluates a status message.
    pub fn on_status(&mut self, s: &StatusSample, out: &mut Vec<Alert>) {
        self.heard(&s.vehicle, s.ts_ms, out);
        let (v, ts, k) = (s.vehicle.as_str(), s.ts_ms, &s.known);
        let st = self.state(v);
        if ts < st.last_status_ts {
            return; // out of order: never move a timer backwards
        }
        st.last_status_ts = ts;

        let hl = self.cfg.headlights_on;
        if hl.enabled
            && let (Some(engine), Some(doors), Some(lights)) =
                (k.engine_on, k.doors_open, k.headlights_on)
        {
            if !engine && !doors && lights {
                let st = self.state(v);
                let since = match st.p.headlights_since {
                    Some(t) => t,
                    None => {
                        st.p.headlights_since = Some(ts);
                        self.mark(v);
                        ts
                    }
                };
                let held = (ts - since) as f64 / 1000.0;
                if held >= hl.after_s {
                    let msg = format!(
                        "Headlights left on for {held:.0} s with the engine off and doors closed"
                    );
                    self.raise(names::HEADLIGHTS, v, since, ts, hl.severity, msg, out);
                }
            } else {
                if self.state(v).p.headlights_since.take().is_some() {
                    self.mark(v);
                }
                self.resolve(names::HEADLIGHTS, v, ts, out);
            }
        }
        for (rule, cfg, level, what) in [
            (
                names::LOW_BATTERY,
                self.cfg.low_battery,
                k.battery,
                "Battery",
            ),
            (names::LOW_FUEL, self.cfg.low_fuel, k.fuel, "Fuel"),
        ] {
            let Some(level) = level.filter(|_| cfg.enabled) else {
                continue;
            };
            if level < cfg.below {
                if !self.is_open(rule, v) {
                    self.raise(
                        rule,
                        v,
                        ts,
                        ts,
                        cfg.severity,
                        format!("{what} at {level:.0} % (below {:.0} %)", cfg.below),
                        out,
                    );
                }
            } else if level >= cfg.below + cfg.hysteresis {
                self.resolve(rule, v, ts, out);
            }
        }
        if let Some(speed) = k.speed {
            self.speed(v, ts, speed, out);
        }
        if !self.thresholds.is_empty() {
            self.thresholds_on(v, ts, &s.fields, out);
        }
    }

    fn speed(&mut self, v: &str, ts: i64, speed: f64, out: &mut Vec<Alert>) {
        let cfg = self.cfg.overspeed;
        if !cfg.enabled {
            return;
        }
        let st = self.state(v);
        if speed > cfg.above_kmh {
            let since = *st.p.overspeed_since.get_or_insert(ts);
            if since == ts {
                self.mark(v);
            }
            let held = (ts - since) as f64 / 1000.0;
            if held >= cfg.after_s && !self.is_open(names::OVERSPEED, v) {
                let msg = format!(
                    "{speed:.0} km/h for {held:.0} s (limit {:.0} km/h)",
                    cfg.above_kmh
                );
                self.raise(names::OVERSPEED, v, since, ts, cfg.severity, msg, out);
            }
        } else {
            if st.p.overspeed_since.take().is_some() {
                self.mark(v);
            }
            self.resolve(names::OVERSPEED, v, ts, out);
        }
    }

    /// Evaluates a position message.
    pub fn on_position(&mut self, p: &PositionSample, out: &mut Vec<Alert>) {
        self.heard(&p.vehicle, p.ts_ms, out);
        let v = p.vehicle.as_str();
        let st = self.state(v);
        let prev = st.last_pos;
        if prev.is_some_and(|(t, _)| p.ts_ms <= t) {
            return; // duplicate or out of order
        }
        st.last_pos = Some((p.ts_ms, p.speed));
        if let Some(speed) = p.speed {
            self.speed(v, p.ts_ms, speed, out);
            self.braking(v, prev, p.ts_ms, speed, out);
        }
        if !self.fences.is_empty() {
            self.geofences(v, p.lat, p.lng, p.ts_ms, out);
        }
    }

    fn braking(
        &mut self,
        v: &str,
        prev: Option<(i64, Option<f64>)>,
        ts: i64,
        speed: f64,
        out: &mut Vec<Alert>,
    ) {
        let cfg = self.cfg.harsh_braking;
        if !cfg.enabled {
            return;
        }
        if let Some((t0, Some(v0))) = prev {
            let dt = (ts - t0) as f64 / 1000.0;
            if dt > 0.0 && dt <= cfg.max_gap_s {
                let decel = (v0 - speed) / 3.6 / dt;
                if decel >= cfg.decel_ms2 {
                    self.state(v).p.last_harsh_ts = Some(ts);
                    self.mark(v);
                    let msg = format!(
                        "Harsh braking: {v0:.0} → {speed:.0} km/h in {dt:.1} s ({decel:.1} m/s²)"
                    );
                    self.raise(names::HARSH_BRAKING, v, ts, ts, cfg.severity, msg, out);
                    return;
                }
            }
        }
        if let Some(last) = self.state(v).p.last_harsh_ts
            && (ts - last) as f64 / 1000.0 >= cfg.clear_after_s
        {
            self.state(v).p.last_harsh_ts = None;
            self.mark(v);
            self.resolve(names::HARSH_BRAKING, v, ts, out);
        }
    }

    fn geofences(&mut self, v: &str, lat: f64, lng: f64, ts: i64, out: &mut Vec<Alert>) {
        // Compare without allocating; only a change of side touches the map.
        let mut changes: Vec<(usize, Option<bool>, bool)> = Vec::new();
        {
            let fences = &self.fences;
            let st = self.vehicles.get_mut(v).expect("state created by heard()");
            for (i, f) in fences.iter().enumerate() {
                let inside = f.contains(lat, lng);
                let before = st.p.fences.get(f.name.as_str()).copied();
                if before != Some(inside) {
                    st.p.fences.insert(f.name.clone(), inside);
                    changes.push((i, before, inside));
                }
            }
        }
        if changes.is_empty() {
            return;
        }
        self.mark(v);
        for (i, before, inside) in changes {
            if before.is_none() {
                continue; // first sight: no transition
            }
            let (name, trigger, severity) = (
                self.fences[i].name.clone(),
                self.fences[i].trigger,
                self.fences[i].severity,
            );
            let leave_rule = format!("geofence_exit:{name}");
            let enter_rule = format!("geofence_entry:{name}");
            if inside {
                self.resolve(&leave_rule, v, ts, out);
                if matches!(trigger, FenceTrigger::Enter | FenceTrigger::Both) {
                    self.raise(
                        &enter_rule,
                        v,
                        ts,
                        ts,
                        severity,
                        format!("Entered geofence {name}"),
                        out,
                    );
                }
            } else {
                self.resolve(&enter_rule, v, ts, out);
                if matches!(trigger, FenceTrigger::Leave | FenceTrigger::Both) {
                    self.raise(
                        &leave_rule,
                        v,
                        ts,
                        ts,
                        severity,
                        format!("Left geofence {name}"),
                        out,
                    );
                }
            }
        }
    }

    /// A source the vehicles report through is down: silence is the source's, not the
    /// vehicles'. The stale rule pauses while it lasts and for a full `stale.after_s` after
    /// it, so an outage does not end in a storm of `stale` alerts (vehicles must first get
    /// a chance to report again).
    pub fn sources_down(&mut self, now_ms: i64) {
        let after_ms = (self.cfg.stale.after_s * 1000.0) as i64;
        self.stale_quiet_until_ms = self
            .stale_quiet_until_ms
            .max(now_ms.saturating_add(after_ms));
    }

    /// How long a vehicle must be silent for the stale rule, when it is on: the engine skips
    /// the walk over the fleet when nobody has been silent that long (issue 13).
    pub fn stale_after_ms(&self) -> Option<i64> {
        let cfg = self.cfg.stale;
        cfg.enabled.then_some((cfg.after_s * 1000.0) as i64)
    }

    /// Wall-clock checks (stale devices). `last_seen` yields (vehicle, arrival ms of its
    /// last message).
    pub fn on_tick<'a>(
        &mut self,
        now_ms: i64,
        last_seen: impl Iterator<Item = (&'a str, i64)>,
        out: &mut Vec<Alert>,
    ) {
        let Some(after_ms) = self.stale_after_ms() else {
            return;
        };
        if now_ms < self.stale_quiet_until_ms {
            return;
        }
        let severity = self.cfg.stale.severity;
        for (v, seen) in last_seen {
            if now_ms - seen >= after_ms && !self.is_open(names::STALE, v) {
                // The id uses the last *event* time, the same on every desktop.
                let since = self
                    .vehicles
                    .get(v)
                    .map(|s| s.last_event_ts)
                    .filter(|t| *t > 0)
                    .unwrap_or(seen);
                let mins = (now_ms - seen) as f64 / 60_000.0;
                self.raise(
                    names::STALE,
                    v,
                    since,
                    now_ms,
                    severity,
                    format!("No message for {mins:.0} min"),
                    out,
                );
            }
        }
    }
}
