//! Kafka clients for tests: a blocking producer, a read-everything consumer,
//! topic creation. All built on rdkafka (bundled librdkafka), the same client
//! the engine uses, so a test exercises the real protocol path.
//!
//! Everything here blocks the calling thread (see the crate docs).

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer as _, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::error::{Result, TestkitError};

/// How long a producer may try to deliver one message before librdkafka gives up.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// One record read back from a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Partition the record is in.
    pub partition: i32,
    /// Its offset in that partition.
    pub offset: i64,
    /// Message key, if any.
    pub key: Option<Vec<u8>>,
    /// Message value (empty for a null value).
    pub payload: Vec<u8>,
    /// Message timestamp (create or log-append time) in ms since the epoch.
    pub timestamp_ms: Option<i64>,
}

impl Record {
    /// The payload as UTF-8 text (lossy), handy in assertions.
    pub fn payload_str(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// Where a produced message landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Partition the broker stored it in.
    pub partition: i32,
    /// Offset the broker assigned.
    pub offset: i64,
}

type DeliveryReport = std::result::Result<Delivered, KafkaError>;

/// Routes every delivery report to the channel handed in with the message,
/// so each `send` waits for exactly its own messages.
struct ReportingContext;

impl ClientContext for ReportingContext {}

impl ProducerContext for ReportingContext {
    type DeliveryOpaque = Box<SyncSender<DeliveryReport>>;

    fn delivery(&self, result: &DeliveryResult<'_>, reply: Self::DeliveryOpaque) {
        let report = match result {
            Ok(msg) => Ok(Delivered {
                partition: msg.partition(),
                offset: msg.offset(),
            }),
            Err((err, _)) => Err(err.clone()),
        };
        // The waiting side may have given up (timeout); nothing to do then.
        let _ = reply.try_send(report);
    }
}

/// A producer for tests: every call waits until the broker acknowledged
/// (`acks=all`) and panics on failure, so a test never races its own data.
pub struct Producer {
    inner: ThreadedProducer<ReportingContext>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").finish_non_exhaustive()
    }
}

impl Producer {
    /// A producer for `bootstrap` ("host:port") with test-friendly defaults.
    pub fn new(bootstrap: &str) -> Producer {
        Self::with_config(bootstrap, &[])
    }

    /// Like [`Producer::new`], with extra librdkafka properties (for example
    /// `("message.max.bytes", "2000000")` to send an oversized message).
    pub fn with_config(bootstrap: &str, extra: &[(&str, &str)]) -> Producer {
        Self::try_with_config(bootstrap, extra)
            .unwrap_or_else(|e| panic!("creating a Kafka producer for {bootstrap}: {e}"))
    }

    /// Fallible form of [`Producer::with_config`].
    pub fn try_with_config(bootstrap: &str, extra: &[(&str, &str)]) -> Result<Producer> {
        let mut config = base_config(bootstrap);
        config
            .set("acks", "all")
            .set("linger.ms", "5")
            .set(
                "message.timeout.ms",
                MESSAGE_TIMEOUT.as_millis().to_string(),
            )
            .set("queue.buffering.max.messages", "1000000");
        for (k, v) in extra {
            config.set(*k, *v);
        }
        let inner = config.create_with_context(ReportingContext)?;
        Ok(Producer { inner })
    }

    /// Produces one message and waits for the broker's acknowledgement.
    /// `partition: None` lets the partitioner pick (by key hash when keyed).
    /// Panics when delivery fails.
    pub fn send(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        payload: &[u8],
    ) -> Delivered {
        self.try_send(topic, partition, key, payload)
            .unwrap_or_else(|e| panic!("producing to {topic}: {e}"))
    }

