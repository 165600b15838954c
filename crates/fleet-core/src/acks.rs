//! Acknowledgements made on this desktop (SPEC §6): written to the cache and an outbox in one
//! transaction, then published to the ack topic; while Kafka is unreachable they wait in the
//! outbox and go out on reconnect. Every desktop (this one included) applies every ack it
//! reads from the topic, so all operators converge; applying an ack twice changes nothing.
//!
//! An ack the broker refuses for good (too large, a topic this user may not write, an invalid
//! payload) would block every ack queued after it, so it is moved to the `outbox_dead` table
//! (a dead letter, with the reason) and publishing goes on with the next one. Notes are capped
//! at [`ACK_NOTE_MAX_BYTES`] where acks are made, so new acks always fit.

use crate::config::KafkaConfig;
use crate::store::{Store, StoreError, now_ms};
use fleet_model::ui::{ACK_NOTE_MAX_BYTES, OutboxStatus, cap_ack_note};
use fleet_model::{Ack, Alert, TopicKind};
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::Row;
use std::time::Duration;
use tracing::{debug, info, warn};

/// Dead letters kept; older ones are dropped (the cache is bounded, SPEC §7).
const DEAD_KEEP: i64 = 1000;

/// Ack errors.
#[derive(Debug, thiserror::Error)]
pub enum AckError {
    /// No such alert in this cache.
    #[error("no alert `{0}` in the cache")]
    NotFound(String),
    /// Cache.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Producer set-up (bad properties).
    #[error("kafka producer: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

impl Store {
    /// Records an acknowledgement made here: the ack, the alert's new state and an outbox
    /// row, atomically. The note is cut to [`ACK_NOTE_MAX_BYTES`]. Returns the updated alert.
    pub async fn record_local_ack(&self, ack: &Ack) -> Result<Alert, AckError> {
        let capped;
        let ack = if ack.note.len() > ACK_NOTE_MAX_BYTES {
            debug!(
                alert = %ack.alert_id,
                bytes = ack.note.len(),
                "ack note cut to {ACK_NOTE_MAX_BYTES} bytes"
            );
            capped = Ack {
                note: cap_ack_note(&ack.note).to_string(),
                ..ack.clone()
            };
            &capped
        } else {
            ack
        };
        // IMMEDIATE: take the write lock up front (waiting out the busy timeout). A deferred
        // transaction reads first and then cannot upgrade to a write if the writer committed
        // in between — SQLite refuses that at once, busy timeout or not.
        let mut tx = self
            .pool()
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| self.err(e))?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM alerts WHERE id = ?1")
            .bind(&ack.alert_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        if exists.is_none() {
            return Err(AckError::NotFound(ack.alert_id.clone()));
        }
        crate::store::writer::record_ack(&mut tx, ack)
            .await
            .map_err(|e| self.err(e))?;
        sqlx::query("INSERT INTO outbox (alert_id, payload, created_ms) VALUES (?1, ?2, ?3)")
            .bind(&ack.alert_id)
            .bind(serde_json::to_string(ack).unwrap_or_default())
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        self.alert(&ack.alert_id)
            .await?
            .ok_or_else(|| AckError::NotFound(ack.alert_id.clone()))
    }

    /// Acks waiting to be published.
    pub async fn outbox_len(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(self.pool())
            .await
            .map_err(|e| self.err(e))
    }

    /// Acks waiting, acks dead-lettered and why the newest dead letter was refused.
    pub async fn outbox_status(&self) -> Result<OutboxStatus, StoreError> {
        let (pending, dead): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM outbox), (SELECT COUNT(*) FROM outbox_dead)",
        )
        .fetch_one(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        let last_error = if dead > 0 {
            sqlx::query_scalar("SELECT error FROM outbox_dead ORDER BY id DESC LIMIT 1")
                .fetch_optional(self.pool())
                .await
                .map_err(|e| self.err(e))?
        } else {
            None
        };
        Ok(OutboxStatus {
            pending: pending.max(0) as u64,
            dead: dead.max(0) as u64,
            last_error,
        })
    }

    /// Moves outbox row `id` to the dead letters with `error` (a no-op when another process
    /// already published or moved it). Keeps the newest [`DEAD_KEEP`] dead letters.
    async fn dead_letter(&self, id: i64, error: &str) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await.map_err(|e| self.err(e))?;
        sqlx::query(
            "INSERT INTO outbox_dead (alert_id, payload, created_ms, failed_ms, error)
             SELECT alert_id, payload, created_ms, ?2, ?3 FROM outbox WHERE id = ?1",
        )
        .bind(id)
        .bind(now_ms())
        .bind(error)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        sqlx::query("DELETE FROM outbox WHERE id = ?1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        sqlx::query("DELETE FROM outbox_dead WHERE id <= (SELECT MAX(id) FROM outbox_dead) - ?1")
            .bind(DEAD_KEEP)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))
    }
}

