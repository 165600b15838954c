//! The window's history commands (issue 11): the timeline's replay (start, seek, play,
//! speed, back to live), one vehicle's history over a range, and export to a file the user
//! picks in the system's save dialog.

use crate::commands::current;
use crate::error::{AppError, IpcResult};
use crate::host::Host;
use crate::stream::Streams;
use fleet_core::store::{ExportFilter, ExportFormat};
use fleet_model::{ReplayStatus, VehicleHistory};
use std::path::PathBuf;
use std::sync::Arc;
use tauri::State;

/// Starts replaying `[from_ms, to_ms]` at `at_ms` (paused unless `playing`).
#[tauri::command]
pub fn replay_start(
    from_ms: i64,
    to_ms: i64,
    at_ms: i64,
    playing: bool,
    speed: Option<f64>,
    streams: State<'_, Arc<Streams>>,
) -> ReplayStatus {
    let mut r = ReplayStatus::new(from_ms, to_ms, at_ms);
    r.playing = playing;
    if let Some(s) = speed {
        r.speed = s.clamp(1.0, 120.0);
    }
    tracing::info!(from_ms, to_ms, at_ms, playing, "replay started");
    streams.update(|v| v.replay = Some(r));
    r
}

/// Seeks, plays/pauses or changes the speed of the running replay; `None` when live.
#[tauri::command]
pub fn replay_control(
    at_ms: Option<i64>,
    playing: Option<bool>,
    speed: Option<f64>,
    streams: State<'_, Arc<Streams>>,
) -> Option<ReplayStatus> {
    let mut out = None;
    streams.update(|v| {
        if let Some(r) = v.replay.as_mut() {
            if let Some(t) = at_ms {
                r.t_ms = t.clamp(r.from_ms, r.to_ms);
            }
            if let Some(s) = speed {
                r.speed = s.clamp(1.0, 120.0);
            }
            if let Some(p) = playing {
                // Play from the end starts over.
                if p && r.t_ms >= r.to_ms {
                    r.t_ms = r.from_ms;
                }
                r.playing = p;
            }
            out = Some(*r);
        }
    });
    out
}

/// Back to live positions.
#[tauri::command]
pub fn replay_stop(streams: State<'_, Arc<Streams>>) {
    tracing::info!("back to live");
    streams.update(|v| v.replay = None);
}

/// Everything the cache holds about `id` in `[from_ms, to_ms]` (track, status, alerts).
#[tauri::command]
pub async fn vehicle_history(
    id: String,
    from_ms: i64,
    to_ms: i64,
    host: State<'_, Arc<Host>>,
) -> IpcResult<VehicleHistory> {
    let cur = current(&host)?;
    let h = cur
        .store
        .history(&id, from_ms.min(to_ms), from_ms.max(to_ms))
        .await
        .map_err(AppError::from)?;
    Ok(h.ok_or(AppError::UnknownVehicle(id))?)
}

/// The numeric status fields `id` has sent (the chart's field picker).
#[tauri::command]
pub async fn vehicle_fields(id: String, host: State<'_, Arc<Host>>) -> IpcResult<Vec<String>> {
    let cur = current(&host)?;
    Ok(cur.store.status_fields(&id).await.map_err(AppError::from)?)
}

/// Asks the user where to save (the system's save dialog, in a child process: see
/// [`crate::save_dialog`]); `Cancelled` when they do not.
pub(crate) async fn pick_save_path(
    suggested: &str,
    filter: (&str, &str),
) -> Result<PathBuf, AppError> {
    crate::save_dialog::pick(suggested, filter)
        .await
        .ok_or(AppError::Cancelled)
}

