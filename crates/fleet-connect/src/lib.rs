//! fleet-connect: SOCAR's MSK → Redis `GEOADD` connector as a fleetdash mode
//! (`fleetctl connect`, SPEC §9).
//!
//! Data flow: a consumer in `[connect].group_id` (Kafka spreads the partitions over every
//! instance of the group) → [`route`] decodes each message with the app's own position
//! decoder → [`batch`] keeps each vehicle's latest fix of the batch → one pipelined round trip
//! of multi-member `GEOADD`s → only then are the batch's offsets committed. A crash at any
//! point re-reads at most the uncommitted batch: at-least-once, and `GEOADD` of the same fix
//! twice is harmless (idempotent).

pub mod batch;
mod context;
mod loader;
pub mod route;

pub use loader::{RunOptions, Summary, run};

/// Loader errors. Connection trouble (broker or Redis down) is retried, not returned; these
/// are the ones that stop it.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A section the loader needs is missing from the config.
    #[error("fleetctl connect needs {0}")]
    Missing(&'static str),
    /// librdkafka refused the configuration (a bad property name or value).
    #[error("kafka configuration rejected: {0}")]
    KafkaConfig(#[source] rdkafka::error::KafkaError),
    /// A Kafka client call failed outright.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// `[redis]` could not be turned into a client (bad URL).
    #[error(transparent)]
    RedisConfig(#[from] fleet_core::redis_geo::RedisError),
    /// Redis refused a write for a reason retrying cannot fix (wrong key type, no permission,
    /// bad credentials). Nothing of the failed batch was committed.
    #[error("redis refused the write: {0}")]
    Redis(#[source] redis::RedisError),
}
