//! Redis for tests: an isolated namespace on the machine's Redis, a way to
//! restart that Redis, and private Redis servers for tests that break things.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::error::{Result, TestkitError};
use crate::ports::{free_port, token};
use crate::process::{Guarded, tail};
use crate::tls::CertFiles;

/// Host and port of the machine's Redis, which `./dev setup` makes sure runs.
const LOCAL_HOST: &str = "127.0.0.1";
const LOCAL_PORT: u16 = 6379;

/// Environment variable choosing the logical DB tests use on the local Redis.
pub const REDIS_DB_ENV: &str = "FLEETDASH_TEST_REDIS_DB";

/// Set to `0` to declare that the local Redis must not be restarted by tests
/// (for example when it is shared with something else).
pub const REDIS_RESTART_ENV: &str = "FLEETDASH_TEST_REDIS_RESTART";

/// The command line the machine's Redis was started with; a restart must
/// reproduce it exactly, so it is kept in one place.
const LOCAL_REDIS_ARGS: &[&str] = &[
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "-::1",
    "--port",
    "6379",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "/var/lib/redis",
    "--logfile",
    "/var/log/redis/ci.log",
];

static NEXT_DB_ID: AtomicU64 = AtomicU64::new(0);

/// An isolated namespace on the real Redis at 127.0.0.1:6379: a logical DB
/// (`$FLEETDASH_TEST_REDIS_DB`, default 9, so a developer's DB 0 is never
/// touched) and a key prefix unique to this instance, so parallel tests do
/// not see each other's keys. Drop deletes every key with the prefix.
///
/// Code under test must build its keys with [`RedisDb::key`] (e.g. configure
/// `geo_keys = [db.key("cars#gps")]`) for the isolation to hold.
#[derive(Debug)]
pub struct RedisDb {
    /// `redis://127.0.0.1:6379/DB`, ready for the engine's config.
    pub url: String,
    /// Prefix of every key belonging to this instance, ending in `:`.
    pub prefix: String,
}

impl RedisDb {
    /// A fresh namespace. Panics with instructions if Redis is not reachable.
    pub fn new() -> RedisDb {
        let db: u32 = match std::env::var(REDIS_DB_ENV) {
            Ok(v) => v
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("${REDIS_DB_ENV} must be a Redis DB number, got {v:?}")),
            Err(_) => 9,
        };
        let url = format!("redis://{LOCAL_HOST}:{LOCAL_PORT}/{db}");
        let prefix = format!(
            "fleetdash-test:{}-{}-{}:",
            std::process::id(),
            NEXT_DB_ID.fetch_add(1, Ordering::Relaxed),
            token()
        );
        let this = RedisDb { url, prefix };
        // Retry briefly: a `redis_restart` test in another process may have
        // the server down for a fraction of a second.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match this
                .connection()
                .and_then(|mut c| Ok(redis::cmd("PING").query::<String>(&mut c)?))
            {
                Ok(_) => return this,
                Err(e) if Instant::now() >= deadline => panic!(
                    "Redis at {LOCAL_HOST}:{LOCAL_PORT} is not reachable ({e}): run `./dev setup`, \
                     which installs and starts it"
                ),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// `prefix + name`: the key to use for `name` in this namespace.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// A synchronous connection to this DB.
    pub fn connection(&self) -> Result<redis::Connection> {
        let client = redis::Client::open(self.url.as_str())?;
        Ok(client.get_connection_with_timeout(Duration::from_secs(5))?)
    }

    /// Every key in this namespace (full names, with the prefix), sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut conn = self
            .connection()
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.url));
        let mut keys = scan_prefix(&mut conn, &self.prefix)
            .unwrap_or_else(|e| panic!("scanning {}: {e}", self.url));
        keys.sort();
        keys
    }

    /// Whether [`restart_local_redis`] can work here: Redis is the local one,
    /// `redis-server` and `redis-cli` are installed, its directories exist,
    /// and `$FLEETDASH_TEST_REDIS_RESTART` is not `0`. Tests that restart
    /// Redis should skip (with a message) when this is false.
    pub fn restart_server_supported(&self) -> bool {
        std::env::var(REDIS_RESTART_ENV).map_or(true, |v| v != "0")
            && self
                .url
                .starts_with(&format!("redis://{LOCAL_HOST}:{LOCAL_PORT}/"))
            && on_path("redis-server")
            && on_path("redis-cli")
            && Path::new("/var/lib/redis").is_dir()
            && Path::new("/var/log/redis").is_dir()
    }

    /// Deletes every key in this namespace (also done on drop).
    pub fn clear(&self) -> Result<usize> {
        let mut conn = self.connection()?;
        let keys = scan_prefix(&mut conn, &self.prefix)?;
        let mut deleted = 0;
        for chunk in keys.chunks(500) {
            deleted += redis::cmd("DEL").arg(chunk).query::<usize>(&mut conn)?;
        }
        Ok(deleted)
    }
}

