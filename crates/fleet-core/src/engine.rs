//! The engine: sources → decode → live state → store. One task owns the live state and
//! turns every source batch into one cache transaction (with the batch's offsets).

use crate::config::Config;
use crate::decode::Decoded;
use crate::history::HistoryPolicy;
use crate::kafka::{self, KafkaBatch, SharedStatus};
use crate::redis_geo::{RedisEvent, RedisSource};
use crate::state::LiveFleet;
use crate::store::{
    AlertOrigin, Origin, Store, StoreError, VehicleSnapshot, WriteBatch, WriterHandle, now_ms,
};
use fleet_model::{ConnState, FleetCounters, StatusFields};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

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
}

/// Shared, lockable live state.
#[derive(Clone)]
pub struct Live(Arc<Mutex<LiveFleet>>);

impl Live {
    /// Locks (data stays valid even if a holder panicked: updates are plain assignments).
    pub fn lock(&self) -> MutexGuard<'_, LiveFleet> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
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
}

/// Status samples: keep when the rule-relevant fields changed or the interval passed.
struct StatusPolicy {
    min_interval_ms: i64,
    last: HashMap<String, (i64, StatusFields)>,
}

impl StatusPolicy {
    fn keep(&mut self, vehicle: &str, ts: i64, known: &StatusFields) -> bool {
        let keep = match self.last.get(vehicle) {
            None => true,
            Some((t, k)) => k != known || (ts - t).abs() >= self.min_interval_ms,
        };
        if keep {
            self.last.insert(vehicle.to_string(), (ts, known.clone()));
        }
        keep
    }
}

struct Core {
    live: Live,
    history: HistoryPolicy,
    status_policy: StatusPolicy,
    writer: WriterHandle,
    dirty: HashSet<String>,
}

