//! The alert feed: newest first through a filter (severity, rule, state, vehicle) that the
//! cache applies, so filtering for resolved alerts finds old ones too, not just what is on
//! screen. Acknowledge with an optional note by button or keyboard; click an alert and the
//! map flies to its vehicle and opens its panel. Critical alerts left unacknowledged past
//! `alerts.escalate_after_s` are highlighted (the shell notifies the desktop again).
//!
//! Keys (outside text fields): `j`/`k` move through the feed, `a` acknowledges the focused
//! alert (with its note) and moves to the next open one, `Enter`/`o` shows its vehicle,
//! `Esc` clears the focus. In a note field `Enter` acknowledges.

use crate::alert_group::{AlertGroupView, FeedState, acknowledge_many, snooze};
use crate::app::{Ui, with_map};
use crate::format;
use crate::ipc;
use crate::timeline;
use fleet_model::ui::{ACK_NOTE_MAX_BYTES, cap_ack_note};
use fleet_model::{Alert, AlertFilter, AlertState, SearchHit, Severity};
use leptos::prelude::*;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use wasm_bindgen::JsCast;

/// Notes typed per alert, kept outside the reactive graph (typing must not re-render).
#[derive(Clone, Copy)]
struct Notes(StoredValue<HashMap<String, String>>);

/// Acknowledges `id` with `note` (cut to the 4 KiB the engine keeps) and says how it went.
fn acknowledge(ui: Ui, id: String, note: String) {
    wasm_bindgen_futures::spawn_local(async move {
        let args = json!({ "alertId": id, "note": cap_ack_note(&note) });
        match ipc::invoke::<_, Alert>("ack_alert", &args).await {
            Ok(a) => ui.notify(format!("Acknowledged: {} on {}", a.rule, a.vehicle)),
            Err(e) => ui.notify(format!("Not acknowledged: {}", e.message)),
        }
    });
}

/// Selects the alert's vehicle (its panel opens) and flies the map to it.
fn show_vehicle(ui: Ui, vehicle: String) {
    wasm_bindgen_futures::spawn_local(async move {
        let hits =
            ipc::invoke::<_, Vec<SearchHit>>("search_vehicles", &json!({ "query": vehicle }))
                .await
                .unwrap_or_default();
        let at = hits
            .into_iter()
            .find(|h| h.id == vehicle)
            .and_then(|h| h.lat.zip(h.lng));
        ui.select(Some(vehicle), None);
        match at {
            Some((lat, lng)) => with_map(|m| m.fly_to(lat, lng, 16.0)),
            None => ui.notify("That vehicle has no known position yet".into()),
        }
    });
}

/// Whether the UI highlights `a` as escalated at `now_ms` (not before the app status, which
/// carries `escalate_after_s`, has arrived).
fn escalated(a: &Alert, escalate_after_s: f64, now_ms: i64) -> bool {
    escalate_after_s > 0.0 && a.is_escalated((escalate_after_s * 1000.0).round() as i64, now_ms)
}

/// The feed with its filter bar; also owns the keyboard shortcuts.
#[component]
pub fn AlertFeed() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let notes = Notes(StoredValue::new(HashMap::new()));
    provide_context(notes);
    provide_context(FeedState {
        unfolded: RwSignal::new(HashMap::new()),
        selected: RwSignal::new(HashSet::new()),
    });
    let open = Memo::new(move |_| ui.frame.with(|f| f.as_ref().map_or(0, |f| f.open_alerts)));
    // Every change of the filter goes to the shell; the next frame carries the new list.
    Effect::new(move |_| {
        let filter = ui.alert_filter.get();
        ipc::send("set_alert_filter", json!({ "filter": filter }));
    });
    install_keys(ui, notes);
    view! {
        <aside class="alerts" data-testid="alert-feed">
            <div class="alerts-head">
                <h3>"Alerts"</h3>
                <span class="pill" class:hot=move || { open.get() > 0 } data-testid="alerts-open" data-value=move || open.get()>
                    {move || open.get()}" unacknowledged"
                </span>
                <span class="keys" title="j/k: move · a: acknowledge · Enter: show vehicle · Esc: clear">"j k a ⏎"</span>
            </div>
            <crate::drift::DriftNotice/>
            <FilterBar/>
            <Show when=move || ui.alerts.with(Vec::is_empty)>
                <div class="empty">
                    {move || if ui.alert_filter.with(|f| f.is_empty()) {
                        "No alerts. Alerts raised upstream and by fleetdash's rules appear here."
                    } else {
                        "No alert matches the filter."
                    }}
                </div>
            </Show>
            <SnoozeList/>
            <SelectionBar/>
            <ul>
                // Open alerts, one group per rule (issue 12 §8): a flood of one rule is one line.
                <For each=move || ui.alert_groups.with(|gs| gs.iter().map(|g| g.rule.clone()).collect::<Vec<_>>()) key=|r| r.clone() let:rule>
                    <AlertGroupView rule/>
                </For>
                // The rest (acknowledged, resolved; open ones only until their group arrives).
                <For each=move || {
                    let grouped: HashSet<String> = ui.alert_groups.with(|g| g.iter().map(|g| g.rule.clone()).collect());
                    ui.alerts.get().into_iter().filter(|a| a.state != AlertState::Open || !grouped.contains(&a.rule)).collect::<Vec<_>>()
                } key=|a| (a.id.clone(), a.state.as_str()) let:a>
                    <AlertItem alert=a/>
                </For>
            </ul>
        </aside>
    }
}

