//! Acknowledgements made on this desktop (SPEC §6): written to the cache and an outbox in one
//! transaction, then published to the ack topic; while Kafka is unreachable they wait in the
//! outbox and go out on reconnect. Every desktop (this one included) applies every ack it
//! reads from the topic, so all operators converge; applying an ack twice changes nothing.

use crate::config::KafkaConfig;
use crate::store::{Store, StoreError, now_ms};
use fleet_model::{Ack, Alert, TopicKind};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::Row;
use std::time::Duration;
use tracing::{debug, info};

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
    /// row, atomically. Returns the updated alert.
    pub async fn record_local_ack(&self, ack: &Ack) -> Result<Alert, AckError> {
        let mut tx = self.pool().begin().await.map_err(|e| self.err(e))?;
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

    /// Sends every outbox row in order and deletes each once the broker has it. Stops at the
    /// first failure (Kafka down): the rest stays for the next call. Returns rows sent.
    pub async fn flush(&self, store: &Store) -> Result<usize, AckError> {
        let rows = sqlx::query("SELECT id, alert_id, payload FROM outbox ORDER BY id")
            .fetch_all(store.pool())
            .await
            .map_err(|e| store.err(e))?;
        let mut sent = 0;
        for r in rows {
            let (id, key, payload): (i64, String, String) =
                (r.get("id"), r.get("alert_id"), r.get("payload"));
            let rec = FutureRecord::to(&self.topic).key(&key).payload(&payload);
            match self.producer.send(rec, Duration::from_secs(0)).await {
                Ok(_) => {
                    sqlx::query("DELETE FROM outbox WHERE id = ?1")
                        .bind(id)
                        .execute(store.pool())
                        .await
                        .map_err(|e| store.err(e))?;
                    sent += 1;
                }
                Err((e, _)) => {
                    debug!(error = %e, "ack not published yet; kept in the outbox");
                    break;
                }
            }
        }
        if sent > 0 {
            info!(sent, topic = %self.topic, "acknowledgements published");
        }
        Ok(sent)
    }
}