impl Engine {
    /// Loads the cache, starts the writer and the configured sources.
    pub async fn start(
        cfg: &Config,
        store: Store,
        cancel: CancellationToken,
    ) -> Result<Engine, EngineError> {
        let (writer, writer_task) = store.start_writer(cfg.history.clone()).await?;
        let live = Live(Arc::new(Mutex::new(LiveFleet::new(
            cfg.fleet.stale_after_s,
        ))));
        let mut history = HistoryPolicy::new(&cfg.history);
        history.seed(store.last_kept_positions().await?);
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
                let resume = store.offsets().await?;
                info!(partitions = resume.len(), brokers = %k.brokers, "kafka: resuming from cached offsets");
                Some(kafka::spawn(k, resume, ktx, cancel.child_token())?)
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
        let core = Core {
            live: live.clone(),
            history,
            status_policy,
            writer: writer.clone(),
            dirty: HashSet::new(),
        };
        let task = tokio::spawn(run(
            core,
            krx,
            rrx,
            kafka_status.clone(),
            kafka.as_ref().map(|k| k.committer()),
            cancel.clone(),
            writer_task,
        ));
        Ok(Engine {
            live,
            kafka_status,
            writer,
            store,
            cancel,
            task,
            kafka,
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
    pub async fn shutdown(self) -> Result<(), EngineError> {
        self.cancel.cancel();
        if let Some(k) = self.kafka {
            tokio::task::spawn_blocking(move || k.join()).await.ok();
        }
        let _ = self.task.await;
        self.writer.flush().await.ok();
        Ok(())
    }
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
    let mut committed = core.writer.committed();
    let mut redis_open = true;
    let mut kafka_open = kafka_status.is_some();
    loop {
        tokio::select! {
            b = krx.recv(), if kafka_open => match b {
                Some(b) => core.kafka_batch(b).await,
                // Poll thread gone: on shutdown everything it sent has now been processed.
                None if cancel.is_cancelled() => break,
                None => kafka_open = false,
            },
            e = rrx.recv(), if redis_open => match e {
                Some(e) => core.redis_event(e).await,
                None => redis_open = false,
            },
            _ = tick.tick() => {
                if let Some(s) = &kafka_status {
                    let st = s.snapshot();
                    let mut l = core.live.lock();
                    l.kafka = st.conn.clone();
                    for (t, p, lag) in st.lag() {
                        l.set_lag(&t, p, lag);
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

impl Core {
    async fn kafka_batch(&mut self, b: KafkaBatch) {
        let now = b.arrival_ms;
        let mut wb = WriteBatch {
            offsets: b.offsets,
            ..Default::default()
        };
        let mut deltas: HashMap<Arc<str>, (u64, u64)> = HashMap::new();
        {
            let mut live = self.live.lock();
            for item in b.items {
                let d = deltas.entry(item.topic.clone()).or_default();
                d.0 += 1;
                let origin = Origin {
                    partition: Some(item.partition),
                    offset: Some(item.offset),
                };
                match item.outcome {
                    Ok(Decoded::Position(p)) => {
                        let a = live.apply_position(&p, now);
                        if a.new_vehicle {
                            wb.snapshots.push(VehicleSnapshot {
                                vehicle: p.vehicle.clone(),
                                first_seen: now,
                                position: Some(p.clone()),
                                status_json: None,
                            });
                        } else if a.changed {
                            mark_dirty(&mut self.dirty, &p.vehicle);
                        }
                        if self.history.keep(&p) {
                            wb.positions.push((p, origin));
                        }
                    }
                    Ok(Decoded::Status(s)) => {
                        let (a, known_changed) = live.apply_status(&s, now);
                        if known_changed {
                            self.history.status_changed(&s.vehicle);
                        }
                        if a.new_vehicle {
                            wb.snapshots.push(VehicleSnapshot {
                                vehicle: s.vehicle.clone(),
                                first_seen: now,
                                position: None,
                                status_json: serde_json::to_string(&s.fields).ok(),
                            });
                        } else {
                            mark_dirty(&mut self.dirty, &s.vehicle);
                        }
                        if self.status_policy.keep(&s.vehicle, s.ts_ms, &s.known) {
                            wb.statuses.push((s, origin));
                        }
                    }
                    Ok(Decoded::Info(i)) => {
                        live.apply_info(&i, now);
                        wb.infos.push(i);
                    }
                    Ok(Decoded::Alert(a)) => wb.alerts.push((a, AlertOrigin::Upstream)),
                    Ok(Decoded::Ack(k)) => wb.acks.push(k),
                    Ok(Decoded::Tombstone) => {}
                    Err(q) => {
                        d.1 += 1;
                        live.count_rejection(q.reason);
                        wb.quarantine.push(*q);
                    }
                }
            }
            for (t, (m, r)) in &deltas {
                live.count(t, *m, *r, now);
            }
        }
        wb.topic_deltas = deltas
            .into_iter()
            .map(|(t, (m, r))| (t.to_string(), m, r))
            .collect();
        if let Err(e) = self.writer.write(wb).await {
            warn!(error = %e, "cache writer gone; batch not stored");
        }
    }

    async fn redis_event(&mut self, e: RedisEvent) {
        match e {
            RedisEvent::Conn(c) => self.live.lock().redis = c,
            RedisEvent::Positions(ps) => {
                let now = now_ms();
                let mut wb = WriteBatch::default();
                {
                    let mut live = self.live.lock();
                    for p in ps {
                        let a = live.apply_position(&p, now);
                        if a.new_vehicle {
                            wb.snapshots.push(VehicleSnapshot {
                                vehicle: p.vehicle.clone(),
                                first_seen: now,
                                position: Some(p.clone()),
                                status_json: None,
                            });
                        } else if a.changed {
                            mark_dirty(&mut self.dirty, &p.vehicle);
                        }
                        if a.changed && self.history.keep(&p) {
                            wb.positions.push((p, Origin::default()));
                        }
                    }
                }
                if !wb.is_empty() {
                    let _ = self.writer.write(wb).await;
                }
            }
        }
    }

    /// Writes the latest state of vehicles that changed since the last snapshot.
    async fn flush_snapshots(&mut self) {
        if self.dirty.is_empty() {
            return;
        }
        let mut wb = WriteBatch::default();
        {
            let live = self.live.lock();
            for id in self.dirty.drain() {
                if let Some(v) = live.vehicle(&id) {
                    wb.snapshots.push(VehicleSnapshot {
                        vehicle: id,
                        first_seen: v.first_seen_ms,
                        position: v.position.clone(),
                        status_json: v
                            .status
                            .as_ref()
                            .and_then(|s| serde_json::to_string(&s.fields).ok()),
                    });
                }
            }
        }
        let _ = self.writer.write(wb).await;
    }
}

fn mark_dirty(dirty: &mut HashSet<String>, id: &str) {
    if !dirty.contains(id) {
        dirty.insert(id.to_string());
    }
}
