//! A real Kafka-protocol broker (tansu) per test, on its own loopback port.
//!
//! tansu is a single-process, Kafka-compatible broker written in Rust. Each
//! [`Broker`] runs its own `tansu broker` process with its own port, cluster
//! id, working directory and storage, so any number of brokers run side by
//! side (nextest runs tests in parallel processes). tansu 0.6 listens on
//! exactly one port (no metrics or controller port to make unique).
//!
//! # Secure brokers
//! [`Broker::start_secure`] turns on client authentication (SASL SCRAM) and
//! TLS, within what tansu 0.6.0 can do:
//! - **SASL**: `tansu broker --authentication` offers SCRAM-SHA-256,
//!   SCRAM-SHA-512 and OAUTHBEARER, not PLAIN (its rsasl is built without the
//!   `plain` feature): a PLAIN `SaslHandshake` fails with `NoSharedMechanism`
//!   and tansu closes the connection (librdkafka: "SASL PLAIN mechanism
//!   handshake failed: Local: Broker transport failure"). Credentials
//!   are created with `tansu user create` (AlterUserScramCredentials), which
//!   an authenticating broker refuses before login and which the `memory://`
//!   engine does not store: so a secure broker uses SQLite, is started once
//!   without authentication to create its user, then restarted with it.
//! - **TLS**: `tansu broker --cert/--key` does nothing in 0.6.0: clap puts the
//!   two flags in one group so they cannot be given together, and the broker
//!   never uses its `TlsAcceptor` (bound to `_acceptor`, connections are
//!   served in plaintext). So TLS is terminated in front of the broker by
//!   `socat` (OpenSSL): its own port, the test CA's server certificate, and
//!   optionally client certificates required and verified against the CA
//!   (mutual TLS). The broker advertises the front's address, so clients only
//!   ever talk TLS. Client-side everything is real: librdkafka's handshake,
//!   CA and hostname verification, client certificate, SASL over TLS.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::error::{Result, TestkitError};
use crate::kafka::{self, Producer, Record};
use crate::ports::{free_port, token};
use crate::process::{Guarded, tail};
use crate::tls::CertFiles;

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

/// A SASL mechanism, named as librdkafka's `sasl.mechanism` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// `SCRAM-SHA-256`.
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
    /// `PLAIN`. **tansu 0.6.0 does not offer it** (it closes the connection
    /// on a PLAIN handshake), so a broker whose own login uses it never
    /// becomes ready; it is here for clients' configs and for brokers that do.
    Plain,
}

impl SaslMechanism {
    /// The value for librdkafka's `sasl.mechanism`.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::Plain => "PLAIN",
        }
    }

    /// `tansu user create --mechanism`; PLAIN has no stored credential.
    fn tansu_mechanism(self) -> Option<&'static str> {
        match self {
            SaslMechanism::ScramSha256 => Some("scram256"),
            SaslMechanism::ScramSha512 => Some("scram512"),
            SaslMechanism::Plain => None,
        }
    }
}

/// How a [`Broker::start_secure`] broker is secured; see the module docs for
/// what tansu 0.6.0 can and cannot do.
///
/// ```no_run
/// use fleet_testkit::{Broker, SaslMechanism, Security, TestCa};
/// let ca = TestCa::new("test CA");
/// let broker = Broker::start_secure(
///     Security::new()
///         .sasl(SaslMechanism::ScramSha512, "fleet", "s3cret")
///         .tls(ca.cert_path(), &ca.server_cert("broker")),
/// );
/// // broker.bootstrap() speaks SASL_SSL; broker.client_properties() logs in.
/// ```
#[derive(Debug, Clone, Default)]
pub struct Security {
    login: Option<Login>,
    tls: Option<TlsFront>,
}

