//! The timeline bar under the map (issue 11, SPEC §5 history hooks): a range (presets or
//! from/to), a slider, play/pause, speed and back to live. Replay itself runs in the shell —
//! the window only says what to show and draws the frames it gets, the same frames as live
//! ones, so the map's cost is the same either way. Alerts of the range are marked on the bar
//! (and on the selected vehicle's track); clicking a mark jumps there.

use crate::app::{Ui, with_map};
use crate::{format, ipc};
use fleet_model::{ReplayStatus, Severity, TrailPoint, VehicleHistory};
use leptos::prelude::*;
use serde_json::json;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
/// The range presets: label, test hook suffix, length.
const PRESETS: [(&str, &str, i64); 5] = [
    ("15 min", "15m", 15 * MIN),
    ("1 h", "1h", HOUR),
    ("6 h", "6h", 6 * HOUR),
    ("24 h", "24h", 24 * HOUR),
    ("72 h", "72h", 72 * HOUR),
];

/// Now, by the window's clock (ms since the epoch).
pub fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// The last hour: the range the timeline starts with.
pub fn default_range() -> (i64, i64) {
    let now = now_ms();
    (now - HOUR, now)
}

/// The latest frame's replay, if the map shows the past.
fn replay_of(ui: Ui) -> Option<ReplayStatus> {
    ui.frame.with(|f| f.as_ref().and_then(|f| f.replay))
}

/// Starts replaying the timeline's range at `at_ms`.
pub fn start(ui: Ui, at_ms: i64, playing: bool) {
    let (from, to) = ui.range.get_untracked();
    let speed = ui.speed.get_untracked();
    ui.replaying.set(true);
    wasm_bindgen_futures::spawn_local(async move {
        let args = json!({ "fromMs": from, "toMs": to, "atMs": at_ms, "playing": playing, "speed": speed });
        if let Err(e) = ipc::invoke::<_, ReplayStatus>("replay_start", &args).await {
            ui.notify(format!("Replay did not start: {}", e.message));
        }
    });
}

/// Seeks / plays / pauses / changes speed of the running replay.
fn control(args: serde_json::Value) {
    ipc::send("replay_control", args);
}

/// Back to live positions (and the selected vehicle's live trail).
pub fn live(ui: Ui) {
    ui.replaying.set(false);
    ipc::send("replay_stop", json!({}));
    with_map(|m| m.set_track_marks(Vec::new()));
    ui.select(ui.selected.get_untracked(), None);
}

/// `replay-alert`: the alert's vehicle, the 10 minutes before and 5 after it, playing from
/// 2 minutes before.
pub fn replay_alert(ui: Ui, vehicle: String, ts_ms: i64) {
    ui.range.set((ts_ms - 10 * MIN, ts_ms + 5 * MIN));
    ui.replaying.set(true);
    ui.select(Some(vehicle), None);
    start(ui, ts_ms - 2 * MIN, true);
}

/// Sets the range, refusing one that ends before it starts.
fn set_range(ui: Ui, from: i64, to: i64) {
    if from >= to {
        ui.notify("The range's start must be before its end".into());
        return;
    }
    ui.range.set((from, to));
    if ui.replaying.get_untracked() {
        let at = replay_of(ui).map_or(from, |r| r.t_ms.clamp(from, to));
        start(ui, at, false);
    }
}

/// A `datetime-local` input's value for `ms` (local time, to the second).
fn local_input(ms: i64) -> String {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        d.get_full_year(),
        d.get_month() + 1,
        d.get_date(),
        d.get_hours(),
        d.get_minutes(),
        d.get_seconds()
    )
}

/// Parses a `datetime-local` value (local time); `None` when it is not one.
fn parse_local(v: &str) -> Option<i64> {
    let t = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(v.trim())).get_time();
    t.is_finite().then_some(t as i64)
}

/// A severity's colour on the bar and the track.
pub fn severity_colour(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "#f43f5e",
        Severity::Warning => "#f59e0b",
        Severity::Info => "#38bdf8",
    }
}

/// The track of a history as the map's trail.
fn track(h: &VehicleHistory) -> Vec<TrailPoint> {
    h.positions
        .iter()
        .map(|p| TrailPoint {
            lat: p.lat,
            lng: p.lng,
            ts_ms: p.ts_ms,
        })
        .collect()
}

/// Where the vehicle was (its last position at or before) when each alert fired.
fn track_marks(h: &VehicleHistory) -> Vec<(f64, f64, &'static str)> {
    h.alerts
        .iter()
        .filter_map(|a| {
            let i = h.positions.partition_point(|p| p.ts_ms <= a.ts_ms);
            let p = h.positions.get(i.saturating_sub(1))?;
            Some((p.lat, p.lng, severity_colour(a.severity)))
        })
        .collect()
}

/// Loads the selected vehicle's history for the range, and while replaying draws its track
/// (with the alerts on it) instead of the live 30-minute trail.
pub fn install_history_loader(ui: Ui) {
    Effect::new(move |_| {
        let sel = ui.selected.get();
        let (from, to) = ui.range.get();
        ui.history.set(None);
        let Some(id) = sel else { return };
        wasm_bindgen_futures::spawn_local(async move {
            let args = json!({ "id": id, "fromMs": from, "toMs": to });
            match ipc::invoke::<_, VehicleHistory>("vehicle_history", &args).await {
                Ok(h)
                    if ui.selected.get_untracked().as_deref() == Some(h.vehicle.as_str())
                        && ui.range.get_untracked() == (from, to) =>
                {
                    ui.history.set(Some(h))
                }
                Ok(_) => {}
                Err(e) if e.code == "not_found" => {}
                Err(e) => ui.notify(format!("History not loaded: {}", e.message)),
            }
        });
    });
    Effect::new(move |_| {
        let replaying = ui.replaying.get();
        ui.history.with(|h| match (replaying, h) {
            (true, Some(h)) => with_map(|m| {
                m.set_trail(track(h));
                m.set_track_marks(track_marks(h));
            }),
            _ => with_map(|m| m.set_track_marks(Vec::new())),
        });
    });
}