/// Whether the producer or the broker refused a record for good: sending the same record
/// again can never succeed (too large, not allowed, not a valid topic or record). Everything
/// else — broker down, timeouts, a full queue, leader changes, a topic still being created
/// (`UnknownTopicOrPartition` is retried by librdkafka; it reports `UnknownTopic` once the
/// cluster's metadata says the topic does not exist and was not created) — is transient.
pub fn is_permanent(e: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    match e {
        KafkaError::MessageProduction(code) => matches!(
            code,
            C::MessageSizeTooLarge
                | C::MessageBatchTooLarge
                | C::TopicAuthorizationFailed
                | C::InvalidTopic
                | C::UnknownTopic
                | C::InvalidRecord
                | C::PolicyViolation
                | C::UnsupportedForMessageFormat
                | C::InvalidArgument
        ),
        KafkaError::Nul(_) => true,
        _ => false,
    }
}

/// What one [`AckPublisher::flush`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flushed {
    /// Acks the broker took.
    pub sent: usize,
    /// Acks refused for good and moved to the dead letters.
    pub dead: Vec<DeadLetter>,
    /// The transient failure that stopped this flush (the rest waits for the next one).
    pub stopped: Option<String>,
}

/// An ack refused for good.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The alert it acknowledged.
    pub alert_id: String,
    /// The ack's time, when the payload was a readable ack.
    pub ack_ts: Option<i64>,
    /// Why it was refused.
    pub error: String,
}

/// Publishes the outbox to the ack topic.
pub struct AckPublisher {
    producer: FutureProducer,
    topic: String,
}

