//! Assignment: every configured topic's partitions, looked up on the broker and assigned
//! at the cache's offset or the configured start (SPEC §7), device tables before the
//! telemetry keyed by their devices ([`super::reference`]).

use super::partition::Record;
use super::poller::Poller;
use super::status::Tp;
use crate::config::StartFrom;
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

impl Poller {
    /// Looks up every configured topic's partitions and assigns those not yet assigned, at
    /// the cache's offset (checked against the broker, SPEC §7) or the resolved start offset.
    /// Returns true when every topic exists.
    pub(super) fn assign_new_partitions(&mut self) -> bool {
        let mut all_present = true;
        let mut new_tps = Vec::new();
        let mut missing = Vec::new();
        let topics: Vec<String> = self.decoders.keys().cloned().collect();
        for topic in &topics {
            let md = match self
                .consumer
                .fetch_metadata(Some(topic), Duration::from_secs(2))
            {
                Ok(md) => md,
                Err(e) => {
                    debug!(%topic, error = %e, "metadata request failed; will retry");
                    return false;
                }
            };
            let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
                missing.push(topic.clone());
                all_present = false;
                continue;
            };
            if t.error().is_some() || t.partitions().is_empty() {
                missing.push(topic.clone());
                all_present = false;
                continue;
            }
            for p in t.partitions() {
                let tp = (topic.clone(), p.id());
                if !self.parts.contains_key(&tp) {
                    new_tps.push(tp);
                }
            }
        }
        {
            let mut s = self.status.lock();
            if s.missing_topics.iter().ne(missing.iter()) && !missing.is_empty() {
                warn!(topics = ?missing, "configured topics not on the broker yet; waiting for them");
            }
            s.missing_topics = missing.into_iter().collect();
        }
        // Device-keyed telemetry waits while device tables are read ([`super::reference`]);
        // device tables assigned in this round count, whatever they turn out to hold.
        let new_table = new_tps.iter().any(|tp| self.is_device_table(&tp.0));
        let mut held_back = false;
        if new_table || self.reference.holds() {
            let before = new_tps.len();
            new_tps.retain(|tp| !self.is_keyed_by_device(&tp.0));
            held_back = new_tps.len() < before;
            all_present &= !held_back;
        }
        if new_tps.is_empty() {
            if all_present {
                self.status
                    .lock()
                    .assigned_at
                    .get_or_insert_with(Instant::now);
            }
            return all_present;
        }
        if self.cluster_id.is_none() {
            self.cluster_id = self
                .consumer
                .client()
                .fetch_cluster_id(Duration::from_secs(2));
        }
        let mut tpl = TopicPartitionList::new();
        let mut chosen = Vec::new();
        for tp in new_tps {
            let (lo, hi) = match self
                .consumer
                .fetch_watermarks(&tp.0, tp.1, Duration::from_secs(5))
            {
                Ok(w) => w,
                Err(e) => {
                    debug!(topic = %tp.0, partition = tp.1, error = %e, "watermark query failed; will retry");
                    all_present = false;
                    continue;
                }
            };
            let at = self.offset_at_start_time(&tp);
            let (fetch_from, part, record) = self.start_of(&tp, lo, hi, at);
            let _ = tpl.add_partition_offset(&tp.0, tp.1, Offset::Offset(fetch_from));
            chosen.push((tp, part, record, hi));
        }
        if chosen.is_empty() {
            return false;
        }
        if let Err(e) = self.consumer.incremental_assign(&tpl) {
            warn!(error = %e, "kafka assign failed; will retry");
            return false;
        }
        info!(partitions = chosen.len(), "kafka partitions assigned");
        // Recorded only now: a failed assignment is retried and must not record twice.
        for (tp, part, record, hi) in &chosen {
            if self.is_device_table(&tp.0) {
                self.reference.note_assigned(tp, part.next, *hi);
            }
            match record {
                Record::Start(next) => {
                    self.pending_offsets.insert(tp.clone(), *next);
                }
                Record::Gap(from, reason, detail) => {
                    self.gap(tp, *from, part.low, reason, detail.clone())
                }
                Record::Nothing => {}
            }
        }
        if held_back {
            if self.reference.is_waiting() {
                info!("reading the device tables before the telemetry keyed by their devices");
            } else {
                self.reference.release();
            }
        }
        let mut s = self.status.lock();
        for (tp, part, _, _) in chosen {
            s.position.entry(tp.clone()).or_insert(part.next);
            if part.verify.is_some() {
                s.verifying.insert(tp.clone());
            }
            s.assigned.insert(tp.clone());
            self.parts.insert(tp, part);
        }
        if all_present {
            s.assigned_at.get_or_insert_with(Instant::now);
        }
        all_present
    }

    /// `kafka.start = TIME` on a partition the cache has never read: the offset of its first
    /// message at or after TIME (offsets-for-times), `None` when none is that recent or the
    /// broker cannot say (then it starts at the end, like `latest`, with a warning).
    fn offset_at_start_time(&self, tp: &Tp) -> Option<i64> {
        let StartFrom::At(ms) = self.start else {
            return None;
        };
        if self.resume.contains_key(tp) {
            return None;
        }
        let mut q = TopicPartitionList::new();
        q.add_partition_offset(&tp.0, tp.1, Offset::Offset(ms))
            .ok()?;
        match self.consumer.offsets_for_times(q, Duration::from_secs(5)) {
            Ok(r) => match r.find_partition(&tp.0, tp.1).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => {
                    info!(topic = %tp.0, partition = tp.1, offset = o, "kafka.start: first message at or after the start time");
                    Some(o)
                }
                _ => None,
            },
            Err(e) => {
                warn!(topic = %tp.0, partition = tp.1, error = %e, "kafka.start: the broker cannot find offsets for a time; starting at the end");
                None
            }
        }
    }
}
