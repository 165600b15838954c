//! Layout and wiring: header (counters, connections, search), map with the details panel,
//! alert feed on the right; dialogs for the quarantine list and settings. All state lives
//! in a few signals fed by the frame stream; the map is imperative (see `map`).

use crate::alerts::AlertFeed;
use crate::format;
use crate::ipc;
use crate::map::MapView;
use crate::panels::{QuarantineDialog, VehiclePanel};
use crate::settings::SettingsDialog;
use crate::sparkline;
use crate::timeline::{self, Timeline};
use crate::vehicle_chart::FleetChart;
use fleet_model::{
    Alert, AlertFilter, AlertGroup, AlertState, ConnState, Frame, SearchHit, Snooze, TrailPoint,
    VehicleHistory, Viewport,
};
use fleetdash_ipc::AppStatus;
use leptos::prelude::*;
use serde_json::json;
use std::cell::RefCell;
use std::sync::Arc;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

thread_local! {
    /// The map is a JS object graph (not `Send`), so it lives outside Leptos' signals.
    static MAP: RefCell<Option<MapView>> = const { RefCell::new(None) };
}

/// Runs `f` with the map, once it exists.
pub fn with_map(f: impl FnOnce(&MapView)) {
    MAP.with(|m| {
        if let Some(m) = m.borrow().as_ref() {
            f(m)
        }
    });
}

/// The app's shared UI state.
#[derive(Clone, Copy)]
pub struct Ui {
    /// Latest frame.
    pub frame: RwSignal<Option<Arc<Frame>>>,
    /// Selected vehicle.
    pub selected: RwSignal<Option<String>>,
    /// Keep the selected vehicle centred.
    pub follow: RwSignal<bool>,
    /// What the app runs against.
    pub status: RwSignal<AppStatus>,
    /// Dialogs.
    pub quarantine_open: RwSignal<bool>,
    /// Dialogs.
    pub settings_open: RwSignal<bool>,
    /// A transient message.
    pub toast: RwSignal<Option<String>>,
    /// The alert feed as last sent (frames carry it only when it changed).
    pub alerts: RwSignal<Vec<Alert>>,
    /// The feed's open alerts per rule, sent with `alerts`.
    pub alert_groups: RwSignal<Vec<AlertGroup>>,
    /// Snoozes running now, sent with `alerts`.
    pub snoozes: RwSignal<Vec<Snooze>>,
    /// What the feed shows.
    pub alert_filter: RwSignal<AlertFilter>,
    /// The alert the keyboard acts on.
    pub focused_alert: RwSignal<Option<String>>,
    /// The timeline's range (ms): what replay plays and the chart and export cover.
    pub range: RwSignal<(i64, i64)>,
    /// Replay speed picked on the timeline.
    pub speed: RwSignal<f64>,
    /// The map shows (or is about to show) the past: the trail is the range's track.
    pub replaying: RwSignal<bool>,
    /// The selected vehicle's history over the range (track, status, alerts).
    pub history: RwSignal<Option<VehicleHistory>>,
}

impl Ui {
    /// Selects a vehicle (or none) and tells the shell; optionally centres the map on it.
    pub fn select(&self, id: Option<String>, focus: Option<(f64, f64)>) {
        self.selected.set(id.clone());
        if id.is_none() {
            self.follow.set(false);
        }
        ipc::send("select_vehicle", json!({ "id": id }));
        if let Some((lat, lng)) = focus {
            with_map(|m| m.focus(lat, lng, 15.0));
        }
        with_map(|m| m.set_trail(Vec::new()));
        // While replaying, the trail is the range's track (the timeline draws it).
        if let Some(id) = id.filter(|_| !self.replaying.get_untracked()) {
            wasm_bindgen_futures::spawn_local(async move {
                if let Ok(t) =
                    ipc::invoke::<_, Vec<TrailPoint>>("vehicle_trail", &json!({ "id": id })).await
                {
                    with_map(|m| m.set_trail(t));
                }
            });
        }
    }

    /// Shows a message for a few seconds.
    pub fn notify(&self, msg: String) {
        self.toast.set(Some(msg));
        let toast = self.toast;
        set_timeout(move || toast.set(None), std::time::Duration::from_secs(5));
    }
}

