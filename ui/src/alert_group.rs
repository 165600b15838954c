//! The alert feed's groups (issue 12 §8): one line per rule with its open count, newest
//! time and severity, folded above [`FOLD_AT`] alerts; acknowledge or snooze a whole rule
//! with one note. Snoozes are shared with every desk through the acks topic.

use crate::alerts::AlertItem;
use crate::app::Ui;
use crate::format;
use crate::ipc;
use fleet_model::AlertState;
use fleet_model::Severity;
use fleet_model::ui::{ACK_NOTE_MAX_BYTES, cap_ack_note};
use leptos::prelude::*;
use serde_json::json;
use std::collections::{HashMap, HashSet};

/// A group of more open alerts than this starts folded.
pub(crate) const FOLD_AT: u64 = 20;

/// Which groups the operator folded or unfolded, and which open alerts are selected.
#[derive(Clone, Copy)]
pub(crate) struct FeedState {
    pub(crate) unfolded: RwSignal<HashMap<String, bool>>,
    pub(crate) selected: RwSignal<HashSet<String>>,
}

/// Acknowledges the `ids` (a selection), or every open alert of `rule` in the group the
/// window shows, with one note.
pub(crate) fn acknowledge_many(
    ui: Ui,
    ids: Option<Vec<String>>,
    rule: Option<String>,
    note: String,
) {
    wasm_bindgen_futures::spawn_local(async move {
        let args = json!({ "ids": ids, "rule": rule, "note": cap_ack_note(&note) });
        match ipc::invoke::<_, u64>("ack_alerts", &args).await {
            Ok(n) => ui.notify(format!(
                "Acknowledged {n} alert{}",
                if n == 1 { "" } else { "s" }
            )),
            Err(e) => ui.notify(format!("Not acknowledged: {}", e.message)),
        }
    });
}

