//! The poll thread. librdkafka's poll loop is synchronous and hot; a plain OS thread keeps it
//! off the async runtime and gives decoding its own core.

use super::context::FleetContext;
use super::partition::{Part, Verdict};
use super::status::{SharedStatus, Tp};
use super::{KafkaError, consumer_config};
use crate::config::{KafkaConfig, StartFrom};
use crate::decode::{Decoded, Decoder, RawMessage};
use crate::store::{GapRow, OffsetMark, QuarantineRow, ResumePoint, now_ms};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// One consumed message after decoding.
#[derive(Debug)]
pub struct KafkaItem {
    /// Topic name.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Decoded value, or the quarantine row to keep.
    pub outcome: Result<Decoded, Box<QuarantineRow>>,
    /// The id in `outcome` is a device id (`fields.device`): the engine maps it to its vehicle.
    pub by_device: bool,
    /// The second reading of a message whose topic is listed as both `position` and `status`
    /// (SPEC §8): not counted again.
    pub secondary: bool,
}

/// A batch handed to the engine.
#[derive(Debug, Default)]
pub struct KafkaBatch {
    /// Messages in consumption order.
    pub items: Vec<KafkaItem>,
    /// Next offset per partition after this batch (also for partitions whose start offset was
    /// just resolved or moved past a gap, so the cache records where reading starts).
    pub offsets: Vec<OffsetMark>,
    /// Offsets that could not be read (SPEC §7), committed with this batch.
    pub gaps: Vec<GapRow>,
    /// Arrival time of the batch (ms).
    pub arrival_ms: i64,
    /// The message shapes of the batch, for the schema registry (SPEC §8).
    pub shapes: Vec<crate::schema::ShapeObs>,
}