/// The whole window.
#[component]
pub fn App() -> impl IntoView {
    let ui = Ui {
        frame: RwSignal::new(None),
        selected: RwSignal::new(None),
        follow: RwSignal::new(false),
        status: RwSignal::new(AppStatus::default()),
        quarantine_open: RwSignal::new(false),
        settings_open: RwSignal::new(false),
        toast: RwSignal::new(None),
        alerts: RwSignal::new(Vec::new()),
        alert_groups: RwSignal::new(Vec::new()),
        snoozes: RwSignal::new(Vec::new()),
        alert_filter: RwSignal::new(AlertFilter::default()),
        focused_alert: RwSignal::new(None),
        range: RwSignal::new(timeline::default_range()),
        speed: RwSignal::new(1.0),
        replaying: RwSignal::new(false),
        history: RwSignal::new(None),
    };
    provide_context(ui);
    // Taken here, not in `start_map`: that runs in a spawned task, outside the reactive owner.
    let hover = crate::map_tip::Hover::default();
    provide_context(hover);
    timeline::install_history_loader(ui);
    let map_ref = NodeRef::<leptos::html::Div>::new();
    Effect::new(move |done: Option<bool>| {
        if done == Some(true) {
            return true;
        }
        let Some(el) = map_ref.get() else {
            return false;
        };
        wasm_bindgen_futures::spawn_local(async move {
            let status = ipc::invoke::<_, AppStatus>("app_status", &json!({}))
                .await
                .unwrap_or_default();
            let tile_url = status.tile_url.clone();
            ui.status.set(status);
            start_map(ui, hover, &el, &tile_url);
        });
        true
    });
    let demo =
        move || ui.status.with(|s| s.demo) || ui.frame.with(|f| f.as_ref().is_some_and(|f| f.demo));
    view! {
        <div class="app">
            <Header/>
            <Show when=demo>
                <div class="banner demo" data-testid="demo-banner">
                    <span class="tag">"DEMO"</span>
                    "Demo fleet — connect your own in Settings / see README"
                    <button class="link" on:click=move |_| ui.settings_open.set(true)>"Open Settings"</button>
                </div>
            </Show>
            <Show when=move || ui.status.with(|s| s.error.is_some())>
                <div class="banner error" data-testid="engine-error">
                    {move || ui.status.with(|s| s.error.clone().unwrap_or_default())}
                </div>
            </Show>
            <main class="body">
                <section class="map-wrap">
                    <div class="map" data-testid="map" node_ref=map_ref></div>
                    <crate::map_tip::MapTip/>
                    <Legend/>
                    <VehiclePanel/>
                    <Timeline/>
                </section>
                <AlertFeed/>
            </main>
            <QuarantineDialog/>
            <SettingsDialog/>
            <Show when=move || ui.toast.with(Option::is_some)>
                <div class="toast" data-testid="toast">{move || ui.toast.get().unwrap_or_default()}</div>
            </Show>
        </div>
    }
}

fn start_map(ui: Ui, hover: crate::map_tip::Hover, el: &web_sys::HtmlDivElement, tile_url: &str) {
    let on_select = move |id: Option<String>| ui.select(id, None);
    let on_viewport = |vp: Viewport| ipc::send("set_viewport", json!({ "viewport": vp }));
    let on_hover = move |h| hover.set(h);
    let map = match MapView::new(
        el.unchecked_ref(),
        tile_url,
        on_select,
        on_viewport,
        on_hover,
    ) {
        Ok(m) => m,
        Err(e) => {
            web_sys::console::error_2(&"map".into(), &e);
            return;
        }
    };
    MAP.with(|m| *m.borrow_mut() = Some(map.clone()));
    install_test_hook(&map);
    ipc::subscribe(move |mut f: Frame| {
        if let Some(alerts) = f.alerts.take() {
            ui.alerts.set(alerts);
        }
        if let Some(groups) = f.alert_groups.take() {
            ui.alert_groups.set(groups);
        }
        if let Some(snoozes) = f.snoozes.take() {
            ui.snoozes.set(snoozes);
        }
        map.set_frame(&f);
        if ui.follow.get_untracked()
            && let Some(p) = f.selected.as_ref().and_then(|d| d.position.as_ref())
        {
            map.pan_to(p.lat, p.lng);
        }
        let seq = f.seq;
        set_hook_number("frame_ts", f.ts_ms as f64);
        // The replayed instant of the frame now drawn (0 = live), read by the tests together
        // with `dot(id)` so the two always come from one frame.
        set_hook_number("replay_t", f.replay.map_or(0.0, |r| r.t_ms as f64));
        set_hook_number("dots", f.dots.len() as f64);
        set_hook_number("clusters", f.clusters.len() as f64);
        ui.frame.set(Some(Arc::new(f)));
        set_hook_number("seq", seq as f64);
    });
}