impl Default for RedisDb {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for RedisDb {
    fn drop(&mut self) {
        // Best effort: Redis may be down on purpose in a fault test, and it
        // keeps nothing on disk anyway.
        if let Err(e) = self.clear() {
            tracing::debug!("could not clean up Redis keys {}*: {e}", self.prefix);
        }
    }
}

fn scan_prefix(conn: &mut redis::Connection, prefix: &str) -> Result<Vec<String>> {
    let pattern = format!("{}*", glob_escape(prefix));
    let mut cursor: u64 = 0;
    let mut keys = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query(conn)?;
        keys.extend(batch);
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}

fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Serialises restarts within one test process (`cargo test` runs tests as
/// threads); across nextest processes the `serial-redis` test group does.
static RESTART_LOCK: Mutex<()> = Mutex::new(());

/// Restarts the machine's Redis at 127.0.0.1:6379 (`redis-cli shutdown
/// nosave`, then the exact command it was started with) and waits until it
/// answers `PING`.
///
/// **All data in that Redis is lost** (it keeps nothing on disk; it is only a
/// test service here), and every client connected to it sees the outage. So
/// tests calling this must run alone: name them with `redis_restart` so that
/// the nextest `serial-redis` test group (max-threads 1) picks them up. Note
/// that the group only serialises such tests with each other; other tests
/// using Redis may run at the same time and see the outage. A test that
/// wants a Redis outage without that risk can use [`RedisServer`], a private
/// server on its own port.
pub fn restart_local_redis() {
    try_restart_local_redis().unwrap_or_else(|e| panic!("restarting local Redis: {e}"));
}

/// Fallible form of [`restart_local_redis`].
pub fn try_restart_local_redis() -> Result<()> {
    let _serial = RESTART_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, LOCAL_PORT));