/// The snoozes running now, each with a button to lift it.
#[component]
fn SnoozeList() -> impl IntoView {
    let ui = expect_context::<Ui>();
    view! {
        <Show when=move || ui.snoozes.with(|z| !z.is_empty())>
            <div class="snoozes" data-testid="snooze-list">
                <For each=move || ui.snoozes.get() key=|z| (z.snooze, z.target.clone(), z.until) let:z>
                    {
                        let target = z.target.clone();
                        let shown_target = z.target.clone();
                        let kind = z.snooze.as_str();
                        view! {
                            <span class="snoozed" data-testid="snoozed" data-kind=kind data-target=shown_target>
                                "💤 "{format!("{} {} until {} ({})", kind, z.target, format::clock(z.until), z.operator)}
                                <button class="link" data-testid="unsnooze" on:click=move |_| snooze(ui, kind, target.clone(), 0)>"Lift"</button>
                            </span>
                        }
                    }
                </For>
            </div>
        </Show>
    }
}

/// Acknowledge the selected open alerts with one note.
#[component]
fn SelectionBar() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let st = expect_context::<FeedState>();
    let note = StoredValue::new(String::new());
    let count = Memo::new(move |_| st.selected.with(HashSet::len));
    let ack = move |_| {
        let ids: Vec<String> = st.selected.get_untracked().into_iter().collect();
        st.selected.set(HashSet::new());
        acknowledge_many(ui, Some(ids), None, note.get_value());
    };
    view! {
        <Show when=move || { count.get() > 0 }>
            <div class="ack selection-bar" data-testid="selection-bar">
                <span>{move || format!("{} selected", count.get())}</span>
                <input data-testid="ack-selected-note" placeholder="Note for all (optional)"
                    maxlength=ACK_NOTE_MAX_BYTES.to_string()
                    on:input=move |ev| note.set_value(event_target_value(&ev))/>
                <button data-testid="ack-selected" on:click=ack>"Acknowledge selected"</button>
                <button class="link" on:click=move |_| st.selected.set(HashSet::new())>"Clear"</button>
            </div>
        </Show>
    }
}

