//! The side panels: the selected vehicle's details and the quarantine list.

use crate::app::Ui;
use crate::format;
use crate::ipc;
use crate::vehicle_chart::{VehicleChart, all_fields};
use fleet_model::{QuarantineEntry, VehicleDetail, VehicleState};
use leptos::prelude::*;
use serde_json::json;

fn state_label(s: VehicleState) -> &'static str {
    match s {
        VehicleState::Moving => "moving",
        VehicleState::Parked => "parked",
        VehicleState::Stale => "stale",
        VehicleState::Alerting => "alerting",
    }
}

fn row(label: &'static str, value: String) -> impl IntoView {
    view! { <div class="kv"><span>{label}</span><b>{value}</b></div> }
}

fn opt<T: std::fmt::Display>(v: Option<T>, unit: &str) -> String {
    v.map(|v| format!("{v}{unit}"))
        .unwrap_or_else(|| "—".into())
}

/// The selected vehicle: identity, last position, status, source.
#[component]
pub fn VehiclePanel() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let detail = Memo::new(move |_| {
        let sel = ui.selected.get()?;
        ui.frame.with(|f| {
            f.as_ref()
                .and_then(|f| f.selected.clone())
                .filter(|d| d.id == sel)
        })
    });
    // The devices come from the cache's device table, read when the selection changes.
    let devices = RwSignal::new(Vec::<String>::new());
    Effect::new(move |_| {
        let Some(id) = ui.selected.get() else {
            devices.set(Vec::new());
            return;
        };
        wasm_bindgen_futures::spawn_local(async move {
            let list = ipc::invoke::<_, Vec<String>>("vehicle_devices", &json!({ "id": id }))
                .await
                .unwrap_or_default();
            devices.set(list);
        });
    });
    let body = move || {
        detail.get().map(|d: VehicleDetail| {
            let info = d.info.clone().unwrap_or_default();
            let pos = d.position.clone();
            let st = d.status.as_ref().map(|s| s.known.clone()).unwrap_or_default();
            let fields = d.status.as_ref().map(|s| all_fields(&s.fields)).unwrap_or_default();
            let now = ui.frame.with_untracked(|f| f.as_ref().map_or(0, |f| f.ts_ms));
            view! {
                <div class="panel-head">
                    <div>
                        <h2 data-testid="vehicle-panel-id">{d.id.clone()}</h2>
                        <div class="sub">{info.plate.clone().unwrap_or_default()}" "{info.model.clone().unwrap_or_default()}</div>
                    </div>
                    <span class=format!("badge {}", state_label(d.state))>{state_label(d.state)}</span>
                </div>
                <div class="grid">
                    {row("Driver", info.driver.clone().unwrap_or_else(|| "—".into()))}
                    {row("Group", info.group.clone().unwrap_or_else(|| "—".into()))}
                    <div class="kv" data-testid="vehicle-devices"><span>"Devices"</span>
                        <b>{move || devices.with(|d| if d.is_empty() { "—".to_string() } else { d.join(", ") })}</b></div>
                    {row("Position", pos.as_ref().map(|p| format!("{:.5}, {:.5}", p.lat, p.lng)).unwrap_or_else(|| "—".into()))}
                    {row("Fix time", pos.as_ref().map(|p| format!("{} ({} ago)", format::clock(p.ts_ms), format::age(now - p.ts_ms))).unwrap_or_else(|| "—".into()))}
                    {row("Speed", opt(pos.as_ref().and_then(|p| p.speed).or(st.speed).map(|s| format!("{s:.0}")), " km/h"))}
                    {row("Heading", opt(pos.as_ref().and_then(|p| p.heading).map(|h| format!("{h:.0}")), "°"))}
                    {row("Fuel", opt(st.fuel.map(|v| format!("{v:.0}")), " %"))}
                    {row("Battery", opt(st.battery.map(|v| format!("{v:.0}")), " %"))}
                    {row("Engine", format::on_off(st.engine_on, "on", "off"))}
                    {row("Doors", format::on_off(st.doors_open, "open", "closed"))}
                    {row("Headlights", format::on_off(st.headlights_on, "on", "off"))}
                    {row("Source", pos.as_ref().map(|p| p.source.as_str().to_string()).unwrap_or_else(|| "—".into()))}
                    {row("Last message", format::age(now - d.last_seen_ms) + " ago")}
                </div>
                <details class="all-fields" data-testid="status-fields" open>
                    <summary>{format!("All fields ({})", fields.len())}</summary>
                    {fields.into_iter().map(|(k, v)| {
                        let key = k.clone();
                        view! { <div class="kv" data-testid="status-field" data-field=key><span>{k}</span><b>{v}</b></div> }
                    }).collect_view()}
                </details>
            }
        })
    };
    view! {
        <Show when=move || ui.selected.with(Option::is_some)>
            <aside class="vehicle-panel" data-testid="vehicle-panel" data-vehicle-id=move || ui.selected.get().unwrap_or_default()>
                <div class="panel-tools">
                    {move || ui.selected.get().map(|id| view! {
                        <crate::alert_group::SnoozeSelect kind="vehicle" target=id testid="snooze-vehicle"/>
                    })}
                    <button class:active=move || ui.follow.get() data-testid="follow-toggle"
                        on:click=move |_| ui.follow.update(|f| *f = !*f)>
                        {move || if ui.follow.get() { "Following" } else { "Follow" }}
                    </button>
                    <button class="icon-btn" title="Close" data-testid="vehicle-panel-close" on:click=move |_| ui.select(None, None)>"✕"</button>
                </div>
                {move || match body() {
                    Some(v) => v.into_any(),
                    None => view! { <div class="panel-head"><h2>{ui.selected.get().unwrap_or_default()}</h2><div class="sub">"Waiting for data…"</div></div> }.into_any(),
                }}
                <VehicleChart/>
            </aside>
        </Show>
    }
}