#[derive(Clone)]
struct Login {
    mechanism: SaslMechanism,
    user: String,
    password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("mechanism", &self.mechanism)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
struct TlsFront {
    ca: PathBuf,
    server: CertFiles,
    /// Set for mutual TLS: the front requires a client certificate signed by
    /// `ca`, and the testkit's own clients present this one.
    client: Option<CertFiles>,
}

impl Security {
    /// No authentication, no TLS (add them with the methods below).
    pub fn new() -> Security {
        Security::default()
    }

    /// Client authentication required (`tansu broker --authentication`), with
    /// `user`/`password` created as a `mechanism` credential. The testkit's
    /// own clients (readiness probe, [`Broker::create_topic`],
    /// [`Broker::producer`]) log in as this user.
    pub fn sasl(mut self, mechanism: SaslMechanism, user: &str, password: &str) -> Security {
        self.login = Some(Login {
            mechanism,
            user: user.into(),
            password: password.into(),
        });
        self
    }

    /// TLS in front of the broker with `server` (signed by `ca`, which the
    /// testkit's own clients trust).
    pub fn tls(mut self, ca: &Path, server: &CertFiles) -> Security {
        self.tls = Some(TlsFront {
            ca: ca.to_path_buf(),
            server: server.clone(),
            client: None,
        });
        self
    }

    /// Mutual TLS: clients must present a certificate signed by the CA given
    /// to [`Security::tls`] (called first); the testkit's own clients present
    /// `client`.
    pub fn require_client_cert(mut self, client: &CertFiles) -> Security {
        let tls = self
            .tls
            .as_mut()
            .expect("Security::require_client_cert needs Security::tls first");
        tls.client = Some(client.clone());
        self
    }

    /// librdkafka's `security.protocol` for this broker.
    pub fn security_protocol(&self) -> &'static str {
        match (self.login.is_some(), self.tls.is_some()) {
            (false, false) => "PLAINTEXT",
            (false, true) => "SSL",
            (true, false) => "SASL_PLAINTEXT",
            (true, true) => "SASL_SSL",
        }
    }
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
    /// `Some` for [`Broker::start_secure`] brokers.
    security: Option<Security>,
    /// The TLS front (socat), when `security` has TLS: its port and process.
    front_port: u16,
    front: Option<Guarded>,
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
            security: None,
            front_port: 0,
            front: None,
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

    /// A broker that requires what `security` says (SASL login, TLS, client
    /// certificates), with SQLite storage in a temp dir, ready to serve: the
    /// readiness probe already logged in through everything. Clients connect
    /// to [`Broker::bootstrap`] with [`Broker::client_properties`] (or their
    /// own, to test other credentials). See the module docs for how TLS and
    /// users are provided around tansu 0.6.0's limits.
    pub fn start_secure(security: Security) -> Broker {
        let dir = tempfile::Builder::new()
            .prefix("fleetdash-tansu-")
            .tempdir()
            .expect("creating a temp dir for the broker");
        let log = dir.path().join("tansu.log");
        let mut broker = Broker {
            port: 0,
            // `memory://` keeps no SCRAM credentials (tansu's dynostore
            // answers "no such user" for everyone).
            storage: Storage::Sqlite,
            cluster_id: format!("fleetdash-test-{}", token()),
            dir,
            log,
            process: None,
            last_startup: Duration::ZERO,
            security: Some(security),
            front_port: 0,
            front: None,
        };
        let mut last_err = None;
        for _ in 0..5 {
            broker.port = free_port();
            match broker.try_launch_secure() {
                Ok(()) => return broker,
                Err(e @ TestkitError::Exited { .. })
                    if broker.port_taken() || broker.front_port_taken() =>
                {
                    if let Some(p) = broker.process.take() {
                        p.kill();
                    }
                    if let Some(f) = broker.front.take() {
                        f.kill();
                    }
                    last_err = Some(e);
                }
                Err(e) => panic!("starting secure tansu broker: {e}"),
            }
        }
        panic!(
            "starting secure tansu broker: no free port after 5 attempts: {}",
            last_err.map(|e| e.to_string()).unwrap_or_default()
        );
    }

