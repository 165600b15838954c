//! The settings dialog: brokers, topics and their field mapping, Redis, operator, map tiles.
//! Saving validates with the engine's own config parser (errors name the key), edits the
//! config file (comments and other sections kept) and reconnects without restarting the
//! app. Secrets are never sent here: they arrive as `set`, and `set` sent back keeps them;
//! a new password is stored in the OS keyring by the shell (the file gets `keyring:NAME`).

use crate::app::Ui;
use crate::ipc;
use fleetdash_ipc::{AppStatus, SettingsForm, TopicForm};
use leptos::prelude::*;
use serde_json::json;

const KINDS: [&str; 6] = ["position", "status", "info", "alert", "ack", "device"];

#[component]
pub fn SettingsDialog() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let form = RwSignal::new(SettingsForm::default());
    let error = RwSignal::new(None::<String>);
    let saving = RwSignal::new(false);
    Effect::new(move |_| {
        if ui.settings_open.get() {
            error.set(None);
            wasm_bindgen_futures::spawn_local(async move {
                match ipc::invoke::<_, SettingsForm>("load_settings", &json!({})).await {
                    Ok(f) => form.set(f),
                    Err(e) => error.set(Some(e.message)),
                }
            });
        }
    });
    let save = move |_| {
        saving.set(true);
        let f = form.get_untracked();
        let old_tiles = ui.status.with_untracked(|s| s.tile_url.clone());
        wasm_bindgen_futures::spawn_local(async move {
            let r = ipc::invoke::<_, AppStatus>("save_settings", &json!({ "form": f })).await;
            saving.set(false);
            match r {
                Ok(st) => {
                    let reload = st.tile_url != old_tiles;
                    ui.status.set(st);
                    ui.settings_open.set(false);
                    ui.notify("Settings saved; reconnected".into());
                    if reload && let Some(w) = web_sys::window() {
                        let _ = w.location().reload();
                    }
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    let text = move |label: &'static str,
                     testid: &'static str,
                     get: fn(&SettingsForm) -> String,
                     set: fn(&mut SettingsForm, String)| {
        view! {
            <label class="field"><span>{label}</span>
                <input data-testid=testid prop:value=move || form.with(get) on:input=move |ev| form.update(|f| set(f, event_target_value(&ev)))/>
            </label>
        }
    };
    view! {
        <Show when=move || ui.settings_open.get()>
            <div class="modal-bg" on:click=move |_| ui.settings_open.set(false)></div>
            <div class="modal wide" data-testid="settings">
                <div class="modal-head"><h3>"Settings"</h3>
                    <button class="icon-btn" on:click=move |_| ui.settings_open.set(false)>"✕"</button></div>
                <div class="sub">"Saved to "<code>{move || ui.status.with(|s| s.save_path.clone().unwrap_or_default())}</code></div>
                <div class="form">
                    <h4>"Kafka"</h4>
                    {text("Brokers", "settings-brokers", |f| f.brokers.clone(), |f, v| f.brokers = v)}
                    <table class="topics">
                        <thead><tr><th>"Topic"</th><th>"Kind"</th><th>"Field mapping (field=path, …)"</th><th></th></tr></thead>
                        <tbody>
                            {move || (0..form.with(|f| f.topics.len())).map(|i| topic_row(form, i)).collect_view()}
                        </tbody>
                    </table>
                    <button class="link" on:click=move |_| form.update(|f| f.topics.push(TopicForm { kind: "position".into(), fields: "id=$key, lat=lat, lng=lng".into(), ..Default::default() }))>"+ Add topic"</button>
                    <label class="field"><span>"Properties (librdkafka, one key=value per line; a stored secret shows as “set”, leave it to keep it; a new password is stored in the OS keyring, or give env:NAME)"</span>
                        <textarea class="mono" rows="4" spellcheck="false" style="font: inherit; color: var(--text); background: #0d141d; border: 1px solid var(--line); border-radius: var(--radius); padding: 6px 8px; resize: vertical;" data-testid="settings-kafka-properties" prop:value=move || form.with(|f| f.properties.clone()) on:input=move |ev| form.update(|f| f.properties = event_target_value(&ev))></textarea>
                    </label>
                    <h4>"Redis"</h4>
                    {text("URL (several = cluster; a stored password shows as “set”; a new one is moved to the OS keyring)", "settings-redis-url", |f| f.redis_url.clone(), |f, v| f.redis_url = v)}
                    {text("Geo keys", "settings-geo-keys", |f| f.geo_keys.clone(), |f, v| f.geo_keys = v)}
                    <h4>"Alert rules"</h4>
                    <table class="topics rules" data-testid="settings-rules">
                        <thead><tr><th>"Rule"</th><th>"On"</th><th>"Severity"</th></tr></thead>
                        <tbody>
                            {move || (0..form.with(|f| f.rules.len())).map(|i| rule_row(form, i)).collect_view()}
                        </tbody>
                    </table>
                    <h4>"Operator & map"</h4>
                    {text("Operator name", "settings-operator", |f| f.operator.clone(), |f, v| f.operator = v)}
                    {text("Tile URL (https, {z}/{x}/{y}, optional {s} {r}; empty = offline basemap only)", "settings-tile-url", |f| f.tile_url.clone(), |f, v| f.tile_url = v)}
                </div>
                <Show when=move || error.with(Option::is_some)>
                    <div class="form-error" data-testid="settings-error">{move || error.get()}</div>
                </Show>
                <div class="modal-foot">
                    <button on:click=move |_| ui.settings_open.set(false)>"Cancel"</button>
                    <button class="primary" data-testid="settings-save" disabled=move || saving.get() on:click=save>
                        {move || if saving.get() { "Saving…" } else { "Save & reconnect" }}
                    </button>
                </div>
            </div>
        </Show>
    }
}

fn topic_row(form: RwSignal<SettingsForm>, i: usize) -> impl IntoView {
    let get = move |f: fn(&TopicForm) -> String| {
        move || form.with(|s| s.topics.get(i).map(f).unwrap_or_default())
    };
    view! {
        <tr>
            <td><input prop:value=get(|t| t.name.clone()) on:input=move |ev| form.update(|s| s.topics[i].name = event_target_value(&ev))/></td>
            <td><select on:change=move |ev| form.update(|s| s.topics[i].kind = event_target_value(&ev))>
                {KINDS.iter().map(|k| {
                    let selected = move || form.with(|s| s.topics.get(i).is_some_and(|t| t.kind == *k));
                    view! { <option value=*k selected=selected>{*k}</option> }
                }).collect_view()}
            </select></td>
            <td><input class="mono" prop:value=get(|t| t.fields.clone()) on:input=move |ev| form.update(|s| s.topics[i].fields = event_target_value(&ev))/></td>
            <td><button class="icon-btn" title="Remove" on:click=move |_| form.update(|s| { s.topics.remove(i); })>"✕"</button></td>
        </tr>
    }
}

/// One built-in rule: on/off and severity (issue 12).
fn rule_row(form: RwSignal<SettingsForm>, i: usize) -> impl IntoView {
    let name = form.with_untracked(|f| f.rules.get(i).map(|r| r.name.clone()).unwrap_or_default());
    let label = name.clone();
    view! {
        <tr data-testid="settings-rule" data-rule=name>
            <td>{label}</td>
            <td><input type="checkbox" data-testid="settings-rule-enabled"
                prop:checked=move || form.with(|f| f.rules.get(i).is_some_and(|r| r.enabled))
                on:change=move |ev| form.update(|f| f.rules[i].enabled = event_target_checked(&ev))/></td>
            <td><select data-testid="settings-rule-severity" on:change=move |ev| form.update(|f| f.rules[i].severity = event_target_value(&ev))>
                {["info", "warning", "critical"].iter().map(|s| {
                    let selected = move || form.with(|f| f.rules.get(i).is_some_and(|r| r.severity == *s));
                    view! { <option value=*s selected=selected>{*s}</option> }
                }).collect_view()}
            </select></td>
        </tr>
    }
}
