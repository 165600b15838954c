//! Device tables before the telemetry keyed by their devices (SPEC §8).
//!
//! On start, the partitions of `kind = "device"` topics that have something to read are read
//! up to the high watermark they had when assigned before any device-keyed telemetry topic
//! is assigned (what Kafka Streams does for a global table). Otherwise a backlog is read
//! side by side with the device table, and every device whose mapping is further down its
//! topic than its first fix becomes an unmapped vehicle whose rows are moved again moments
//! later: correct (SPEC §8 still holds for mappings that really come late), but with tens of
//! thousands of devices it cost nine tenths of the ingest rate and showed operators a fleet
//! of device ids for the first seconds.
//!
//! Waiting is bounded: a device table that brings nothing for [`QUIET`] (transaction markers
//! or a hole at its end) or takes longer than [`PATIENCE`] in all lets the telemetry start;
//! late mappings are then re-attributed as usual.

use super::status::Tp;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// How long a device table may bring nothing before the telemetry starts anyway.
const QUIET: Duration = Duration::from_secs(5);
/// The longest the telemetry waits for the device tables.
const PATIENCE: Duration = Duration::from_secs(60);

/// The device-table partitions still being caught up, and whether telemetry may be assigned.
#[derive(Debug, Default)]
pub(super) struct ReferenceFirst {
    /// Device-table partition → the high watermark it had when assigned.
    waiting: BTreeMap<Tp, i64>,
    /// When the first of them was assigned.
    since: Option<Instant>,
    /// When one of them last brought a message.
    progress: Option<Instant>,
    /// The wait just ended: assign the held-back partitions now, not at the next periodic
    /// assignment check.
    assign_now: bool,
}

impl ReferenceFirst {
    /// A device-table partition assigned to start at `next` whose end is at `hi`.
    pub(super) fn note_assigned(&mut self, tp: &Tp, next: i64, hi: i64) {
        if next >= hi {
            return;
        }
        let now = Instant::now();
        self.waiting.insert(tp.clone(), hi);
        self.since.get_or_insert(now);
        self.progress = Some(now);
    }

    /// Whether any device table is still being caught up.
    pub(super) fn is_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// A message of `tp` was handed over; `next` is the offset after it.
    pub(super) fn note_read(&mut self, tp: &Tp, next: i64) {
        let Some(&target) = self.waiting.get(tp) else {
            return;
        };
        self.progress = Some(Instant::now());
        if next >= target {
            self.waiting.remove(tp);
            if self.waiting.is_empty() {
                info!(
                    ms = self.since.map_or(0, |s| s.elapsed().as_millis()),
                    "device tables read: device-keyed telemetry starts"
                );
                self.end();
            }
        }
    }

    /// Whether device-keyed telemetry must still wait; gives up (with a warning) when a
    /// device table has been quiet for [`QUIET`] or the wait has lasted [`PATIENCE`].
    pub(super) fn holds(&mut self) -> bool {
        if self.waiting.is_empty() {
            return false;
        }
        let quiet = self.progress.is_some_and(|p| p.elapsed() >= QUIET);
        let long = self.since.is_some_and(|s| s.elapsed() >= PATIENCE);
        if quiet || long {
            warn!(
                partitions = ?self.waiting.keys().collect::<Vec<_>>(),
                "device tables not read to their end ({}); device-keyed telemetry starts anyway, late mappings are re-attributed",
                if long { "too long" } else { "nothing more arrives" }
            );
            self.waiting.clear();
            self.end();
            return false;
        }
        true
    }

    /// Held-back telemetry may be assigned now: asks the poll loop to do it at once.
    pub(super) fn release(&mut self) {
        self.assign_now = true;
    }

    /// Whether the poll loop should assign partitions now (once per release).
    pub(super) fn take_assign_now(&mut self) -> bool {
        std::mem::take(&mut self.assign_now)
    }

    fn end(&mut self) {
        self.since = None;
        self.progress = None;
        self.assign_now = true;
    }
}

impl super::poller::Poller {
    /// Whether `topic` is a device table (`kind = "device"`).
    pub(super) fn is_device_table(&self, topic: &str) -> bool {
        self.decoders
            .get(topic)
            .is_some_and(|d| d.iter().any(|d| d.kind() == fleet_model::TopicKind::Device))
    }

    /// Whether `topic`'s messages are keyed by a device id (`fields.device`).
    pub(super) fn is_keyed_by_device(&self, topic: &str) -> bool {
        self.decoders
            .get(topic)
            .is_some_and(|d| d.iter().any(crate::decode::Decoder::device_keyed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> Tp {
        ("devices".into(), p)
    }

    #[test]
    fn telemetry_waits_until_every_device_partition_reaches_its_end() {
        let mut r = ReferenceFirst::default();
        r.note_assigned(&tp(0), 0, 3);
        r.note_assigned(&tp(1), 5, 5); // nothing to read
        assert!(r.holds());
        r.note_read(&tp(0), 2);
        assert!(r.holds());
        assert!(!r.take_assign_now());
        r.note_read(&tp(0), 3);
        assert!(!r.holds());
        assert!(r.take_assign_now(), "released at once");
        assert!(!r.take_assign_now(), "once");
    }

    #[test]
    fn a_quiet_device_table_does_not_hold_telemetry_back_for_ever() {
        let mut r = ReferenceFirst::default();
        r.note_assigned(&tp(0), 0, 10);
        r.progress = Some(Instant::now() - QUIET);
        assert!(!r.holds());
        assert!(!r.is_waiting());
        assert!(r.take_assign_now());
    }
}
