//! The window's commands: requests only (viewport, selection, search, acknowledge,
//! settings). The fleet itself reaches the window through the frame stream.

use crate::error::{AppError, IpcResult};
use crate::host::{Current, Host, Mode};
use crate::settings::{self, AppSettings};
use crate::stream::{self, Streams};
use crate::watch::NoticeLog;
use fleet_core::config::AlertsConfig;
use fleet_core::notify::Notice;
use fleet_core::store::now_ms;
use fleet_core::view;
use fleet_model::{Alert, AlertFilter, QuarantineEntry, SearchHit, TrailPoint, Viewport};
use fleetdash_ipc::{AppStatus, SettingsForm};
use std::sync::{Arc, Mutex};
use tauri::State;
use tauri::ipc::Channel;

/// How far back the selected vehicle's trail reaches.
const TRAIL_MS: i64 = 30 * 60 * 1000;
/// Most trail points sent.
const TRAIL_POINTS: i64 = 2000;
/// Search results returned.
const SEARCH_HITS: usize = 12;
/// Quarantine entries listed.
const QUARANTINE_ROWS: i64 = 200;

/// The app settings, shared.
pub type Settings = Mutex<AppSettings>;

/// The running engine, or why there is none.
pub(crate) fn current(host: &Host) -> Result<Current, AppError> {
    host.current()
        .ok_or_else(|| AppError::NotRunning(host.error().unwrap_or_else(|| "starting".into())))
}

/// Starts (or restarts, after a page reload) the frame stream.
#[tauri::command]
pub fn subscribe(on_frame: Channel, host: State<'_, Arc<Host>>, streams: State<'_, Arc<Streams>>) {
    stream::spawn(host.inner().clone(), streams.inner().clone(), on_frame);
}

/// The map moved or zoomed.
#[tauri::command]
pub fn set_viewport(viewport: Viewport, streams: State<'_, Arc<Streams>>) {
    streams.update(|v| v.viewport = viewport);
}

/// Selects a vehicle (its details come with every frame), or clears the selection.
#[tauri::command]
pub fn select_vehicle(id: Option<String>, streams: State<'_, Arc<Streams>>) {
    streams.update(|v| v.selected = id);
}

/// Vehicles whose id or plate contains the query, within the group the window shows.
#[tauri::command]
pub fn search_vehicles(
    query: String,
    host: State<'_, Arc<Host>>,
    streams: State<'_, Arc<Streams>>,
) -> IpcResult<Vec<SearchHit>> {
    let cur = current(&host)?;
    let group = window_group(&streams);
    let live = cur.live.lock();
    Ok(view::search(&live, &query, SEARCH_HITS, group.as_deref()))
}

/// The devices mapped to a vehicle (SPEC §8), for its panel.
#[tauri::command]
pub async fn vehicle_devices(id: String, host: State<'_, Arc<Host>>) -> IpcResult<Vec<String>> {
    let cur = current(&host)?;
    Ok(cur.store.devices_of(&id).await.map_err(AppError::from)?)
}

/// The group the window shows (`group-filter`), if any.
fn window_group(streams: &Streams) -> Option<String> {
    streams
        .view
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .alert_filter
        .group
        .clone()
}

/// The groups named in the fleet's metadata (the `group-filter` choices).
#[tauri::command]
pub fn vehicle_groups(host: State<'_, Arc<Host>>) -> IpcResult<Vec<String>> {
    let cur = current(&host)?;
    let live = cur.live.lock();
    Ok(view::groups(&live))
}

/// The vehicle's recent trail from the cache.
#[tauri::command]
pub async fn vehicle_trail(id: String, host: State<'_, Arc<Host>>) -> IpcResult<Vec<TrailPoint>> {
    let cur = current(&host)?;
    Ok(cur
        .store
        .trail(&id, now_ms() - TRAIL_MS, TRAIL_POINTS)
        .await
        .map_err(AppError::from)?)
}

/// The newest quarantined messages with their reasons.
#[tauri::command]
pub async fn quarantine_list(host: State<'_, Arc<Host>>) -> IpcResult<Vec<QuarantineEntry>> {
    let cur = current(&host)?;
    Ok(cur
        .store
        .quarantine(QUARANTINE_ROWS)
        .await
        .map_err(AppError::from)?)
}

/// Acknowledges an alert as the configured operator: written to the cache at once and
/// published to the ack topic (queued in the outbox while Kafka is unreachable).
#[tauri::command]
pub async fn ack_alert(
    alert_id: String,
    note: Option<String>,
    host: State<'_, Arc<Host>>,
) -> IpcResult<Alert> {
    let note = note.unwrap_or_default();
    tracing::info!(%alert_id, note_bytes = note.len(), "acknowledging");
    Ok(host.acknowledge(&alert_id, note.trim()).await?)
}

