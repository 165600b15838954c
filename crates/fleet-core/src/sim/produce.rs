//! Driving a [`Fleet`] against real infrastructure: Kafka for every message, Redis for the
//! geo set.
//!
//! Generation and `rdkafka` sends are synchronous CPU work, so the whole producing loop runs on
//! one blocking thread (`spawn_blocking`) and never stalls the async runtime that the desktop
//! app shares with it; pacing still uses tokio timers through the runtime handle, and
//! cancellation is observed between ticks and while waiting. Redis writes run as an async task
//! fed through [`GeoFeed`] so a slow or absent Redis never slows Kafka down.

use super::fleet::Fleet;
use super::geo::{self, GeoFeed, Snapshot};
use super::{SimError, SimMessage, SimOptions, SimReport};
use fleet_model::TopicKind;
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

/// How long to wait for the brokers' metadata before declaring them unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Final flush; shorter after a cancel so Ctrl-C stays responsive.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
const FLUSH_TIMEOUT_CANCELLED: Duration = Duration::from_secs(5);
/// Share of vehicles reporting a position on a tick (the rest are parked and report every
/// 10th tick), lowered a bit so an unthrottled prefill ends just before "now", not after.
const REPORTING_SHARE_ESTIMATE: f64 = 0.6;

/// Counts delivery failures (the delivery callback runs on the producer's polling thread) and
/// routes librdkafka's own logs to `tracing`.
#[derive(Default)]
struct SimContext {
    delivery_errors: AtomicU64,
}

impl ClientContext for SimContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Debug | RDKafkaLogLevel::Info | RDKafkaLogLevel::Notice => {
                tracing::debug!(target: "librdkafka", "{fac} {message}")
            }
            _ => tracing::warn!(target: "librdkafka", "{fac} {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(target: "librdkafka", %error, "{reason}");
    }
}

impl ProducerContext for SimContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, _)) = result {
            let n = self.delivery_errors.fetch_add(1, Ordering::Relaxed) + 1;
            if n == 1 || n.is_multiple_of(10_000) {
                tracing::warn!(%error, total = n, "kafka delivery failed");
            }
        }
    }
}

type SimProducer = ThreadedProducer<SimContext>;

/// Runs the simulated fleet until `duration` of sim time has passed, `max_messages` positions
/// were produced, or `cancel` fires (a cancel is a normal end: what was produced is flushed
/// and reported).
///
/// Fails fast on bad options, an unusable Kafka configuration, unreachable brokers or a
/// malformed Redis URL; Redis being down is only logged.
pub async fn run(opts: SimOptions, cancel: CancellationToken) -> Result<SimReport, SimError> {
    opts.validate()?;
    let started = Instant::now();
    let producer = create_producer(&opts)?;
    let feed = Arc::new(GeoFeed::default());
    let redis_task = match &opts.redis_url {
        Some(url) => {
            // The URL may hold a password: never echo it.
            let client = redis::Client::open(url.as_str()).map_err(|source| SimError::Redis {
                context: "invalid Redis URL".into(),
                source,
            })?;
            let task = geo::writer(feed.clone(), client, opts.geo_key.clone());
            Some(tokio::spawn(task))
        }
        None => None,
    };
    let loop_feed = redis_task.as_ref().map(|_| feed.clone());
    let rt = Handle::current();
    let joined = tokio::task::spawn_blocking(move || {
        produce(&opts, &producer, loop_feed.as_deref(), &cancel, &rt)
    })
    .await;
    feed.finish();
    let geoadds = match redis_task {
        Some(task) => task.await.unwrap_or(0),
        None => 0,
    };
    let mut report = joined.map_err(|e| SimError::Task(e.to_string()))??;
    report.geoadds = geoadds;
    report.elapsed_s = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Producer defaults tuned for throughput (big batches, lz4, a deep local queue so the
/// generator rarely waits); `kafka_properties` override any of them.
fn create_producer(opts: &SimOptions) -> Result<SimProducer, SimError> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &opts.brokers)
        .set("client.id", "fleetdash-sim")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .set("compression.type", "lz4");
    for (key, value) in &opts.kafka_properties {
        config.set(key, value);
    }
    config
        .create_with_context(SimContext::default())
        .map_err(|source| SimError::Kafka {
            context: "cannot create the producer (check the Kafka properties)".into(),
            source,
        })
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Sim time the run covers (`None` = unbounded), capped at a century to stay in i64.
fn span_ms(opts: &SimOptions) -> Option<i64> {
    const CENTURY_MS: u128 = 100 * 365 * 24 * 3_600_000;
    (!opts.duration.is_zero()).then(|| opts.duration.as_millis().min(CENTURY_MS) as i64)
}

/// Where the sim clock starts: now when paced; in the past when unthrottled, by the
/// duration or by the time `max_messages` should take, so the newest data ends near now.
fn start_ts(opts: &SimOptions, now: i64) -> i64 {
    if !opts.unthrottled {
        return now;
    }
    let per_ms = f64::from(opts.vehicles) * opts.rate_hz * REPORTING_SHARE_ESTIMATE / 1000.0;
    let needed = opts
        .max_messages
        .map(|m| (m as f64 / per_ms) as i64 + opts.tick_ms());
    let lookback = match (span_ms(opts), needed) {
        (Some(s), Some(n)) => s.min(n),
        (s, n) => s.or(n).unwrap_or(0),
    };
    now - lookback
}

fn kind_index(kind: TopicKind) -> usize {
    match kind {
        TopicKind::Position => 0,
        TopicKind::Status => 1,
        TopicKind::Info => 2,
        TopicKind::Alert => 3,
        TopicKind::Ack => 4,
        TopicKind::Device => 5,
    }
}

/// Hands messages to librdkafka with backpressure: when its queue is full we poll and retry,
/// never drop.
struct Sender<'a> {
    producer: &'a SimProducer,
    opts: &'a SimOptions,
    cancel: &'a CancellationToken,
    counts: [u64; 6],
    refused: u64,
}