/// The bar.
#[component]
pub fn Timeline() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let replay = Memo::new(move |_| replay_of(ui));
    let t = move || {
        replay
            .get()
            .map_or_else(|| ui.range.with(|r| r.1), |r| r.t_ms)
    };
    let seek = move |at: i64| {
        if replay.get_untracked().is_some() || ui.replaying.get_untracked() {
            control(json!({ "atMs": at }));
        } else {
            start(ui, at, false);
        }
    };
    let toggle = move |_| match replay.get_untracked() {
        Some(r) => control(json!({ "playing": !r.playing })),
        None => start(ui, ui.range.get_untracked().0, true),
    };
    // Marks: the selected vehicle's alerts in the range, else the feed's.
    let marks = Memo::new(move |_| {
        let (from, to) = ui.range.get();
        let span = (to - from).max(1) as f64;
        let list: Vec<(String, String, Severity, i64)> = ui.history.with(|h| match h {
            Some(h) => h
                .alerts
                .iter()
                .map(|a| (a.id.clone(), a.rule.clone(), a.severity, a.ts_ms))
                .collect(),
            None => ui.alerts.with(|al| {
                al.iter()
                    .map(|a| (a.id.clone(), a.rule.clone(), a.severity, a.ts_ms))
                    .collect()
            }),
        });
        list.into_iter()
            .filter(|m| m.3 >= from && m.3 <= to)
            .map(|(id, rule, sev, ts)| (id, rule, sev, ts, (ts - from) as f64 / span * 100.0))
            .collect::<Vec<_>>()
    });
    let no_data = move || {
        ui.history
            .with(|h| h.as_ref().is_some_and(VehicleHistory::is_empty))
    };
    view! {
        <div class="timeline" data-testid="timeline"
            data-state=move || if replay.get().is_some() { "replay" } else { "live" }
            data-t=move || replay.get().map_or(0, |r| r.t_ms)
            data-from=move || ui.range.get().0 data-to=move || ui.range.get().1>
            <div class="tl-presets">
                {PRESETS.iter().map(|&(label, hook, len)| view! {
                    <button class="chip" data-testid=format!("timeline-preset-{hook}")
                        on:click=move |_| { let now = now_ms(); set_range(ui, now - len, now) }>{label}</button>
                }).collect_view()}
            </div>
            <input type="datetime-local" step="1" data-testid="timeline-from" title="From"
                prop:value=move || local_input(ui.range.get().0)
                on:change=move |ev| match parse_local(&event_target_value(&ev)) {
                    Some(ms) => set_range(ui, ms, ui.range.get_untracked().1),
                    None => ui.notify("Not a date and time".into()),
                }/>
            <input type="datetime-local" step="1" data-testid="timeline-to" title="To"
                prop:value=move || local_input(ui.range.get().1)
                on:change=move |ev| match parse_local(&event_target_value(&ev)) {
                    Some(ms) => set_range(ui, ui.range.get_untracked().0, ms),
                    None => ui.notify("Not a date and time".into()),
                }/>
            <button class="tl-play" data-testid="timeline-play" on:click=toggle
                data-playing=move || replay.get().is_some_and(|r| r.playing).to_string()
                title=move || if replay.get().is_some_and(|r| r.playing) { "Pause" } else { "Play" }>
                {move || if replay.get().is_some_and(|r| r.playing) { "⏸" } else { "▶" }}
            </button>
            <div class="tl-track">
                <input type="range" data-testid="timeline-slider" step="1000"
                    prop:min=move || ui.range.get().0 prop:max=move || ui.range.get().1 prop:value=t
                    on:input=move |ev| { if let Ok(v) = event_target_value(&ev).parse::<f64>() { seek(v as i64) } }/>
                <div class="tl-marks">
                    <For each=move || marks.get() key=|m| m.0.clone() let:m>
                        <i class="tl-mark" data-testid="timeline-mark" data-alert-id=m.0.clone() data-ts=m.3
                            style=format!("left:{:.3}%;background:{}", m.4, severity_colour(m.2))
                            title=format!("{} at {}", m.1, format::clock(m.3))
                            on:click=move |_| seek(m.3)></i>
                    </For>
                </div>
            </div>
            <select data-testid="timeline-speed" title="Replay speed"
                on:change=move |ev| {
                    if let Ok(s) = event_target_value(&ev).parse::<f64>() {
                        ui.speed.set(s);
                        if replay.get_untracked().is_some() { control(json!({ "speed": s })) }
                    }
                }>
                {ReplayStatus::SPEEDS.iter().map(|&s| view! {
                    <option value=s.to_string() selected=move || ui.speed.get() == s>{format!("{s}×")}</option>
                }).collect_view()}
            </select>
            <span class="tl-clock" data-testid="timeline-clock" class:replaying=move || replay.get().is_some()>
                {move || match replay.get() {
                    Some(r) => format!("replaying {}", format::clock(r.t_ms)),
                    None => "LIVE".into(),
                }}
            </span>
            <Show when=no_data>
                <span class="tl-empty" data-testid="timeline-no-data">"no data in this range"</span>
            </Show>
            <button class="tl-live" data-testid="timeline-live" disabled=move || replay.get().is_none() && !ui.replaying.get()
                on:click=move |_| live(ui)>"Live"</button>
        </div>
    }
}
