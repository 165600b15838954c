//! Child processes that never outlive the test that started them.
//!
//! Each service (broker, Redis) runs in its own process group, so a kill
//! reaches any child it may spawn. Because a test process can die without
//! running destructors (a nextest timeout, `SIGKILL`, `abort`), every service
//! also gets a tiny watchdog shell whose stdin is a pipe from the test process:
//! when the test process goes away for any reason, the pipe closes, `read`
//! returns and the watchdog kills the service's process group. Without it an
//! orphaned broker would keep running after a timed-out test.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use crate::error::{Result, TestkitError};

/// A running service process and its watchdog.
#[derive(Debug)]
pub(crate) struct Guarded {
    child: Child,
    watchdog: Option<Child>,
}

impl Guarded {
    /// Spawns `cmd` in a new process group with stdin closed and stdout and
    /// stderr appended to `log`.
    pub(crate) fn spawn(cmd: Command, what: &str, log: &Path) -> Result<Self> {
        Self::spawn_fed(cmd, what, log, None)
    }

    /// [`Guarded::spawn`], with `input` written to the process's stdin, which is then
    /// closed (a daemon that reads a password until end of file).
    pub(crate) fn spawn_fed(
        mut cmd: Command,
        what: &str,
        log: &Path,
        input: Option<&[u8]>,
    ) -> Result<Self> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| TestkitError::io(format!("opening log {}", log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| TestkitError::io("duplicating log file handle", e))?;
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .process_group(0);
        let mut child = cmd
            .spawn()
            .map_err(|e| TestkitError::io(format!("spawning {what} ({cmd:?})"), e))?;
        let watchdog = spawn_watchdog(child.id());
        let fed = match (input, child.stdin.take()) {
            (Some(bytes), Some(mut stdin)) => std::io::Write::write_all(&mut stdin, bytes)
                .map_err(|e| TestkitError::io(format!("writing to {what}'s stdin"), e)),
            _ => Ok(()),
        };
        let guarded = Self { child, watchdog };
        fed?;
        Ok(guarded)
    }

    /// The process id, which is also the process group id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once the process has exited.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Kills the whole process group with `SIGKILL` (an abrupt crash, on
    /// purpose: fault tests rely on no graceful shutdown happening) and reaps it.
    pub(crate) fn kill(mut self) {
        self.kill_in_place();
    }

    fn kill_in_place(&mut self) {
        kill_group(self.child.id());
        // Make sure the leader is gone even if the group kill failed (no `sh`).
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if self.watchdog.is_some() || self.child.try_wait().ok().flatten().is_none() {
            self.kill_in_place();
        }
    }
}

/// Sends `SIGKILL` to process group `pgid` through the shell's `kill` builtin
/// (the crate forbids `unsafe`, so no direct `kill(2)`; `/usr/bin/kill` is not
/// installed on minimal Debian images, `sh` always is).
fn kill_group(pgid: u32) {
    let _ = Command::new("sh")
        .args([
            "-c",
            "kill -9 -\"$1\" 2>/dev/null",
            "fleetdash-testkit-kill",
        ])
        .arg(pgid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn spawn_watchdog(pgid: u32) -> Option<Child> {
    Command::new("sh")
        .args([
            "-c",
            "read -r _; kill -9 -\"$1\" 2>/dev/null; exit 0",
            "fleetdash-testkit-watchdog",
        ])
        .arg(pgid.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| tracing::warn!("could not start watchdog for process group {pgid}: {e}"))
        .ok()
}

/// The last `lines` lines of a log file (empty if it does not exist).
///
/// Reads at most the final 64 KiB so a chatty service does not slow down a
/// failing test's panic message.
pub(crate) fn tail(path: &PathBuf, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let all: Vec<String> = BufReader::new(file)
        .split(b'\n')
        .map_while(|l| l.ok())
        .map(|l| String::from_utf8_lossy(&l).into_owned())
        .collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
