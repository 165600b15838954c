//! A deterministic mixed fleet for fault tests: every SPEC §1 topic kind (position, status,
//! info, alert, ack) plus malformed messages, shaped like `fleetctl sim`'s, with episodes
//! that trip fleetdash's own rules (overspeed, harsh braking, low battery and fuel,
//! headlights left on, a geofence both ways) and upstream alerts that are acknowledged and
//! resolved.
//!
//! Why not the simulator: a fault test compares a crashed-and-restarted cache with an
//! uninterrupted one, so the alerts must be a function of the messages alone. Every rule
//! input here is therefore on one topic per rule: speeds travel on positions only (the
//! overspeed timer is shared by both topics, so speeds on both would make `since` depend on
//! how the two topics' batches interleave), levels and lights on statuses only; the
//! stale-device rule (wall clock) is off in [`config`]. A vehicle's messages share a key,
//! hence a partition, hence their order.
//!
//! Round `r` is one second of event time (`base_ms + r * 1000`); each vehicle sends a
//! position every round and a status every other round, the rest now and then.

use crate::Producer;
use std::collections::BTreeMap;
use std::path::Path;

/// (topic, kind, partitions) of the five SPEC topics as the fault tests create them.
pub const MIXED_TOPICS: [(&str, &str, i32); 5] = [
    ("cars.gps.json", "position", 3),
    ("cars.status.json", "status", 3),
    ("cars.info.json", "info", 1),
    ("fleet.alerts.json", "alert", 2),
    ("fleet.alert-acks.json", "ack", 1),
];

const GPS: &str = MIXED_TOPICS[0].0;
const STATUS: &str = MIXED_TOPICS[1].0;
const INFO: &str = MIXED_TOPICS[2].0;
const ALERTS: &str = MIXED_TOPICS[3].0;
const ACKS: &str = MIXED_TOPICS[4].0;

/// Messages per vehicle per round, on average (1 position, ½ status, a little of the rest):
/// sizes the fleet so that a run lasts about [`TARGET_ROUNDS`] rounds whatever its length.
const PER_VEHICLE_ROUND: u64 = 16;
/// Rounds a run should last: long enough for every rule's episodes (the longest, headlights,
/// needs 60 s of event time) to happen several times per vehicle.
const TARGET_ROUNDS: u64 = 300;

/// A fleetdash config for the mixed topics: keep-all history (every message is a row, so the
/// cache can be compared row for row), every rule on except the wall-clock stale rule, and a
/// geofence the vehicles cross both ways.
pub fn config(brokers: &str, store: &Path, group: &str) -> String {
    let mut s = format!(
        "[kafka]\nbrokers = \"{brokers}\"\ngroup_id = \"{group}\"\nstart = \"earliest\"\nbatch_max_ms = 20\n"
    );
    for (name, kind, _) in MIXED_TOPICS {
        s.push_str(&format!(
            "\n[[kafka.topics]]\nname = \"{name}\"\nkind = \"{kind}\"\n"
        ));
    }
    s.push_str(&format!(
        "\n[store]\npath = \"{}\"\n\n[history]\nmin_distance_m = 0\nmin_interval_s = 0\n\n\
         [alerts]\ndesktop_notifications = false\nstale = {{ enabled = false }}\n\n\
         [[alerts.geofences]]\nname = \"depot\"\ncenter = [37.5, 127.0]\nradius_m = 1500\nalert_on = \"both\"\n",
        store.display()
    ));
    s
}

/// One topic's messages: (key, payload) in production order.
pub type TopicBatch = Vec<(Option<Vec<u8>>, Vec<u8>)>;

/// Whole rounds of messages, per topic.
#[derive(Debug, Default)]
pub struct MixedBatch {
    /// Topic → its messages in order.
    pub topics: BTreeMap<&'static str, TopicBatch>,
}

