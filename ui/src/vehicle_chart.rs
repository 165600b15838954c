//! The selected vehicle's chart, all its fields, and export (issue 11): speed, fuel and
//! battery (or any numeric field it has sent) over the timeline's range, drawn by the same
//! plotters module as `fleetctl chart` (`fleet-chart`, SVG in the page), with its alerts
//! marked and a cursor at the replay time. `chart-export` saves it as PNG or SVG and
//! `export-button` the range's positions as CSV or GeoJSON, each to a file the user picks.

use crate::app::Ui;
use crate::ipc;
use fleet_chart::{DEFAULT_FIELDS, render_svg, spec_for_history};
use leptos::prelude::*;
use serde_json::{Map, Value, json};

/// The chart's size in the panel (CSS pixels; the SVG scales to the panel's width).
const SIZE: (u32, u32) = (316, 220);

/// The chart, its field picker and the export buttons.
#[component]
pub fn VehicleChart() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let fields = RwSignal::new(DEFAULT_FIELDS.map(String::from).to_vec());
    let available = RwSignal::new(Vec::<String>::new());
    Effect::new(move |_| {
        let Some(id) = ui.selected.get() else { return };
        available.set(Vec::new());
        wasm_bindgen_futures::spawn_local(async move {
            if let Ok(f) =
                ipc::invoke::<_, Vec<String>>("vehicle_fields", &json!({ "id": id })).await
            {
                available.set(f);
            }
        });
    });
    // The replay cursor, to the second (the chart is not redrawn for every frame).
    let cursor = Memo::new(move |_| {
        ui.frame.with(|f| {
            f.as_ref()
                .and_then(|f| f.replay)
                .map(|r| r.t_ms / 1000 * 1000)
        })
    });
    let svg = Memo::new(move |_| {
        let (from, to) = ui.range.get();
        let picked = fields.get();
        let cursor = cursor.get();
        ui.history.with(|h| {
            h.as_ref().map(|h| {
                let mut spec = spec_for_history(h, &picked, from, to, SIZE);
                spec.cursor_ms = cursor;
                spec.utc_offset_s = utc_offset_s(from);
                render_svg(&spec).unwrap_or_default()
            })
        })
    });
    let choices = move || {
        let mut all: Vec<String> = DEFAULT_FIELDS.map(String::from).to_vec();
        for f in available.get() {
            if !all.contains(&f) {
                all.push(f);
            }
        }
        all
    };
    let toggle = move |name: String, on: bool| {
        fields.update(|f| {
            f.retain(|x| x != &name);
            if on {
                f.push(name);
            }
        })
    };
    let export_chart = move |format: &'static str| {
        let Some(id) = ui.selected.get_untracked() else {
            return;
        };
        let (from, to) = ui.range.get_untracked();
        let args = json!({ "id": id, "fromMs": from, "toMs": to, "fields": fields.get_untracked(),
            "cursorMs": cursor.get_untracked(), "format": format });
        wasm_bindgen_futures::spawn_local(async move {
            match ipc::invoke::<_, String>("export_chart", &args).await {
                Ok(path) => ui.notify(format!("Chart saved to {path}")),
                Err(e) if e.code == "cancelled" => {}
                Err(e) => ui.notify(format!("Chart not saved: {}", e.message)),
            }
        });
    };
    let export_rows = move |format: &'static str| {
        let Some(id) = ui.selected.get_untracked() else {
            return;
        };
        let (from, to) = ui.range.get_untracked();
        let args = json!({ "id": id, "fromMs": from, "toMs": to, "format": format });
        wasm_bindgen_futures::spawn_local(async move {
            match ipc::invoke::<_, (String, u64)>("export_vehicle", &args).await {
                Ok((path, n)) => ui.notify(format!("Exported {n} positions to {path}")),
                Err(e) if e.code == "cancelled" => {}
                Err(e) => ui.notify(format!("Not exported: {}", e.message)),
            }
        });
    };
    let export_format = RwSignal::new("csv");
    let chart_format = RwSignal::new("png");
    view! {
        <div class="chart-box">
            <div class="chart" data-testid="vehicle-chart"
                data-state=move || ui.history.with(|h| match h { None => "loading", Some(h) if h.is_empty() => "empty", Some(_) => "ready" })
                inner_html=move || svg.get().unwrap_or_default()></div>
            <Show when=move || ui.history.with(|h| h.as_ref().is_some_and(|h| h.is_empty()))>
                <div class="empty" data-testid="chart-no-data">"no data in this range"</div>
            </Show>
            <div class="chart-fields" data-testid="chart-fields">
                {move || choices().into_iter().map(|name| {
                    let checked = fields.with(|f| f.contains(&name));
                    let n = name.clone();
                    view! {
                        <label><input type="checkbox" data-testid="chart-field" data-field=name.clone() prop:checked=checked
                            on:change=move |ev| toggle(n.clone(), event_target_checked(&ev))/>{name.clone()}</label>
                    }
                }).collect_view()}
            </div>
            <div class="panel-actions">
                <select title="Chart format" on:change=move |ev| chart_format.set(if event_target_value(&ev) == "svg" { "svg" } else { "png" })>
                    <option value="png">"PNG"</option><option value="svg">"SVG"</option>
                </select>
                <button data-testid="chart-export" on:click=move |_| export_chart(chart_format.get_untracked())>"Save chart"</button>
                <select title="Export format" data-testid="export-format"
                    on:change=move |ev| export_format.set(if event_target_value(&ev) == "geojson" { "geojson" } else { "csv" })>
                    <option value="csv">"CSV"</option><option value="geojson">"GeoJSON"</option>
                </select>
                <button data-testid="export-button" on:click=move |_| export_rows(export_format.get_untracked())>"Export"</button>
            </div>
        </div>
    }
}

/// The fleet chart (opened from the Messages/s counter): messages/s and rejected/s over the
/// last hour, refreshed every 10 s while open.
#[component]
pub fn FleetChart(open: RwSignal<bool>) -> impl IntoView {
    let svg = RwSignal::new(String::new());
    let load = move || {
        wasm_bindgen_futures::spawn_local(async move {
            if let Ok(s) =
                ipc::invoke::<_, String>("fleet_chart", &json!({ "width": 520, "height": 240 }))
                    .await
            {
                svg.set(s);
            }
        });
    };
    load();
    let handle = set_interval_with_handle(load, std::time::Duration::from_secs(10)).ok();
    on_cleanup(move || {
        if let Some(h) = handle {
            h.clear();
        }
    });
    view! {
        <div class="fleet-chart-pop" data-testid="fleet-chart">
            <div class="modal-head"><h3>"Fleet · last hour"</h3>
                <button class="icon-btn" on:click=move |_| open.set(false)>"✕"</button></div>
            <div class="chart" inner_html=move || svg.get()></div>
        </div>
    }
}

/// The window's offset from UTC at `ms` (seconds), so the chart's clock matches the feed's.
fn utc_offset_s(ms: i64) -> i32 {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    (-d.get_timezone_offset() * 60.0) as i32
}

/// Every flattened field of a status message (`engine.rpm`, …), sorted by name.
pub fn all_fields(json: &str) -> Vec<(String, String)> {
    let Ok(map) = serde_json::from_str::<Map<String, Value>>(json) else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = map
        .into_iter()
        .map(|(k, v)| {
            let shown = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, shown)
        })
        .collect();
    out.sort();
    out
}
