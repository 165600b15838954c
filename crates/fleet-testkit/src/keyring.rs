//! A real Secret Service — GNOME Keyring's daemon, from Debian — on a private D-Bus session
//! bus, for tests of `keyring:NAME` secrets.
//!
//! Isolation: the daemon's `HOME`, `XDG_DATA_HOME` (where keyrings are stored),
//! `XDG_CONFIG_HOME` and `XDG_RUNTIME_DIR` are a temporary directory, and its environment
//! is otherwise empty, so the user's real keyring is never read or written. The private bus
//! started by [`Keyring::start`] has no service activation (a config file of its own), so
//! nothing else is ever started on it behind the test's back.
//!
//! The keyring is created and unlocked at start (`--unlock`, a password on stdin): a locked
//! keyring would make every client wait for a password prompt no one answers.
//!
//! Tests hand [`Keyring::bus_address`] to the processes under test as
//! `DBUS_SESSION_BUS_ADDRESS`; the test process's own environment is never changed.
//! [`Keyring::store`] and [`Keyring::lookup`] go through `secret-tool` (libsecret, apt:
//! libsecret-tools), a client independent of the code under test.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Result, TestkitError};
use crate::process::{Guarded, tail};

/// The keyring service fleetdash stores its entries under.
pub const KEYRING_SERVICE: &str = "fleetdash";

/// How long the daemon may take to own `org.freedesktop.secrets`.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// A running, unlocked Secret Service; everything is stopped on drop.
pub struct Keyring {
    address: String,
    log: PathBuf,
    // Dropped in order: the daemon before its bus, then the directory.
    daemon: Guarded,
    _bus: Option<Guarded>,
    _dir: tempfile::TempDir,
}

impl Keyring {
    /// Starts a private session bus and the daemon on it. Panics if they do not start.
    pub fn start() -> Keyring {
        Self::try_start(None).unwrap_or_else(|e| panic!("starting a Secret Service: {e}"))
    }

    /// Starts the daemon on an existing session bus (a window test's desktop session).
    pub fn start_on(bus_address: &str) -> Keyring {
        Self::try_start(Some(bus_address))
            .unwrap_or_else(|e| panic!("starting a Secret Service on {bus_address}: {e}"))
    }

