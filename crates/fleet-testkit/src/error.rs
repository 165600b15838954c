//! The one error type of the crate.
//!
//! Most helpers panic, because a test that cannot start its broker has nothing
//! better to do; the `try_*` variants return this error for the tests that need
//! to observe a failure (for example a broker rejecting an oversized message).

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// Everything that can go wrong in a testkit helper that returns a `Result`.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// librdkafka reported an error (connection, protocol, broker error code).
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),

    /// The Redis client reported an error.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),

    /// Spawning a process or touching a file failed.
    #[error("{context}: {source}")]
    Io {
        /// What the helper was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Something did not happen within its deadline.
    #[error("timed out after {after:?}: {what}")]
    Timeout {
        /// What was being waited for.
        what: String,
        /// How long the helper waited.
        after: Duration,
    },

    /// A child process (broker, Redis server) exited while it should be running.
    #[error("{what} exited unexpectedly ({status}); last log lines:\n{log_tail}")]
    Exited {
        /// Which process.
        what: String,
        /// Its exit status.
        status: String,
        /// The end of its log, to see why.
        log_tail: String,
    },

    /// The broker answered, but not what the helper expected.
    #[error("{0}")]
    Unexpected(String),
}

impl TestkitError {
    /// Wraps an I/O error with what was being attempted.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// The broker's error code, when the failure was one reported by Kafka
    /// (`MessageSizeTooLarge`, `UnknownTopicOrPartition`, …).
    pub fn kafka_code(&self) -> Option<RDKafkaErrorCode> {
        match self {
            Self::Kafka(err) => err.rdkafka_error_code(),
            _ => None,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = TestkitError> = std::result::Result<T, E>;