    // Exit status ignored: it fails when Redis is already down, which is fine.
    let _ = Command::new("redis-cli")
        .args(["-p", "6379", "shutdown", "nosave"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| TestkitError::io("running redis-cli shutdown", e))?;
    wait_until(
        Duration::from_secs(10),
        "local Redis to stop listening",
        || TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err(),
    )?;

    let out = Command::new("redis-server")
        .args(LOCAL_REDIS_ARGS)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| TestkitError::io("running redis-server", e))?;
    if !out.status.success() {
        return Err(TestkitError::Unexpected(format!(
            "redis-server {} failed ({}): {}{}",
            LOCAL_REDIS_ARGS.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let url = format!("redis://{LOCAL_HOST}:{LOCAL_PORT}/");
    wait_until(
        Duration::from_secs(10),
        "local Redis to answer PING",
        || ping(&url),
    )
}

fn ping(url: &str) -> bool {
    redis::Client::open(url)
        .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(500)))
        .and_then(|mut conn| redis::cmd("PING").query::<String>(&mut conn))
        .is_ok_and(|pong| pong == "PONG")
}

fn wait_until(timeout: Duration, what: &str, mut ok: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !ok() {
        if Instant::now() >= deadline {
            return Err(TestkitError::Timeout {
                what: what.into(),
                after: timeout,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// A private `redis-server` on its own free loopback port, for tests that
/// stop or restart Redis: unlike [`restart_local_redis`] it disturbs no other
/// test, so such tests need no serialisation. Drop kills it and removes its
/// temp dir.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    args: Vec<String>,
    dir: TempDir,
    log: PathBuf,
    process: Option<Guarded>,
    /// `Some` for [`RedisServer::start_tls`] servers.
    tls: Option<RedisTls>,
}

/// What a TLS-only server was started with.
#[derive(Debug, Clone)]
struct RedisTls {
    ca: PathBuf,
    server: CertFiles,
}

impl RedisServer {
    /// Starts a server with no persistence.
    pub fn start_new() -> RedisServer {
        Self::start_with_args(&[])
    }

    /// Starts a server with extra `redis-server` arguments, for example
    /// `&["--notify-keyspace-events", "KEA"]`.
    pub fn start_with_args(extra: &[&str]) -> RedisServer {
        Self::launch(extra, None)
    }

    /// Starts a TLS-only server: `--port 0` (no plaintext listener),
    /// `--tls-port` on a free port with `server` (signed by `ca`, so
    /// `--tls-ca-cert-file ca`) and `--tls-auth-clients no` (clients need no
    /// certificate of their own), plus `extra` arguments. [`RedisServer::url`]
    /// is then `rediss://…`, and the testkit's own connections trust `ca`.
    /// Keep the CA's files alive while the server runs (restarts read them).
    pub fn start_tls(ca: &Path, server: &CertFiles, extra: &[&str]) -> RedisServer {
        Self::launch(
            extra,
            Some(RedisTls {
                ca: ca.to_path_buf(),
                server: server.clone(),
            }),
        )
    }

    fn launch(extra: &[&str], tls: Option<RedisTls>) -> RedisServer {
        let dir = tempfile::Builder::new()
            .prefix("fleetdash-redis-")
            .tempdir()
            .expect("creating a temp dir for Redis");
        let log = dir.path().join("redis.log");
        let mut server = RedisServer {
            port: 0,
            args: extra.iter().map(|s| (*s).to_owned()).collect(),
            dir,
            log,
            process: None,
            tls,
        };
        let mut last = None;
        for _ in 0..5 {
            server.port = free_port();
            match server.try_start() {
                Ok(()) => return server,
                Err(e) => last = Some(e),
            }
        }
        panic!(
            "starting a private redis-server: {}",
            last.map(|e| e.to_string()).unwrap_or_default()
        );
    }

    /// `redis://127.0.0.1:PORT/0` (`rediss://` for a [`RedisServer::start_tls`] server).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}/0", self.port)
    }

    /// A client for [`RedisServer::url`]; for a TLS server it trusts the test
    /// CA (`TlsCertificates::root_cert`), not the system's roots.
    fn client(&self, login: Option<(&str, &str)>) -> Result<redis::Client> {
        use redis::IntoConnectionInfo;
        let mut info = self.url().into_connection_info()?;
        if let Some((user, password)) = login {
            let settings = info
                .redis_settings()
                .clone()
                .set_username(user)
                .set_password(password);
            info = info.set_redis_settings(settings);
        }
        match &self.tls {
            None => Ok(redis::Client::open(info)?),
            Some(tls) => {
                let root = std::fs::read(&tls.ca)
                    .map_err(|e| TestkitError::io(format!("reading CA {}", tls.ca.display()), e))?;
                Ok(redis::Client::build_with_tls(
                    info,
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(root),
                    },
                )?)
            }
        }
    }

    /// A synchronous connection logged in as ACL user `user`.
    pub fn connection_as(&self, user: &str, password: &str) -> Result<redis::Connection> {
        let client = self.client(Some((user, password)))?;
        Ok(client.get_connection_with_timeout(Duration::from_secs(5))?)
    }

    /// `ACL SETUSER user on >password ~* &* +@all` (as the default user): an
    /// ACL user with every right, for tests of username/password logins.
    pub fn acl_setuser(&self, user: &str, password: &str) {
        let mut conn = self
            .connection()
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.url()));
        let _: () = redis::cmd("ACL")
            .arg("SETUSER")
            .arg(user)
            .arg("on")
            .arg(format!(">{password}"))
            .arg("~*")
            .arg("&*")
            .arg("+@all")
            .query(&mut conn)
            .unwrap_or_else(|e| panic!("ACL SETUSER {user} on {}: {e}", self.url()));
    }

    /// The server's port (kept across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server with `SIGKILL` (its data is gone: no persistence).
    pub fn stop(&mut self) {
        if let Some(p) = self.process.take() {
            p.kill();
        }
    }

    /// Starts it again on the same port (empty), waiting until `PING` answers.
    pub fn start(&mut self) {
        if self.process.as_mut().is_some_and(|p| p.exited().is_none()) {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.try_start() {
                Ok(()) => return,
                Err(e) if Instant::now() >= deadline => {
                    panic!("restarting redis-server on port {}: {e}", self.port)
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        tail(&self.log, 40)
    }

    fn try_start(&mut self) -> Result<()> {
        let mut cmd = Command::new("redis-server");
        match &self.tls {
            None => {
                cmd.args(["--port", &self.port.to_string()]);
            }
            Some(tls) => {
                cmd.args(["--port", "0"])
                    .args(["--tls-port", &self.port.to_string()])
                    .arg("--tls-cert-file")
                    .arg(&tls.server.cert)
                    .arg("--tls-key-file")
                    .arg(&tls.server.key)
                    .arg("--tls-ca-cert-file")
                    .arg(&tls.ca)
                    .args(["--tls-auth-clients", "no"]);
            }
        }
        cmd.args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.args)
            .current_dir(self.dir.path());
        self.process = Some(Guarded::spawn(cmd, "redis-server", &self.log)?);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.process.as_mut().and_then(Guarded::exited) {
                self.process = None;
                return Err(TestkitError::Exited {
                    what: format!("redis-server on port {}", self.port),
                    status: status.to_string(),
                    log_tail: self.log_tail(),
                });
            }
            if self.ping() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                if let Some(p) = self.process.take() {
                    p.kill();
                }
                return Err(TestkitError::Timeout {
                    what: format!("redis-server on port {} to answer PING", self.port),
                    after: Duration::from_secs(10),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl RedisServer {
    /// A synchronous connection to this server (DB 0).
    pub fn connection(&self) -> Result<redis::Connection> {
        if self.tls.is_none() {
            let client = redis::Client::open(self.url().as_str())?;
            return Ok(client.get_connection_with_timeout(Duration::from_secs(5))?);
        }
        let client = self.client(None)?;
        Ok(client.get_connection_with_timeout(Duration::from_secs(5))?)
    }

    /// `PING` answers `PONG` (through TLS for a TLS server).
    fn ping(&self) -> bool {
        if self.tls.is_none() {
            return ping(&self.url());
        }
        self.client(None)
            .ok()
            .and_then(|c| {
                c.get_connection_with_timeout(Duration::from_millis(500))
                    .ok()
            })
            .and_then(|mut conn| redis::cmd("PING").query::<String>(&mut conn).ok())
            .is_some_and(|pong| pong == "PONG")
    }

    /// How often `command` (lower case, e.g. `"zscan"`) ran on this server since it started
    /// or since [`RedisServer::reset_stats`], from `INFO commandstats`; 0 if never. A private
    /// server makes this exact: nothing else talks to it.
    pub fn command_calls(&self, command: &str) -> u64 {
        let mut conn = self
            .connection()
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.url()));
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut conn)
            .unwrap_or_else(|e| panic!("INFO commandstats on {}: {e}", self.url()));
        command_calls(&info, command)
    }

    /// `CONFIG RESETSTAT`: zeroes the command statistics.
    pub fn reset_stats(&self) {
        let mut conn = self
            .connection()
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.url()));
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query(&mut conn)
            .unwrap_or_else(|e| panic!("CONFIG RESETSTAT on {}: {e}", self.url()));
    }
}

/// `calls=` of `cmdstat_<command>` in an `INFO commandstats` reply.
fn command_calls(info: &str, command: &str) -> u64 {
    let prefix = format!("cmdstat_{}:", command.to_ascii_lowercase());
    info.lines()
        .find_map(|l| l.trim().strip_prefix(prefix.as_str()))
        .and_then(|fields| {
            fields
                .split(',')
                .find_map(|f| f.strip_prefix("calls="))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod command_stats_tests {
    #[test]
    fn parses_commandstats() {
        let info = "# Commandstats\r\ncmdstat_zscan:calls=52,usec=900,usec_per_call=17.31,rejected_calls=0,failed_calls=0\r\ncmdstat_zscore:calls=1,usec=2\r\n";
        assert_eq!(super::command_calls(info, "zscan"), 52);
        assert_eq!(super::command_calls(info, "ZSCORE"), 1);
        assert_eq!(super::command_calls(info, "zrange"), 0);
    }
}
