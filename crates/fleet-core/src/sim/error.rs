//! Errors of the simulator.
//!
//! Only problems that make a run pointless are errors: bad options, a Kafka client that cannot
//! be created or brokers that cannot be reached at start. Redis trouble and individual delivery
//! failures are counted and logged instead, so a flaky side channel never stops the telemetry.

/// Why the simulator could not run (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// An option is out of range; names the option so `fleetctl` can point at the flag.
    #[error("invalid simulator option `{option}`: {reason}")]
    InvalidOption {
        /// The [`super::SimOptions`] field at fault.
        option: &'static str,
        /// What is wrong with it and what is allowed.
        reason: String,
    },
    /// The Kafka client could not be created or the brokers could not be reached.
    #[error("kafka: {context}: {source}")]
    Kafka {
        /// What the simulator was doing.
        context: String,
        /// The librdkafka error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The Redis URL is unusable (connection failures are retried, not reported here).
    #[error("redis: {context}: {source}")]
    Redis {
        /// What the simulator was doing.
        context: String,
        /// The client error.
        #[source]
        source: redis::RedisError,
    },
    /// The producing thread panicked or was torn down by the runtime.
    #[error("simulator task failed: {0}")]
    Task(String),
}

impl SimError {
    /// Shorthand for [`SimError::InvalidOption`].
    pub(crate) fn option(option: &'static str, reason: impl Into<String>) -> Self {
        SimError::InvalidOption {
            option,
            reason: reason.into(),
        }
    }
}