/// `window.__fleetdash`: frame sequence, `dot(id)` → `[x, y, lat, lng]` and
/// `setView(lat, lng, zoom)` for the
/// end-to-end tests and the UI benchmark (the vehicles are pixels on a canvas, not DOM).
fn install_test_hook(map: &MapView) {
    let hook = js_sys::Object::new();
    let m = map.clone();
    let dot =
        Closure::<dyn Fn(String) -> JsValue>::new(move |id: String| match m.dot_position(&id) {
            Some((x, y, lat, lng)) => {
                js_sys::Array::of4(&x.into(), &y.into(), &lat.into(), &lng.into()).into()
            }
            None => JsValue::NULL,
        });
    let _ = js_sys::Reflect::set(&hook, &"dot".into(), dot.as_ref());
    dot.forget();
    let m = map.clone();
    let view =
        Closure::<dyn Fn(f64, f64, f64)>::new(move |lat, lng, zoom| m.set_view(lat, lng, zoom));
    let _ = js_sys::Reflect::set(&hook, &"setView".into(), view.as_ref());
    view.forget();
    let _ = js_sys::Reflect::set(&js_sys::global(), &"__fleetdash".into(), &hook);
}

fn set_hook_number(key: &str, v: f64) {
    if let Ok(h) = js_sys::Reflect::get(&js_sys::global(), &"__fleetdash".into()) {
        let _ = js_sys::Reflect::set(&h, &key.into(), &v.into());
    }
}

fn conn_state(c: &ConnState) -> (&'static str, String) {
    match c {
        ConnState::Up => ("up", "connected".into()),
        ConnState::Down { reason } => ("down", reason.clone()),
        ConnState::Connecting => ("connecting", "connecting…".into()),
        ConnState::Disabled => ("disabled", "not configured".into()),
    }
}

#[component]
fn Conn(name: &'static str, testid: &'static str, get: fn(&Frame) -> ConnState) -> impl IntoView {
    let ui = expect_context::<Ui>();
    let st = Memo::new(move |_| {
        ui.frame
            .with(|f| f.as_ref().map(|f| get(f)).unwrap_or(ConnState::Connecting))
    });
    view! {
        <div class="conn" data-testid=testid data-state=move || conn_state(&st.get()).0
            title=move || format!("{name}: {}", conn_state(&st.get()).1)>
            <span class="led"></span>{name}
        </div>
    }
}

