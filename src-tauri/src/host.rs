//! Owns the running engine: starts it from the SPEC §3 config lookup (or the embedded demo
//! when there is no config), and restarts it with a new config from Settings without
//! restarting the app. The frame stream reads the current engine through [`Host::current`].

use crate::error::AppError;
use fleet_core::config::AlertsConfig;
use fleet_core::demo::Demo;
use fleet_core::store::Committed;
use fleet_core::{Config, Engine, Live, Store};
use fleet_model::Alert;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Vehicles in the embedded demo (override with `FLEETDASH_DEMO_VEHICLES`).
const DEMO_VEHICLES: u32 = 600;

/// What the app runs against.
#[derive(Debug, Clone)]
pub enum Mode {
    /// No config anywhere: the in-process demo broker and simulator.
    Demo,
    /// A config file.
    File(PathBuf, Box<Config>),
}

/// What the frame stream and the commands need from the running engine; cheap to clone.
#[derive(Clone)]
pub struct Current {
    /// Live fleet state.
    pub live: Live,
    /// The cache.
    pub store: Store,
    /// Running the demo.
    pub demo: bool,
    /// Increases with every engine start, so streams can drop per-engine state (the rate
    /// history of the demo must not leak into the real fleet's sparkline).
    pub generation: u64,
    /// The cache writer's commits; `alerts_version` says when the alert feed changed.
    pub committed: tokio::sync::watch::Receiver<Committed>,
    /// `[alerts]`: escalation time and whether to notify the desktop.
    pub alerts: AlertsConfig,
    /// `fleet.stale_after_s`: a replayed fleet goes stale as the live one does.
    pub stale_after_s: f64,
}

/// A running engine plus whatever it depends on.
struct Running {
    engine: Engine,
    cancel: CancellationToken,
    /// The demo's thread (it owns the mock broker, which must stay on one thread).
    demo: Option<std::thread::JoinHandle<()>>,
}

/// The engine host, shared by all commands.
#[derive(Default)]
pub struct Host {
    current: RwLock<Option<Current>>,
    mode: RwLock<Option<Mode>>,
    error: RwLock<Option<String>>,
    starts: std::sync::atomic::AtomicU64,
    running: tokio::sync::Mutex<Option<Running>>,
}

impl Host {
    /// The running engine's handles, if one runs.
    pub fn current(&self) -> Option<Current> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The mode last started (or tried).
    pub fn mode(&self) -> Option<Mode> {
        self.mode.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Why the engine is not running, if it is not.
    pub fn error(&self) -> Option<String> {
        self.error.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Stops whatever runs and starts `mode`; on failure the error is kept for the status
    /// line and the app keeps running (so Settings can fix it).
    pub async fn switch(self: &Arc<Self>, mode: Mode) -> Result<(), AppError> {
        let mut running = self.running.lock().await;
        if let Some(r) = running.take() {
            *self.current.write().unwrap_or_else(|p| p.into_inner()) = None;
            stop(r).await;
        }
        *self.mode.write().unwrap_or_else(|p| p.into_inner()) = Some(mode.clone());
        let generation = self
            .starts
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        let result = start(&mode, generation).await;
        let err = result.as_ref().err().map(ToString::to_string);
        *self.error.write().unwrap_or_else(|p| p.into_inner()) = err;
        let (r, cur) = result?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(cur);
        *running = Some(r);
        Ok(())
    }

    /// Acknowledges an alert as this desktop's operator (cache + outbox → ack topic).
    pub async fn acknowledge(&self, alert_id: &str, note: &str) -> Result<Alert, AppError> {
        let running = self.running.lock().await;
        let r = running.as_ref().ok_or_else(|| {
            AppError::NotRunning(self.error().unwrap_or_else(|| "starting".into()))
        })?;
        Ok(r.engine.acknowledge(alert_id, note).await?)
    }

    /// Acknowledges a selection, or every open alert through `filter`, with one note.
    pub async fn acknowledge_many(
        &self,
        ids: Option<Vec<String>>,
        filter: &fleet_model::AlertFilter,
        note: &str,
    ) -> Result<u64, AppError> {
        let running = self.running.lock().await;
        let r = running.as_ref().ok_or_else(|| {
            AppError::NotRunning(self.error().unwrap_or_else(|| "starting".into()))
        })?;
        Ok(r.engine.acknowledge_many(ids, filter, note).await?)
    }

    /// Snoozes a rule's or a vehicle's alerts on every desk (0 minutes lifts it).
    pub async fn snooze(
        &self,
        kind: fleet_model::SnoozeKind,
        target: &str,
        minutes: f64,
    ) -> Result<fleet_model::Snooze, AppError> {
        let running = self.running.lock().await;
        let r = running.as_ref().ok_or_else(|| {
            AppError::NotRunning(self.error().unwrap_or_else(|| "starting".into()))
        })?;
        Ok(r.engine.snooze(kind, target, minutes).await?)
    }

    /// Stops the engine (app exit): commits what was consumed.
    pub async fn shutdown(&self) {
        if let Some(r) = self.running.lock().await.take() {
            stop(r).await;
        }
    }
}

async fn start(mode: &Mode, generation: u64) -> Result<(Running, Current), AppError> {
    let cancel = CancellationToken::new();
    let (cfg, demo) = match mode {
        Mode::File(path, cfg) => {
            info!(config = %path.display(), "starting the engine");
            // An unresolved `env:`/`keyring:` secret is an error shown in the window, not a
            // literal reference sent to the broker as a password.
            cfg.require_secrets(path)?;
            ((**cfg).clone(), None)
        }
        Mode::Demo => {
            let (cfg, thread) = start_demo(cancel.child_token())?;
            (cfg, Some(thread))
        }
    };
    let store = Store::open(&cfg.store_path()).await?;
    let engine = match Engine::start(&cfg, store.clone(), cancel.child_token()).await {
        Ok(e) => e,
        Err(e) => {
            cancel.cancel();
            if let Some(t) = demo {
                let _ = t.join();
            }
            return Err(e.into());
        }
    };
    let current = Current {
        live: engine.live().clone(),
        store,
        demo: demo.is_some(),
        generation,
        committed: engine.writer().committed(),
        alerts: cfg.alerts.clone(),
        stale_after_s: cfg.fleet.stale_after_s,
    };
    Ok((
        Running {
            engine,
            cancel,
            demo,
        },
        current,
    ))
}

/// Runs the demo broker and simulator on their own thread and runtime (librdkafka's mock
/// cluster is not `Send`), and hands back the config that points the engine at it.
fn start_demo(
    cancel: CancellationToken,
) -> Result<(Config, std::thread::JoinHandle<()>), AppError> {
    let vehicles = std::env::var("FLEETDASH_DEMO_VEHICLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEMO_VEHICLES);
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("fleetdash-demo".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            };
            rt.block_on(async move {
                match Demo::start(vehicles, cancel.clone()) {
                    Ok(demo) => {
                        let _ = tx.send(Ok(demo.config.clone()));
                        cancel.cancelled().await;
                        demo.stop().await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            });
        })
        .map_err(|e| AppError::Demo(e.to_string()))?;
    let cfg = rx
        .recv()
        .map_err(|e| AppError::Demo(e.to_string()))?
        .map_err(AppError::Demo)?;
    info!(vehicles, "embedded demo running");
    Ok((cfg, thread))
}

async fn stop(r: Running) {
    // Engine first: the demo's cache lives in the demo's temp dir.
    r.cancel.cancel();
    if let Err(e) = r.engine.shutdown().await {
        warn!(error = %e, "engine shutdown");
    }
    if let Some(t) = r.demo {
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
}