/// Handle to the running source.
pub struct KafkaHandle {
    /// Health and lag.
    pub status: SharedStatus,
    consumer: Arc<BaseConsumer<FleetContext>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl KafkaHandle {
    /// Health and lag.
    pub fn status(&self) -> SharedStatus {
        self.status.clone()
    }

    /// A handle that commits offsets to the consumer group.
    pub fn committer(&self) -> Committer {
        Committer(self.consumer.clone())
    }

    /// Waits for the poll thread to finish (after cancellation).
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Commits offsets to the consumer group after the cache has them. Informational only (the
/// cache is the truth), so ops tools see this desktop's lag.
#[derive(Clone)]
pub struct Committer(Arc<BaseConsumer<FleetContext>>);

impl Committer {
    /// Commits asynchronously; failures are logged at debug level.
    pub fn commit(&self, offsets: &[(String, i32, i64)]) {
        if offsets.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (t, p, o) in offsets {
            let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*o));
        }
        if let Err(e) = self.0.commit(&tpl, CommitMode::Async) {
            debug!(error = %e, "group offset commit failed (informational only)");
        }
    }
}

/// Starts the source. `resume` holds the cache's resume points; partitions without one start
/// per `cfg.start`. Batches go to `tx`; the thread stops on `cancel` or when `tx` closes.
/// `max_future_skew_ms` is `fleet.max_future_skew_s` (SPEC §7 `bad_ts`).
#[tracing::instrument(err, skip_all, fields(brokers = %cfg.brokers))]
pub fn spawn(
    cfg: &KafkaConfig,
    resume: HashMap<Tp, ResumePoint>,
    max_future_skew_ms: i64,
    tx: mpsc::Sender<KafkaBatch>,
    cancel: CancellationToken,
) -> Result<KafkaHandle, KafkaError> {
    let status = SharedStatus::default();
    let consumer: BaseConsumer<FleetContext> = consumer_config(cfg)
        .create_with_context(FleetContext {
            status: status.clone(),
        })
        .map_err(KafkaError::Config)?;
    let consumer = Arc::new(consumer);
    let mut poller = Poller {
        consumer: consumer.clone(),
        status: status.clone(),
        decoders: decoders(cfg, max_future_skew_ms),
        topic_names: cfg
            .topics
            .iter()
            .map(|t| (t.name.clone(), Arc::from(t.name.as_str())))
            .collect(),
        start: cfg.start,
        resume,
        batch_max: cfg.batch_max_messages,
        batch_wait: Duration::from_millis(cfg.batch_max_ms),
        tx,
        cancel,
        parts: BTreeMap::new(),
        pending_offsets: BTreeMap::new(),
        pending_gaps: Vec::new(),
        cluster_id: None,
        was_up: false,
        reference: super::reference::ReferenceFirst::default(),
    };
    let thread = std::thread::Builder::new()
        .name("kafka-poll".into())
        .spawn(move || poller.run())?;
    Ok(KafkaHandle {
        status,
        consumer,
        thread: Some(thread),
    })
}

pub(super) struct Poller {
    pub(super) consumer: Arc<BaseConsumer<FleetContext>>,
    pub(super) status: SharedStatus,
    /// One decoder per topic, two for a topic listed as `position` and `status` (SPEC §8).
    pub(super) decoders: HashMap<String, Vec<Decoder>>,
    pub(super) topic_names: HashMap<String, Arc<str>>,
    pub(super) start: StartFrom,
    pub(super) resume: HashMap<Tp, ResumePoint>,
    pub(super) batch_max: usize,
    pub(super) batch_wait: Duration,
    pub(super) tx: mpsc::Sender<KafkaBatch>,
    pub(super) cancel: CancellationToken,
    /// Assigned partitions.
    pub(super) parts: BTreeMap<Tp, Part>,
    /// Start offsets resolved (or moved by a gap) at assignment, sent with the next batch.
    pub(super) pending_offsets: BTreeMap<Tp, i64>,
    /// Gaps found, committed with the next batch.
    pub(super) pending_gaps: Vec<GapRow>,
    /// The cluster's id, once the broker told it.
    pub(super) cluster_id: Option<String>,
    /// Connection state at the last look: a reconnect makes every partition fresh again.
    pub(super) was_up: bool,
    /// Device tables read before the telemetry keyed by their devices ([`super::reference`]).
    pub(super) reference: super::reference::ReferenceFirst,
}

impl Poller {
    fn run(&mut self) {
        // Messages borrow the consumer; polling a local handle leaves `self` free to mutate.
        let consumer = self.consumer.clone();
        let mut batch = KafkaBatch::default();
        let mut batch_started = Instant::now();
        let mut next_assign_check = Instant::now();
        let mut next_conn_check = Instant::now();
        let mut touched: BTreeSet<Tp> = BTreeSet::new();
        let mut last_error_log = Instant::now() - Duration::from_secs(60);
        // (topic, shape hash) → its entry in `batch.shapes`.
        let mut shape_ix: HashMap<(usize, u64), usize> = HashMap::new();
        while !self.cancel.is_cancelled() {
            let now = Instant::now();
            if now >= next_assign_check || self.reference.take_assign_now() {
                let complete = self.assign_new_partitions();
                // Until every topic exists, look again soon; afterwards only for new partitions.
                next_assign_check = now
                    + if complete {
                        Duration::from_secs(10)
                    } else {
                        Duration::from_secs(1)
                    };
            }
            if now >= next_conn_check {
                next_conn_check = now + Duration::from_millis(200);
                self.note_reconnect();
                self.nudge_verifications();
            }
            match consumer.poll(Duration::from_millis(20)) {
                Some(Ok(m)) => {
                    let tp = (m.topic().to_string(), m.partition());
                    if let Verdict::Skip = self.check(&tp, &m) {
                        continue;
                    }
                    if batch.items.is_empty() {
                        batch_started = Instant::now();
                    }
                    let (item, shape, second) = self.decode(&m);
                    if let Some(hash) = shape {
                        let dms = self
                            .decoders
                            .get(m.topic())
                            .and_then(|d| d.first())
                            .is_some_and(Decoder::is_dms);
                        note_shape(&mut batch, &mut shape_ix, &item, (hash, dms), &m);
                    }
                    // A message both readings reject is quarantined once.
                    let second = second.filter(|s| item.outcome.is_ok() || s.outcome.is_ok());
                    touched.insert(tp);
                    batch.items.push(item);
                    batch.items.extend(second);
                }
                Some(Err(e)) if last_error_log.elapsed() > Duration::from_secs(5) => {
                    warn!(error = %e, "kafka poll error");
                    last_error_log = Instant::now();
                }
                Some(Err(_)) | None => {}
            }
            let full = batch.items.len() >= self.batch_max;
            let due = !batch.items.is_empty() && batch_started.elapsed() >= self.batch_wait;
            let starts = !self.pending_offsets.is_empty() || !self.pending_gaps.is_empty();
            if full || due || starts {
                let mut marks = std::mem::take(&mut self.pending_offsets);
                for tp in &touched {
                    marks.insert(tp.clone(), self.parts[tp].next);
                }
                {
                    let mut s = self.status.lock();
                    for (tp, o) in &marks {
                        s.position.insert(tp.clone(), *o);
                    }
                    if !touched.is_empty() {
                        s.last_message = Some(Instant::now());
                    }
                }
                touched.clear();
                batch.offsets = marks
                    .into_iter()
                    .map(|(tp, next)| OffsetMark {
                        fingerprint: self.parts.get(&tp).and_then(|p| p.fingerprint),
                        topic: tp.0,
                        partition: tp.1,
                        next,
                        cluster_id: self.cluster_id.clone(),
                    })
                    .collect();
                batch.gaps = std::mem::take(&mut self.pending_gaps);
                batch.arrival_ms = now_ms();
                shape_ix.clear();
                if !self.send(std::mem::take(&mut batch)) {
                    break;
                }
            }
        }
        if !batch.items.is_empty() {
            // Cancelled mid-batch: these messages are simply not committed and will be read
            // again on the next start, from the cache's offsets.
            debug!(
                dropped = batch.items.len(),
                "kafka poller stopped with an unsent batch"
            );
        }
        debug!("kafka poll thread stopped");
    }

