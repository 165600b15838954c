//! Shared Kafka health: connection state, assignment, watermarks and positions. Written by
//! the librdkafka callbacks and the poll thread, read by the engine and `--idle-exit`.

use fleet_model::ConnState;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// A (topic, partition) pair.
pub type Tp = (String, i32);

/// Kafka health as data.
#[derive(Debug, Clone)]
pub struct KafkaStatus {
    /// Connection health (UI indicator).
    pub conn: ConnState,
    /// Partitions being consumed.
    pub assigned: BTreeSet<Tp>,
    /// When the first assignment happened (the idle clock starts after it).
    pub assigned_at: Option<Instant>,
    /// Topics configured but not (yet) present on the broker.
    pub missing_topics: BTreeSet<String>,
    /// Low / high watermarks from statistics.
    pub watermarks: BTreeMap<Tp, (i64, i64)>,
    /// Next offset handed to the engine per partition.
    pub position: BTreeMap<Tp, i64>,
    /// Arrival of the last message.
    pub last_message: Option<Instant>,
    /// Partitions whose resume point is still being checked against the broker (SPEC §7):
    /// not caught up until it is known they are the partitions the offsets came from.
    pub verifying: BTreeSet<Tp>,
    /// Batches the poll thread handed to the engine.
    pub batches_sent: u64,
    /// Batches the engine has processed (counters, live state and rules updated; the
    /// writer has them). Behind `batches_sent` while the engine works through its queue.
    pub batches_done: u64,
}

impl Default for KafkaStatus {
    fn default() -> Self {
        Self {
            conn: ConnState::Connecting,
            assigned: BTreeSet::new(),
            assigned_at: None,
            missing_topics: BTreeSet::new(),
            watermarks: BTreeMap::new(),
            position: BTreeMap::new(),
            last_message: None,
            verifying: BTreeSet::new(),
            batches_sent: 0,
            batches_done: 0,
        }
    }
}

impl KafkaStatus {
    /// Whether the engine has processed every batch the poll thread handed over.
    pub fn all_processed(&self) -> bool {
        self.batches_done >= self.batches_sent
    }

    /// Lag per assigned partition where the high watermark is known: messages between our
    /// position (or the low watermark if nothing was consumed) and the high watermark.
    pub fn lag(&self) -> Vec<(String, i32, i64)> {
        self.assigned
            .iter()
            .filter_map(|tp| {
                let (lo, hi) = *self.watermarks.get(tp)?;
                if hi < 0 {
                    return None;
                }
                let pos = self.position.get(tp).copied().unwrap_or(lo.max(0));
                Some((tp.0.clone(), tp.1, (hi - pos).max(0)))
            })
            .collect()
    }

    /// True when every assigned partition's lag is known and zero, no topic is missing, and
    /// the connection is up.
    pub fn caught_up(&self) -> bool {
        if !self.conn.is_up()
            || !self.missing_topics.is_empty()
            || self.assigned.is_empty()
            || !self.verifying.is_empty()
        {
            return false;
        }
        let lag = self.lag();
        lag.len() == self.assigned.len() && lag.iter().all(|(_, _, l)| *l == 0)
    }
}

/// Cheap clonable handle.
#[derive(Debug, Clone, Default)]
pub struct SharedStatus(Arc<Mutex<KafkaStatus>>);

impl SharedStatus {
    /// Locks (a poisoned lock still holds valid data: every update is a plain assignment).
    pub fn lock(&self) -> MutexGuard<'_, KafkaStatus> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy.
    pub fn snapshot(&self) -> KafkaStatus {
        self.lock().clone()
    }
}
