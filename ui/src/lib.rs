//! fleetdash's window: a Leptos (client-side) app over Leaflet, compiled to wasm32. It
//! renders batched frames from the shell and sends back only requests (viewport,
//! selection, search, acknowledge, settings). See `app` for the layout.

mod alert_group;
mod alerts;
mod app;
mod draw;
mod drift;
mod format;
mod ipc;
mod lag_panel;
mod map;
mod map_tip;
mod panels;
mod settings;
mod sparkline;
mod timeline;
mod vehicle_chart;

use wasm_bindgen::prelude::*;

/// Entry point, run by the generated JS glue once the module is instantiated.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