    /// [`Keyring::start`] / [`Keyring::start_on`] returning the error.
    pub fn try_start(bus_address: Option<&str>) -> Result<Keyring> {
        let dir = tempfile::Builder::new()
            .prefix("fleetdash-keyring-")
            .tempdir()
            .map_err(|e| TestkitError::io("creating the keyring's directory", e))?;
        let log = dir.path().join("keyring.log");
        let (bus, address) = match bus_address {
            Some(a) => (None, a.to_string()),
            None => {
                let (bus, address) = private_bus(dir.path(), &log)?;
                (Some(bus), address)
            }
        };
        let home = dir.path().join("home");
        let runtime = dir.path().join("run");
        for d in [&home, &runtime] {
            std::fs::create_dir_all(d)
                .map_err(|e| TestkitError::io(format!("creating {}", d.display()), e))?;
        }
        let mut cmd = Command::new("gnome-keyring-daemon");
        cmd.args(["--unlock", "--components=secrets", "--foreground"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("DBUS_SESSION_BUS_ADDRESS", &address);
        let daemon = Guarded::spawn_fed(
            cmd,
            "gnome-keyring-daemon (apt: gnome-keyring)",
            &log,
            Some(b"fleetdash-test-keyring"),
        )?;
        let mut keyring = Keyring {
            address,
            log,
            daemon,
            _bus: bus,
            _dir: dir,
        };
        keyring.wait_ready()?;
        Ok(keyring)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.daemon.exited() {
                return Err(TestkitError::Exited {
                    what: "gnome-keyring-daemon".into(),
                    status: status.to_string(),
                    log_tail: tail(&self.log, 20),
                });
            }
            if self.secrets_owned() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(TestkitError::Timeout {
                    what: format!(
                        "org.freedesktop.secrets to be owned on {}; log:\n{}",
                        self.address,
                        tail(&self.log, 20)
                    ),
                    after: READY_TIMEOUT,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn secrets_owned(&self) -> bool {
        Command::new("dbus-send")
            .args(["--print-reply", "--dest=org.freedesktop.DBus"])
            .arg(format!("--bus={}", self.address))
            .args([
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                "string:org.freedesktop.secrets",
            ])
            .stderr(Stdio::null())
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("boolean true"))
    }

    /// `DBUS_SESSION_BUS_ADDRESS` for the processes under test.
    pub fn bus_address(&self) -> &str {
        &self.address
    }

    /// Stores `secret` as entry `name` of service [`KEYRING_SERVICE`] (with `secret-tool`).
    pub fn store(&self, name: &str, secret: &str) {
        let mut child = self
            .secret_tool()
            .args(["store", "--label", &format!("fleetdash {name}")])
            .args(["service", KEYRING_SERVICE, "username", name])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("secret-tool (apt: libsecret-tools): {e}"));
        if let Some(mut stdin) = child.stdin.take() {
            std::io::Write::write_all(&mut stdin, secret.as_bytes()).expect("secret-tool stdin");
        }
        let out = child.wait_with_output().expect("secret-tool store");
        assert!(
            out.status.success(),
            "secret-tool store {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Entry `name` of service [`KEYRING_SERVICE`], if there is one (with `secret-tool`).
    pub fn lookup(&self, name: &str) -> Option<String> {
        let out = self
            .secret_tool()
            .args(["lookup", "service", KEYRING_SERVICE, "username", name])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("secret-tool (apt: libsecret-tools): {e}"));
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn secret_tool(&self) -> Command {
        let mut c = Command::new("secret-tool");
        c.env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }
}

/// A `dbus-daemon --config-file` for a session bus listening on `socket`, with no service
/// activation: only what a test starts is on it. Debian's activatable GNOME Keyring, say,
/// would otherwise start locked on the first `org.freedesktop.secrets` call, own the name
/// before the test's unlocked one and wait on an unlock prompt nobody answers.
pub fn session_bus_config(socket: &Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <keep_umask/>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
        socket.display()
    )
}

/// A session bus of its own, without service activation; returns it and its address.
fn private_bus(dir: &Path, log: &Path) -> Result<(Guarded, String)> {
    let socket = dir.join("bus");
    let config = dir.join("bus.conf");
    std::fs::write(&config, session_bus_config(&socket))
        .map_err(|e| TestkitError::io("writing the bus config", e))?;
    let mut cmd = Command::new("dbus-daemon");
    cmd.args(["--nofork", "--nopidfile"])
        .arg(format!("--config-file={}", config.display()));
    let mut bus = Guarded::spawn(cmd, "dbus-daemon (apt: dbus)", log)?;
    let deadline = Instant::now() + READY_TIMEOUT;
    while !socket.exists() {
        if let Some(status) = bus.exited() {
            return Err(TestkitError::Exited {
                what: "dbus-daemon".into(),
                status: status.to_string(),
                log_tail: tail(&log.to_path_buf(), 20),
            });
        }
        if Instant::now() > deadline {
            return Err(TestkitError::Timeout {
                what: format!("dbus-daemon's socket {}", socket.display()),
                after: READY_TIMEOUT,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((bus, format!("unix:path={}", socket.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_keyring_stores_and_finds_entries_and_stops() {
        let k = Keyring::start();
        assert_eq!(k.lookup("absent"), None);
        k.store("e", "s3cret value");
        assert_eq!(k.lookup("e").as_deref(), Some("s3cret value"));
        let dir = k._dir.path().to_path_buf();
        drop(k);
        // The daemon, the bus and their directory are gone with the guard.
        assert!(!dir.exists());
    }
}
