//! What one write transaction carries. The engine builds it; the writer commits it whole,
//! offsets included, so a crash leaves either all of a batch or none of it.

use fleet_model::{Ack, Alert, PositionSample, RejectReason, StatusSample, VehicleInfo};

/// Kafka coordinates of a sample (absent for Redis samples).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// Topic.
    pub topic: Option<std::sync::Arc<str>>,
    /// Partition.
    pub partition: Option<i32>,
    /// Offset.
    pub offset: Option<i64>,
}

/// A rejected message, kept for the operator (first 4 KiB of the raw bytes).
#[derive(Debug, Clone)]
pub struct QuarantineRow {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Why.
    pub reason: RejectReason,
    /// One-line detail.
    pub detail: String,
    /// Key, truncated to 4 KiB.
    pub key: Option<Vec<u8>>,
    /// Payload, truncated to 4 KiB.
    pub raw: Option<Vec<u8>>,
    /// Original payload length.
    pub raw_len: usize,
    /// Arrival time.
    pub received_ms: i64,
}

/// Where a partition's consumption stands after a batch: the next offset, and what
/// identifies the data it came from (SPEC §7), so a restart can tell whether the partition
/// it finds is still the one these offsets belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetMark {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Next offset to consume.
    pub next: i64,
    /// Fingerprint of the message at `next - 1` (none when nothing was consumed yet).
    pub fingerprint: Option<i64>,
    /// The cluster the offsets came from, when the broker reports one.
    pub cluster_id: Option<String>,
}

/// Offsets fleetdash could not read (SPEC §7): recorded with the batch that skips them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GapRow {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// First offset not read (the cache's offset).
    pub from: i64,
    /// Where reading resumed.
    pub to: i64,
    /// Stable reason code: `expired`, `beyond_end`, `topic_changed`, `cluster_changed`.
    pub reason: &'static str,
    /// One line for the operator.
    pub detail: String,
    /// When it was found (ms).
    pub detected_ms: i64,
}

/// Bytes of a rejected payload that are kept (SPEC §2).
pub const QUARANTINE_KEEP: usize = 4096;

/// Latest live state of a vehicle, written periodically so a restart can show it at once.
#[derive(Debug, Clone)]
pub struct VehicleSnapshot {
    /// Vehicle id.
    pub vehicle: String,
    /// First time this desktop saw it.
    pub first_seen: i64,
    /// Last position, if any.
    pub position: Option<PositionSample>,
    /// Last status fields as JSON, if any.
    pub status_json: Option<String>,
}

/// Where an alert row came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertOrigin {
    /// `fleet.alerts.json`.
    Upstream,
    /// A fleetdash rule.
    Rule,
}

impl AlertOrigin {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertOrigin::Upstream => "upstream",
            AlertOrigin::Rule => "rule",
        }
    }
}

/// What happened to one device's mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceChange {
    /// Mapped to this vehicle.
    Map(String),
    /// The mapping was deleted upstream.
    Unmap,
    /// Telemetry arrived from it before any mapping (kept so `fleetctl vehicles` can show it).
    SeenUnmapped,
}

/// One write transaction.
#[derive(Debug, Default)]
pub struct WriteBatch {
    /// History samples that passed the history policy.
    pub positions: Vec<(PositionSample, Origin)>,
    /// Status samples kept.
    pub statuses: Vec<(StatusSample, Origin)>,
    /// Vehicle metadata, merged column by column into the `vehicles` row (SPEC §8).
    pub infos: Vec<VehicleInfo>,
    /// Vehicles whose metadata was deleted upstream; applied before `infos` (an update that
    /// came before the delete is dropped from `infos` when the delete is added).
    pub info_deletes: Vec<String>,
    /// Device mapping changes, in order.
    pub devices: Vec<(String, DeviceChange)>,
    /// (device, vehicle): what was stored under an unmapped device id moves to its vehicle.
    /// Applied last, so rows this batch wrote under the device id move too.
    pub reattribute: Vec<(String, String)>,
    /// Vehicle snapshots (new vehicles at once, others periodically).
    pub snapshots: Vec<VehicleSnapshot>,
    /// Alerts raised, updated or resolved.
    pub alerts: Vec<(Alert, AlertOrigin)>,
    /// Acknowledgements read or made.
    pub acks: Vec<Ack>,
    /// Snoozes read from the ack topic.
    pub snoozes: Vec<fleet_model::Snooze>,
    /// Rejected messages.
    pub quarantine: Vec<QuarantineRow>,
    /// Next offset per (topic, partition) after this batch, with its identity.
    pub offsets: Vec<OffsetMark>,
    /// Offsets skipped and why.
    pub gaps: Vec<GapRow>,
    /// Messages and rejections per topic in this batch.
    pub topic_deltas: Vec<(String, u64, u64)>,
    /// Rule state of vehicles whose timers or geofence sides changed (JSON).
    pub rule_states: Vec<(String, String)>,
    /// Schema registry rows changed by this batch's messages.
    pub schema: Vec<crate::schema::SchemaRow>,
}