/// Acknowledges many alerts with one note: the `ids` given (a selection), or every open
/// alert of `rule` within the group the window shows. Returns how many were acknowledged.
#[tauri::command]
pub async fn ack_alerts(
    ids: Option<Vec<String>>,
    rule: Option<String>,
    note: Option<String>,
    host: State<'_, Arc<Host>>,
    streams: State<'_, Arc<Streams>>,
) -> IpcResult<u64> {
    let note = note.unwrap_or_default();
    if ids.is_none() && rule.is_none() {
        return Err(AppError::Form("name the alerts (ids) or their rule".into()).into());
    }
    let group = window_group(&streams);
    let filter = AlertFilter {
        rule,
        group,
        ..Default::default()
    };
    tracing::info!(selection = ids.as_ref().map(Vec::len), rule = ?filter.rule, "acknowledging in bulk");
    Ok(host.acknowledge_many(ids, &filter, note.trim()).await?)
}

/// Snoozes a rule's (`kind = "rule"`) or a vehicle's alerts for `minutes` on every desk;
/// 0 lifts the snooze.
#[tauri::command]
pub async fn snooze_alerts(
    kind: String,
    target: String,
    minutes: f64,
    host: State<'_, Arc<Host>>,
) -> IpcResult<fleet_model::Snooze> {
    let kind = fleet_model::SnoozeKind::parse(&kind)
        .ok_or_else(|| AppError::Form(format!("snooze `{kind}`: expected rule or vehicle")))?;
    if target.trim().is_empty() || !minutes.is_finite() || minutes < 0.0 {
        return Err(AppError::Form("snooze: a target and minutes ≥ 0 are needed".into()).into());
    }
    tracing::info!(kind = kind.as_str(), %target, minutes, "snoozing");
    Ok(host.snooze(kind, target.trim(), minutes).await?)
}

/// Narrows the alert feed (severity, rule, state, vehicle); the next frame carries it.
#[tauri::command]
pub fn set_alert_filter(filter: AlertFilter, streams: State<'_, Arc<Streams>>) {
    streams.update(|v| v.alert_filter = filter);
}

/// The rules that have raised alerts (the feed's rule filter offers these).
#[tauri::command]
pub async fn alert_rules(host: State<'_, Arc<Host>>) -> IpcResult<Vec<String>> {
    let cur = current(&host)?;
    Ok(cur.store.alert_rules().await.map_err(AppError::from)?)
}

/// The desktop notifications shown lately, newest last (also what tests check: a desktop
/// without a notification daemon still records them).
#[tauri::command]
pub fn recent_notifications(log: State<'_, Arc<NoticeLog>>) -> Vec<Notice> {
    log.recent()
}

/// What the app runs against.
#[tauri::command]
pub fn app_status(host: State<'_, Arc<Host>>, settings: State<'_, Settings>) -> AppStatus {
    status(&host, &settings)
}

pub(crate) fn status(host: &Host, settings: &Settings) -> AppStatus {
    let mode = host.mode();
    let operator = match &mode {
        Some(Mode::File(_, c)) => c.operator.effective_name(),
        _ => fleet_core::config::OperatorConfig::default().effective_name(),
    };
    AppStatus {
        demo: !matches!(mode, Some(Mode::File(..))),
        config_path: match &mode {
            Some(Mode::File(p, _)) => Some(p.display().to_string()),
            _ => None,
        },
        save_path: settings::save_path(mode.as_ref()).map(|p| p.display().to_string()),
        error: host.error(),
        operator,
        tile_url: settings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .tile_url
            .clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        escalate_after_s: host.current().map_or_else(
            || AlertsConfig::default().escalate_after_s,
            |c| c.alerts.escalate_after_s,
        ),
    }
}

/// The settings form, filled from the config in use.
#[tauri::command]
pub fn load_settings(host: State<'_, Arc<Host>>, settings: State<'_, Settings>) -> SettingsForm {
    let app = settings.lock().unwrap_or_else(|p| p.into_inner()).clone();
    settings::form_of(host.mode().as_ref(), &app)
}

/// Validates the form, saves the config file and reconnects, without restarting the app.
#[tauri::command]
pub async fn save_settings(
    form: SettingsForm,
    host: State<'_, Arc<Host>>,
    settings: State<'_, Settings>,
) -> IpcResult<AppStatus> {
    let path = settings::save_path(host.mode().as_ref())
        .ok_or_else(|| AppError::Form("no config directory on this system".into()))?;
    let (text, cfg) = settings::apply(&form, &path)?;
    settings::write_config(&path, &text)?;
    let app = AppSettings {
        tile_url: form.tile_url.trim().to_string(),
    };
    app.save()?;
    *settings.lock().unwrap_or_else(|p| p.into_inner()) = app;
    host.switch(Mode::File(path, Box::new(cfg))).await?;
    Ok(status(&host, &settings))
}