    /// The TLS front, the user (on a plaintext, unauthenticated start of the
    /// same storage), then the broker as configured.
    fn try_launch_secure(&mut self) -> Result<()> {
        let security = self.security.clone().expect("a secure broker");
        if let Some(tls) = &security.tls {
            self.front_port = free_port();
            self.start_front(tls)?;
        }
        if let Some(login) = &security.login
            && let Some(mechanism) = login.mechanism.tansu_mechanism()
        {
            self.try_start_as(false)?;
            let created = self.create_user(mechanism, &login.user, &login.password);
            self.stop();
            created?;
        }
        self.try_start_as(true)
    }

    /// `tansu user create` against the (unauthenticated) broker.
    fn create_user(&self, mechanism: &str, user: &str, password: &str) -> Result<()> {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let out = Command::new(tansu_bin())
            .args(["user", "create", "--broker", &url])
            .args(["--mechanism", mechanism])
            // librdkafka computes the salted password on every login; the
            // minimum Kafka accepts keeps that fast.
            .args(["--iterations", "4096"])
            .args([user, password])
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "warn")
            .output()
            .map_err(|e| TestkitError::io("running tansu user create", e))?;
        if !out.status.success() {
            return Err(TestkitError::Unexpected(format!(
                "tansu user create {user} ({mechanism}) failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }

    /// Starts socat terminating TLS on `front_port` and forwarding to the
    /// broker, and waits until it listens.
    fn start_front(&mut self, tls: &TlsFront) -> Result<()> {
        let mut listen = format!(
            "OPENSSL-LISTEN:{},bind=127.0.0.1,reuseaddr,fork,nodelay,cert={},key={}",
            self.front_port,
            tls.server.cert.display(),
            tls.server.key.display()
        );
        match &tls.client {
            Some(_) => listen.push_str(&format!(",verify=1,cafile={}", tls.ca.display())),
            None => listen.push_str(",verify=0"),
        }
        let mut cmd = Command::new("socat");
        cmd.arg("-d")
            .arg(listen)
            .arg(format!("TCP:127.0.0.1:{},nodelay", self.port))
            .current_dir(self.dir.path());
        let log = self.front_log();
        let mut front = Guarded::spawn(cmd, "socat (TLS front)", &log).map_err(|e| {
            TestkitError::Unexpected(format!(
                "{e} (socat terminates TLS in front of tansu, whose own TLS does not work in \
                 0.6.0: install it, e.g. `apt-get install socat`, which `./dev setup` does)"
            ))
        })?;
        // Probed with a bare TCP connect, which socat's log records as
        // "SSL_accept(): ... unexpected eof": harmless, one line per start.
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.front_port));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = front.exited() {
                return Err(TestkitError::Exited {
                    what: format!("socat TLS front on port {}", self.front_port),
                    status: status.to_string(),
                    log_tail: tail(&log, 20),
                });
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                self.front = Some(front);
                return Ok(());
            }
            if Instant::now() >= deadline {
                front.kill();
                return Err(TestkitError::Timeout {
                    what: format!("socat TLS front to listen on port {}", self.front_port),
                    after: Duration::from_secs(10),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn front_log(&self) -> PathBuf {
        self.dir.path().join("tls-front.log")
    }

    fn front_port_taken(&self) -> bool {
        let log = tail(&self.front_log(), 20);
        log.contains("Address already in use")
    }

    /// True when the log says the listener could not bind (port in use).
    fn port_taken(&self) -> bool {
        let log = self.log_tail();
        log.contains("Address already in use") || log.contains("AddrInUse")
    }

    /// "127.0.0.1:PORT", for `bootstrap.servers`. For a broker with TLS this
    /// is the TLS front's port (also what the broker advertises).
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.client_port())
    }

    /// The port clients connect to: the TLS front's, or the broker's.
    fn client_port(&self) -> u16 {
        if self.security.as_ref().is_some_and(|s| s.tls.is_some()) {
            self.front_port
        } else {
            self.port
        }
    }

    /// The port the broker listens on (kept across restarts). Behind a TLS
    /// front this is the plaintext port only the front talks to; clients use
    /// [`Broker::bootstrap`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How this broker is secured (`None` for the plain constructors).
    pub fn security(&self) -> Option<&Security> {
        self.security.as_ref()
    }

    /// The librdkafka properties a client needs to connect to this broker as
    /// the testkit's own login: `security.protocol`, `sasl.*`, `ssl.*`. Empty
    /// for a plain broker.
    pub fn client_properties(&self) -> Vec<(String, String)> {
        let Some(s) = &self.security else {
            return Vec::new();
        };
        let mut props = vec![(
            "security.protocol".to_string(),
            s.security_protocol().to_string(),
        )];
        if let Some(l) = &s.login {
            props.push(("sasl.mechanism".into(), l.mechanism.name().into()));
            props.push(("sasl.username".into(), l.user.clone()));
            props.push(("sasl.password".into(), l.password.clone()));
        }
        if let Some(t) = &s.tls {
            props.push(("ssl.ca.location".into(), t.ca.display().to_string()));
            if let Some(c) = &t.client {
                props.push((
                    "ssl.certificate.location".into(),
                    c.cert.display().to_string(),
                ));
                props.push(("ssl.key.location".into(), c.key.display().to_string()));
            }
        }
        props
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
        let created = if self.security.is_some() {
            secure_create_topic(
                &self.bootstrap(),
                &self.client_properties(),
                name,
                partitions,
                config,
            )
        } else {
            kafka::create_topic(&self.bootstrap(), name, partitions, config, TOPIC_TIMEOUT)
        };
        created.unwrap_or_else(|e| {
            panic!(
                "creating topic {name} on {}: {e}\nbroker log tail:\n{}",
                self.bootstrap(),
                self.log_tail()
            )
        });
    }

    /// Deletes `name` and waits until it is gone. Plain brokers only.
    pub fn delete_topic(&self, name: &str) {
        self.assert_plain("delete_topic");
        kafka::delete_topic(&self.bootstrap(), name, TOPIC_TIMEOUT).unwrap_or_else(|e| {
            panic!(
                "deleting topic {name} on {}: {e}\nbroker log tail:\n{}",
                self.bootstrap(),
                self.log_tail()
            )
        });
    }

    /// A [`Producer`] connected to this broker (logged in with
    /// [`Broker::client_properties`] when it is secure).
    pub fn producer(&self) -> Producer {
        if self.security.is_none() {
            return Producer::new(&self.bootstrap());
        }
        let props = self.client_properties();
        let props: Vec<(&str, &str)> = props
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Producer::with_config(&self.bootstrap(), &props)
    }

    /// [`crate::consume_all`] against this broker. Plain brokers only.
    pub fn consume_all(&self, topic: &str, timeout: Duration) -> Vec<Record> {
        self.assert_plain("consume_all");
        kafka::consume_all(&self.bootstrap(), topic, timeout)
    }

    fn assert_plain(&self, what: &str) {
        assert!(
            self.security.is_none(),
            "Broker::{what} is not available on a secure broker (the read-back clients carry no \
             security properties)"
        );
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

    /// The last lines of the broker's stdout and stderr, for failure messages
    /// (and of the TLS front's, when there is one).
    pub fn log_tail(&self) -> String {
        let broker = tail(&self.log, 60);
        if self.front.is_none() {
            return broker;
        }
        format!(
            "{broker}\n--- TLS front (socat) ---\n{}",
            tail(&self.front_log(), 20)
        )
    }

    fn storage_url(&self) -> &'static str {
        match self.storage {
            Storage::Memory => "memory://tansu/",
            // Resolved by tansu against its working directory: the temp dir.
            Storage::Sqlite => "sqlite://tansu.db",
        }
    }

    /// The broker's command line; `secure`: with authentication and, behind
    /// a TLS front, advertising the front (else plain, for creating users).
    fn command(&self, secure: bool) -> Command {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let security = self.security.as_ref().filter(|_| secure);
        let advertised = match security {
            Some(s) if s.tls.is_some() => format!("tcp://127.0.0.1:{}", self.front_port),
            _ => url.clone(),
        };
        let mut cmd = Command::new(tansu_bin());
        cmd.arg("broker")
            .args(["--listener-url", &url])
            .args(["--advertised-listener-url", &advertised])
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
        if security.is_some_and(|s| s.login.is_some()) {
            cmd.arg("--authentication");
        }
        cmd
    }

    fn try_start(&mut self) -> Result<()> {
        self.try_start_as(self.security.is_some())
    }

    /// Starts the broker (`secure`: as configured, else plain and open) and
    /// waits until it serves metadata to a client configured to match.
    fn try_start_as(&mut self, secure: bool) -> Result<()> {
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
        self.process = Some(Guarded::spawn(
            self.command(secure),
            "tansu broker",
            &self.log,
        )?);
        match self.wait_ready(started + STARTUP_TIMEOUT, secure) {
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

    fn wait_ready(&mut self, deadline: Instant, secure: bool) -> Result<()> {
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
                let probe = if secure {
                    secure_probe(
                        &self.bootstrap(),
                        &self.client_properties(),
                        Duration::from_secs(2),
                    )
                } else {
                    kafka::probe_metadata(
                        &format!("127.0.0.1:{}", self.port),
                        Duration::from_secs(2),
                    )
                };
                match probe {
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
        if let Some(front) = self.front.take() {
            front.kill();
        }
        // `dir` (TempDir) is removed after this, when its field drops.
    }
}

/// A client config for a secure broker: `bootstrap` plus `props`.
fn secure_config(bootstrap: &str, props: &[(String, String)]) -> rdkafka::ClientConfig {
    let mut config = rdkafka::ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("reconnect.backoff.max.ms", "500")
        .set("client.id", "fleetdash-testkit");
    for (k, v) in props {
        config.set(k, v);
    }
    config
}

/// Succeeds once the broker answers a metadata request from a client that
/// logged in with `props` (the same check as the plain probe, through TLS
/// and SASL).
fn secure_probe(bootstrap: &str, props: &[(String, String)], timeout: Duration) -> Result<()> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = secure_config(bootstrap, props).create()?;
    consumer.fetch_metadata(None, timeout)?;
    Ok(())
}

/// Like `kafka::create_topic`, as a client logged in with `props`.
fn secure_create_topic(
    bootstrap: &str,
    props: &[(String, String)],
    name: &str,
    partitions: i32,
    config: &[(&str, &str)],
) -> Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::types::RDKafkaErrorCode;

    let deadline = Instant::now() + TOPIC_TIMEOUT;
    let admin: AdminClient<DefaultClientContext> = secure_config(bootstrap, props).create()?;
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in config {
        topic = topic.set(k, v);
    }
    let opts = AdminOptions::new().operation_timeout(Some(TOPIC_TIMEOUT));
    for result in futures::executor::block_on(admin.create_topics([&topic], &opts))? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(TestkitError::Unexpected(format!(
                    "creating topic {topic}: {code:?}"
                )));
            }
        }
    }
    let consumer: BaseConsumer = secure_config(bootstrap, props).create()?;
    let mut last = String::from("no metadata yet");
    while Instant::now() < deadline {
        match consumer.fetch_metadata(Some(name), Duration::from_secs(2)) {
            Ok(meta) => {
                if let Some(t) = meta.topics().iter().find(|t| t.name() == name) {
                    let parts = t.partitions();
                    if t.error().is_none()
                        && parts.len() == partitions as usize
                        && parts.iter().all(|p| p.leader() >= 0)
                    {
                        return Ok(());
                    }
                    last = format!("error {:?}, {} partitions", t.error(), parts.len());
                }
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(TestkitError::Timeout {
        what: format!("topic {name} to have {partitions} partitions with leaders (last: {last})"),
        after: TOPIC_TIMEOUT,
    })
}
