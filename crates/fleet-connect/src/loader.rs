//! The loader's loop: gather a batch, write it to Redis, commit its offsets, repeat.
//!
//! It runs on the caller's (blocking) thread with a librdkafka `BaseConsumer`; Redis calls are
//! driven on the given tokio runtime. Order per batch is the whole guarantee: offsets are
//! committed only after Redis acknowledged every `GEOADD` of the batch. Trouble is handled by
//! kind: Redis unreachable (refused, dropped, timed out) → the same batch is retried with
//! backoff (100 ms → 2 s) and Kafka is not read meanwhile, so nothing piles up; Redis refusing
//! the write itself (wrong key type, ACL) → the loader stops with that reason, nothing of the
//! batch committed. A bad message is counted by reason, logged (at most
//! [`WARN_PER_MINUTE`] lines a minute) and committed past. Broker outages are librdkafka's to
//! ride out; the loop simply finds no messages.

use crate::ConnectError;
use crate::batch::Batch;
use crate::context::{ConnectContext, describe};
use crate::route::Routes;
use fleet_core::Config;
use fleet_core::config::StartFrom;
use fleet_core::decode::RawMessage;
use fleet_core::redis_geo::{Conn, RedisSource};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// With `--idle-exit`, how long an instance the group gave no partition waits before it
/// calls itself idle: longer than `session.timeout.ms` (10 s), after which partitions held by
/// a crashed instance are handed out again.
const EMPTY_ASSIGNMENT_WAIT: Duration = Duration::from_secs(15);

/// Bad-message warnings logged per minute (the rest are only counted).
pub const WARN_PER_MINUTE: u32 = 10;

/// Rate-limits bad-message warnings: `warned` is (start of the minute, warnings in it).
fn may_warn(warned: &mut (Instant, u32)) -> bool {
    if warned.0.elapsed() >= Duration::from_secs(60) {
        if warned.1 > WARN_PER_MINUTE {
            warn!(
                "connect: {} more bad messages in the last minute (counted, not logged)",
                warned.1 - WARN_PER_MINUTE
            );
        }
        *warned = (Instant::now(), 0);
    }
    warned.1 += 1;
    warned.1 <= WARN_PER_MINUTE
}

/// How a run ends.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Exit once caught up on every assigned partition with no new message for this long
    /// (the clock starts when the group has given this instance its partitions).
    pub idle_exit: Option<Duration>,
    /// Set to stop (Ctrl-C): the loop finishes the batch in hand, commits, and returns.
    pub stop: Arc<AtomicBool>,
}

/// What a run did (`fleetctl connect --json`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Messages read (loaded or rejected).
    pub messages: u64,
    /// Geo set members written (a vehicle's several fixes in one batch count once).
    pub loaded: u64,
    /// Messages skipped as unusable…
    pub rejected: u64,
    /// …by reason code.
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Batches written (one pipelined round trip each).
    pub pipelines: u64,
    /// Writes retried because Redis could not be reached.
    pub redis_retries: u64,
    /// Offset commits the broker refused (their messages are loaded again later).
    pub commit_errors: u64,
    /// Partitions this instance loaded messages from, `topic/partition`.
    pub partitions: Vec<String>,
    /// The group's assignment to this instance when it stopped.
    pub assigned: Vec<String>,
    /// Wall time of the run (s).
    pub elapsed_s: f64,
    /// First message read → last offsets committed (s).
    pub active_s: f64,
    /// Messages per second over `active_s`.
    pub rate: f64,
    /// `idle` (caught up, `--idle-exit`) or `stopped`.
    pub exit: &'static str,
}

/// Runs the loader until `opts` says stop. Blocking: call it from a blocking thread of `rt`.
pub fn run(
    cfg: &Config,
    opts: &RunOptions,
    rt: &tokio::runtime::Handle,
) -> Result<Summary, ConnectError> {
    let kafka = (cfg.kafka.as_ref()).ok_or(ConnectError::Missing(
        "[kafka] (brokers and connection properties)",
    ))?;
    let redis = (cfg.redis.clone()).ok_or(ConnectError::Missing("[redis] (where to GEOADD)"))?;
    let c = (cfg.connect.as_ref()).ok_or(ConnectError::Missing(
        "[connect] with at least one [[connect.routes]]",
    ))?;
    let routes = Routes::new(c, cfg.fleet.max_future_skew_ms());
    let mut props = fleet_core::kafka::consumer_config(kafka);
    props
        .set("group.id", &c.group_id)
        .set("client.id", "fleetdash-connect")
        // A loader that crashed holds its partitions until the group gives up on it: 10 s
        // (librdkafka's default is 45 s), so a restarted or surviving instance takes over soon.
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "3000")
        // Statistics carry the high watermarks `--idle-exit` compares with (see context.rs).
        .set("statistics.interval.ms", "500")
        .set(
            "auto.offset.reset",
            match c.start {
                // A time is refused when the config is loaded (`connect.start`).
                StartFrom::Earliest | StartFrom::At(_) => "earliest",
                StartFrom::Latest => "latest",
            },
        );
    if let Some(id) = &c.instance_id {
        props.set("group.instance.id", id);
    }
    let consumer: BaseConsumer<ConnectContext> = props
        .create_with_context(ConnectContext::default())
        .map_err(ConnectError::KafkaConfig)?;
    consumer.subscribe(&routes.topics())?;
    info!(group = %c.group_id, topics = ?routes.topics(), "connect: subscribed");
    let mut l = Loader {
        consumer,
        routes,
        redis: RedisSource::new(redis)?,
        conn: None,
        rt,
        opts,
        sum: Summary::default(),
        batch: Batch::default(),
        committed: HashMap::new(),
        loaded_from: BTreeSet::new(),
        warned: (Instant::now(), 0),
        max: c.batch_max_messages,
        linger: Duration::from_millis(c.batch_max_ms),
        start: c.start,
    };
    l.run()
}