impl AckPublisher {
    /// A publisher for the configured ack topic (`None` when no topic has kind `ack`).
    pub fn new(cfg: &KafkaConfig) -> Result<Option<AckPublisher>, AckError> {
        let Some(topic) = cfg.topic_of(TopicKind::Ack) else {
            return Ok(None);
        };
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &cfg.brokers)
            .set("acks", "all")
            // Fail a send quickly while Kafka is down: the ack stays in the outbox and the
            // next attempt retries it, rather than one call hanging for minutes.
            .set("message.timeout.ms", "5000")
            .set("client.id", "fleetdash-acks");
        for (k, v) in &cfg.properties {
            // Consumer-only properties would make the producer refuse to start.
            if !k.starts_with("group.") && !k.starts_with("enable.auto") && !k.starts_with("auto.")
            {
                c.set(k, v);
            }
        }
        Ok(Some(AckPublisher {
            producer: c.create()?,
            topic: topic.name.clone(),
        }))
    }

    /// Sends every outbox row in order and deletes each once the broker has it. A row refused
    /// for good ([`is_permanent`], or a payload that is not an ack) is dead-lettered and the
    /// next one is tried; a transient failure (Kafka down) stops the flush and the rest stays
    /// for the next call.
    #[tracing::instrument(level = "debug", err, skip_all)]
    pub async fn flush(&self, store: &Store) -> Result<Flushed, AckError> {
        let rows = sqlx::query("SELECT id, alert_id, payload FROM outbox ORDER BY id")
            .fetch_all(store.pool())
            .await
            .map_err(|e| store.err(e))?;
        let mut done = Flushed::default();
        for r in rows {
            let (id, key, payload): (i64, String, String) =
                (r.get("id"), r.get("alert_id"), r.get("payload"));
            // An ack, or a snooze (issue 12), which travels the same way.
            let parsed = serde_json::from_str::<Ack>(&payload)
                .map(|a| a.ts)
                .or_else(|e| {
                    serde_json::from_str::<fleet_model::Snooze>(&payload)
                        .map(|z| z.ts)
                        .map_err(|_| e)
                });
            let refused = if let Err(e) = &parsed {
                format!("invalid payload: {e}")
            } else {
                let rec = FutureRecord::to(&self.topic).key(&key).payload(&payload);
                match self.producer.send(rec, Duration::from_secs(0)).await {
                    Ok(_) => {
                        sqlx::query("DELETE FROM outbox WHERE id = ?1")
                            .bind(id)
                            .execute(store.pool())
                            .await
                            .map_err(|e| store.err(e))?;
                        done.sent += 1;
                        continue;
                    }
                    Err((e, _)) if is_permanent(&e) => e.to_string(),
                    Err((e, _)) => {
                        debug!(error = %e, "ack not published yet; kept in the outbox");
                        done.stopped = Some(e.to_string());
                        break;
                    }
                }
            };
            warn!(
                alert = %key,
                bytes = payload.len(),
                topic = %self.topic,
                error = %refused,
                "ack refused for good; moved to the dead letters (outbox_dead), publishing the rest"
            );
            store.dead_letter(id, &refused).await?;
            done.dead.push(DeadLetter {
                alert_id: key,
                ack_ts: parsed.ok(),
                error: refused,
            });
        }
        if done.sent > 0 {
            info!(sent = done.sent, topic = %self.topic, "acknowledgements published");
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HistoryConfig, TopicConfig};
    use crate::store::tests::alert;
    use crate::store::{AlertOrigin, WriteBatch};

    fn ack(id: &str, note: &str) -> Ack {
        Ack {
            alert_id: id.into(),
            operator: "alice".into(),
            note: note.into(),
            ts: 10,
        }
    }

    /// A cache holding upstream alerts `ids`, and its writer.
    async fn store_holding(
        ids: &[String],
    ) -> (tempfile::TempDir, Store, crate::store::WriterHandle) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("c.sqlite")).await.unwrap();
        let (w, _task) = store
            .start_writer(
                crate::store::Retention {
                    history: HistoryConfig::default(),
                    max_size_bytes: u64::MAX,
                },
                Default::default(),
            )
            .await
            .unwrap();
        let mut b = WriteBatch::default();
        for id in ids {
            b.alerts.push((alert(id), AlertOrigin::Upstream));
        }
        w.write(b).await.unwrap();
        w.flush().await.unwrap();
        (dir, store, w)
    }

    /// A cache holding alerts `a1`…`a3`.
    async fn store_with_alerts() -> (tempfile::TempDir, Store) {
        let ids = ["a1", "a2", "a3"].map(String::from);
        let (dir, store, _w) = store_holding(&ids).await;
        (dir, store)
    }

    async fn outbox_payloads(store: &Store) -> Vec<Ack> {
        sqlx::query_scalar::<_, String>("SELECT payload FROM outbox ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap()
            .iter()
            .map(|p| serde_json::from_str(p).unwrap())
            .collect()
    }

    #[test]
    fn acks_note_cap_cuts_on_a_char_boundary() {
        assert_eq!(cap_ack_note("short"), "short");
        let ascii = "n".repeat(2 << 20);
        assert_eq!(cap_ack_note(&ascii).len(), ACK_NOTE_MAX_BYTES);
        // 1 + 2k bytes: byte 4096 falls inside an `é`, which is dropped whole.
        let wide = format!("x{}", "é".repeat(5000));
        let cut = cap_ack_note(&wide);
        assert_eq!(cut.len(), ACK_NOTE_MAX_BYTES - 1);
        assert!(wide.starts_with(cut));
    }

    #[tokio::test]
    async fn acks_with_a_2mb_note_are_stored_and_queued_capped() {
        let (_dir, store) = store_with_alerts().await;
        let a = store
            .record_local_ack(&ack("a1", &"n".repeat(2 << 20)))
            .await
            .unwrap();
        assert_eq!(
            a.ack_note.as_deref().map(str::len),
            Some(ACK_NOTE_MAX_BYTES)
        );
        let queued = outbox_payloads(&store).await;
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].note.len(), ACK_NOTE_MAX_BYTES);
        let small = store.record_local_ack(&ack("a2", "ok")).await.unwrap();
        assert_eq!(small.ack_note.as_deref(), Some("ok"));
    }

    /// An ack is a read (does the alert exist?) then writes. Begun as a deferred transaction,
    /// a writer commit landing between the two made SQLite refuse the upgrade to a write at
    /// once ("database is locked", SQLITE_BUSY_SNAPSHOT, which the busy timeout does not
    /// cover), so under a steady stream of batches an operator's ack failed now and then.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acks_made_while_the_writer_commits_nonstop_all_succeed() {
        // At least N acks, and on until the writer has committed 20 times meanwhile (on a
        // loaded machine 150 acks could all land between a handful of commits, and the
        // test would not test anything).
        const N: usize = 150;
        const POOL: usize = 20 * N;
        let ids: Vec<String> = (0..POOL).map(|i| format!("busy-{i}")).collect();
        let (_dir, store, w) = store_holding(&ids).await;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let writer = {
            let (w, stop, done) = (w.clone(), stop.clone(), done.clone());
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let b = WriteBatch {
                        topic_deltas: vec![("busy".into(), 1, 0)],
                        ..Default::default()
                    };
                    w.write(b).await.unwrap();
                    w.flush().await.unwrap();
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                done.load(std::sync::atomic::Ordering::Relaxed)
            })
        };
        let mut failed = Vec::new();
        let mut made = 0;
        while made < POOL && (made < N || done.load(std::sync::atomic::Ordering::Relaxed) < 20) {
            if let Err(e) = store
                .record_local_ack(&ack(&format!("busy-{made}"), "n"))
                .await
            {
                failed.push(e.to_string());
            }
            made += 1;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let commits = writer.await.unwrap();
        assert!(
            commits > 10,
            "the writer kept committing ({commits} commits)"
        );
        assert!(
            failed.is_empty(),
            "{} of {made} acks failed, e.g. {}",
            failed.len(),
            failed[0]
        );
    }

    #[test]
    fn acks_permanent_and_transient_producer_errors() {
        use RDKafkaErrorCode as C;
        let p = |c| is_permanent(&KafkaError::MessageProduction(c));
        for c in [
            C::MessageSizeTooLarge,
            C::MessageBatchTooLarge,
            C::TopicAuthorizationFailed,
            C::InvalidTopic,
            C::UnknownTopic,
            C::InvalidRecord,
        ] {
            assert!(p(c), "{c:?} is permanent");
        }
        for c in [
            C::MessageTimedOut,
            C::QueueFull,
            C::AllBrokersDown,
            C::BrokerTransportFailure,
            C::UnknownTopicOrPartition,
            C::NotLeaderForPartition,
            C::RequestTimedOut,
        ] {
            assert!(!p(c), "{c:?} is transient");
        }
    }

    /// No broker at all: an oversized and an invalid row are dead-lettered without one (the
    /// producer refuses the size itself), then the valid row behind them times out and stays.
    #[tokio::test]
    async fn acks_refused_for_good_are_dead_lettered_and_the_flush_goes_on() {
        let (_dir, store) = store_with_alerts().await;
        let big = serde_json::to_string(&ack("a1", &"n".repeat(2 << 20))).unwrap();
        for (id, payload) in [("a1", big.as_str()), ("a2", "{not json")] {
            sqlx::query("INSERT INTO outbox (alert_id, payload, created_ms) VALUES (?1, ?2, 1)")
                .bind(id)
                .bind(payload)
                .execute(store.pool())
                .await
                .unwrap();
        }
        store.record_local_ack(&ack("a3", "fine")).await.unwrap();
        let cfg = KafkaConfig {
            brokers: "127.0.0.1:1".into(),
            group_id: None,
            start: Default::default(),
            properties: [("message.timeout.ms".to_string(), "300".to_string())].into(),
            topics: vec![TopicConfig {
                name: "acks".into(),
                kind: TopicKind::Ack,
                fields: Default::default(),
                format: Default::default(),
            }],
            batch_max_messages: 100,
            batch_max_ms: 20,
        };
        let publisher = AckPublisher::new(&cfg).unwrap().unwrap();
        let done = publisher.flush(&store).await.unwrap();
        assert_eq!(done.sent, 0);
        let dead: Vec<(&str, Option<i64>)> = done
            .dead
            .iter()
            .map(|d| (d.alert_id.as_str(), d.ack_ts))
            .collect();
        assert_eq!(dead, [("a1", Some(10)), ("a2", None)], "{done:?}");
        assert!(
            done.dead[0].error.contains("MessageSizeTooLarge"),
            "{done:?}"
        );
        assert!(
            done.dead[1].error.starts_with("invalid payload"),
            "{done:?}"
        );
        assert!(done.stopped.is_some(), "{done:?}");
        let st = store.outbox_status().await.unwrap();
        assert_eq!((st.pending, st.dead), (1, 2), "{st:?}");
        assert!(st.last_error.unwrap().starts_with("invalid payload"));
        assert_eq!(outbox_payloads(&store).await[0].alert_id, "a3");
        let kept: (String, i64, i64) = sqlx::query_as(
            "SELECT alert_id, length(payload), created_ms FROM outbox_dead ORDER BY id LIMIT 1",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(kept, ("a1".to_string(), big.len() as i64, 1));
    }
}
