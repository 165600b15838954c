//! A private desktop session per window test: its own D-Bus session bus, a real
//! notification daemon (dunst, from Debian) on the test's X display, and `dbus-monitor`
//! recording every `Notify` call on that bus — so a test sees the desktop notifications the
//! app really sent and that a daemon accepted them, not only what the app says it sent.

use crate::{E2eError, Guard, spawn, spawn_announcing};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A session bus with a notification daemon, stopped on drop.
pub struct Desktop {
    address: String,
    monitor_log: PathBuf,
    // Dropped in reverse order of start: monitor and daemon before the bus.
    _monitor: Guard,
    _dunst: Guard,
    _bus: Guard,
}

impl Desktop {
    /// Starts `dbus-daemon --session` with its socket in `dir`, dunst on `display` and the
    /// monitor; returns once the daemon owns `org.freedesktop.Notifications`.
    pub fn start(display: &str, dir: &Path) -> Result<Desktop, E2eError> {
        let socket = dir.join("session-bus");
        let config = dir.join("session-bus.conf");
        // No service activation (see `session_bus_config`): only what a test starts is on it.
        std::fs::write(&config, fleet_testkit::session_bus_config(&socket)).map_err(|source| {
            E2eError::Spawn {
                what: "the session bus config".into(),
                source,
            }
        })?;
        let (bus, address) = spawn_announcing(
            Command::new("dbus-daemon")
                .arg(format!("--config-file={}", config.display()))
                .args(["--nofork", "--print-address=1"])
                .stderr(Stdio::null()),
            "dbus-daemon (apt: dbus)",
        )?;
        let dunst = Guard(spawn(
            Command::new("dunst")
                .env("DISPLAY", display)
                .env("DBUS_SESSION_BUS_ADDRESS", &address)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            "dunst (apt: dunst)",
        )?);
        let monitor_log = dir.join("notify-calls.log");
        let log = std::fs::File::create(&monitor_log).map_err(|source| E2eError::Spawn {
            what: "the dbus-monitor log".into(),
            source,
        })?;
        let monitor = Guard(spawn(
            Command::new("dbus-monitor")
                .args(["--address", &address])
                .arg("type='method_call',interface='org.freedesktop.Notifications',member='Notify'")
                .stdout(log)
                .stderr(Stdio::null()),
            "dbus-monitor (apt: dbus)",
        )?);
        let desktop = Desktop {
            address,
            monitor_log,
            _monitor: monitor,
            _dunst: dunst,
            _bus: bus,
        };
        desktop.wait_for_daemon()?;
        Ok(desktop)
    }

    fn wait_for_daemon(&self) -> Result<(), E2eError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.dunstctl(&["count", "displayed"]).is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(E2eError::Missing(
            "dunst did not take org.freedesktop.Notifications within 10 s".into(),
        ))
    }

    fn dunstctl(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("dunstctl")
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// `DBUS_SESSION_BUS_ADDRESS` for the app.
    pub fn bus_address(&self) -> &str {
        &self.address
    }

    /// The summaries (titles) of every `Notify` call seen on the bus, in order.
    pub fn notified_summaries(&self) -> Vec<String> {
        let log = std::fs::read_to_string(&self.monitor_log).unwrap_or_default();
        summaries(&log)
    }

    /// Notifications the daemon holds: shown now, queued, or in its history.
    pub fn daemon_count(&self) -> u32 {
        ["displayed", "waiting", "history"]
            .iter()
            .filter_map(|k| self.dunstctl(&["count", k])?.parse::<u32>().ok())
            .sum()
    }
}

/// `Notify(app_name, replaces_id, app_icon, summary, body, …)`: the summary is the third
/// string argument after each call header in dbus-monitor's output.
fn summaries(log: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut strings: Option<Vec<String>> = None;
    for line in log.lines() {
        if line.starts_with("method call") {
            strings = line.contains("member=Notify").then(Vec::new);
            continue;
        }
        let Some(args) = strings.as_mut() else {
            continue;
        };
        if let Some(s) = line.trim().strip_prefix("string \"") {
            args.push(s.strip_suffix('"').unwrap_or(s).to_string());
            if args.len() == 3 {
                found.push(args[2].clone());
                strings = None;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::summaries;

    #[test]
    fn reads_the_summary_of_each_notify_call() {
        let log = r#"signal time=1 sender=org.freedesktop.DBus -> destination=:1.0 member=NameAcquired
   string ":1.0"
method call time=2 sender=:1.3 -> destination=org.freedesktop.Notifications serial=7 path=/org/freedesktop/Notifications; interface=org.freedesktop.Notifications; member=Notify
   string "fleetdash"
   uint32 0
   string ""
   string "Critical: engine overheating"
   string "veh-crit"
   array [
   ]
method call time=3 sender=:1.3 -> destination=org.freedesktop.Notifications serial=8 path=/org/freedesktop/Notifications; interface=org.freedesktop.Notifications; member=Notify
   string "fleetdash"
   uint32 0
   string "dialog-warning"
   string "2 new alerts"
   string "body"
"#;
        assert_eq!(
            summaries(log),
            vec!["Critical: engine overheating", "2 new alerts"]
        );
    }
}