/// The quarantine: rejected messages with their reasons (opened from the Rejected counter).
#[component]
pub fn QuarantineDialog() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let rows = RwSignal::new(Vec::<QuarantineEntry>::new());
    let error = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        if ui.quarantine_open.get() {
            wasm_bindgen_futures::spawn_local(async move {
                match ipc::invoke::<_, Vec<QuarantineEntry>>("quarantine_list", &json!({})).await {
                    Ok(r) => {
                        rows.set(r);
                        error.set(None)
                    }
                    Err(e) => error.set(Some(e.message)),
                }
            });
        }
    });
    let reasons = move || {
        ui.frame.with(|f| {
            f.as_ref()
                .map(|f| f.counters.rejected_by_reason.clone())
                .unwrap_or_default()
        })
    };
    view! {
        <Show when=move || ui.quarantine_open.get()>
            <div class="modal-bg" on:click=move |_| ui.quarantine_open.set(false)></div>
            <div class="modal wide" data-testid="quarantine">
                <div class="modal-head"><h3>"Quarantined messages"</h3>
                    <button class="icon-btn" on:click=move |_| ui.quarantine_open.set(false)>"✕"</button></div>
                <div class="chips">
                    {move || reasons().into_iter().map(|(r, n)| view! { <span class="chip">{r}" "<b>{n}</b></span> }).collect_view()}
                </div>
                <Show when=move || error.with(Option::is_some)><div class="form-error">{move || error.get()}</div></Show>
                <div class="table-wrap"><table>
                    <thead><tr><th>"Received"</th><th>"Topic"</th><th>"Part."</th><th>"Offset"</th><th>"Reason"</th><th>"Detail"</th><th>"Payload"</th></tr></thead>
                    <tbody>
                        {move || rows.get().into_iter().map(|q| view! {
                            <tr data-testid="quarantine-row">
                                <td>{format::clock(q.received_ms)}</td><td>{q.topic}</td><td>{q.partition}</td><td>{q.offset}</td>
                                <td><span class="chip">{q.reason}</span></td><td>{q.detail}</td><td><code>{q.preview}</code></td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table></div>
                <Show when=move || rows.with(Vec::is_empty)><div class="empty">"Nothing quarantined."</div></Show>
            </div>
        </Show>
    }
}
