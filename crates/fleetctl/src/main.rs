//! `fleetctl`: the headless companion of the fleetdash desktop app (SPEC §4).
//!
//! Progress goes to stderr; with `--json` one JSON object goes to stdout at the end.
//! Exit codes: 0 success, 2 bad usage or config, 1 runtime failure (one-line reason).

mod cli;
mod cmd;
mod error;
mod rss;

use clap::Parser;
use error::CliError;
use std::io::Write;

fn main() {
    let args = cli::Cli::parse();
    // The long-running pipelines also log to a daily file; one-shot commands only to stderr.
    let to_file = matches!(
        args.command,
        cli::Command::Ingest(_) | cli::Command::Demo(_)
    );
    let log_guard = init_tracing(args.verbose, to_file);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            drop(log_guard);
            exit(CliError::Runtime(format!("cannot start runtime: {e}")))
        }
    };
    let json = args.command.json();
    let result = rt.block_on(cmd::run(args.command));
    // `exit` skips destructors: flush the log file first.
    drop(log_guard);
    match result {
        Ok(out) => {
            // A reader that stopped early (`| head`) is not an error worth a panic.
            if json {
                let _ = writeln!(std::io::stdout().lock(), "{out}");
            }
        }
        Err(e) => exit(e),
    }
}

fn exit(e: CliError) -> ! {
    eprintln!("fleetctl: {e}");
    std::process::exit(e.code())
}

/// Logs to stderr, and with `to_file` to a daily `fleetctl.YYYY-MM-DD.log` too
/// (`fleet_core::logs`); the guard flushes the file.
fn init_tracing(verbose: u8, to_file: bool) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let default = match verbose {
        0 => "info,rdkafka=warn,sqlx=warn",
        1 => "debug,rdkafka=info,sqlx=warn",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLEETDASH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let (file, problem) = match to_file
        .then(|| fleet_core::logs::daily_file("fleetctl"))
        .flatten()
    {
        Some(Ok((appender, _))) => (Some(tracing_appender::non_blocking(appender)), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    let (file_layer, guard) = match file {
        Some((writer, guard)) => (
            Some(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_target(false)
                    .with_writer(writer),
            ),
            Some(guard),
        ),
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .compact(),
        )
        .with(file_layer)
        .init();
    if let Some(p) = problem {
        tracing::warn!("no log file, stderr only: {p}");
    }
    guard
}
