//! The shell's errors, and how they cross the IPC edge: always as fleet-model's
//! `IpcError {code, message}` so the UI can branch on `code`.

use fleet_model::IpcError;

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The config file is invalid (names the key and the file).
    #[error(transparent)]
    Config(#[from] fleet_core::config::ConfigError),
    /// The settings form itself is malformed before it becomes TOML.
    #[error("{0}")]
    Form(String),
    /// The cache.
    #[error(transparent)]
    Store(#[from] fleet_core::store::StoreError),
    /// The engine could not start.
    #[error(transparent)]
    Engine(#[from] fleet_core::EngineError),
    /// The embedded demo could not start.
    #[error("demo: {0}")]
    Demo(String),
    /// The config file on disk is not valid TOML: Settings refuses to overwrite it.
    #[error(
        "{path} is not valid TOML ({message}); Settings will not overwrite it: fix the file by hand"
    )]
    Unparsable {
        /// The file.
        path: String,
        /// The parse error (with its line).
        message: String,
    },
    /// Reading or writing a settings file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Settings could not store a new password in the OS keyring; nothing was saved.
    #[error(
        "{key}: the new password cannot be stored in the OS keyring ({source}). Nothing was \
         saved, and the password is never written to the config file: put it in an \
         environment variable and enter `env:NAME` instead, or start a Secret Service \
         (GNOME Keyring, KWallet, KeePassXC)"
    )]
    Keyring {
        /// The property (`kafka.properties."sasl.password"`).
        key: String,
        /// Why the keyring refused.
        source: fleet_core::config::secrets::SecretError,
    },
    /// A chart could not be drawn (its size or range is out of bounds, or plotters failed).
    #[error("chart: {0}")]
    Chart(#[from] fleet_chart::ChartError),
    /// A vehicle the cache has never heard of.
    #[error("no vehicle `{0}` in the cache")]
    UnknownVehicle(String),
    /// The user closed the file dialog without picking a file.
    #[error("cancelled")]
    Cancelled,
    /// No engine is running (it failed to start; see the status).
    #[error("the engine is not running: {0}")]
    NotRunning(String),
}

impl AppError {
    /// The stable code the UI branches on.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Config(_) | AppError::Form(_) => "config_invalid",
            AppError::Unparsable { .. } => "config_unparsable",
            AppError::Store(_) => "store",
            AppError::Engine(fleet_core::EngineError::Ack(
                fleet_core::acks::AckError::NotFound(_),
            )) => "not_found",
            AppError::Engine(_) => "engine",
            AppError::Demo(_) => "demo",
            AppError::Io { .. } => "io",
            AppError::Keyring { .. } => "keyring",
            AppError::Chart(_) => "chart",
            AppError::NotRunning(_) => "not_running",
            AppError::UnknownVehicle(_) => "not_found",
            AppError::Cancelled => "cancelled",
        }
    }
}

impl From<AppError> for IpcError {
    fn from(e: AppError) -> Self {
        IpcError {
            code: e.code().to_string(),
            message: e.to_string(),
        }
    }
}

/// What every command returns.
pub type IpcResult<T> = Result<T, IpcError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_alert_is_not_found() {
        let e = AppError::Engine(fleet_core::EngineError::Ack(
            fleet_core::acks::AckError::NotFound("x".into()),
        ));
        let ipc: IpcError = e.into();
        assert_eq!(ipc.code, "not_found");
        assert!(ipc.message.contains("no alert `x`"));
    }

    /// A chart that cannot be drawn is a chart error, not an invalid config (it was
    /// `config_invalid`, which sent the user to Settings for nothing).
    #[test]
    fn a_chart_that_cannot_be_drawn_is_a_chart_error() {
        let spec = fleet_chart::ChartSpec {
            title: "car-1".into(),
            from_ms: 0,
            to_ms: 1_000,
            series: Vec::new(),
            alerts: Vec::new(),
            cursor_ms: None,
            width: 100_000,
            height: 10,
            utc_offset_s: 0,
        };
        let e = fleet_chart::render_svg(&spec).unwrap_err();
        let ipc: IpcError = AppError::from(e).into();
        assert_eq!(ipc.code, "chart");
        assert!(ipc.message.contains("chart size"), "{}", ipc.message);
    }
}