    /// Fallible form of [`Producer::send`], for tests that expect a rejection
    /// (its [`TestkitError::kafka_code`] tells which).
    pub fn try_send(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<Delivered> {
        let (tx, rx) = sync_channel(1);
        self.enqueue(topic, partition, key, payload, tx)?;
        wait_reports(&rx, 1)?
            .pop()
            .ok_or_else(|| TestkitError::Unexpected("no delivery report".into()))
    }

    /// Produces many `(key, payload)` messages, pipelined (no waiting between
    /// them), then waits for every delivery. Returns how many were delivered;
    /// panics if any failed.
    pub fn send_many(
        &self,
        topic: &str,
        msgs: impl IntoIterator<Item = (Option<Vec<u8>>, Vec<u8>)>,
    ) -> usize {
        self.send_many_to(topic, None, msgs).len()
    }

    /// Like [`Producer::send_many`], optionally into one partition, returning
    /// where each message landed (in the order given).
    pub fn send_many_to(
        &self,
        topic: &str,
        partition: Option<i32>,
        msgs: impl IntoIterator<Item = (Option<Vec<u8>>, Vec<u8>)>,
    ) -> Vec<Delivered> {
        // Unbounded in practice: reports arrive from librdkafka's thread and
        // must never block it; the receiver drains them after enqueueing.
        let (tx, rx) = sync_channel(1 << 20);
        let mut sent = 0usize;
        for (key, payload) in msgs {
            self.enqueue(topic, partition, key.as_deref(), &payload, tx.clone())
                .unwrap_or_else(|e| panic!("producing to {topic}: {e}"));
            sent += 1;
        }
        drop(tx);
        let mut delivered =
            wait_reports(&rx, sent).unwrap_or_else(|e| panic!("producing to {topic}: {e}"));
        // Reports for one partition arrive in order, across partitions not;
        // callers get (partition, offset) sorted, which is what tests compare.
        delivered.sort_by_key(|d| (d.partition, d.offset));
        delivered
    }

    /// Puts one message on librdkafka's queue, waiting while the queue is full.
    fn enqueue(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        payload: &[u8],
        reply: SyncSender<DeliveryReport>,
    ) -> Result<()> {
        let mut record: BaseRecord<'_, [u8], [u8], _> =
            BaseRecord::with_opaque_to(topic, Box::new(reply)).payload(payload);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(p) = partition {
            record = record.partition(p);
        }
        let deadline = Instant::now() + MESSAGE_TIMEOUT;
        loop {
            match self.inner.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if Instant::now() < deadline =>
                {
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((err, _)) => return Err(err.into()),
            }
        }
    }

    /// Waits until every queued message is delivered or failed.
    pub fn flush(&self) {
        self.inner
            .flush(MESSAGE_TIMEOUT)
            .unwrap_or_else(|e| panic!("flushing producer: {e}"));
    }
}

/// Collects `n` delivery reports; the first failure wins.
fn wait_reports(rx: &Receiver<DeliveryReport>, n: usize) -> Result<Vec<Delivered>> {
    let deadline = Instant::now() + MESSAGE_TIMEOUT + Duration::from_secs(10);
    let mut out = Vec::with_capacity(n);
    let mut first_err = None;
    for _ in 0..n {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Ok(d)) => out.push(d),
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(_) => {
                return Err(TestkitError::Timeout {
                    what: format!("delivery reports ({} of {n} received)", out.len()),
                    after: MESSAGE_TIMEOUT,
                });
            }
        }
    }
    match first_err {
        Some(e) => Err(e.into()),
        None => Ok(out),
    }
}

/// Settings every test client shares.
fn base_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        // Loopback only; skips resolving "localhost" to ::1 first.
        .set("broker.address.family", "v4")
        // Tests restart brokers; reconnect quickly instead of backing off to 10 s.
        .set("reconnect.backoff.max.ms", "500")
        .set("client.id", "fleetdash-testkit");
    config
}

/// Every record in `topic` from the beginning of every partition until
/// caught up (the consumer reached the end of every partition), sorted by
/// (partition, offset). Panics if that takes longer than `timeout`.
///
/// "Caught up" is decided by the end-of-partition signal of the Fetch
/// protocol, not by ListOffsets: tansu's in-memory engine answers ListOffsets
/// "latest" with the base offset of the last batch + 1, too low whenever that
/// batch holds more than one record (see the crate docs).
pub fn consume_all(bootstrap: &str, topic: &str, timeout: Duration) -> Vec<Record> {
    try_consume_all(bootstrap, topic, timeout)
        .unwrap_or_else(|e| panic!("consuming all of {topic} from {bootstrap}: {e}"))
}

