//! Bounded malloc arenas for the shell and its WebKit processes.
//!
//! glibc gives every thread that contends on malloc its own arena (up to 8 per core) and
//! rarely hands freed arena memory back. The shell runs tokio, librdkafka and SQLite threads,
//! and WebKit's web process many more, so at 20,000 vehicles each process held 40–80 MB of
//! freed-but-kept heap (measured with `./dev bench ui`: all processes together 759 → 645 MB
//! with two arenas, no change in frame rate or latency).
//!
//! glibc reads `MALLOC_ARENA_MAX` once, when the process starts, and WebKit's processes
//! inherit the shell's environment, so the shell re-executes itself once with the variable
//! set. A value the user set is kept as is.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
const VAR: &str = "MALLOC_ARENA_MAX";
/// Two arenas: the UI thread and one shared by the rest.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: &str = "2";

/// Re-executes the running binary with bounded arenas unless already set; returns (and the
/// app runs with glibc's defaults) if that is impossible. Call first thing in `main`, before
/// any thread starts.
pub fn bound_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        if std::env::var_os(VAR).is_some() {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let err = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env(VAR, ARENAS)
            .exec();
        // Only reached when exec failed; the app still works, with more memory.
        eprintln!("fleetdash: could not restart with {VAR}={ARENAS}: {err}");
    }
}
