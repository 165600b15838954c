//! `fleetdash`: the desktop app. A thin shell: it finds the config (SPEC §3) or starts the
//! embedded demo, runs fleet-core's engine, and serves the window through the commands in
//! [`commands`] and one batched frame stream ([`stream`]).

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod error;
mod fleet_rates;
mod history_cmds;
mod host;
mod memory;
mod replay;
mod rule_settings;
mod save_dialog;
mod secret_settings;
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
use tracing::{debug, error, info};

/// The fleetdash desktop app.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Config file (else `$FLEETDASH_CONFIG`, else the per-user default; none = the demo).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The save dialog's child mode ([`save_dialog`]).
    #[command(flatten)]
    save: save_dialog::SaveDialogArgs,
}

/// Logs to stderr and to a daily file `fleetdash.YYYY-MM-DD.log` (`fleet_core::logs`). The guard flushes the file when dropped. A log directory that
/// cannot be made leaves stderr only, with a warning.
fn init_logging() -> Option<tracing_appender::non_blocking::WorkerGuard> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,tao=warn,wry=warn".into());
    let mut problem = None;
    let file = match fleet_core::logs::daily_file("fleetdash") {
        Some(Ok((appender, dir))) => Some((tracing_appender::non_blocking(appender), dir)),
        Some(Err(e)) => {
            problem = Some(e);
            None
        }
        None => None,
    };
    let (file_layer, guard, dir) = match file {
        Some(((writer, guard), dir)) => (
            Some(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(writer),
            ),
            Some(guard),
            Some(dir),
        ),
        None => (None, None, None),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_writer(std::io::stderr),
        )
        .with(file_layer)
        .init();
    match (dir, problem) {
        (Some(dir), _) => info!(dir = %dir.display(), "logging to a daily file"),
        (None, Some(p)) => tracing::warn!("no log file, stderr only: {p}"),
        (None, None) => {}
    }
    guard
}

fn main() {
    memory::bound_malloc_arenas();
    let args = Args::parse();
    // The save dialog's child: before logging, the single-instance hand-over and the engine.
    if let Some(name) = &args.save.save_dialog {
        save_dialog::run_child(name, &args.save);
    }
    let mut log_guard = init_logging();
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
        // First, so a second launch hands over before it builds anything: the running
        // window comes to the front and the second process exits (it would otherwise be a
        // second engine on the same cache).
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            info!("fleetdash was launched again: bringing this window to the front");
            if let Some(w) = app.get_webview_window("main") {
                let _ = w.unminimize();
                let _ = w.show();
                let _ = w.set_focus();
            }
        }))
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
            commands::vehicle_groups,
            commands::vehicle_devices,
            commands::ack_alerts,
            commands::snooze_alerts,
            commands::vehicle_trail,
            commands::quarantine_list,
            commands::ack_alert,
            commands::set_alert_filter,
            commands::alert_rules,
            commands::recent_notifications,
            commands::app_status,
            commands::load_settings,
            commands::save_settings,
            history_cmds::replay_start,
            history_cmds::replay_control,
            history_cmds::replay_stop,
            history_cmds::vehicle_history,
            history_cmds::vehicle_fields,
            history_cmds::export_vehicle,
            history_cmds::export_chart,
            history_cmds::fleet_chart,
        ])
        .setup(move |app| {
            open_window(app.handle())?;
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
            // The process exits from inside the event loop: flush the log file now.
            drop(log_guard.take());
        }
    });
}

/// Opens the main window (`create: false` in tauri.conf.json) with a hook on the app's own
/// responses: the page's CSP lets images load from the configured tile host only. The host
/// is known at run time and changes with Settings (which reloads the page), so the
/// compile-time policy's `img-src` (`'self' data: blob:`) is rewritten per page load from
/// the current settings.
fn open_window(app: &tauri::AppHandle) -> tauri::Result<()> {
    let Some(config) = app.config().app.windows.iter().find(|w| w.label == "main") else {
        return Ok(());
    };
    let handle = app.clone();
    tauri::WebviewWindowBuilder::from_config(app, config)?
        .on_web_resource_request(move |_request, response| {
            let csp = tauri::http::header::CONTENT_SECURITY_POLICY;
            let Some(policy) = response.headers().get(&csp).and_then(|v| v.to_str().ok()) else {
                return;
            };
            let tiles = handle
                .state::<commands::Settings>()
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .tile_url
                .clone();
            let policy = settings::with_img_src(policy, &settings::img_src(&tiles));
            match tauri::http::HeaderValue::from_str(&policy) {
                Ok(v) => {
                    debug!(%policy, "page content security policy");
                    response.headers_mut().insert(csp, v);
                }
                Err(e) => error!(error = %e, "content security policy not updated"),
            }
        })
        .build()?;
    Ok(())
}