#[component]
fn FilterBar() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let rules = RwSignal::new(Vec::<String>::new());
    let load_rules = move || {
        wasm_bindgen_futures::spawn_local(async move {
            if let Ok(r) = ipc::invoke::<_, Vec<String>>("alert_rules", &json!({})).await {
                rules.set(r);
            }
        });
    };
    load_rules();
    let opt = |v: &'static str, label: &'static str| view! { <option value=v>{label}</option> };
    view! {
        <div class="alert-filters">
            <select data-testid="alert-filter-severity" title="Severity"
                on:change=move |ev| { let v = event_target_value(&ev); ui.alert_filter.update(|f| f.severity = Severity::parse(&v)); }
                prop:value=move || ui.alert_filter.with(|f| f.severity.map(|s| s.as_str()).unwrap_or(""))>
                {opt("", "Any severity")}{opt("critical", "Critical")}{opt("warning", "Warning")}{opt("info", "Info")}
            </select>
            <select data-testid="alert-filter-state" title="State"
                on:change=move |ev| { let v = event_target_value(&ev); ui.alert_filter.update(|f| f.state = AlertState::parse(&v)); }
                prop:value=move || ui.alert_filter.with(|f| f.state.map(|s| s.as_str()).unwrap_or(""))>
                {opt("", "Any state")}{opt("open", "Open")}{opt("acknowledged", "Acknowledged")}{opt("resolved", "Resolved")}
            </select>
            <select data-testid="alert-filter-rule" title="Rule" on:focus=move |_| load_rules()
                on:change=move |ev| { let v = event_target_value(&ev); ui.alert_filter.update(|f| f.rule = (!v.is_empty()).then_some(v)); }>
                <option value="">"Any rule"</option>
                {move || {
                    let current = ui.alert_filter.with(|f| f.rule.clone());
                    rules.get().into_iter().map(|r| {
                        let selected = current.as_deref() == Some(r.as_str());
                        view! { <option value=r.clone() selected=selected>{r.clone()}</option> }
                    }).collect_view()
                }}
            </select>
            <input type="search" data-testid="alert-filter-vehicle" placeholder="Vehicle…"
                prop:value=move || ui.alert_filter.with(|f| f.vehicle.clone().unwrap_or_default())
                on:input=move |ev| { let v = event_target_value(&ev); ui.alert_filter.update(|f| f.vehicle = (!v.trim().is_empty()).then(|| v.trim().to_string())); }/>
            <Show when=move || !ui.alert_filter.with(|f| f.is_empty())>
                <button class="link" data-testid="alert-filter-clear" on:click=move |_| ui.alert_filter.update(|f| *f = AlertFilter { group: f.group.take(), ..Default::default() })>"Clear"</button>
            </Show>
        </div>
    }
}

#[component]
pub(crate) fn AlertItem(alert: Alert) -> impl IntoView {
    let ui = expect_context::<Ui>();
    let notes = expect_context::<Notes>();
    let st = expect_context::<FeedState>();
    let id = alert.id.clone();
    let is_open = alert.state == AlertState::Open;
    let focused = {
        let id = id.clone();
        Memo::new(move |_| ui.focused_alert.with(|f| f.as_deref() == Some(id.as_str())))
    };
    let is_escalated = {
        let a = alert.clone();
        Memo::new(move |_| {
            let now = ui.frame.with(|f| f.as_ref().map_or(0, |f| f.ts_ms));
            escalated(&a, ui.status.with(|s| s.escalate_after_s), now)
        })
    };
    let node = NodeRef::<leptos::html::Li>::new();
    Effect::new(move |_| {
        if focused.get()
            && let Some(el) = node.get()
        {
            el.scroll_into_view_with_bool(false);
        }
    });
    let ack = {
        let id = id.clone();
        move || {
            let note = notes
                .0
                .with_value(|n| n.get(&id).cloned().unwrap_or_default());
            acknowledge(ui, id.clone(), note);
        }
    };
    let ack_click = ack.clone();
    let ack_enter = ack.clone();
    let on_click = {
        let (id, vehicle) = (id.clone(), alert.vehicle.clone());
        move |ev: leptos::ev::MouseEvent| {
            // Buttons and the note field do their own thing.
            let inner = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
                .is_some_and(|e| matches!(e.tag_name().as_str(), "BUTTON" | "INPUT"));
            if !inner {
                ui.focused_alert.set(Some(id.clone()));
                show_vehicle(ui, vehicle.clone());
            }
        }
    };
    let note_id = id.clone();
    let initial_note = notes
        .0
        .with_value(|n| n.get(&id).cloned().unwrap_or_default());
    view! {
        <li node_ref=node class=format!("alert-item sev-{} st-{}", alert.severity.as_str(), alert.state.as_str())
            class:focused=move || focused.get() class:escalated=move || is_escalated.get()
            data-testid="alert-item" data-alert-id=alert.id.clone() data-state=alert.state.as_str()
            data-vehicle=alert.vehicle.clone() data-rule=alert.rule.clone()
            data-severity=alert.severity.as_str() data-escalated=move || is_escalated.get().to_string()
            on:click=on_click>
            <div class="alert-top">
                <span class="sev">{alert.severity.as_str()}</span>
                <span class="rule">{alert.rule.clone()}</span>
                <Show when=move || is_escalated.get()><span class="esc-tag">"ESCALATED"</span></Show>
                <span class="time">{format::clock(alert.ts_ms)}</span>
            </div>
            <div class="msg">{alert.message.clone()}</div>
            <div class="alert-bottom">
                <span class="vehicle">{alert.vehicle.clone()}</span>
                {alert.plate.clone().map(|p| view! { <span class="plate" data-testid="alert-plate">{p}</span> })}
                {match alert.state {
                    AlertState::Acknowledged => format!(
                        "ack'd by {}{}",
                        alert.acked_by.clone().unwrap_or_default(),
                        alert.ack_note.clone().filter(|n| !n.is_empty()).map(|n| format!(": “{n}”")).unwrap_or_default()
                    ),
                    AlertState::Resolved => "resolved".into(),
                    AlertState::Open => String::new(),
                }}
                <button class="link replay" data-testid="replay-alert" title="Replay the 10 minutes before and 5 after this alert"
                    on:click={ let (v, ts) = (alert.vehicle.clone(), alert.ts_ms); move |_| timeline::replay_alert(ui, v.clone(), ts) }>"▶ Replay"</button>
            </div>
            <Show when=move || is_open>
                <div class="ack">
                    <input type="checkbox" data-testid="alert-select" title="Select for a bulk acknowledgement"
                        prop:checked={ let id = id.clone(); move || st.selected.with(|s| s.contains(&id)) }
                        on:change={ let id = id.clone(); move |ev| {
                            let on = event_target_checked(&ev);
                            st.selected.update(|s| { if on { s.insert(id.clone()); } else { s.remove(&id); } });
                        } }/>
                    <input data-testid="ack-note" placeholder="Note (optional)" value=initial_note.clone()
                        maxlength=ACK_NOTE_MAX_BYTES.to_string()
                        on:input={
                            let id = note_id.clone();
                            move |ev| { let v = event_target_value(&ev); notes.0.update_value(|n| { n.insert(id.clone(), v); }); }
                        }
                        on:keydown={
                            let ack = ack_enter.clone();
                            move |ev: leptos::ev::KeyboardEvent| if ev.key() == "Enter" { ack() }
                        }/>
                    <button data-testid="ack-button" on:click={ let ack = ack_click.clone(); move |_| ack() }>"Acknowledge"</button>
                </div>
            </Show>
        </li>
    }
}