impl MixedBatch {
    /// Messages in the batch.
    pub fn len(&self) -> u64 {
        self.topics.values().map(|v| v.len() as u64).sum()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Produces the batch, topic by topic (pipelined, waits for every delivery).
    pub fn send(self, p: &Producer) {
        for (topic, msgs) in self.topics {
            p.send_many(topic, msgs);
        }
    }

    fn push(&mut self, topic: &'static str, key: &str, payload: String) {
        self.topics
            .entry(topic)
            .or_default()
            .push((Some(key.as_bytes().to_vec()), payload.into_bytes()));
    }
}

/// The generator. Same `vehicles` and `base_ms` → byte-for-byte the same messages.
pub struct MixedFleet {
    vehicles: u32,
    base_ms: i64,
    round: u64,
    /// Per vehicle: battery of its last status (to find where a low-battery episode starts).
    last_battery: Vec<f64>,
    /// (round due, alert id): acknowledgements of rule alerts, sent a few rounds later.
    pending_acks: Vec<(u64, String)>,
    rule_alert_id: fn(&str, &str, i64) -> String,
    produced: BTreeMap<&'static str, u64>,
}

impl MixedFleet {
    /// A fleet sized for about `messages` messages over [`TARGET_ROUNDS`] rounds, with event
    /// time starting at `base_ms`. `rule_alert_id` is `fleet_model::alert_id` (the testkit
    /// does not depend on the engine): some low-battery rule alerts are acknowledged by id.
    pub fn for_messages(
        messages: u64,
        base_ms: i64,
        rule_alert_id: fn(&str, &str, i64) -> String,
    ) -> MixedFleet {
        let vehicles = (messages * 10 / PER_VEHICLE_ROUND / TARGET_ROUNDS).max(10) as u32;
        MixedFleet {
            vehicles,
            base_ms,
            round: 0,
            last_battery: vec![100.0; vehicles as usize],
            pending_acks: Vec::new(),
            rule_alert_id,
            produced: BTreeMap::new(),
        }
    }

    /// Fleet size.
    pub fn vehicles(&self) -> u32 {
        self.vehicles
    }

    /// Messages generated so far, per topic.
    pub fn produced(&self) -> &BTreeMap<&'static str, u64> {
        &self.produced
    }

    /// Messages generated so far.
    pub fn total(&self) -> u64 {
        self.produced.values().sum()
    }

    /// Whole rounds until the batch holds at least `min` messages.
    pub fn next_batch(&mut self, min: u64) -> MixedBatch {
        let mut b = MixedBatch::default();
        while b.len() < min {
            self.round_into(&mut b);
        }
        for (t, v) in &b.topics {
            *self.produced.entry(t).or_default() += v.len() as u64;
        }
        b
    }

