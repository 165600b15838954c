//! The Kafka source: a dedicated thread polls a librdkafka consumer, decodes every message
//! with its topic's handler, and hands batches to the engine.
//!
//! Partitions are assigned manually (not by group rebalancing): every desktop has its own
//! group and reads every partition, and the starting offsets come from the cache, which is
//! what makes the cache exactly-once. Offsets are also committed to the group after the
//! cache has them, purely so ops tools can see this desktop's lag.

mod assign;
mod context;
mod partition;
mod poller;
mod reference;
pub mod status;

pub use poller::{Committer, KafkaBatch, KafkaHandle, KafkaItem, spawn};
pub use status::{KafkaStatus, SharedStatus};

use crate::config::KafkaConfig;
use rdkafka::ClientConfig;

/// Kafka source errors.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// librdkafka refused the configuration (bad property name or value).
    #[error("kafka configuration rejected: {0}")]
    Config(#[source] rdkafka::error::KafkaError),
    /// A client operation failed.
    #[error("kafka: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    /// The poll thread could not be started.
    #[error("cannot start kafka thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// The consumer configuration: our defaults, then the user's properties verbatim (so
/// `security.protocol`, `sasl.*`, `ssl.*`… just work and may override ours).
pub fn consumer_config(cfg: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.brokers)
        .set("group.id", cfg.effective_group_id())
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("statistics.interval.ms", "1000")
        .set("topic.metadata.refresh.interval.ms", "10000")
        // Bounded prefetch: keeps RSS flat at high fleet sizes while still filling batches.
        .set("queued.max.messages.kbytes", "32768")
        // How long a broker may hold a fetch when it has nothing new. Real Kafka answers as
        // soon as data arrives; some brokers (tansu) always hold the full wait, which would
        // put up to this much into every message-to-screen latency. 25 ms costs an idle
        // desktop ~40 small requests/s per broker; raise it in [kafka.properties] if needed.
        .set("fetch.wait.max.ms", "25")
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "2000")
        .set("socket.keepalive.enable", "true")
        .set("client.id", "fleetdash");
    for (k, v) in &cfg.properties {
        c.set(k, v);
    }
    // Set last, whatever the properties say: when a fetch offset is out of range (topic
    // re-created or truncated under us) librdkafka must go back to the earliest offset, where
    // the poller sees the jump back and records a gap. `latest` would jump over the data
    // silently (SPEC §7).
    if cfg
        .properties
        .get("auto.offset.reset")
        .is_some_and(|v| v != "earliest" && v != "smallest")
    {
        tracing::warn!(
            "kafka.properties: auto.offset.reset is ignored; fleetdash resumes from its cache and never skips data silently"
        );
    }
    c.set("auto.offset.reset", "earliest");
    c
}
