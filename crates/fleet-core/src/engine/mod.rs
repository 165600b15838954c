//! The engine: sources → decode → live state → store. One task owns the live state and
//! turns every source batch into one cache transaction (with the batch's offsets).

use crate::acks::{AckError, AckPublisher};
use crate::config::Config;
use crate::history::HistoryPolicy;
use crate::kafka::{self, KafkaBatch, SharedStatus};
use crate::redis_geo::{RedisEvent, RedisSource};
use crate::rules::RuleEngine;
use crate::state::LiveFleet;
use crate::store::{Store, StoreError, WriterHandle, now_ms};
use fleet_model::{Ack, Alert, ConnState, FleetCounters};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

mod core;
mod devices;
pub mod lag;
use self::core::{Core, StatusPolicy};

/// Engine errors.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Cache.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Kafka set-up.
    #[error(transparent)]
    Kafka(#[from] kafka::KafkaError),
    /// Redis set-up.
    #[error(transparent)]
    Redis(#[from] crate::redis_geo::RedisError),
    /// Acknowledgement.
    #[error(transparent)]
    Ack(#[from] AckError),
    /// Another engine ingests into this cache (SPEC §7: one engine per cache).
    #[error(transparent)]
    Lock(#[from] crate::store::LockError),
}

/// How often memory is checked for vehicles to evict.
const EVICT_EVERY: Duration = Duration::from_secs(30);

/// How long shutdown may take, whatever the sources and the disk are doing (SPEC §7).
pub const SHUTDOWN_LIMIT: Duration = Duration::from_secs(10);

/// A commit failure is shown once it is permanent, or once a transient one (lock
/// contention) has lasted this long.
const SHOW_TRANSIENT_FAULT_AFTER_MS: i64 = 5_000;

/// A permanent fault stays shown this long after it last happened, even if a commit got
/// through meanwhile (a nearly full disk lets some through).
const KEEP_SHOWING_FAULT_MS: i64 = 10_000;

/// Shared, lockable live state. A `parking_lot` mutex, for its fair unlock: the engine
/// applies a batch in slices and hands the lock to a waiting frame between them
/// ([`Live::unlock_fair`]). With the standard mutex the engine re-took it before the woken
/// frame thread ran, and on two busy cores a frame waited out 10–18 slices (114–184 ms,
/// measured in `bench churn`).
#[derive(Clone)]
pub struct Live(Arc<parking_lot::Mutex<LiveFleet>>);

impl Live {
    /// Locks (no poisoning: updates are plain assignments, valid even after a panic).
    pub fn lock(&self) -> parking_lot::MutexGuard<'_, LiveFleet> {
        self.0.lock()
    }

    /// Releases the lock to whoever waits for it first (a frame), before the holder can
    /// take it again.
    pub fn unlock_fair(guard: parking_lot::MutexGuard<'_, LiveFleet>) {
        parking_lot::MutexGuard::unlock_fair(guard);
    }
}

/// A running engine.
pub struct Engine {
    live: Live,
    kafka_status: Option<SharedStatus>,
    writer: WriterHandle,
    store: Store,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    kafka: Option<kafka::KafkaHandle>,
    operator: String,
    outbox: Arc<Notify>,
    outbox_task: Option<tokio::task::JoinHandle<()>>,
    _lock: crate::store::CacheLock,
}

impl Engine {
    /// Loads the cache, starts the writer and the configured sources.
    pub async fn start(
        cfg: &Config,
        store: Store,
        cancel: CancellationToken,
    ) -> Result<Engine, EngineError> {
        // First, before anything is written: a second engine on this cache changes nothing.
        let lock = crate::store::CacheLock::acquire(store.path())?;
        let (writer, writer_task) = store
            .start_writer(
                crate::store::Retention {
                    history: cfg.history.clone(),
                    max_size_bytes: cfg.store.max_size_mb * 1024 * 1024,
                },
                cancel.child_token(),
            )
            .await?;
        let live = Live(Arc::new(parking_lot::Mutex::new(LiveFleet::new(
            cfg.fleet.stale_after_s,
        ))));
        let mut history = HistoryPolicy::new(&cfg.history);
        let last_positions = store.last_kept_positions().await?;
        // The rules compare each fix with the previous one (harsh braking): after a restart
        // that is the last one the cache holds, or a brake across the restart is missed.
        let rule_last_fix: Vec<(String, i64, Option<f64>)> = last_positions
            .iter()
            .map(|p| (p.vehicle.clone(), p.ts_ms, p.speed))
            .collect();
        history.seed(last_positions);
        let mut status_policy = StatusPolicy {
            min_interval_ms: (cfg.history.min_interval_s * 1000.0) as i64,
            last: HashMap::new(),
        };
        for (v, ts, known) in store.last_kept_status().await? {
            status_policy.last.insert(v, (ts, known));
        }
        let stored = store.vehicles().await?;
        {
            let mut l = live.lock();
            for v in stored {
                let info = (v.plate.is_some()
                    || v.model.is_some()
                    || v.driver.is_some()
                    || v.group.is_some())
                .then(|| fleet_model::VehicleInfo {
                    vehicle: v.id.clone(),
                    plate: v.plate.clone(),
                    model: v.model.clone(),
                    driver: v.driver.clone(),
                    group: v.group.clone(),
                    extra: Default::default(),
                });
                l.seed(&v.id, info, v.last.clone(), v.first_seen);
            }
            info!(vehicles = l.len(), "live state restored from cache");
        }

        let (ktx, krx) = mpsc::channel::<KafkaBatch>(4);
        let kafka = match &cfg.kafka {
            Some(k) => {
                let resume = store.resume_points().await?;
                info!(partitions = resume.len(), brokers = %k.brokers, "kafka: resuming from cached offsets");
                Some(kafka::spawn(
                    k,
                    resume,
                    cfg.fleet.max_future_skew_ms(),
                    ktx,
                    cancel.child_token(),
                )?)
            }
            None => None,
        };
        let (rtx, rrx) = mpsc::channel::<RedisEvent>(16);
        if let Some(r) = &cfg.redis {
            let src = RedisSource::new(r.clone())?;
            live.lock().redis = ConnState::Connecting;
            tokio::spawn(src.run(rtx, cancel.child_token()));
        } else {
            drop(rtx);
        }
        let kafka_status = kafka.as_ref().map(|k| k.status());
        let rules = if cfg.alerts.enabled {
            let mut r = RuleEngine::new(&cfg.alerts, now_ms());
            let states = store
                .rule_states()
                .await?
                .into_iter()
                .filter_map(|(v, j)| serde_json::from_str(&j).ok().map(|p| (v, p)))
                .collect();
            r.seed(store.open_rule_alerts().await?, states);
            r.seed_last_fixes(rule_last_fix);
            Some(r)
        } else {
            None
        };
        let core = Core {
            live: live.clone(),
            history,
            status_policy,
            writer: writer.clone(),
            dirty: HashSet::new(),
            rules,
            raised: Vec::new(),
            evict_silent_ms: (cfg.history.retention_hours * 3_600_000.0) as i64,
            max_live: cfg.fleet.max_live_vehicles,
            lag: lag::LagTracker::new(cfg.fleet.stuck_after_s),
            devices: devices::Devices::seed(store.devices().await?),
            schema: {
                let mut r = crate::schema::Registry::default();
                r.seed(store.schema_fields(None, None).await?);
                r
            },
        };
        let gaps_before = store.gaps(0).await?.0 as u64;
        tokio::spawn(show_cache_health(
            writer.committed(),
            live.clone(),
            gaps_before,
            cancel.clone(),
        ));
        let task = tokio::spawn(run(
            core,
            krx,
            rrx,
            kafka_status.clone(),
            kafka.as_ref().map(|k| k.committer()),
            cancel.clone(),
            writer_task,
        ));
        let outbox = Arc::new(Notify::new());
        let outbox_task = cfg
            .kafka
            .as_ref()
            .map(AckPublisher::new)
            .transpose()?
            .flatten()
            .map(|publisher| {
                tokio::spawn(publish_outbox(
                    publisher,
                    store.clone(),
                    outbox.clone(),
                    cancel.clone(),
                ))
            });
        Ok(Engine {
            live,
            kafka_status,
            writer,
            store,
            cancel,
            task,
            kafka,
            operator: cfg.operator.effective_name(),
            outbox,
            outbox_task,
            _lock: lock,
        })
    }

    /// The live state.
    pub fn live(&self) -> &Live {
        &self.live
    }

    /// Kafka health, when Kafka is configured.
    pub fn kafka_status(&self) -> Option<&SharedStatus> {
        self.kafka_status.as_ref()
    }

    /// The counters bar, now.
    pub fn counters(&self) -> FleetCounters {
        self.live.lock().counters(now_ms())
    }

    /// The cache.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The cache writer.
    pub fn writer(&self) -> &WriterHandle {
        &self.writer
    }

    /// Stops the sources, processes what they already handed over, and commits it.
    /// Acknowledges an alert as this desktop's operator: cache and outbox at once, published
    /// to the ack topic as soon as Kafka takes it.
    pub async fn acknowledge(&self, alert_id: &str, note: &str) -> Result<Alert, EngineError> {
        let ack = Ack {
            alert_id: alert_id.to_string(),
            operator: self.operator.clone(),
            note: note.to_string(),
            ts: now_ms(),
        };
        let alert = self.store.record_local_ack(&ack).await?;
        self.outbox.notify_one();
        self.writer.alerts_changed().await;
        Ok(alert)
    }

    /// Acknowledges every open alert through `filter` (a rule's group in the feed), or the
    /// alerts `ids` when given (a selection), with one note; each is published like a single
    /// ack. Returns how many were acknowledged.
    pub async fn acknowledge_many(
        &self,
        ids: Option<Vec<String>>,
        filter: &fleet_model::AlertFilter,
        note: &str,
    ) -> Result<u64, EngineError> {
        let ids = match ids {
            Some(ids) => ids,
            None => self.store.open_alert_ids(filter).await?,
        };
        let n = self
            .store
            .record_local_acks(&ids, &self.operator, note)
            .await?;
        if n > 0 {
            self.outbox.notify_one();
            self.writer.alerts_changed().await;
        }
        Ok(n)
    }

    /// Snoozes a rule's or a vehicle's alerts for `minutes` (0 lifts a snooze), on every
    /// desk: recorded here and published on the ack topic like an acknowledgement.
    pub async fn snooze(
        &self,
        snooze: fleet_model::SnoozeKind,
        target: &str,
        minutes: f64,
    ) -> Result<fleet_model::Snooze, EngineError> {
        let ts = now_ms();
        let z = fleet_model::Snooze {
            snooze,
            target: target.to_string(),
            until: ts + (minutes.clamp(0.0, 7.0 * 24.0 * 60.0) * 60_000.0) as i64,
            operator: self.operator.clone(),
            ts,
        };
        self.store.record_local_snooze(&z).await?;
        self.outbox.notify_one();
        self.writer.alerts_changed().await;
        Ok(z)
    }

    /// Acks not yet published.
    pub async fn outbox_len(&self) -> Result<i64, EngineError> {
        Ok(self.store.outbox_len().await?)
    }

    /// Stops the sources, processes what they already handed over, commits it, and makes a
    /// last attempt to publish the outbox; gives up after [`SHUTDOWN_LIMIT`] (what is not
    /// committed then is read again on the next start, from the cache's offsets).
    pub async fn shutdown(self) -> Result<(), EngineError> {
        self.cancel.cancel();
        let Engine {
            outbox_task,
            kafka,
            task,
            writer,
            _lock,
            ..
        } = self;
        let orderly = async move {
            if let Some(t) = outbox_task {
                let _ = t.await;
            }
            if let Some(k) = kafka {
                tokio::task::spawn_blocking(move || k.join()).await.ok();
            }
            let _ = task.await;
            writer.flush().await.ok();
        };
        if tokio::time::timeout(SHUTDOWN_LIMIT, orderly).await.is_err() {
            warn!(
                limit_s = SHUTDOWN_LIMIT.as_secs(),
                "shutdown took too long; stopping without waiting further"
            );
        }
        Ok(())
    }
}

/// Copies the cache's health into the live state (`cache-status`, `gap-notice`). Its own
/// task: while the disk is full the engine loop waits on the writer and cannot show it.
async fn show_cache_health(
    mut committed: tokio::sync::watch::Receiver<crate::store::Committed>,
    live: Live,
    gaps_before: u64,
    cancel: CancellationToken,
) {
    loop {
        {
            let c = committed.borrow_and_update();
            let now = now_ms();
            let mut l = live.lock();
            l.gaps = gaps_before + c.gaps;
            l.cache_error = c
                .fault
                .as_ref()
                .filter(|f| f.permanent || now - f.since_ms >= SHOW_TRANSIENT_FAULT_AFTER_MS)
                .map(|f| f.message.clone())
                .or_else(|| {
                    c.last_permanent
                        .as_ref()
                        .filter(|(_, at)| now - at < KEEP_SHOWING_FAULT_MS)
                        .map(|(m, _)| m.clone())
                });
        }
        // A change, or a second for a transient fault to cross its threshold.
        tokio::select! {
            r = committed.changed() => if r.is_err() { break },
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = cancel.cancelled() => break,
        }
    }
}

/// Publishes the outbox whenever an ack is made, and every 2 s (reconnects are noticed
/// by the next attempt succeeding); one last attempt on shutdown.
async fn publish_outbox(
    publisher: AckPublisher,
    store: Store,
    notify: Arc<Notify>,
    cancel: CancellationToken,
) {
    loop {
        if let Err(e) = publisher.flush(&store).await {
            warn!(error = %e, "outbox publish failed");
        }
        tokio::select! {
            _ = notify.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = cancel.cancelled() => break,
        }
    }
    let _ = publisher.flush(&store).await;
}

async fn run(
    mut core: Core,
    mut krx: mpsc::Receiver<KafkaBatch>,
    mut rrx: mpsc::Receiver<RedisEvent>,
    kafka_status: Option<SharedStatus>,
    committer: Option<kafka::Committer>,
    cancel: CancellationToken,
    _writer_task: tokio::task::JoinHandle<()>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut snapshot_due = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut evict_due = tokio::time::Instant::now() + EVICT_EVERY;
    let mut committed = core.writer.committed();
    let mut redis_open = true;
    let mut kafka_open = kafka_status.is_some();
    loop {
        tokio::select! {
            b = krx.recv(), if kafka_open => match b {
                Some(b) => {
                    core.kafka_batch(b).await;
                    core.evict_over_cap(now_ms());
                    if let Some(s) = &kafka_status {
                        s.lock().batches_done += 1;
                    }
                }
                // Poll thread gone: on shutdown everything it sent has now been processed.
                None if cancel.is_cancelled() => break,
                None => kafka_open = false,
            },
            e = rrx.recv(), if redis_open => match e {
                Some(e) => {
                    core.redis_event(e).await;
                    core.evict_over_cap(now_ms());
                }
                None => redis_open = false,
            },
            _ = tick.tick() => {
                if let Some(s) = &kafka_status {
                    let st = s.snapshot();
                    let done: HashMap<(String, i32), i64> = (committed.borrow().offsets.iter())
                        .map(|(t, p, o)| ((t.clone(), *p), *o))
                        .collect();
                    let rows = core.lag.update(&st, &done, now_ms(), &mut core.raised);
                    let mut l = core.live.lock();
                    l.kafka = st.conn.clone();
                    for (t, p, lag) in st.lag() {
                        l.set_lag(&t, p, lag);
                    }
                    l.partitions = rows;
                }
                core.tick_rules(now_ms()).await;
                // (Over the cap, batches evict at once: `Core::evict_over_cap`.)
                if tokio::time::Instant::now() >= evict_due {
                    evict_due = tokio::time::Instant::now() + EVICT_EVERY;
                    let n = core.evict(now_ms());
                    if n > 0 {
                        info!(evicted = n, "vehicles evicted from memory (silent, or over fleet.max_live_vehicles)");
                    }
                }
                if tokio::time::Instant::now() >= snapshot_due {
                    snapshot_due = tokio::time::Instant::now() + Duration::from_secs(5);
                    core.flush_snapshots().await;
                }
            }
            Ok(()) = committed.changed() => {
                if let Some(c) = &committer {
                    let offsets = committed.borrow_and_update().offsets.clone();
                    c.commit(&offsets);
                }
            }
            // With Kafka, shutdown waits for the poll thread to close its channel (above).
            _ = cancel.cancelled(), if !kafka_open => break,
        }
    }
    core.flush_snapshots().await;
}
