//! Where the app and `fleetctl` write their log files, so a user who launched from the
//! desktop menu has something to send: one file a day per program, the last
//! [`LOG_FILES_KEPT`] kept, in a directory only the user can read.

use std::path::PathBuf;
use tracing_appender::rolling::{RollingFileAppender, Rotation};

/// Days of log files kept (one file a day, older ones deleted).
pub const LOG_FILES_KEPT: usize = 7;

/// `<data_dir>/fleetdash/logs` (`~/.local/share/fleetdash/logs` on Linux); `$FLEETDASH_LOG_DIR`
/// overrides it, set empty for stderr only (`None`).
pub fn log_dir() -> Option<PathBuf> {
    match std::env::var_os("FLEETDASH_LOG_DIR") {
        Some(d) if d.is_empty() => None,
        Some(d) => Some(PathBuf::from(d)),
        None => dirs::data_dir().map(|d| d.join("fleetdash").join("logs")),
    }
}

/// A daily `<program>.YYYY-MM-DD.log` in [`log_dir`] (made with mode 0700), with the
/// directory; `None` when file logging is off, `Err` naming the directory when it cannot be
/// used.
pub fn daily_file(program: &str) -> Option<Result<(RollingFileAppender, PathBuf), String>> {
    let dir = log_dir()?;
    let mut mkdir = std::fs::DirBuilder::new();
    mkdir.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut mkdir, 0o700);
    let built = mkdir
        .create(&dir)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            RollingFileAppender::builder()
                .rotation(Rotation::DAILY)
                .filename_prefix(program)
                .filename_suffix("log")
                .max_log_files(LOG_FILES_KEPT)
                .build(&dir)
                .map_err(|e| e.to_string())
        });
    Some(
        built
            .map(|appender| (appender, dir.clone()))
            .map_err(|e| format!("{}: {e}", dir.display())),
    )
}