impl Sender<'_> {
    /// False when cancelled while waiting for queue space.
    fn send(&mut self, m: &SimMessage) -> bool {
        let Some(topic) = self.opts.topics.name_for(m.kind) else {
            return true;
        };
        let mut record = BaseRecord::to(topic)
            .key(m.key.as_str())
            .payload(m.payload.as_slice())
            .timestamp(m.ts_ms);
        loop {
            match self.producer.send(record) {
                Ok(()) => {
                    self.counts[kind_index(m.kind)] += 1;
                    return true;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    if self.cancel.is_cancelled() {
                        return false;
                    }
                    record = back;
                    self.producer.poll(Duration::from_millis(5));
                }
                Err((error, _)) => {
                    // Refused outright (e.g. too large): counted like a failed delivery.
                    self.refused += 1;
                    if self.refused == 1 || self.refused.is_multiple_of(10_000) {
                        tracing::warn!(%error, topic, "kafka refused a message");
                    }
                    return true;
                }
            }
        }
    }
}

/// Fails when no broker answers; warns about topics that do not exist yet (the broker may
/// auto-create them, otherwise their messages end up as delivery errors).
fn check_brokers(producer: &SimProducer, opts: &SimOptions) -> Result<(), SimError> {
    let metadata = producer
        .client()
        .fetch_metadata(None, CONNECT_TIMEOUT)
        .map_err(|source| SimError::Kafka {
            context: format!("cannot reach the Kafka brokers at {}", opts.brokers),
            source,
        })?;
    let t = &opts.topics;
    for name in [&t.gps, &t.status, &t.info, &t.alerts, &t.devices] {
        if !metadata
            .topics()
            .iter()
            .any(|m| m.name() == name && m.error().is_none())
        {
            tracing::warn!(topic = %name, "topic not found on the broker; relying on auto-creation");
        }
    }
    Ok(())
}

fn snapshot(fleet: &Fleet) -> Snapshot {
    fleet
        .positions()
        .map(|(id, lat, lng)| (id.to_owned(), lat, lng))
        .collect()
}

