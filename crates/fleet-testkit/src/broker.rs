//! A real Kafka-protocol broker (tansu) per test, on its own loopback port.
//!
//! tansu is a single-process, Kafka-compatible broker written in Rust. Each
//! [`Broker`] runs its own `tansu broker` process with its own port, cluster
//! id, working directory and storage, so any number of brokers run side by
//! side (nextest runs tests in parallel processes). tansu 0.6 listens on
//! exactly one port (no metrics or controller port to make unique).

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::error::{Result, TestkitError};
use crate::kafka::{self, Producer, Record};
use crate::ports::{free_port, token};
use crate::process::{Guarded, tail};

/// How long a broker may take to answer its first metadata request.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `create_topic` waits for leaders.
const TOPIC_TIMEOUT: Duration = Duration::from_secs(30);

/// Environment variable naming the tansu binary, overriding the default places.
pub const TANSU_ENV: &str = "FLEETDASH_TANSU";

/// Where `./dev setup` installs tansu: `$HOME/.cache/fleetdash/tools/bin/tansu`.
fn default_tansu_path() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    Some(Path::new(&home).join(".cache/fleetdash/tools/bin/tansu"))
}

/// The tansu broker binary: `$FLEETDASH_TANSU`, else
/// `~/.cache/fleetdash/tools/bin/tansu`, else `tansu` on `PATH`.
///
/// Panics with instructions when none exists, because every broker test
/// would otherwise fail with a confusing spawn error.
pub fn tansu_bin() -> PathBuf {
    if let Some(path) = std::env::var_os(TANSU_ENV) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "${TANSU_ENV} points to {}, which does not exist: run `./dev setup` to install \
             the tansu broker, or fix ${TANSU_ENV}",
            path.display()
        );
        return path;
    }
    if let Some(path) = default_tansu_path().filter(|p| p.is_file()) {
        return path;
    }
    if let Some(path) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("tansu"))
            .find(|p| p.is_file())
    }) {
        return path;
    }
    panic!(
        "the tansu broker binary was not found (looked at ${TANSU_ENV}, {}, and PATH): \
         run `./dev setup` to install it",
        default_tansu_path()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "~/.cache/fleetdash/tools/bin/tansu".into())
    );
}

/// How the broker stores its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// `memory://`: fastest; everything is lost when the process stops.
    Memory,
    /// `sqlite://` in the broker's temp dir: survives `stop()`/`start()`.
    Sqlite,
}

/// A running tansu broker. Dropping it kills the process (and its process
/// group) and removes its temp dir.
#[derive(Debug)]
pub struct Broker {
    port: u16,
    storage: Storage,
    cluster_id: String,
    dir: TempDir,
    log: PathBuf,
    process: Option<Guarded>,
    last_startup: Duration,
}

impl Broker {
    /// A broker with in-memory storage on a free loopback port, ready to serve.
    pub fn start_memory() -> Broker {
        Self::launch(Storage::Memory)
    }

    /// A broker with SQLite storage in a temp dir: data survives
    /// [`Broker::stop`] and [`Broker::start`].
    pub fn start_sqlite() -> Broker {
        Self::launch(Storage::Sqlite)
    }

    fn launch(storage: Storage) -> Broker {
        let dir = tempfile::Builder::new()
            .prefix("fleetdash-tansu-")
            .tempdir()
            .expect("creating a temp dir for the broker");
        let log = dir.path().join("tansu.log");
        let mut broker = Broker {
            port: 0,
            storage,
            cluster_id: format!("fleetdash-test-{}", token()),
            dir,
            log,
            process: None,
            last_startup: Duration::ZERO,
        };
        // Another process may grab the port between `free_port` and tansu's
        // bind; then tansu exits at once and a different port is tried.
        let mut last_err = None;
        for _ in 0..5 {
            broker.port = free_port();
            match broker.try_start() {
                Ok(()) => return broker,
                Err(e @ TestkitError::Exited { .. }) if broker.port_taken() => last_err = Some(e),
                Err(e) => panic!("starting tansu broker: {e}"),
            }
        }
        panic!(
            "starting tansu broker: no free port after 5 attempts: {}",
            last_err.map(|e| e.to_string()).unwrap_or_default()
        );
    }

    /// True when the log says the listener could not bind (port in use).
    fn port_taken(&self) -> bool {
        let log = self.log_tail();
        log.contains("Address already in use") || log.contains("AddrInUse")
    }

    /// "127.0.0.1:PORT", for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port the broker listens on (kept across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Which storage engine this broker uses.
    pub fn storage(&self) -> Storage {
        self.storage
    }

    /// The broker's private directory (working directory, SQLite file, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// How long the most recent start took until the broker answered metadata.
    pub fn startup_time(&self) -> Duration {
        self.last_startup
    }

