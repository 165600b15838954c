//! The map's tooltip (SPEC §8: plate, model and driver wherever a vehicle appears): the
//! vehicle under the pointer, named as people know it. The map reports the id under the
//! pointer; the metadata is asked of the shell once per vehicle hovered, not per frame.

use crate::ipc;
use fleet_model::SearchHit;
use leptos::prelude::*;
use serde_json::json;

/// The vehicle under the pointer: (id, x, y in the map's pixels).
#[derive(Clone, Copy)]
pub struct Hover(RwSignal<Option<(String, f64, f64)>>);

impl Default for Hover {
    fn default() -> Self {
        Hover(RwSignal::new(None))
    }
}

impl Hover {
    /// Sets the hovered vehicle (`None`: the pointer is on no vehicle).
    pub fn set(&self, h: Option<(String, f64, f64)>) {
        let same = self.0.with_untracked(|cur| {
            cur.as_ref().map(|c| (&c.0, c.1, c.2)) == h.as_ref().map(|n| (&n.0, n.1, n.2))
        });
        if !same {
            self.0.set(h);
        }
    }
}

/// The tooltip: the id, and the plate once the shell answered.
#[component]
pub fn MapTip() -> impl IntoView {
    let hover = expect_context::<Hover>();
    let id = Memo::new(move |_| hover.0.with(|h| h.as_ref().map(|h| h.0.clone())));
    let plate = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        plate.set(None);
        let Some(id) = id.get() else {
            return;
        };
        wasm_bindgen_futures::spawn_local(async move {
            let hits = ipc::invoke::<_, Vec<SearchHit>>(
                "search_vehicles",
                &json!({ "query": id.clone() }),
            )
            .await
            .unwrap_or_default();
            let found = hits.into_iter().find(|h| h.id == id).and_then(|h| h.plate);
            // Only if the pointer is still on that vehicle.
            if hover
                .0
                .with_untracked(|h| h.as_ref().is_some_and(|h| h.0 == id))
            {
                plate.set(found);
            }
        });
    });
    view! {
        <Show when=move || hover.0.with(Option::is_some)>
            <div class="map-tip" data-testid="map-tooltip"
                style=move || hover.0.with(|h| h.as_ref().map_or(String::new(), |h| format!("left:{}px;top:{}px", h.1 + 12.0, h.2 + 12.0)))>
                <b>{move || id.get().unwrap_or_default()}</b>
                {move || plate.get().map(|p| view! { <span class="plate" data-testid="map-tooltip-plate">{p}</span> })}
            </div>
        </Show>
    }
}
