//! The local SQLite cache (SPEC §2): WAL mode, embedded migrations, one writer task that
//! commits batches together with their Kafka offsets, and a read pool for everything else.

pub mod batch;
mod enrich;
pub mod export;
pub mod history;
mod lock;
pub mod offsets;
pub mod read;
mod replay;
pub mod replay_index;
pub mod retention;
mod schema;
pub mod snooze;
pub mod views;
pub mod writer;

pub use batch::{
    AlertOrigin, DeviceChange, GapRow, OffsetMark, Origin, QuarantineRow, VehicleSnapshot,
    WriteBatch,
};
pub use enrich::DeviceRow;
pub use export::{ExportFilter, ExportFormat};
pub use lock::{CacheLock, LockError};
pub use offsets::{GapInfo, ResumePoint};
pub use read::{CacheStats, TopicStats};
pub use retention::Retention;
pub use views::AlertFeed;
pub use writer::{CacheFault, Committed, WriterHandle};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// Cache errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file or its directory could not be created.
    #[error("cannot create cache directory {dir}: {source}")]
    CreateDir {
        /// Directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// SQLite failed.
    #[error("cache {path}: {source}")]
    Sqlite {
        /// File.
        path: PathBuf,
        /// Why.
        source: sqlx::Error,
    },
    /// Schema migration failed (e.g. a cache written by a newer fleetdash).
    #[error("cache {path}: migration failed: {source}")]
    Migrate {
        /// File.
        path: PathBuf,
        /// Why.
        source: sqlx::migrate::MigrateError,
    },
    /// The file exists but is not a fleetdash cache (another program's database, a file
    /// that is not SQLite at all, or one damaged beyond reading). It is left untouched.
    #[error(
        "{path} is not a fleetdash cache ({why}); it was left untouched: point store.path at another file, or move this one away"
    )]
    NotACache {
        /// File.
        path: PathBuf,
        /// What was found.
        why: String,
    },
    /// The writer task has stopped.
    #[error("cache writer has stopped")]
    WriterGone,
}

