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

fn main() {
    let args = cli::Cli::parse();
    init_tracing(args.verbose);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => exit(CliError::Runtime(format!("cannot start runtime: {e}"))),
    };
    let json = args.command.json();
    match rt.block_on(cmd::run(args.command)) {
        Ok(out) => {
            if json {
                println!("{out}");
            }
        }
        Err(e) => exit(e),
    }
}

fn exit(e: CliError) -> ! {
    eprintln!("fleetctl: {e}");
    std::process::exit(e.code())
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "info,rdkafka=warn,sqlx=warn",
        1 => "debug,rdkafka=info,sqlx=warn",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLEETDASH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .compact()
        .init();
}