    /// Whether the broker process is running (not stopped, not crashed).
    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(|p| p.exited().is_none())
    }

    /// Creates `name` with `partitions` partitions (no-op if it exists) and
    /// waits until metadata shows every partition with a leader.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        self.create_topic_with_config(name, partitions, &[]);
    }

    /// Like [`Broker::create_topic`], with topic configs such as
    /// `("cleanup.policy", "compact")`.
    pub fn create_topic_with_config(&self, name: &str, partitions: i32, config: &[(&str, &str)]) {
        kafka::create_topic(&self.bootstrap(), name, partitions, config, TOPIC_TIMEOUT)
            .unwrap_or_else(|e| {
                panic!(
                    "creating topic {name} on {}: {e}\nbroker log tail:\n{}",
                    self.bootstrap(),
                    self.log_tail()
                )
            });
    }

    /// Deletes `name` and waits until it is gone.
    pub fn delete_topic(&self, name: &str) {
        kafka::delete_topic(&self.bootstrap(), name, TOPIC_TIMEOUT).unwrap_or_else(|e| {
            panic!(
                "deleting topic {name} on {}: {e}\nbroker log tail:\n{}",
                self.bootstrap(),
                self.log_tail()
            )
        });
    }

    /// A [`Producer`] connected to this broker.
    pub fn producer(&self) -> Producer {
        Producer::new(&self.bootstrap())
    }

    /// [`crate::consume_all`] against this broker.
    pub fn consume_all(&self, topic: &str, timeout: Duration) -> Vec<Record> {
        kafka::consume_all(&self.bootstrap(), topic, timeout)
    }

    /// Kills the broker with `SIGKILL`: no graceful shutdown, like a crash or
    /// power loss, which is what fault tests want. The port stays reserved
    /// for [`Broker::start`]. Idempotent.
    pub fn stop(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill();
        }
        // The listener socket is closed by the kernel once the process is
        // reaped; wait until the port refuses connections so that clients
        // observe the outage deterministically.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.accepts_tcp() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts the broker again on the same port with the same storage (a
    /// memory broker comes back empty) and waits until it serves metadata.
    /// A no-op while running.
    pub fn start(&mut self) {
        if self.is_running() {
            return;
        }
        // Keep the port: clients configured with the old bootstrap address
        // must find the broker again. The port is below the ephemeral range,
        // so no outgoing connection can have taken it meanwhile.
        let mut result = self.try_start();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(result, Err(TestkitError::Exited { .. }))
            && self.port_taken()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(200));
            result = self.try_start();
        }
        result.unwrap_or_else(|e| panic!("restarting tansu broker on {}: {e}", self.bootstrap()));
    }

    /// The last lines of the broker's stdout and stderr, for failure messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log, 60)
    }

    fn storage_url(&self) -> &'static str {
        match self.storage {
            Storage::Memory => "memory://tansu/",
            // Resolved by tansu against its working directory: the temp dir.
            Storage::Sqlite => "sqlite://tansu.db",
        }
    }

    fn command(&self) -> Command {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let mut cmd = Command::new(tansu_bin());
        cmd.arg("broker")
            .args(["--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", self.storage_url()])
            .args(["--cluster-id", &self.cluster_id])
            // tansu reads `.env` from its working directory and these
            // variables from the environment; isolate it from both.
            .current_dir(self.dir.path())
            .env_remove("SCHEMA_REGISTRY")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("DATA_LAKE")
            .env("NO_COLOR", "1")
            .env(
                "RUST_LOG",
                std::env::var("FLEETDASH_TANSU_LOG").unwrap_or_else(|_| "warn".into()),
            );
        cmd
    }

    fn try_start(&mut self) -> Result<()> {
        let started = Instant::now();
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .and_then(|mut f| {
                use std::io::Write;
                writeln!(
                    f,
                    "--- fleetdash-testkit: starting tansu on port {} ---",
                    self.port
                )
            });
        self.process = Some(Guarded::spawn(self.command(), "tansu broker", &self.log)?);
        match self.wait_ready(started + STARTUP_TIMEOUT) {
            Ok(()) => {
                self.last_startup = started.elapsed();
                tracing::debug!(
                    "tansu ({:?}) ready on {} in {:?}",
                    self.storage,
                    self.bootstrap(),
                    self.last_startup
                );
                Ok(())
            }
            Err(e) => {
                if let Some(p) = self.process.take() {
                    p.kill();
                }
                Err(e)
            }
        }
    }

    fn wait_ready(&mut self, deadline: Instant) -> Result<()> {
        let mut last = String::from("port not open yet");
        loop {
            if let Some(status) = self.process.as_mut().and_then(Guarded::exited) {
                return Err(TestkitError::Exited {
                    what: format!("tansu broker on port {}", self.port),
                    status: status.to_string(),
                    log_tail: self.log_tail(),
                });
            }
            if Instant::now() >= deadline {
                return Err(TestkitError::Unexpected(format!(
                    "tansu broker on {} not ready after {STARTUP_TIMEOUT:?} ({last}); \
                     log tail:\n{}",
                    self.bootstrap(),
                    self.log_tail()
                )));
            }
            if self.accepts_tcp() {
                match kafka::probe_metadata(&self.bootstrap(), Duration::from_secs(2)) {
                    Ok(()) => return Ok(()),
                    Err(e) => last = format!("metadata request failed: {e}"),
                }
            } else {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    fn accepts_tcp(&self) -> bool {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    }

    /// The process id of the running broker (also its process group id).
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Guarded::pid)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill();
        }
        // `dir` (TempDir) is removed after this, when its field drops.
    }
}