    /// Hands a batch to the engine, waiting while it is behind, but never past shutdown:
    /// a writer stuck on a full disk must not keep this thread (and so shutdown) hanging.
    /// Returns false when the poller must stop.
    fn send(&self, mut batch: KafkaBatch) -> bool {
        loop {
            match self.tx.try_send(batch) {
                Ok(()) => {
                    self.status.lock().batches_sent += 1;
                    return true;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
                Err(mpsc::error::TrySendError::Full(b)) => {
                    if self.cancel.is_cancelled() {
                        return false;
                    }
                    batch = b;
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    }

    /// Decodes `m` with its topic's decoder; a topic read two ways (position and status,
    /// SPEC §8) parses the message once for both and yields the second reading too.
    fn decode(
        &self,
        m: &rdkafka::message::BorrowedMessage<'_>,
    ) -> (KafkaItem, Option<u64>, Option<KafkaItem>) {
        let now = now_ms();
        let raw = RawMessage {
            key: m.key(),
            payload: m.payload(),
            kafka_ts_ms: m.timestamp().to_millis(),
        };
        match self.decoders.get(m.topic()).map(Vec::as_slice) {
            Some([only]) => {
                let (outcome, shape) = only.decode_shaped(raw, now);
                (self.item(m, outcome, Some(only), false, now), shape, None)
            }
            Some([first, second, ..]) => match first.parse(&raw) {
                Ok(Some((obj, key))) => {
                    let (a, shape) = first.decode_object(&obj, key, &raw, now);
                    let (b, _) = second.decode_object(&obj, key, &raw, now);
                    (
                        self.item(m, a, Some(first), false, now),
                        shape,
                        Some(self.item(m, b, Some(second), true, now)),
                    )
                }
                Ok(None) => (
                    self.item(m, Ok(Decoded::Tombstone), Some(first), false, now),
                    None,
                    None,
                ),
                // Both readings reject it the same way: quarantined once.
                Err(r) => (self.item(m, Err(r), Some(first), false, now), None, None),
            },
            _ => {
                let r = crate::decode::Rejection {
                    reason: fleet_model::RejectReason::UnknownKind,
                    detail: format!("topic {} has no configured kind", m.topic()),
                };
                (self.item(m, Err(r), None, false, now), None, None)
            }
        }
    }

    /// One reading of `m` as handed to the engine: its outcome, or the quarantine row.
    fn item(
        &self,
        m: &rdkafka::message::BorrowedMessage<'_>,
        outcome: Result<Decoded, crate::decode::Rejection>,
        decoder: Option<&Decoder>,
        secondary: bool,
        now: i64,
    ) -> KafkaItem {
        let topic = self
            .topic_names
            .get(m.topic())
            .cloned()
            .unwrap_or_else(|| Arc::from(m.topic()));
        let outcome = outcome.map_err(|r| {
            Box::new(QuarantineRow {
                topic: m.topic().to_string(),
                partition: m.partition(),
                offset: m.offset(),
                reason: r.reason,
                detail: r.detail,
                key: m
                    .key()
                    .map(|k| k[..k.len().min(crate::store::batch::QUARANTINE_KEEP)].to_vec()),
                raw: m
                    .payload()
                    .map(|p| p[..p.len().min(crate::store::batch::QUARANTINE_KEEP)].to_vec()),
                raw_len: m.payload().map_or(0, <[u8]>::len),
                received_ms: now,
            })
        });
        KafkaItem {
            topic,
            partition: m.partition(),
            offset: m.offset(),
            outcome,
            by_device: decoder.is_some_and(Decoder::device_keyed),
            secondary,
        }
    }
}

/// The topics' decoders; a topic listed twice (position and status) gets both, marked shared.
fn decoders(cfg: &KafkaConfig, max_future_skew_ms: i64) -> HashMap<String, Vec<Decoder>> {
    let mut out: HashMap<String, Vec<Decoder>> = HashMap::new();
    for t in &cfg.topics {
        out.entry(t.name.clone())
            .or_default()
            .push(Decoder::new(t).with_max_future_skew_ms(max_future_skew_ms));
    }
    for list in out.values_mut() {
        if list.len() > 1 {
            for d in list.iter_mut() {
                *d = d.clone().with_shared(true);
            }
        }
    }
    out
}

/// Counts a message under its (topic, shape) in the batch; the first message of a shape in
/// the batch is flattened for its paths (see [`crate::schema`]); `dms`: of its `data` row.
fn note_shape(
    batch: &mut KafkaBatch,
    ix: &mut HashMap<(usize, u64), usize>,
    item: &KafkaItem,
    (hash, dms): (u64, bool),
    m: &rdkafka::message::BorrowedMessage<'_>,
) {
    let ts = match &item.outcome {
        Ok(Decoded::Position(p)) => Some(p.ts_ms),
        Ok(Decoded::Status(s)) => Some(s.ts_ms),
        Ok(Decoded::Alert(a)) => Some(a.ts_ms),
        Ok(Decoded::Ack(a)) => Some(a.ts),
        _ => None,
    }
    .or_else(|| m.timestamp().to_millis())
    .unwrap_or_else(now_ms);
    let key = (Arc::as_ptr(&item.topic).cast::<u8>() as usize, hash);
    if let Some(&i) = ix.get(&key) {
        let s = &mut batch.shapes[i];
        s.count += 1;
        s.first_ts = s.first_ts.min(ts);
        s.last_ts = s.last_ts.max(ts);
        return;
    }
    let Some(fields) = m
        .payload()
        .and_then(|p| crate::schema::fields_of_payload(p, dms))
    else {
        return;
    };
    ix.insert(key, batch.shapes.len());
    batch.shapes.push(crate::schema::ShapeObs {
        topic: item.topic.clone(),
        count: 1,
        first_ts: ts,
        last_ts: ts,
        fields,
    });
}
