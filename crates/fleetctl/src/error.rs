//! The CLI's error: a one-line reason and the SPEC §4 exit code.

use fleet_core::config::ConfigError;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad usage or configuration → exit 2.
    #[error("{0}")]
    Usage(String),
    /// Anything that went wrong while running → exit 1.
    #[error("{0}")]
    Runtime(String),
}

impl CliError {
    /// Process exit code.
    pub fn code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Runtime(_) => 1,
        }
    }
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        CliError::Usage(e.to_string())
    }
}

impl From<fleet_core::store::StoreError> for CliError {
    fn from(e: fleet_core::store::StoreError) -> Self {
        CliError::Runtime(e.to_string())
    }
}

impl From<fleet_core::EngineError> for CliError {
    fn from(e: fleet_core::EngineError) -> Self {
        match e {
            // librdkafka rejecting a property is a config problem.
            fleet_core::EngineError::Kafka(fleet_core::kafka::KafkaError::Config(_))
            | fleet_core::EngineError::Redis(_) => CliError::Usage(e.to_string()),
            other => CliError::Runtime(other.to_string()),
        }
    }
}
