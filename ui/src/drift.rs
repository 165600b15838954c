//! `drift-notice`: the topics whose messages changed shape (SPEC §8 schema drift), above the
//! feed while their `schema_drift` alert is open — a firmware rollout is something an operator
//! should see before it shows up as odd charts. Acknowledging the alert dismisses it.

use crate::app::Ui;
use crate::ipc;
use fleet_model::{Alert, AlertState};
use leptos::prelude::*;
use serde_json::json;

/// The notice; empty (not rendered) while no drift alert is open.
#[component]
pub fn DriftNotice() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let drifts = Memo::new(move |_| {
        ui.alerts.with(|all| {
            all.iter()
                .filter(|a| a.rule == "schema_drift" && a.state == AlertState::Open)
                .cloned()
                .collect::<Vec<Alert>>()
        })
    });
    view! {
        <Show when=move || drifts.with(|d| !d.is_empty())>
            <div class="drift-notice" data-testid="drift-notice">
                <For each=move || drifts.get() key=|a| a.id.clone() let:a>
                    <div class="drift" data-alert-id=a.id.clone()>
                        <span class="what">{a.message.clone()}</span>
                        <button class="link" title="Acknowledge: the new fields are expected"
                            on:click={
                                let id = a.id.clone();
                                move |_| {
                                    let id = id.clone();
                                    wasm_bindgen_futures::spawn_local(async move {
                                        let args = json!({ "alertId": id, "note": "" });
                                        if let Err(e) = ipc::invoke::<_, Alert>("ack_alert", &args).await {
                                            ui.notify(format!("Not acknowledged: {}", e.message));
                                        }
                                    });
                                }
                            }>"Got it"</button>
                    </div>
                </For>
            </div>
        </Show>
    }
}