/// Fallible form of [`consume_all`].
pub fn try_consume_all(bootstrap: &str, topic: &str, timeout: Duration) -> Result<Vec<Record>> {
    read_to_end(bootstrap, topic, timeout, true).map(|(records, _)| records)
}

/// `partition -> (low, high)` offsets; see [`watermarks`].
pub type Watermarks = BTreeMap<i32, (i64, i64)>;

/// `partition -> (low, high)` watermarks of `topic`: high is the next offset
/// to be written, so `high - low` is the number of records retained.
///
/// Read from Fetch responses (it reads the topic to its end), because tansu's
/// in-memory engine reports a wrong high watermark through ListOffsets, which
/// is what `Consumer::fetch_watermarks` uses.
pub fn watermarks(bootstrap: &str, topic: &str) -> Watermarks {
    read_to_end(bootstrap, topic, Duration::from_secs(30), false)
        .map(|(_, marks)| marks)
        .unwrap_or_else(|e| panic!("reading watermarks of {topic} from {bootstrap}: {e}"))
}

/// Reads every partition of `topic` from the beginning until end-of-partition,
/// returning the records (if `keep`) and the watermarks seen in Fetch responses.
fn read_to_end(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
    keep: bool,
) -> Result<(Vec<Record>, Watermarks)> {
    let deadline = Instant::now() + timeout;
    let consumer: BaseConsumer = base_config(bootstrap)
        // librdkafka refuses `assign` without a group id ("Unknown group");
        // the group is never joined (no subscribe) nor committed to.
        .set(
            "group.id",
            format!("fleetdash-testkit-{}", crate::ports::token()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        // Tests read small topics; don't let the broker park empty fetches.
        .set("fetch.wait.max.ms", "10")
        // Big enough for the oversized-message tests.
        .set("fetch.message.max.bytes", "4194304")
        .set("receive.message.max.bytes", "104857600")
        .create()?;
    // ListOffsets answers are lower bounds at worst (see above); a partition
    // whose ListOffsets says empty has no batch at all, so is really empty.
    let listed = list_offsets(&consumer, topic, left(deadline))?;

    let mut marks = listed.clone();
    let mut tpl = TopicPartitionList::new();
    // partition -> next offset to read; removed once caught up
    let mut pending: BTreeMap<i32, i64> = BTreeMap::new();
    for (&p, &(low, high)) in &listed {
        if high > low {
            tpl.add_partition_offset(topic, p, Offset::Beginning)?;
            pending.insert(p, low);
        }
    }
    let mut records = Vec::new();
    if pending.is_empty() {
        return Ok((records, marks));
    }
    consumer.assign(&tpl)?;

    while !pending.is_empty() {
        if Instant::now() >= deadline {
            return Err(TestkitError::Timeout {
                what: format!(
                    "reading {topic} to its end: partitions {:?} not caught up \
                     (partition -> next offset), {} records read",
                    pending,
                    records.len()
                ),
                after: timeout,
            });
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                let next = pending.get(&p).copied();
                let listed_high = listed.get(&p).map_or(0, |&(_, h)| h);
                if let Some(next) = next.filter(|&n| n >= listed_high) {
                    // End of partition means the fetch position reached the
                    // high watermark; the position may be past `next` when
                    // the last offsets hold transaction markers.
                    let high = consumer
                        .position()
                        .ok()
                        .and_then(|tpl| match tpl.find_partition(topic, p)?.offset() {
                            Offset::Offset(o) => Some(o),
                            _ => None,
                        })
                        .unwrap_or(next);
                    let low = listed.get(&p).map_or(0, |m| m.0);
                    marks.insert(p, (low, high.max(next)));
                    pending.remove(&p);
                }
            }
            Some(Err(e)) => {
                tracing::debug!("reading {topic}: transient error: {e}");
            }
            Some(Ok(msg)) => {
                let p = msg.partition();
                if let Some(next) = pending.get_mut(&p) {
                    *next = (*next).max(msg.offset() + 1);
                }
                if keep {
                    records.push(Record {
                        partition: p,
                        offset: msg.offset(),
                        key: msg.key().map(<[u8]>::to_vec),
                        payload: msg.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                        timestamp_ms: msg.timestamp().to_millis(),
                    });
                }
            }
        }
    }
    records.sort_by_key(|r| (r.partition, r.offset));
    Ok((records, marks))
}

/// `partition -> (earliest, latest)` as answered by ListOffsets.
fn list_offsets(consumer: &BaseConsumer, topic: &str, timeout: Duration) -> Result<Watermarks> {
    let meta = consumer.fetch_metadata(Some(topic), timeout)?;
    let t = meta
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| TestkitError::Unexpected(format!("topic {topic} not in metadata")))?;
    if let Some(err) = t.error() {
        return Err(TestkitError::Unexpected(format!(
            "topic {topic}: {:?}",
            RDKafkaErrorCode::from(err)
        )));
    }
    let mut out = BTreeMap::new();
    for p in t.partitions() {
        let marks = consumer.fetch_watermarks(topic, p.id(), timeout)?;
        out.insert(p.id(), marks);
    }
    Ok(out)
}