/// One rule's open alerts: count, newest, severity; unfold to see them; acknowledge all.
///
/// Keyed by the rule alone and reading its count, newest time and severity from the frame's
/// groups, so a new alert of the rule updates the line in place: the alerts inside, the note
/// being typed and its focus all stay (re-creating the group on every new alert lost them).
#[component]
pub(crate) fn AlertGroupView(rule: String) -> impl IntoView {
    let ui = expect_context::<Ui>();
    let st = expect_context::<FeedState>();
    // Copy handle, so the closures below are `Fn` and can be rebuilt by `Show`.
    let rule_sv = StoredValue::new(rule.clone());
    let group = Memo::new(move |_| {
        rule_sv.with_value(|rule| {
            ui.alert_groups
                .with(|gs| gs.iter().find(|g| &g.rule == rule).cloned())
        })
    });
    let open = Memo::new(move |_| group.with(|g| g.as_ref().map_or(0, |g| g.open)));
    let severity =
        Memo::new(move |_| group.with(|g| g.as_ref().map_or(Severity::Info, |g| g.severity)));
    let newest = Memo::new(move |_| group.with(|g| g.as_ref().map_or(0, |g| g.newest_ms)));
    let unfolded = Memo::new(move |_| {
        let default = open.get() <= FOLD_AT;
        rule_sv.with_value(|rule| {
            st.unfolded
                .with(|u| u.get(rule).copied().unwrap_or(default))
        })
    });
    let toggle = move |_| {
        let now = unfolded.get_untracked();
        st.unfolded.update(|u| {
            u.insert(rule_sv.get_value(), !now);
        });
    };
    let items = move || {
        rule_sv.with_value(|rule| {
            ui.alerts.with(|all| {
                all.iter()
                    .filter(|a| a.state == AlertState::Open && &a.rule == rule)
                    .cloned()
                    .collect::<Vec<_>>()
            })
        })
    };
    let loaded = Memo::new(move |_| {
        rule_sv.with_value(|rule| {
            ui.alerts.with(|all| {
                all.iter()
                    .filter(|a| a.state == AlertState::Open && &a.rule == rule)
                    .count() as u64
            })
        })
    });
    let note = StoredValue::new(String::new());
    let ack_all = move |_| acknowledge_many(ui, None, Some(rule_sv.get_value()), note.get_value());
    let show_all = move |_| {
        ui.alert_filter
            .update(|f| f.rule = Some(rule_sv.get_value()))
    };
    view! {
        <li class=move || format!("alert-group sev-{}", severity.get().as_str()) data-testid="alert-group"
            data-rule=rule.clone() data-count=move || open.get() data-unfolded=move || unfolded.get().to_string()>
            <div class="group-head">
                <button class="link fold" data-testid="alert-group-toggle" title="Show or hide this rule's alerts"
                    on:click=toggle>{move || if unfolded.get() { "▾" } else { "▸" }}</button>
                <span class="sev">{move || severity.get().as_str()}</span>
                <span class="rule">{rule.clone()}</span>
                <span class="count" data-testid="alert-group-count">{move || format::thousands(open.get())}" open"</span>
                <span class="time" title="Newest">{move || format::clock(newest.get())}</span>
            </div>
            <div class="ack group-ack">
                <input data-testid="alert-group-note" placeholder="Note for all (optional)"
                    maxlength=ACK_NOTE_MAX_BYTES.to_string()
                    on:input=move |ev| note.set_value(event_target_value(&ev))/>
                <button data-testid="alert-group-ack" title="Acknowledge every open alert of this rule (in the group shown)"
                    on:click=ack_all>{move || format!("Acknowledge all {}", format::thousands(open.get()))}</button>
                <SnoozeSelect kind="rule" target=rule.clone() testid="alert-group-snooze"/>
            </div>
            <Show when=move || unfolded.get()>
                <ul class="group-items">
                    <For each=items key=|a| (a.id.clone(), a.state.as_str()) let:a>
                        <AlertItem alert=a/>
                    </For>
                </ul>
                <Show when=move || { loaded.get() < open.get() }>
                    <button class="link more" data-testid="alert-group-more" on:click=show_all>
                        {move || format!("{} more: show only {}", format::thousands(open.get().saturating_sub(loaded.get())), rule_sv.get_value())}
                    </button>
                </Show>
            </Show>
        </li>
    }
}

/// Snooze choices (minutes, label).
const SNOOZE_FOR: [(u32, &str); 4] = [
    (15, "15 min"),
    (60, "1 hour"),
    (240, "4 hours"),
    (1440, "1 day"),
];

/// Snoozes a rule's or a vehicle's alerts on every desk (0 minutes lifts it).
pub fn snooze(ui: Ui, kind: &'static str, target: String, minutes: u32) {
    wasm_bindgen_futures::spawn_local(async move {
        let args = json!({ "kind": kind, "target": target, "minutes": minutes });
        match ipc::invoke::<_, serde_json::Value>("snooze_alerts", &args).await {
            Ok(_) if minutes == 0 => ui.notify(format!("{target}: snooze lifted")),
            Ok(_) => ui.notify(format!("{target} snoozed for {minutes} min on every desk")),
            Err(e) => ui.notify(format!("Not snoozed: {}", e.message)),
        }
    });
}

/// A select that snoozes `target` for the chosen time.
#[component]
pub fn SnoozeSelect(kind: &'static str, target: String, testid: &'static str) -> impl IntoView {
    let ui = expect_context::<Ui>();
    view! {
        <select class="snooze" data-testid=testid title="Hide these alerts (and their notifications) for a while, on every desk"
            on:change=move |ev| {
                let v = event_target_value(&ev);
                if let Ok(m) = v.parse::<u32>() { snooze(ui, kind, target.clone(), m); }
            }
            prop:value="">
            <option value="">"Snooze…"</option>
            {SNOOZE_FOR.iter().map(|(m, label)| view! { <option value=m.to_string()>{*label}</option> }).collect_view()}
        </select>
    }
}