struct Loader<'a> {
    consumer: BaseConsumer<ConnectContext>,
    routes: Routes,
    redis: RedisSource,
    conn: Option<Conn>,
    rt: &'a tokio::runtime::Handle,
    opts: &'a RunOptions,
    sum: Summary,
    batch: Batch,
    /// (topic, partition) → next offset committed by this instance.
    committed: HashMap<(String, i32), i64>,
    loaded_from: BTreeSet<(String, i32)>,
    /// Start of the current warning minute, warnings logged in it.
    warned: (Instant, u32),
    max: usize,
    linger: Duration,
    start: StartFrom,
}

impl Loader<'_> {
    fn run(&mut self) -> Result<Summary, ConnectError> {
        let started = Instant::now();
        let (mut first, mut last_commit) = (None::<Instant>, started);
        let mut idle_since = started;
        let mut rebalances = 0;
        let mut last_check = started;
        let mut last_progress = (started, 0u64);
        self.sum.exit = "stopped";
        while !self.opts.stop.load(Ordering::Relaxed) {
            self.gather();
            let seen = self.consumer.context().rebalances();
            if seen != rebalances {
                // A new assignment restarts the idle clock: new partitions may have data.
                (rebalances, idle_since) = (seen, Instant::now());
            }
            if !self.batch.is_empty() {
                first.get_or_insert_with(Instant::now);
                if !self.write()? {
                    break; // stopped during a Redis outage: nothing of the batch committed
                }
                self.commit(CommitMode::Async);
                last_commit = Instant::now();
                idle_since = last_commit;
            }
            if last_progress.0.elapsed() >= Duration::from_secs(5) {
                let n = self.sum.messages - last_progress.1;
                info!(
                    "connect: {} messages ({:.0}/s), {} loaded, {} rejected",
                    self.sum.messages,
                    n as f64 / last_progress.0.elapsed().as_secs_f64(),
                    self.sum.loaded,
                    self.sum.rejected
                );
                last_progress = (Instant::now(), self.sum.messages);
            }
            if let Some(idle) = self.opts.idle_exit
                // Given nothing: perhaps because a crashed instance still holds the partitions
                // until the group gives up on it (`session.timeout.ms`), so wait longer.
                && let idle = if self.consumer.context().assigned().is_empty() {
                    idle.max(EMPTY_ASSIGNMENT_WAIT)
                } else {
                    idle
                }
                // Partitions are assigned a few seconds after joining (after a crash, once the
                // group gave up on the dead member: `session.timeout.ms`); the 60 s fallback
                // is for an instance that never hears an assignment callback.
                && (rebalances > 0 || started.elapsed() >= Duration::from_secs(60))
                && idle_since.elapsed() >= idle
                && last_check.elapsed() >= Duration::from_secs(1).min(idle)
            {
                last_check = Instant::now();
                if self.caught_up() {
                    self.sum.exit = "idle";
                    break;
                }
            }
        }
        self.commit(CommitMode::Sync);
        let assigned = self.consumer.context().assigned();
        let s = &mut self.sum;
        s.assigned = assigned.iter().map(|(t, p)| format!("{t}/{p}")).collect();
        s.partitions = (self.loaded_from.iter())
            .map(|(t, p)| format!("{t}/{p}"))
            .collect();
        s.commit_errors = self.consumer.context().commit_errors();
        s.elapsed_s = started.elapsed().as_secs_f64();
        s.active_s = first.map_or(0.0, |f| last_commit.duration_since(f).as_secs_f64());
        s.rate = s.messages as f64 / s.active_s.max(1e-9);
        info!(
            "connect: done ({}): {} messages, {} loaded, {} rejected; assigned {}",
            s.exit,
            s.messages,
            s.loaded,
            s.rejected,
            describe(assigned.iter())
        );
        Ok(std::mem::take(&mut self.sum))
    }

    /// Reads messages into the batch until it is full, `linger` has passed since its first
    /// message, or (empty) 100 ms passed without any.
    fn gather(&mut self) {
        self.batch.clear();
        let now_ms = fleet_core::store::now_ms();
        let mut deadline = None::<Instant>;
        while self.batch.messages() < self.max {
            let timeout = match deadline {
                None => Duration::from_millis(100),
                Some(d) => d.saturating_duration_since(Instant::now()),
            };
            let Some(r) = self.consumer.poll(timeout) else {
                if deadline.is_none_or(|d| Instant::now() >= d) {
                    return;
                }
                continue;
            };
            let m = match r {
                Ok(m) => m,
                Err(e) => {
                    warn!(error = %e, "kafka: cannot read a message");
                    continue;
                }
            };
            deadline.get_or_insert_with(|| Instant::now() + self.linger);
            let Some(route) = self.routes.index(m.topic()) else {
                continue; // not subscribed: cannot happen
            };
            let raw = RawMessage {
                key: m.key(),
                payload: m.payload(),
                kafka_ts_ms: m.timestamp().to_millis(),
            };
            self.sum.messages += 1;
            let fix = match self.routes.decode(route, raw, now_ms) {
                Ok(f) => Some(f),
                Err(rej) => {
                    self.sum.rejected += 1;
                    *(self.sum.rejected_by_reason)
                        .entry(rej.reason.as_str().to_string())
                        .or_default() += 1;
                    if may_warn(&mut self.warned) {
                        warn!(
                            topic = m.topic(),
                            partition = m.partition(),
                            offset = m.offset(),
                            reason = rej.reason.as_str(),
                            "connect: skipped a message: {}",
                            rej.detail
                        );
                    }
                    None
                }
            };
            self.batch.add(route, m.partition(), m.offset(), fix);
        }
    }

    /// Writes the batch; `false` if told to stop before Redis could be reached.
    fn write(&mut self) -> Result<bool, ConnectError> {
        let cmds = self.batch.commands(&self.routes);
        let mut backoff = Duration::from_millis(100);
        let mut down_since = None::<Instant>;
        let rt = self.rt;
        loop {
            let r = rt.block_on(async {
                if self.conn.is_none() {
                    self.conn = Some(self.redis.connect().await?);
                }
                match self.conn.as_mut() {
                    Some(c) if !cmds.is_empty() => c.exec(&cmds).await,
                    _ => Ok(()),
                }
            });
            let e = match r {
                Ok(()) => break,
                Err(e) => e,
            };
            if matches!(e.retry_method(), redis::RetryMethod::NoRetry) && !e.is_io_error() {
                return Err(ConnectError::Redis(e));
            }
            self.conn = None;
            self.sum.redis_retries += 1;
            if down_since.is_none() {
                warn!(error = %e, "connect: redis unreachable; retrying the batch (nothing committed)");
                down_since = Some(Instant::now());
            }
            let until = Instant::now() + backoff;
            while Instant::now() < until {
                if self.opts.stop.load(Ordering::Relaxed) {
                    return Ok(false);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
        if let Some(t) = down_since {
            info!(
                "connect: redis reachable again after {:.1} s",
                t.elapsed().as_secs_f64()
            );
        }
        self.sum.pipelines += 1;
        self.sum.loaded += self.batch.members() as u64;
        for (t, p, next) in self.batch.offsets(&self.routes) {
            self.committed.insert((t.to_string(), p), next);
            self.loaded_from.insert((t.to_string(), p));
        }
        Ok(true)
    }

    /// Commits what has been written, for the partitions still assigned to this instance.
    fn commit(&self, mode: CommitMode) {
        let tpl = match mode {
            CommitMode::Async => self.batch.offsets_tpl(&self.routes),
            CommitMode::Sync => {
                let assigned = self.consumer.context().assigned();
                let mut tpl = TopicPartitionList::new();
                for ((t, p), next) in &self.committed {
                    if assigned.contains(&(t.clone(), *p)) {
                        let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*next));
                    }
                }
                tpl
            }
        };
        if tpl.count() == 0 {
            return;
        }
        if let Err(e) = self.consumer.commit(&tpl, mode) {
            warn!(error = %e, "connect: cannot commit offsets; those messages will be loaded again");
        }
    }

    /// Whether every assigned partition has been read to its high watermark.
    fn caught_up(&self) -> bool {
        let assigned = self.consumer.context().assigned();
        let timeout = Duration::from_secs(2);
        let mut tpl = TopicPartitionList::new();
        for (t, p) in &assigned {
            let _ = tpl.add_partition(t, *p);
        }
        let stored = match self.consumer.committed_offsets(tpl, timeout) {
            Ok(c) => c,
            Err(_) => return false,
        };
        assigned.iter().all(|(t, p)| {
            let Some((lo, hi)) = self.consumer.context().watermarks(t, *p) else {
                return false; // no fetch answered yet
            };
            let mine = self.committed.get(&(t.clone(), *p)).copied();
            let group = match stored.find_partition(t, *p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => Some(o),
                _ => None,
            };
            match mine.max(group) {
                Some(next) => next >= hi,
                // Nothing read or committed yet: a new group starts at the end (latest), or
                // at the beginning, where only an empty partition is already caught up.
                None => self.start == StartFrom::Latest || lo >= hi,
            }
        })
    }
}