fn left(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(100))
}

/// Succeeds once the broker answers a metadata request.
pub(crate) fn probe_metadata(bootstrap: &str, timeout: Duration) -> Result<()> {
    let consumer: BaseConsumer = base_config(bootstrap).create()?;
    consumer.fetch_metadata(None, timeout)?;
    Ok(())
}

/// Creates `name` (a no-op if it exists with any partition count) and waits
/// until metadata shows `partitions` partitions, each with a leader.
pub(crate) fn create_topic(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    config: &[(&str, &str)],
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let admin: AdminClient<DefaultClientContext> = base_config(bootstrap).create()?;
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in config {
        topic = topic.set(k, v);
    }
    let opts = AdminOptions::new().operation_timeout(Some(timeout));
    let results = futures::executor::block_on(admin.create_topics([&topic], &opts))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(TestkitError::Unexpected(format!(
                    "creating topic {topic}: {code:?}"
                )));
            }
        }
    }
    wait_for_leaders(bootstrap, name, partitions, deadline, timeout)
}

fn wait_for_leaders(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    deadline: Instant,
    timeout: Duration,
) -> Result<()> {
    let consumer: BaseConsumer = base_config(bootstrap).create()?;
    let mut last = String::from("no metadata yet");
    while Instant::now() < deadline {
        match consumer.fetch_metadata(Some(name), left(deadline).min(Duration::from_secs(2))) {
            Ok(meta) => {
                let ready = meta.topics().iter().find(|t| t.name() == name).map(|t| {
                    let parts = t.partitions();
                    last = format!(
                        "error {:?}, partitions {:?}",
                        t.error(),
                        parts
                            .iter()
                            .map(|p| (p.id(), p.leader()))
                            .collect::<Vec<_>>()
                    );
                    t.error().is_none()
                        && parts.len() == partitions as usize
                        && parts.iter().all(|p| p.leader() >= 0)
                });
                if ready == Some(true) {
                    return Ok(());
                }
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(TestkitError::Timeout {
        what: format!("topic {name} to have {partitions} partitions with leaders (last: {last})"),
        after: timeout,
    })
}

/// Deletes `name` and waits until metadata no longer shows it (a no-op if it is absent).
pub(crate) fn delete_topic(bootstrap: &str, name: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let admin: AdminClient<DefaultClientContext> = base_config(bootstrap).create()?;
    let opts = AdminOptions::new().operation_timeout(Some(timeout));
    let results = futures::executor::block_on(admin.delete_topics(&[name], &opts))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((topic, code)) => {
                return Err(TestkitError::Unexpected(format!(
                    "deleting topic {topic}: {code:?}"
                )));
            }
        }
    }
    let consumer: BaseConsumer = base_config(bootstrap).create()?;
    while Instant::now() < deadline {
        if let Ok(meta) =
            consumer.fetch_metadata(Some(name), left(deadline).min(Duration::from_secs(2)))
        {
            let present = meta
                .topics()
                .iter()
                .any(|t| t.name() == name && t.error().is_none() && !t.partitions().is_empty());
            if !present {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(TestkitError::Timeout {
        what: format!("topic {name} to disappear"),
        after: timeout,
    })
}
