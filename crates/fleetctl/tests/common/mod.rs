//! Shared helpers for fleetctl's end-to-end tests: real broker (tansu), real Redis, the real
//! `fleetctl` binary as a child process.
#![allow(dead_code)]

pub mod faults;
pub mod tmpfs;

#[allow(unused_imports)] // used by the full-disk tests only
pub use tmpfs::{Tmpfs, is_root};

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn fleetctl() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fleetctl"));
    c.env("FLEETDASH_LOG", "info")
        .env_remove("FLEETDASH_CONFIG");
    c
}

/// A temp dir with a config file in it.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Env {
    /// Writes `toml` (with `{store}` replaced by the cache path) as the config.
    pub fn new(toml: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("fleetdash.toml");
        let store = dir.path().join("cache.sqlite");
        std::fs::write(
            &config,
            toml.replace("{store}", &store.display().to_string()),
        )
        .unwrap();
        Env { dir, config }
    }

    /// Runs `fleetctl ARGS --config F` and returns its `--json` output; panics with stderr on
    /// failure.
    pub fn run_json(&self, args: &[&str]) -> Value {
        let out = fleetctl()
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .arg("--json")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "fleetctl {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "bad JSON from fleetctl {args:?}: {e}: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// `fleetctl ingest --idle-exit SECS --json`.
    pub fn ingest_until_idle(&self, secs: f64) -> Value {
        self.run_json(&["ingest", "--idle-exit", &secs.to_string()])
    }

    /// `fleetctl stats --json`.
    pub fn stats(&self) -> Value {
        self.run_json(&["stats"])
    }

    /// Starts `fleetctl ingest` in the background (stderr to a log file in the temp dir).
    /// The guard kills it if the test fails before stopping it.
    pub fn spawn_ingest(&self, extra: &[&str]) -> Guard {
        self.spawn_ingest_with_env(extra, &[])
    }

    /// Like [`Env::spawn_ingest`] with extra environment variables.
    pub fn spawn_ingest_with_env(&self, extra: &[&str], vars: &[(&str, &str)]) -> Guard {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        fleetctl()
            .arg("ingest")
            .arg("--config")
            .arg(&self.config)
            .args(extra)
            .envs(vars.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map(Guard)
            .unwrap()
    }

    /// Where spawned ingests log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("ingest.log")
    }

    /// The ingest log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The cache file.
    pub fn cache(&self) -> PathBuf {
        self.dir.path().join("cache.sqlite")
    }

    /// Polls `stats` until `pred` holds, or panics after `timeout`.
    pub fn wait_stats(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.stats();
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last stats {s}\nlog:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// A child process that is killed when dropped, so a failing test leaves nothing running.
pub struct Guard(pub Child);

impl std::ops::Deref for Guard {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Guard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Sends SIGINT (the clean-shutdown path) and waits for exit.
pub fn interrupt(child: &mut Child) -> std::process::ExitStatus {
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status();
    wait_timeout(child, Duration::from_secs(30))
}

/// SIGKILL: a crash, with no chance to flush anything.
pub fn kill9(child: &mut Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Waits for a child or panics.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("child did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Keep-everything history, so cache contents can be compared with what was produced.
pub const KEEP_ALL: &str = "[history]\nmin_distance_m = 0\nmin_interval_s = 0\n";

/// A Kafka section for `brokers` with the given (topic, kind) pairs, starting at earliest.
pub fn kafka_section(brokers: &str, topics: &[(&str, &str)]) -> String {
    let mut s = format!(
        "[kafka]\nbrokers = \"{brokers}\"\ngroup_id = \"test-{}\"\nstart = \"earliest\"\nbatch_max_ms = 20\n",
        std::process::id()
    );
    for (name, kind) in topics {
        s.push_str(&format!(
            "\n[[kafka.topics]]\nname = \"{name}\"\nkind = \"{kind}\"\n"
        ));
    }
    s
}

/// Opens the cache read-only-ish for direct checks.
pub fn query_i64(cache: &Path, sql: &str) -> i64 {
    let out = Command::new("sqlite3").arg(cache).arg(sql).output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse()
            .unwrap_or(-1),
        _ => panic!("sqlite3 CLI needed for this check (apt-get install sqlite3)"),
    }
}

/// A base timestamp one hour ago: recent enough that the cache's retention keeps it.
pub fn recent_base_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Whole seconds, so tests can compute exact expectations.
    (now - 3_600_000) / 1000 * 1000
}

/// The cache's `schema_drift` alerts (`fleetctl alerts`).
pub fn drift_alerts(env: &Env) -> Vec<Value> {
    let all = env.run_json(&["alerts"]);
    (all["alerts"].as_array().unwrap().iter())
        .filter(|a| a["rule"] == "schema_drift")
        .cloned()
        .collect()
}