/// The feed's keyboard shortcuts, on the whole window except inside text fields.
fn install_keys(ui: Ui, notes: Notes) {
    let handle = window_event_listener(leptos::ev::keydown, move |ev| {
        let typing = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .is_some_and(|e| matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"));
        if typing || ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
            return;
        }
        let alerts = ui.alerts.get_untracked();
        let pos = ui.focused_alert.with_untracked(|f| {
            f.as_ref()
                .and_then(|id| alerts.iter().position(|a| &a.id == id))
        });
        let focus_at = |i: usize| ui.focused_alert.set(alerts.get(i).map(|a| a.id.clone()));
        match ev.key().as_str() {
            "j" => focus_at(pos.map_or(0, |p| (p + 1).min(alerts.len().saturating_sub(1)))),
            "k" => focus_at(pos.map_or(0, |p| p.saturating_sub(1))),
            "Escape" => ui.focused_alert.set(None),
            "Enter" | "o" => {
                let Some(a) = pos.and_then(|p| alerts.get(p)) else {
                    return;
                };
                show_vehicle(ui, a.vehicle.clone());
            }
            "a" => match pos.and_then(|p| alerts.get(p).map(|a| (p, a))) {
                Some((p, a)) if a.state == AlertState::Open => {
                    let note = notes
                        .0
                        .with_value(|n| n.get(&a.id).cloned().unwrap_or_default());
                    acknowledge(ui, a.id.clone(), note);
                    // On to the next open alert, so a queue is worked through with `a`, `a`, …
                    let next = alerts
                        .iter()
                        .skip(p + 1)
                        .chain(alerts.iter().take(p))
                        .find(|n| n.state == AlertState::Open);
                    ui.focused_alert.set(next.map(|n| n.id.clone()));
                }
                Some(_) => ui.notify("That alert is not open".into()),
                // Nothing picked yet: pick the newest open alert; a second `a` acknowledges it.
                None => match alerts.iter().find(|a| a.state == AlertState::Open) {
                    Some(a) => {
                        ui.focused_alert.set(Some(a.id.clone()));
                        ui.notify("Press a again to acknowledge the highlighted alert".into());
                    }
                    None => ui.notify("No open alert to acknowledge".into()),
                },
            },
            _ => return,
        }
        ev.prevent_default();
    });
    // The feed lives as long as the page.
    std::mem::forget(handle);
}