#[component]
fn Header() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let counters = Memo::new(move |_| {
        ui.frame
            .with(|f| f.as_ref().map(|f| f.counters.clone()).unwrap_or_default())
    });
    let open_alerts =
        Memo::new(move |_| ui.frame.with(|f| f.as_ref().map_or(0, |f| f.open_alerts)));
    let outbox = Memo::new(move |_| {
        ui.frame
            .with(|f| f.as_ref().map(|f| f.outbox.clone()).unwrap_or_default())
    });
    let outbox_title = move || {
        outbox.with(|o| match (o.dead, &o.last_error) {
            (0, _) => format!("{} acknowledgement(s) waiting to be published to Kafka", o.pending),
            (n, why) => format!(
                "{n} acknowledgement(s) refused by Kafka and never published (other desktops do not see them); last: {}",
                why.as_deref().unwrap_or("unknown")
            ),
        })
    };
    let spark = Memo::new(move |_| {
        ui.frame.with(|f| {
            f.as_ref()
                .map(|f| sparkline::svg(&f.rate_history))
                .unwrap_or_default()
        })
    });
    let last_age = move || {
        ui.frame.with(|f| {
            match f
                .as_ref()
                .and_then(|f| f.counters.last_message_ms.map(|m| f.ts_ms - m))
            {
                Some(a) => format::age(a),
                None => "—".into(),
            }
        })
    };
    let fleet_chart_open = RwSignal::new(false);
    let lag_open = RwSignal::new(false);
    let (query, set_query) = signal(String::new());
    let hits = RwSignal::new(Vec::<SearchHit>::new());
    let run_search = move |q: String| {
        set_query.set(q.clone());
        wasm_bindgen_futures::spawn_local(async move {
            let r =
                ipc::invoke::<_, Vec<SearchHit>>("search_vehicles", &json!({ "query": q })).await;
            hits.set(r.unwrap_or_default());
        });
    };
    let pick = move |h: SearchHit| {
        let focus = h.lat.zip(h.lng);
        ui.select(Some(h.id), focus);
        hits.set(Vec::new());
        set_query.set(String::new());
    };
    view! {
        <header class="topbar">
            <div class="brand"><span class="logo"></span>"fleetdash"</div>
            <div class="counters">
                <div class="counter" data-testid="counter-vehicles" data-value=move || counters.with(|c| c.vehicles_total)
                    data-group=move || counters.with(|c| c.group.clone().unwrap_or_default())>
                    <label>{move || counters.with(|c| c.group.as_ref().map_or_else(|| "Vehicles".to_string(), |g| format!("Vehicles · {g}")))}</label>
                    <b>{move || format::thousands(counters.with(|c| c.vehicles_total))}</b>
                    <small><span class="ok">{move || format::thousands(counters.with(|c| c.vehicles_online))}" online"</span>
                        " · "<span class="muted">{move || format::thousands(counters.with(|c| c.vehicles_stale))}" stale"</span></small>
                </div>
                <button class="counter rate clickable" data-testid="counter-rate" data-value=move || counters.with(|c| c.rate.round())
                    title="Messages/s and rejected/s over the last hour" on:click=move |_| fleet_chart_open.update(|o| *o = !*o)>
                    <label>"Messages/s"</label>
                    <b>{move || format::rate(counters.with(|c| c.rate))}</b>
                    <div class="spark" inner_html=move || spark.get()></div>
                </button>
                <Show when=move || fleet_chart_open.get()>
                    <FleetChart open=fleet_chart_open/>
                </Show>
                <button class="counter clickable" data-testid="counter-rejected" data-value=move || counters.with(|c| c.rejected)
                    title="Show quarantined messages" on:click=move |_| ui.quarantine_open.set(true)>
                    <label>"Rejected"</label>
                    <b class:warn=move || counters.with(|c| c.rejected > 0)>{move || format::thousands(counters.with(|c| c.rejected))}</b>
                </button>
                <button class="counter clickable" data-testid="counter-lag" data-value=move || counters.with(|c| c.lag.unwrap_or(0))
                    title="Lag per topic and partition" on:click=move |_| lag_open.update(|o| *o = !*o)>
                    <label>"Lag"</label>
                    <b class:warn=move || counters.with(|c| c.partitions.iter().any(|p| p.stuck))>
                        {move || counters.with(|c| c.lag.map(|l| format::thousands(l.max(0) as u64)).unwrap_or_else(|| "—".into()))}</b>
                </button>
                <Show when=move || lag_open.get()>
                    <crate::lag_panel::LagPanel open=lag_open/>
                </Show>
                <button class="counter clickable" data-testid="counter-alerts" data-value=move || open_alerts.get()
                    title="Show unacknowledged alerts"
                    on:click=move |_| ui.alert_filter.update(|f| *f = AlertFilter { state: Some(AlertState::Open), group: f.group.take(), ..Default::default() })>
                    <label>"Unacknowledged"</label>
                    <b class:hot=move || { open_alerts.get() > 0 }>{move || format::thousands(open_alerts.get())}</b>
                </button>
                <div class="counter" data-testid="outbox-count" data-value=move || outbox.with(|o| o.pending)
                    data-dead=move || outbox.with(|o| o.dead) title=outbox_title>
                    <label>"Ack outbox"</label>
                    <b class:warn=move || outbox.with(|o| o.dead > 0)>{move || format::thousands(outbox.with(|o| o.pending))}</b>
                    <Show when=move || outbox.with(|o| o.dead > 0)>
                        <small data-testid="outbox-dead">"⚠ "{move || format::thousands(outbox.with(|o| o.dead))}" refused"</small>
                    </Show>
                </div>
                <div class="counter" data-testid="counter-last-message">
                    <label>"Last message"</label>
                    <b>{last_age}</b>
                </div>
            </div>
            <div class="conns">
                <Conn name="Kafka" testid="conn-kafka" get=|f| f.counters.kafka.clone()/>
                <Conn name="Redis" testid="conn-redis" get=|f| f.counters.redis.clone()/>
                // SPEC §7: a cache that cannot be written is shown at once, with the reason.
                <div class="conn" data-testid="cache-status"
                    data-state=move || counters.with(|c| if c.cache_error.is_some() { "error" } else { "ok" })
                    title=move || counters.with(|c| c.cache_error.clone().map_or_else(
                        || "Cache: writing".to_string(), |e| format!("Cache cannot be written: {e}")))>
                    <span class="led"></span>"Cache"
                    <Show when=move || counters.with(|c| c.cache_error.is_some())>
                        <small class="reason">{move || counters.with(|c| c.cache_error.clone().unwrap_or_default())}</small>
                    </Show>
                </div>
                // SPEC §7: data that could not be read is never skipped silently.
                <Show when=move || counters.with(|c| c.gaps > 0)>
                    <div class="conn" data-testid="gap-notice" data-state="gap" data-value=move || counters.with(|c| c.gaps)
                        title="Offsets fleetdash could not read (topic re-created, another cluster, or retention expired); `fleetctl stats` lists them">
                        <span class="led"></span>{move || counters.with(|c| format!("{} gap{} in the data", c.gaps, if c.gaps == 1 { "" } else { "s" }))}
                    </div>
                </Show>
            </div>
            <div class="search">
                <input type="search" data-testid="vehicle-search" placeholder="Search id or plate…"
                    prop:value=query
                    on:input=move |ev| run_search(event_target_value(&ev))
                    on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                        if ev.key() == "Enter" && let Some(h) = hits.get_untracked().into_iter().next() { pick(h) }
                        if ev.key() == "Escape" { hits.set(Vec::new()) }
                    }/>
                <Show when=move || hits.with(|h| !h.is_empty())>
                    <ul class="hits" data-testid="search-results">
                        <For each=move || hits.get() key=|h| h.id.clone() let:h>
                            {
                                let label = h.plate.clone().unwrap_or_default();
                                let id = h.id.clone();
                                let text = h.id.clone();
                                view! {
                                    <li data-testid="search-result" data-vehicle-id=id on:click=move |_| pick(h.clone())>
                                        <b>{text}</b><span>{label}</span>
                                    </li>
                                }
                            }
                        </For>
                    </ul>
                </Show>
            </div>
            <GroupFilter/>
            <button class="icon-btn" data-testid="open-settings" title="Settings" on:click=move |_| ui.settings_open.set(true)>"⚙"</button>
        </header>
    }
}

