//! `fleetdash`: the desktop app. A thin shell: it finds the config (SPEC §3) or starts the
//! embedded demo, runs fleet-core's engine, and serves the window through the commands in
//! [`commands`] and one batched frame stream ([`stream`]).

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod error;
mod host;
mod memory;
mod settings;
mod stream;
mod watch;
mod webview;

use clap::Parser;
use fleet_core::Config;
use host::{Host, Mode};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tauri::Manager;
use tracing::{error, info};

/// The fleetdash desktop app.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Config file (else `$FLEETDASH_CONFIG`, else the per-user default; none = the demo).
    #[arg(long)]
    config: Option<PathBuf>,
}

fn main() {
    memory::bound_malloc_arenas();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tao=warn,wry=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    // A broken config is not fatal: the window opens, says what is wrong, and Settings can
    // fix it. `--config` pointing at nothing is a usage error, though.
    let mode = match Config::discover(args.config.as_deref()) {
        Ok(Some((cfg, path))) => Some(Mode::File(path, Box::new(cfg))),
        Ok(None) => Some(Mode::Demo),
        Err(e @ fleet_core::config::ConfigError::Missing { .. }) => {
            eprintln!("fleetdash: {e}");
            std::process::exit(2);
        }
        Err(e) => {
            error!(error = %e, "config");
            eprintln!("fleetdash: {e}");
            None
        }
    };
    let host = Arc::new(Host::default());
    let streams = Arc::new(stream::Streams::default());
    let notices = Arc::new(watch::NoticeLog::default());
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_notification::init())
        .manage(host.clone())
        .manage(streams)
        .manage(notices.clone())
        .manage::<commands::Settings>(Mutex::new(settings::AppSettings::load()))
        .invoke_handler(tauri::generate_handler![
            commands::subscribe,
            commands::set_viewport,
            commands::select_vehicle,
            commands::search_vehicles,
            commands::vehicle_trail,
            commands::quarantine_list,
            commands::ack_alert,
            commands::set_alert_filter,
            commands::alert_rules,
            commands::recent_notifications,
            commands::app_status,
            commands::load_settings,
            commands::save_settings,
        ])
        .setup(move |app| {
            let host = app.state::<Arc<Host>>().inner().clone();
            watch::spawn(app.handle().clone(), host.clone(), notices);
            webview::tune(app.handle());
            if let Some(mode) = mode {
                tauri::async_runtime::spawn(async move {
                    if let Err(e) = host.switch(mode).await {
                        error!(error = %e, "engine did not start");
                    }
                });
            }
            Ok(())
        })
        .build(tauri::generate_context!());
    let app = match app {
        Ok(a) => a,
        Err(e) => {
            eprintln!("fleetdash: cannot open the window: {e}");
            std::process::exit(1);
        }
    };
    app.run(move |_, event| {
        if let tauri::RunEvent::Exit = event {
            info!("shutting down: committing what was consumed");
            let host = host.clone();
            tauri::async_runtime::block_on(async move { host.shutdown().await });
        }
    });
}
