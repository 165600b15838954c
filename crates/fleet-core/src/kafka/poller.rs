//! The poll thread. librdkafka's poll loop is synchronous and hot; a plain OS thread keeps it
//! off the async runtime and gives decoding its own core.

use super::context::FleetContext;
use super::status::{SharedStatus, Tp};
use super::{KafkaError, consumer_config};
use crate::config::{KafkaConfig, StartFrom};
use crate::decode::{Decoded, Decoder, RawMessage};
use crate::store::{QuarantineRow, now_ms};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

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
}

/// A batch handed to the engine.
#[derive(Debug, Default)]
pub struct KafkaBatch {
    /// Messages in consumption order.
    pub items: Vec<KafkaItem>,
    /// Next offset per partition after this batch (also for partitions whose start offset was
    /// just resolved, so the cache records where the first run started).
    pub offsets: Vec<(String, i32, i64)>,
    /// Arrival time of the batch (ms).
    pub arrival_ms: i64,
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

/// Starts the source. `resume` holds the cache's next offsets; partitions without one start
/// per `cfg.start`. Batches go to `tx`; the thread stops on `cancel` or when `tx` closes.
pub fn spawn(
    cfg: &KafkaConfig,
    resume: HashMap<Tp, i64>,
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
        decoders: cfg
            .topics
            .iter()
            .map(|t| (t.name.clone(), Decoder::new(t)))
            .collect(),
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
        assigned: BTreeMap::new(),
        pending_offsets: BTreeMap::new(),
        gaps: HashMap::new(),
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

struct Poller {
    consumer: Arc<BaseConsumer<FleetContext>>,
    status: SharedStatus,
    decoders: HashMap<String, Decoder>,
    topic_names: HashMap<String, Arc<str>>,
    start: StartFrom,
    resume: HashMap<Tp, i64>,
    batch_max: usize,
    batch_wait: Duration,
    tx: mpsc::Sender<KafkaBatch>,
    cancel: CancellationToken,
    /// Partitions assigned → next offset (kept current so re-assignment never rewinds).
    assigned: BTreeMap<Tp, i64>,
    /// Start offsets resolved at assignment, sent with the next batch.
    pending_offsets: BTreeMap<Tp, i64>,
    /// Per partition, a gap being healed: (expected offset, attempts so far).
    gaps: HashMap<Tp, (i64, u32)>,
}

impl Poller {
    fn run(&mut self) {
        // Messages borrow the consumer; polling a local handle leaves `self` free to mutate.
        let consumer = self.consumer.clone();
        let mut batch = KafkaBatch::default();
        let mut batch_started = Instant::now();
        let mut next_assign_check = Instant::now();
        let mut touched: BTreeMap<Tp, i64> = BTreeMap::new();
        let mut last_error_log = Instant::now() - Duration::from_secs(60);
        while !self.cancel.is_cancelled() {
            if Instant::now() >= next_assign_check {
                let complete = self.assign_new_partitions();
                // Until every topic exists, look again soon; afterwards only for new partitions.
                next_assign_check = Instant::now()
                    + if complete {
                        Duration::from_secs(10)
                    } else {
                        Duration::from_secs(1)
                    };
            }
            match consumer.poll(Duration::from_millis(20)) {
                Some(Ok(m)) => {
                    let tp = (m.topic().to_string(), m.partition());
                    let expected = touched.get(&tp).or_else(|| self.assigned.get(&tp)).copied();
                    if let Some(expected) = expected {
                        if m.offset() < expected {
                            // Already handed over (re-delivery after a seek): never twice.
                            continue;
                        }
                        if m.offset() > expected {
                            if self.heal_gap(&tp, expected, m.offset()) {
                                continue;
                            }
                        } else {
                            self.gaps.remove(&tp);
                        }
                    }
                    if batch.items.is_empty() {
                        batch_started = Instant::now();
                    }
                    let item = self.decode(&m);
                    touched.insert(tp, m.offset() + 1);
                    batch.items.push(item);
                }
                Some(Err(e)) if last_error_log.elapsed() > Duration::from_secs(5) => {
                    warn!(error = %e, "kafka poll error");
                    last_error_log = Instant::now();
                }
                Some(Err(_)) | None => {}
            }
            let full = batch.items.len() >= self.batch_max;
            let due = !batch.items.is_empty() && batch_started.elapsed() >= self.batch_wait;
            let starts = !self.pending_offsets.is_empty();
            if full || due || starts {
                let mut offsets = std::mem::take(&mut self.pending_offsets);
                offsets.extend(touched.iter().map(|(k, v)| (k.clone(), *v)));
                {
                    let mut s = self.status.lock();
                    for (tp, o) in &touched {
                        s.position.insert(tp.clone(), *o);
                    }
                    if !touched.is_empty() {
                        s.last_message = Some(Instant::now());
                    }
                }
                for (tp, o) in std::mem::take(&mut touched) {
                    self.assigned.insert(tp, o);
                }
                batch.offsets = offsets.into_iter().map(|((t, p), o)| (t, p, o)).collect();
                batch.arrival_ms = now_ms();
                if self.tx.blocking_send(std::mem::take(&mut batch)).is_err() {
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

    fn decode(&self, m: &rdkafka::message::BorrowedMessage<'_>) -> KafkaItem {
        let now = now_ms();
        let topic = self
            .topic_names
            .get(m.topic())
            .cloned()
            .unwrap_or_else(|| Arc::from(m.topic()));
        let raw = RawMessage {
            key: m.key(),
            payload: m.payload(),
            kafka_ts_ms: m.timestamp().to_millis(),
        };
        let outcome = match self.decoders.get(m.topic()) {
            Some(d) => d.decode(raw, now),
            None => Err(crate::decode::Rejection {
                reason: fleet_model::RejectReason::UnknownKind,
                detail: format!("topic {} has no configured kind", m.topic()),
            }),
        }
        .map_err(|r| {
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
        }
    }

    /// Looks up every configured topic's partitions and assigns those not yet assigned, at
    /// the cache's offset or the resolved start offset. Returns true when every topic exists.
    fn assign_new_partitions(&mut self) -> bool {
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
                if !self.assigned.contains_key(&tp) {
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
        if new_tps.is_empty() {
            if all_present {
                self.status
                    .lock()
                    .assigned_at
                    .get_or_insert_with(Instant::now);
            }
            return all_present;
        }
        let mut tpl = TopicPartitionList::new();
        let mut chosen = Vec::new();
        for tp in new_tps {
            let (offset, resolved) = match self.resume.get(&tp) {
                Some(o) => (*o, false),
                None => match self.resolve_start(&tp) {
                    Some(o) => (o, true),
                    None => {
                        all_present = false;
                        continue;
                    }
                },
            };
            let _ = tpl.add_partition_offset(&tp.0, tp.1, Offset::Offset(offset));
            chosen.push((tp, offset, resolved));
        }
        if chosen.is_empty() {
            return false;
        }
        if let Err(e) = self.consumer.incremental_assign(&tpl) {
            warn!(error = %e, "kafka assign failed; will retry");
            return false;
        }
        let new_tps: Vec<Tp> = chosen.iter().map(|(tp, _, _)| tp.clone()).collect();
        for (tp, offset, resolved) in chosen {
            if resolved {
                self.pending_offsets.insert(tp.clone(), offset);
            }
            self.assigned.insert(tp, offset);
        }
        info!(partitions = new_tps.len(), "kafka partitions assigned");
        let mut s = self.status.lock();
        for tp in new_tps {
            let o = self.assigned[&tp];
            s.position.entry(tp.clone()).or_insert(o);
            s.assigned.insert(tp);
        }
        if all_present {
            s.assigned_at.get_or_insert_with(Instant::now);
        }
        all_present
    }

    /// A message arrived beyond the expected offset. Kafka has real holes (compaction,
    /// transaction markers), but some brokers answer a fetch that starts inside a record
    /// batch with the *next* batch, which would silently lose messages. So we re-fetch from
    /// further and further back (re-delivered messages are skipped) and accept the hole only
    /// when even a read from the partition start jumps over it. Returns true when a re-fetch
    /// was started and the message must be dropped.
    fn heal_gap(&mut self, tp: &Tp, expected: i64, got: i64) -> bool {
        let attempt = match self.gaps.get(tp) {
            Some((e, a)) if *e == expected => *a,
            _ => 0,
        };
        let target = match attempt {
            0 => Offset::Offset(expected),
            1 => Offset::Offset((expected - 1_000).max(0)),
            2 => Offset::Offset((expected - 50_000).max(0)),
            3 => Offset::Beginning,
            _ => {
                warn!(topic = %tp.0, partition = tp.1, expected, got, "offset gap is real (compaction or transaction markers); moving on");
                self.gaps.remove(tp);
                return false;
            }
        };
        warn!(topic = %tp.0, partition = tp.1, expected, got, attempt, "offset gap; re-fetching");
        self.gaps.insert(tp.clone(), (expected, attempt + 1));
        match self
            .consumer
            .seek(&tp.0, tp.1, target, Duration::from_secs(5))
        {
            Ok(()) => true,
            Err(e) => {
                warn!(error = %e, "seek failed; accepting the gap");
                self.gaps.remove(tp);
                false
            }
        }
    }

    /// First run for a partition: the low (earliest) or high (latest) watermark, so the cache
    /// records a concrete start and a restart before the first message loses nothing.
    fn resolve_start(&self, tp: &Tp) -> Option<i64> {
        match self
            .consumer
            .fetch_watermarks(&tp.0, tp.1, Duration::from_secs(5))
        {
            Ok((lo, hi)) => Some(match self.start {
                StartFrom::Earliest => lo,
                StartFrom::Latest => hi,
            }),
            Err(e) => {
                debug!(topic = %tp.0, partition = tp.1, error = %e, "watermark query failed; will retry");
                None
            }
        }
    }
}