/// SPEC §8 `group-filter`: one group's vehicles on the map, in the feed, in search and in
/// the vehicle counters. The choices are the groups the fleet's metadata names, read when
/// the list is opened.
#[component]
fn GroupFilter() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let groups = RwSignal::new(Vec::<String>::new());
    let load = move || {
        wasm_bindgen_futures::spawn_local(async move {
            if let Ok(g) = ipc::invoke::<_, Vec<String>>("vehicle_groups", &json!({})).await {
                groups.set(g);
            }
        });
    };
    load();
    // The groups to choose from; the chosen one always among them, even before the list has
    // loaded.
    let choices = Memo::new(move |_| {
        let mut list = groups.get();
        if let Some(c) = ui.alert_filter.with(|f| f.group.clone())
            && !list.contains(&c)
        {
            list.push(c);
        }
        list
    });
    view! {
        <select class="group-filter" data-testid="group-filter" title="Show one group"
            class:active=move || ui.alert_filter.with(|f| f.group.is_some())
            // Read again when the options are re-made (on focus), or the select shows the
            // first option while its value is the group.
            prop:value=move || {
                groups.track();
                ui.alert_filter.with(|f| f.group.clone().unwrap_or_default())
            }
            on:focus=move |_| load()
            on:change=move |ev| {
                let v = event_target_value(&ev);
                ui.alert_filter.update(|f| f.group = (!v.is_empty()).then_some(v));
            }>
            <option value="" prop:selected=move || ui.alert_filter.with(|f| f.group.is_none())>"All groups"</option>
            // Keyed: the options stay the same elements while the filter changes. Re-made on
            // every change, WebKitGTK kept drawing "All groups" over a select whose value was
            // the group.
            <For each=move || choices.get() key=|g| g.clone() let:g>
                {
                    let mine = g.clone();
                    let value = g.clone();
                    view! {
                        <option value=value
                            prop:selected=move || ui.alert_filter.with(|f| f.group.as_deref() == Some(mine.as_str()))>
                            {g}
                        </option>
                    }
                }
            </For>
        </select>
    }
}

#[component]
fn Legend() -> impl IntoView {
    use fleet_model::VehicleState as S;
    let item = |s: S, label: &'static str| {
        view! { <span class="legend-item"><i style=format!("background:{}", crate::draw::color(s))></i>{label}</span> }
    };
    view! {
        <div class="legend">
            {item(S::Moving, "Moving")}{item(S::Parked, "Parked")}{item(S::Stale, "Stale")}{item(S::Alerting, "Alerting")}
        </div>
    }
}