impl WriteBatch {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
            && self.statuses.is_empty()
            && self.infos.is_empty()
            && self.info_deletes.is_empty()
            && self.devices.is_empty()
            && self.reattribute.is_empty()
            && self.snapshots.is_empty()
            && self.alerts.is_empty()
            && self.acks.is_empty()
            && self.snoozes.is_empty()
            && self.quarantine.is_empty()
            && self.offsets.is_empty()
            && self.gaps.is_empty()
            && self.topic_deltas.is_empty()
            && self.rule_states.is_empty()
            && self.schema.is_empty()
    }

    /// Appends `other` (used by the writer to coalesce queued batches into one transaction).
    /// Later offsets for the same partition win because they are applied in order.
    pub fn absorb(&mut self, mut other: WriteBatch) {
        self.positions.append(&mut other.positions);
        self.statuses.append(&mut other.statuses);
        if !other.info_deletes.is_empty() {
            self.infos
                .retain(|i| !other.info_deletes.contains(&i.vehicle));
        }
        self.infos.append(&mut other.infos);
        self.info_deletes.append(&mut other.info_deletes);
        self.devices.append(&mut other.devices);
        self.reattribute.append(&mut other.reattribute);
        self.snapshots.append(&mut other.snapshots);
        self.alerts.append(&mut other.alerts);
        self.acks.append(&mut other.acks);
        self.snoozes.append(&mut other.snoozes);
        self.quarantine.append(&mut other.quarantine);
        self.offsets.append(&mut other.offsets);
        self.gaps.append(&mut other.gaps);
        self.topic_deltas.append(&mut other.topic_deltas);
        self.rule_states.append(&mut other.rule_states);
        self.schema.append(&mut other.schema);
    }

    /// Deletes a vehicle's metadata, dropping updates of it queued earlier in this batch.
    pub fn delete_info(&mut self, vehicle: String) {
        self.infos.retain(|i| i.vehicle != vehicle);
        self.info_deletes.push(vehicle);
    }

    /// Merges the snapshots of each vehicle into one row write, leaving the `vehicles` row
    /// exactly as writing them one after another would (each column keeps the last value
    /// given, `first_seen` the first). Kafka batches carry a snapshot of every vehicle they
    /// changed, so a transaction that absorbed many batches under load would otherwise
    /// upsert the same vehicles many times over.
    pub fn coalesce_snapshots(&mut self) {
        if self.snapshots.len() < 2 {
            return;
        }
        let mut at: std::collections::HashMap<String, usize> =
            std::collections::HashMap::with_capacity(self.snapshots.len());
        let mut out: Vec<VehicleSnapshot> = Vec::with_capacity(self.snapshots.len());
        for s in self.snapshots.drain(..) {
            let Some(&i) = at.get(&s.vehicle) else {
                at.insert(s.vehicle.clone(), out.len());
                out.push(s);
                continue;
            };
            let o = &mut out[i];
            if let Some(mut p) = s.position {
                if let Some(prev) = &o.position {
                    p.speed = p.speed.or(prev.speed);
                    p.heading = p.heading.or(prev.heading);
                }
                o.position = Some(p);
            }
            if s.status_json.is_some() {
                o.status_json = s.status_json;
            }
        }
        self.snapshots = out;
    }

    /// Rows this batch writes, for metrics.
    pub fn rows(&self) -> usize {
        self.positions.len()
            + self.statuses.len()
            + self.infos.len()
            + self.info_deletes.len()
            + self.devices.len()
            + self.reattribute.len()
            + self.snapshots.len()
            + self.alerts.len()
            + self.acks.len()
            + self.snoozes.len()
            + self.quarantine.len()
            + self.rule_states.len()
            + self.schema.len()
    }
}