/// Exports `id`'s positions in `[from_ms, to_ms]` as CSV or GeoJSON (the same rows as
/// `fleetctl export`, streamed from the cache) to a file the user picks; returns the file
/// and the number of rows written.
#[tauri::command]
pub async fn export_vehicle(
    id: String,
    from_ms: i64,
    to_ms: i64,
    format: String,
    host: State<'_, Arc<Host>>,
) -> IpcResult<(String, u64)> {
    let cur = current(&host)?;
    let (fmt, ext, label) = match format.as_str() {
        "geojson" => (ExportFormat::GeoJson, "geojson", "GeoJSON"),
        _ => (ExportFormat::Csv, "csv", "CSV"),
    };
    let name = format!("{}.{ext}", sanitize(&id));
    let path = pick_save_path(&name, (label, ext)).await?;
    let io = |source| AppError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::create(&path).map_err(io)?;
    let mut out = std::io::BufWriter::new(file);
    let filter = ExportFilter {
        vehicle: Some(id),
        from_ms: Some(from_ms.min(to_ms)),
        to_ms: Some(from_ms.max(to_ms)),
    };
    let n = cur
        .store
        .export(&filter, fmt, &mut out)
        .await
        .map_err(AppError::from)?;
    std::io::Write::flush(&mut out).map_err(io)?;
    tracing::info!(path = %path.display(), rows = n, "exported");
    Ok((path.display().to_string(), n))
}

/// Saves `id`'s chart over `[from_ms, to_ms]` (the panel's fields and cursor) as PNG or SVG
/// to a file the user picks, drawn by the same `fleet-chart` code as the panel and
/// `fleetctl chart`; returns the file.
#[tauri::command]
#[allow(clippy::too_many_arguments)]
pub async fn export_chart(
    id: String,
    from_ms: i64,
    to_ms: i64,
    fields: Vec<String>,
    cursor_ms: Option<i64>,
    format: String,
    host: State<'_, Arc<Host>>,
) -> IpcResult<String> {
    let cur = current(&host)?;
    let (from, to) = (from_ms.min(to_ms), from_ms.max(to_ms));
    let h = cur
        .store
        .history(&id, from, to)
        .await
        .map_err(AppError::from)?
        .ok_or_else(|| AppError::UnknownVehicle(id.clone()))?;
    let mut spec = fleet_chart::spec_for_history(&h, &fields, from, to, CHART_SIZE);
    spec.cursor_ms = cursor_ms;
    let (bytes, ext, label) = if format == "svg" {
        let svg = fleet_chart::render_svg(&spec).map_err(AppError::from)?;
        (svg.into_bytes(), "svg", "SVG image")
    } else {
        let png = fleet_chart::render_png(&spec).map_err(AppError::from)?;
        (png, "png", "PNG image")
    };
    let path = pick_save_path(&format!("{}-chart.{ext}", sanitize(&id)), (label, ext)).await?;
    std::fs::write(&path, bytes).map_err(|source| AppError::Io {
        path: path.display().to_string(),
        source,
    })?;
    tracing::info!(path = %path.display(), "chart saved");
    Ok(path.display().to_string())
}

/// A saved chart's size (pixels): larger than the panel's, for reports.
const CHART_SIZE: (u32, u32) = (1200, 600);

/// The fleet chart: messages/s and rejected/s over the last hour, as SVG.
#[tauri::command]
pub fn fleet_chart(width: u32, height: u32, streams: State<'_, Arc<Streams>>) -> IpcResult<String> {
    let spec = streams
        .rates
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .spec(fleet_core::store::now_ms(), (width, height));
    Ok(fleet_chart::render_svg(&spec).map_err(AppError::from)?)
}

/// A vehicle id as a file name: path separators and control characters become `_`.
pub(crate) fn sanitize(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    s.trim_start_matches('.')
        .chars()
        .take(80)
        .collect::<String>()
}

#[cfg(test)]
mod tests {
    #[test]
    fn vehicle_ids_become_safe_file_names() {
        assert_eq!(super::sanitize("car-001"), "car-001");
        assert_eq!(super::sanitize("../etc/passwd"), "_etc_passwd");
        assert_eq!(super::sanitize("a/b\\c\n"), "a_b_c_");
    }
}