    fn round_into(&mut self, b: &mut MixedBatch) {
        let r = self.round;
        self.round += 1;
        let ts = self.base_ms + r as i64 * 1000;
        let n = u64::from(self.vehicles);
        for v in 0..self.vehicles {
            let id = format!("veh-{v:05}");
            let v64 = u64::from(v);
            // Overspeed from phase 50 to 64 (raised after 10 s), then a drop from 130 to
            // 40 km/h in one second: harsh braking (25 m/s²).
            let phase = (r + 7 * v64) % 100;
            let speed = if (50..65).contains(&phase) {
                130.0
            } else {
                40.0 + f64::from(v % 10)
            };
            // Northwards in steps of ~22 m, back to the start after 150 rounds: out of the
            // 1.5 km depot fence and in again.
            let lat = 37.5 + 0.0002 * ((r + 3 * v64) % 150) as f64;
            let lng = 127.0 + 0.0001 * f64::from(v % 50);
            b.push(
                GPS,
                &id,
                format!(
                    r#"{{"lat":{lat:.6},"lng":{lng:.6},"ts":{ts},"speed":{speed:.1},"heading":{:.1}}}"#,
                    f64::from(v * 37 % 360)
                ),
            );
            // Malformed input, quarantined with its reason: not JSON, and a latitude > 90.
            let seq = r * n + v64;
            if seq.is_multiple_of(500) {
                b.push(GPS, &id, format!("not json {seq}"));
            } else if seq % 500 == 250 {
                b.push(GPS, &id, format!(r#"{{"lat":123.0,"lng":1.0,"ts":{ts}}}"#));
            }
            if (r + v64).is_multiple_of(2) {
                self.status(b, &id, v, r, ts);
            }
            if (r + v64).is_multiple_of(50) {
                let model = ["Ioniq 5", "Niro EV", "Model 3"][(v % 3) as usize];
                b.push(
                    INFO,
                    &id,
                    format!(
                        r#"{{"plate":"FD-{v:05}","model":"{model}","driver":"driver-{}","group":"g{}"}}"#,
                        r / 50,
                        v % 4
                    ),
                );
            }
            self.upstream(b, &id, v64, r, ts);
        }
        let due: Vec<String> = self
            .pending_acks
            .iter()
            .filter(|(at, _)| *at <= r)
            .map(|(_, id)| id.clone())
            .collect();
        self.pending_acks.retain(|(at, _)| *at > r);
        for alert in due {
            b.push(
                ACKS,
                &alert,
                format!(
                    r#"{{"alert_id":"{alert}","operator":"op-rule","note":"battery seen","ts":{ts}}}"#
                ),
            );
        }
    }

    fn status(&mut self, b: &mut MixedBatch, id: &str, v: u32, r: u64, ts: i64) {
        let (v64, k) = (u64::from(v), r / 2);
        // Battery from 100 down to 5.6 % over 60 statuses, then back to 100: below 15 raises
        // low_battery, the jump back resolves it. Fuel likewise with another period.
        let battery = 100.0 - ((k + 3 * v64) % 60) as f64 * 1.6;
        let fuel = 100.0 - ((k + 5 * v64) % 80) as f64 * 1.25;
        // Headlights left on with the engine off and the doors closed for 80 s.
        let q = (k + v64) % 90;
        let parked_lights = (40..80).contains(&q);
        let (engine, lights) = if parked_lights {
            ("off", "on")
        } else {
            ("on", if q < 20 { "on" } else { "off" })
        };
        let doors = if q == 85 { "open" } else { "closed" };
        b.push(
            STATUS,
            id,
            format!(
                r#"{{"ts":{ts},"engine":"{engine}","doors":"{doors}","headlights":"{lights}","fuel":{fuel:.1},"battery":{battery:.1},"engine_detail":{{"rpm":{},"temp_c":{:.1}}}}}"#,
                if engine == "on" { 1500 + v % 700 } else { 0 },
                80.0 + f64::from(v % 20) * 0.5
            ),
        );
        let last = std::mem::replace(&mut self.last_battery[v as usize], battery);
        if battery < 15.0 && last >= 15.0 && (k / 60 + v64).is_multiple_of(2) {
            let alert = (self.rule_alert_id)("low_battery", id, ts);
            self.pending_acks.push((r + 3, alert));
        }
    }

    /// Upstream alerts: raised, acknowledged 10 rounds later, resolved 20 rounds later.
    fn upstream(&self, b: &mut MixedBatch, id: &str, v64: u64, r: u64, ts: i64) {
        let p = (r + 2 * v64) % 60;
        let severity = ["info", "warning", "critical"][(v64 % 3) as usize];
        if p == 0 {
            let alert = format!("up-{v64}-{r}");
            b.push(
                ALERTS,
                &alert,
                format!(
                    r#"{{"id":"{alert}","vehicle":"{id}","rule":"tamper","severity":"{severity}","message":"box opened at round {r}","ts":{ts}}}"#
                ),
            );
        } else if p == 10 && r >= 10 {
            let alert = format!("up-{v64}-{}", r - 10);
            b.push(
                ACKS,
                &alert,
                format!(
                    r#"{{"alert_id":"{alert}","operator":"op-{}","note":"on it ({r})","ts":{ts}}}"#,
                    v64 % 5
                ),
            );
        } else if p == 20 && r >= 20 && v64.is_multiple_of(2) {
            let alert = format!("up-{v64}-{}", r - 20);
            b.push(
                ALERTS,
                &alert,
                format!(
                    r#"{{"id":"{alert}","vehicle":"{id}","rule":"tamper","severity":"{severity}","message":"closed","ts":{ts},"state":"resolved"}}"#
                ),
            );
        }
    }
}
