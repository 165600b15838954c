//! Test-only helpers for fleetdash's integration tests: real services, no mocks.
//!
//! - [`Broker`]: a real Kafka-protocol broker (tansu) per test on its own
//!   loopback port, with in-memory or SQLite storage, that can be crashed
//!   ([`Broker::stop`], `SIGKILL`) and restarted ([`Broker::start`]).
//! - [`Producer`] and [`consume_all`]: blocking rdkafka clients to put raw
//!   bytes into topics and read everything back.
//! - [`RedisDb`]: an isolated key namespace on the machine's Redis;
//!   [`restart_local_redis`] and [`RedisServer`] for Redis outages.
//! - [`Keyring`]: a real, unlocked Secret Service (GNOME Keyring) on a private
//!   D-Bus session bus, for `keyring:NAME` secrets.
//! - [`MixedFleet`] and [`compare_caches`]: the fault suite's deterministic traffic of all
//!   five topic kinds, and the table-by-table comparison of two caches.
//!
//! Why real services: the engine's hard guarantees (exactly-once into the
//! cache, resume from stored offsets, reconnect after an outage) live in the
//! interaction with a real broker's protocol and timing, which mocks do not
//! reproduce. tansu starts in well under a second, so a broker per test is
//! affordable and keeps tests independent under nextest's parallelism.
//!
//! The tansu binary is installed by `./dev setup` (see [`tansu_bin`]).
//!
//! # Blocking
//! Everything here blocks the calling thread. In a `#[tokio::test]`, call the
//! helpers before starting the code under test, through
//! `tokio::task::spawn_blocking`, or use `flavor = "multi_thread"`, so that a
//! blocking call does not stall the engine running on the same runtime.
//!
//! # tansu 0.6 quirks worth knowing
//! - **ListOffsets "latest" is wrong with `memory://` storage**: it answers
//!   with the base offset of the newest record batch + 1, so after a batch of
//!   10 records at offsets 0..=9 it says 1, not 10 (`sqlite://` answers 10).
//!   Anything resolving `Offset::End`/`auto.offset.reset=latest` or computing
//!   lag from `fetch_watermarks` against a memory broker is affected. Fetch
//!   responses carry the right high watermark, so [`consume_all`] and
//!   [`watermarks`] read to end-of-partition instead. Use
//!   [`Broker::start_sqlite`] for tests that depend on "latest" or on lag.
//! - No size limit of its own: 1.5 MiB (and 60 MiB) messages are stored and
//!   fetched back; only librdkafka's client-side `message.max.bytes`
//!   (default 1,000,000) refuses them, so raise it on the producer
//!   ([`Producer::with_config`]) to deliver an oversized payload.
//! - One listening port per broker, no metrics or controller port; a unique
//!   port, cluster id and working directory make brokers independent.
//! - `assign()` in librdkafka needs a `group.id` even without subscribing.

mod broker;
mod cache_diff;
mod error;
mod kafka;
mod keyring;
mod mixed;
mod ports;
mod process;
mod redis_db;
mod tls;

pub use broker::{Broker, SaslMechanism, Security, Storage, TANSU_ENV, tansu_bin};
pub use cache_diff::{
    COMPARED, TableDiff, compare_caches, describe, integrity_check, sqlite3, sqlite3_i64,
    try_sqlite3,
};
pub use error::{Result, TestkitError};
pub use kafka::{
    Delivered, Producer, Record, Watermarks, consume_all, try_consume_all, watermarks,
};
pub use keyring::{KEYRING_SERVICE, Keyring, session_bus_config};
pub use mixed::{MIXED_TOPICS, MixedBatch, MixedFleet, TopicBatch, config as mixed_config};
pub use ports::free_port;
pub use redis_db::{
    REDIS_DB_ENV, REDIS_RESTART_ENV, RedisDb, RedisServer, restart_local_redis,
    try_restart_local_redis,
};
pub use tls::{CertFiles, TestCa};

/// librdkafka error codes, re-exported so tests can match
/// [`TestkitError::kafka_code`] without depending on rdkafka themselves.
pub use rdkafka::types::RDKafkaErrorCode;

#[cfg(test)]
mod tests;