/// The producing loop (blocking thread).
fn produce(
    opts: &SimOptions,
    producer: &SimProducer,
    feed: Option<&GeoFeed>,
    cancel: &CancellationToken,
    rt: &Handle,
) -> Result<SimReport, SimError> {
    check_brokers(producer, opts)?;
    let tick_ms = opts.tick_ms();
    let tick = Duration::from_millis(tick_ms as u64);
    let start = start_ts(opts, wall_ms());
    let end = span_ms(opts).map(|s| start.saturating_add(s));
    let mut fleet = Fleet::new(opts.seed, opts.vehicles, opts.center, opts.radius_km, start);
    let mut sender = Sender {
        producer,
        opts,
        cancel,
        counts: [0; 6],
        refused: 0,
    };
    let mut shaper = opts.cdc.as_ref().map(|c| {
        super::cdc::CdcShaper::new(
            c.firmware_change_s
                .map(|s| start.saturating_add((s * 1000.0) as i64)),
            c.devices_per_car,
        )
    });
    let mut infos = fleet.info_messages();
    if let Some(s) = shaper.as_mut() {
        s.reshape(&mut infos);
    }
    for m in &infos {
        sender.send(m);
    }
    let mut interval = (!opts.unthrottled).then(|| {
        rt.block_on(async {
            let mut i = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
            // Catch up after a hiccup so sim time keeps tracking the wall clock.
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            i
        })
    });
    // Spread a tick's messages over the tick in up to 10 slices instead of one burst.
    let slices = (tick_ms / 20).clamp(1, 10) as u32;
    let max = opts.max_messages.unwrap_or(u64::MAX);
    let mut msgs: Vec<SimMessage> = Vec::with_capacity(opts.vehicles as usize * 2);
    let mut positions = 0u64;
    'ticks: while positions < max && end.is_none_or(|e| fleet.now_ms() < e) {
        let tick_start = match interval.as_mut() {
            Some(i) => match wait(rt, cancel, i.tick()) {
                Some(at) => Some(at),
                None => break,
            },
            None if cancel.is_cancelled() => break,
            None => None,
        };
        msgs.clear();
        let dt = end.map_or(tick_ms, |e| tick_ms.min(e - fleet.now_ms()));
        fleet.step(dt, &mut msgs);
        if let Some(s) = shaper.as_mut() {
            s.reshape(&mut msgs);
        }
        let per_slice = msgs.len().div_ceil(slices as usize).max(1);
        for (k, chunk) in msgs.chunks(per_slice).enumerate() {
            if let (Some(at), true) = (tick_start, k > 0) {
                let due = at + tick * k as u32 / slices;
                if wait(rt, cancel, tokio::time::sleep_until(due)).is_none() {
                    break 'ticks;
                }
            }
            for m in chunk {
                if m.kind == TopicKind::Position {
                    if positions >= max {
                        break 'ticks;
                    }
                    positions += 1;
                }
                if !sender.send(m) {
                    break 'ticks;
                }
            }
        }
        if let Some(feed) = feed.filter(|f| f.wants_snapshot()) {
            feed.offer(snapshot(&fleet));
        }
    }
    if let Some(feed) = feed {
        feed.offer(snapshot(&fleet)); // the final positions always reach Redis
    }
    let timeout = if cancel.is_cancelled() {
        FLUSH_TIMEOUT_CANCELLED
    } else {
        FLUSH_TIMEOUT
    };
    let mut unflushed = 0u64;
    if let Err(error) = producer.flush(timeout) {
        unflushed = producer.in_flight_count().max(0) as u64;
        tracing::warn!(%error, unflushed, "kafka flush did not complete; counting the rest as failed");
    }
    let mut report = SimReport {
        delivery_errors: producer.context().delivery_errors.load(Ordering::Relaxed)
            + sender.refused
            + unflushed,
        sim_seconds: (fleet.now_ms() - start) as f64 / 1000.0,
        ..SimReport::default()
    };
    let mut kinds = vec![
        TopicKind::Position,
        TopicKind::Status,
        TopicKind::Info,
        TopicKind::Alert,
    ];
    if opts.cdc.is_some() {
        kinds.push(TopicKind::Device);
    }
    for kind in kinds {
        if let Some(name) = opts.topics.name_for(kind) {
            *report.produced.entry(name.to_owned()).or_default() += sender.counts[kind_index(kind)];
        }
    }
    Ok(report)
}

/// Waits for `fut` on the runtime from this blocking thread; `None` if cancelled first.
fn wait<F: Future>(rt: &Handle, cancel: &CancellationToken, fut: F) -> Option<F::Output> {
    rt.block_on(async {
        tokio::select! {
            out = fut => Some(out),
            () = cancel.cancelled() => None,
        }
    })
}