impl StoreError {
    /// Lock contention with another process, or a lost race on the first migration: worth
    /// retrying, not worth reporting.
    pub fn is_transient(&self) -> bool {
        let text = match self {
            StoreError::Sqlite { source, .. } => source.to_string(),
            StoreError::Migrate { source, .. } => source.to_string(),
            _ => return false,
        };
        // Two processes opening a new cache at once: the second finds the first one's
        // migration half-seen ("already exists", "duplicate column"); a retry sees it done.
        text.contains("database is locked")
            || text.contains("busy")
            || text.contains("already exists")
            || text.contains("duplicate column")
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// An open cache.
#[derive(Clone)]
pub struct Store {
    path: PathBuf,
    pool: SqlitePool,
}

/// SQLite page cache of the writer (KiB): the insert-heavy indexes of `samples` stay hot.
const WRITER_CACHE_KIB: u32 = 16_000;
/// Page cache of each read connection (KiB): the feed, trail and search reads are indexed
/// and small; four large read caches only held memory (the app's shell at 20,000 vehicles
/// kept ~100 MB of them).
const READER_CACHE_KIB: u32 = 4_000;

impl Store {
    fn options(path: &Path, cache_kib: u32) -> SqliteConnectOptions {
        SqliteConnectOptions::from_str("sqlite://")
            .expect("static sqlite url")
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable across application crashes in WAL mode (only an OS crash can
            // lose the last transactions, and then offsets roll back with them).
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", format!("-{cache_kib}"))
            // Space freed by retention goes back to the file system (takes effect on caches
            // created from now on; older ones keep their pages for reuse).
            .auto_vacuum(sqlx::sqlite::SqliteAutoVacuum::Incremental)
            // The WAL is truncated back to this after checkpoints.
            .pragma("journal_size_limit", "67108864")
            .pragma("temp_store", "memory")
            .disable_statement_logging()
    }

    /// Opens (creating if needed) and migrates the cache at `path`.
    ///
    /// Another process may hold the file for a moment (WAL recovery after a crash, or a
    /// concurrent first migration); that is retried for up to 10 s rather than reported.
    #[tracing::instrument(err, skip_all, fields(cache = %path.display()))]
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                dir: dir.to_path_buf(),
                source,
            })?;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match Self::try_open(path).await {
                Ok(s) => return Ok(s),
                Err(e) if e.is_transient() && std::time::Instant::now() < deadline => {
                    tracing::debug!(error = %e, "cache busy; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn try_open(path: &Path) -> Result<Store, StoreError> {
        check_is_cache(path).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(Self::options(path, READER_CACHE_KIB))
            .await
            .map_err(|source| not_a_cache(path, source))?;
        if let Err(source) = sqlx::migrate!("./migrations").run(&pool).await {
            pool.close().await;
            return Err(StoreError::Migrate {
                path: path.to_path_buf(),
                source,
            });
        }
        Ok(Store {
            path: path.to_path_buf(),
            pool,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The read pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Starts the single writer on a dedicated connection.
    #[tracing::instrument(err, skip_all, fields(cache = %self.path.display()))]
    pub async fn start_writer(
        &self,
        retention: Retention,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Result<(WriterHandle, tokio::task::JoinHandle<()>), StoreError> {
        let conn =
            sqlx::SqliteConnection::connect_with(&Self::options(&self.path, WRITER_CACHE_KIB))
                .await
                .map_err(|source| StoreError::Sqlite {
                    path: self.path.clone(),
                    source,
                })?;
        Ok(writer::spawn(conn, retention, cancel))
    }

    pub(crate) fn err(&self, source: sqlx::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Moves the WAL's pages into the database file and truncates the WAL, so the file's
    /// size on disk is the data's (used before measuring it).
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Closes the pool (waits for readers), first moving the WAL into the database file: a
    /// cache left by a clean exit is one self-contained file, whole when copied or measured.
    /// SQLite's own checkpoint on the last close is skipped when another connection is still
    /// open at that moment (seen: a 4 KB cache file with everything in its WAL). Best effort:
    /// on a read-only or full disk the WAL simply stays.
    pub async fn close(&self) {
        if let Err(e) = self.checkpoint().await {
            tracing::debug!(error = %e, "checkpoint on close failed; the WAL stays beside the cache");
        }
        self.pool.close().await;
    }
}

#[cfg(test)]
mod enrich_tests;
#[cfg(test)]
mod history_tests;
#[cfg(test)]
mod snapshot_tests;
#[cfg(test)]
pub(crate) mod tests;

/// Runs housekeeping by hand (tests and tools).
pub async fn run_housekeeping(store: &Store, r: &Retention, now: i64) -> Result<(), StoreError> {
    let mut conn = store.pool.acquire().await.map_err(|e| store.err(e))?;
    retention::housekeeping(&mut conn, r, now)
        .await
        .map_err(|e| store.err(e))
}

/// SQLite's answer when a file is not a database, or is damaged: reported as "not a fleetdash
/// cache" rather than as a raw driver error, so the user knows the file itself is the problem.
fn not_a_cache(path: &Path, source: sqlx::Error) -> StoreError {
    // SQLITE_CORRUPT 11, SQLITE_NOTADB 26.
    if let sqlx::Error::Database(d) = &source
        && matches!(writer::sqlite_primary_code(&source), Some(11 | 26))
    {
        return StoreError::NotACache {
            path: path.to_path_buf(),
            why: d.message().to_string(),
        };
    }
    StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

/// A new (empty) file becomes a cache; a file with tables must already be one. Looked at
/// read-only before the cache's own connection options touch it (switching to WAL alone
/// rewrites the header): migrating another program's database would add our tables to it.
async fn check_is_cache(path: &Path) -> Result<(), StoreError> {
    if std::fs::metadata(path).map_or(true, |m| m.len() == 0) {
        return Ok(());
    }
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .disable_statement_logging();
    let mut conn = sqlx::SqliteConnection::connect_with(&opts)
        .await
        .map_err(|source| not_a_cache(path, source))?;
    let tables: Result<Vec<String>, _> =
        sqlx::query_scalar("SELECT name FROM sqlite_schema WHERE type = 'table'")
            .fetch_all(&mut conn)
            .await;
    let _ = conn.close().await;
    let tables = tables.map_err(|source| not_a_cache(path, source))?;
    if tables.is_empty() || tables.iter().any(|t| t == "_sqlx_migrations") {
        return Ok(());
    }
    let mut shown: Vec<&str> = tables.iter().map(String::as_str).take(5).collect();
    if tables.len() > 5 {
        shown.push("…");
    }
    Err(StoreError::NotACache {
        path: path.to_path_buf(),
        why: format!("an SQLite database with other tables: {}", shown.join(", ")),
    })
}
