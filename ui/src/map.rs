//! The map: Leaflet for the basemap, panning and zooming; vehicles on one canvas of our own
//! on top, projected in Rust (Web Mercator) and redrawn at most once per animation frame.
//! One canvas instead of one Leaflet layer per vehicle keeps the cost flat in fleet size.

use crate::draw::{self, Scene};
use fleet_model::{Frame, TrailPoint, Viewport};
use leaflet::{LatLng, Map, MapOptions};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, HtmlElement};

#[wasm_bindgen]
extern "C" {
    /// topojson-client's `feature` (loaded from ui/dist/vendor).
    #[wasm_bindgen(js_namespace = topojson, js_name = feature)]
    fn topo_feature(topology: &JsValue, object: &JsValue) -> JsValue;

    #[wasm_bindgen(js_namespace = L, js_name = geoJSON)]
    fn geo_json(data: &JsValue, options: &JsValue) -> leaflet::Layer;

    #[wasm_bindgen(js_namespace = L, js_name = canvas)]
    fn canvas_renderer() -> JsValue;
}

/// Fraction of the viewport added on each side of what the engine is asked for, so short pans
/// show vehicles at once.
const VIEW_PAD: f64 = 0.25;

/// Told the vehicle under the pointer: (id, x, y in the map's pixels), or `None`.
type HoverCallback = Box<dyn Fn(Option<(String, f64, f64)>)>;

/// The requestAnimationFrame callback, kept so it can be scheduled again.
type RafCallback = Closure<dyn FnMut(f64)>;

/// The live map. Cheap to clone (shared).
#[derive(Clone)]
pub struct MapView(Rc<Inner>);

struct Inner {
    map: Map,
    canvas: HtmlCanvasElement,
    ctx: CanvasRenderingContext2d,
    scene: RefCell<Scene>,
    raf_pending: RefCell<bool>,
    raf: RefCell<Option<RafCallback>>,
    on_select: Box<dyn Fn(Option<String>)>,
    on_viewport: Box<dyn Fn(Viewport)>,
    /// The vehicle under the pointer (id, x, y in the map's pixels), for the tooltip.
    on_hover: HoverCallback,
}

impl MapView {
    /// Builds the map inside `container`, with the bundled basemap and the optional tile layer.
    pub fn new(
        container: &HtmlElement,
        tile_url: &str,
        on_select: impl Fn(Option<String>) + 'static,
        on_viewport: impl Fn(Viewport) + 'static,
        on_hover: impl Fn(Option<(String, f64, f64)>) + 'static,
    ) -> Result<MapView, JsValue> {
        let opts = MapOptions::new();
        opts.set_prefer_canvas(true);
        opts.set_zoom_control(true);
        opts.set_world_copy_jump(false);
        // Instant zooms: our canvas is redrawn, not CSS-scaled, so an animated zoom would
        // show vehicles at the old scale for a quarter second.
        let _ = js_sys::Reflect::set(&opts, &"zoomAnimation".into(), &false.into());
        let _ = js_sys::Reflect::set(&opts, &"fadeAnimation".into(), &false.into());
        let _ = js_sys::Reflect::set(&opts, &"minZoom".into(), &2.into());
        let _ = js_sys::Reflect::set(&opts, &"maxZoom".into(), &19.into());
        let map = Map::new_with_element(container, &opts)?;
        map.set_view(&LatLng::new(37.4979, 127.0276), 12.0);
        add_basemap(&map);
        if !tile_url.trim().is_empty() {
            add_tiles(&map, tile_url.trim());
        }
        let doc = web_sys::window()
            .and_then(|w| w.document())
            .ok_or("no document")?;
        let canvas: HtmlCanvasElement = doc.create_element("canvas")?.dyn_into()?;
        canvas.set_class_name("fd-vehicles");
        container.append_child(&canvas)?;
        let ctx: CanvasRenderingContext2d = canvas
            .get_context("2d")?
            .ok_or("no 2d context")?
            .dyn_into()?;
        let view = MapView(Rc::new(Inner {
            map,
            canvas,
            ctx,
            scene: RefCell::new(Scene::default()),
            raf_pending: RefCell::new(false),
            raf: RefCell::new(None),
            on_select: Box::new(on_select),
            on_viewport: Box::new(on_viewport),
            on_hover: Box::new(on_hover),
        }));
        view.wire();
        Ok(view)
    }

    fn wire(&self) {
        let m = &self.0.map;
        let v = self.clone();
        m.on_move(Box::new(move |_| v.schedule()));
        let v = self.clone();
        m.on_zoom(Box::new(move |_| v.schedule()));
        let v = self.clone();
        m.on_resize(Box::new(move |_| v.schedule()));
        let v = self.clone();
        m.on_move_end(Box::new(move |_| v.report_viewport()));
        let v = self.clone();
        m.on_mouse_click(Box::new(move |e| {
            let p = e.container_point();
            v.click(p.x(), p.y());
        }));
        let v = self.clone();
        m.on_mouse_move(Box::new(move |e| {
            let p = e.container_point();
            let hit = v.0.scene.borrow().hit(p.x(), p.y());
            (v.0.on_hover)(match hit {
                Some(draw::Hit::Dot(id)) => Some((id, p.x(), p.y())),
                _ => None,
            });
        }));
        let v = self.clone();
        m.on_mouse_out(Box::new(move |_| (v.0.on_hover)(None)));
        let v = self.clone();
        let raf = Closure::<dyn FnMut(f64)>::new(move |_t: f64| {
            *v.0.raf_pending.borrow_mut() = false;
            v.redraw();
        });
        *self.0.raf.borrow_mut() = Some(raf);
        self.report_viewport();
        self.schedule();
    }

    /// Takes a new frame.
    pub fn set_frame(&self, f: &Frame) {
        {
            let mut s = self.0.scene.borrow_mut();
            s.dots.clone_from(&f.dots);
            s.clusters.clone_from(&f.clusters);
            s.selected = f.selected.as_ref().map(|d| d.id.clone());
            if let Some(p) = f.selected.as_ref().and_then(|d| d.position.as_ref()) {
                s.selected_pos = Some((p.lat, p.lng, p.heading));
                if s.trail
                    .last()
                    .is_none_or(|t| (t.lat, t.lng) != (p.lat, p.lng))
                {
                    s.trail.push(TrailPoint {
                        lat: p.lat,
                        lng: p.lng,
                        ts_ms: p.ts_ms,
                    });
                }
            } else {
                s.selected_pos = None;
            }
        }
        self.schedule();
    }

    /// Replaces the selected vehicle's trail (from the cache).
    pub fn set_trail(&self, trail: Vec<TrailPoint>) {
        self.0.scene.borrow_mut().trail = trail;
        self.schedule();
    }

    /// Marks alerts on the replayed track (cleared with an empty list).
    pub fn set_track_marks(&self, marks: Vec<(f64, f64, &'static str)>) {
        self.0.scene.borrow_mut().track_marks = marks;
        self.schedule();
    }

    /// Centers the map on a point (zooming in to street level when far out).
    pub fn focus(&self, lat: f64, lng: f64, zoom_at_least: f64) {
        let z = self.0.map.get_zoom().max(zoom_at_least);
        self.0.map.set_view(&LatLng::new(lat, lng), z);
    }

    /// Flies (animated pan and zoom) to a point, at street level at least: an operator
    /// who clicks an alert sees where on the map it is before the panel opens.
    pub fn fly_to(&self, lat: f64, lng: f64, zoom_at_least: f64) {
        let z = self.0.map.get_zoom().max(zoom_at_least);
        self.0.map.fly_to_with_zoom(&LatLng::new(lat, lng), z);
    }

    /// Moves the map (tests and benchmarks drive it this way).
    pub fn set_view(&self, lat: f64, lng: f64, zoom: f64) {
        self.0.map.set_view(&LatLng::new(lat, lng), zoom);
    }

    /// Keeps a followed vehicle in view without changing the zoom.
    pub fn pan_to(&self, lat: f64, lng: f64) {
        self.0
            .map
            .set_view(&LatLng::new(lat, lng), self.0.map.get_zoom());
    }

    /// Where a vehicle is drawn right now (container pixels), for tests and benchmarks.
    pub fn dot_position(&self, id: &str) -> Option<(f64, f64, f64, f64)> {
        let s = self.0.scene.borrow();
        let d = s.dots.iter().find(|d| d.id == id)?;
        let (x, y) = self.projector().project(d.lat, d.lng);
        Some((x, y, d.lat, d.lng))
    }

    fn projector(&self) -> draw::Projector {
        let c = self.0.map.get_center();
        let size = self.0.map.get_size();
        draw::Projector::new(c.lat(), c.lng(), self.0.map.get_zoom(), size.x(), size.y())
    }

    fn schedule(&self) {
        if *self.0.raf_pending.borrow() {
            return;
        }
        *self.0.raf_pending.borrow_mut() = true;
        if let (Some(w), Some(cb)) = (web_sys::window(), self.0.raf.borrow().as_ref()) {
            let _ = w.request_animation_frame(cb.as_ref().unchecked_ref());
        }
    }

    fn redraw(&self) {
        let proj = self.projector();
        let dpr = web_sys::window().map_or(1.0, |w| w.device_pixel_ratio());
        let (w, h) = (proj.width, proj.height);
        let (pw, ph) = ((w * dpr).round() as u32, (h * dpr).round() as u32);
        let c = &self.0.canvas;
        if c.width() != pw || c.height() != ph {
            c.set_width(pw);
            c.set_height(ph);
            let st = c.style();
            let _ = st.set_property("width", &format!("{w}px"));
            let _ = st.set_property("height", &format!("{h}px"));
        }
        let _ = self.0.ctx.set_transform(dpr, 0.0, 0.0, dpr, 0.0, 0.0);
        self.0.ctx.clear_rect(0.0, 0.0, w, h);
        self.0.scene.borrow_mut().draw(&self.0.ctx, &proj);
    }

    fn click(&self, x: f64, y: f64) {
        let hit = self.0.scene.borrow().hit(x, y);
        match hit {
            Some(draw::Hit::Dot(id)) => (self.0.on_select)(Some(id)),
            Some(draw::Hit::Cluster(lat, lng)) => {
                let z = self.0.map.get_zoom() + 2.0;
                self.0.map.set_view(&LatLng::new(lat, lng), z);
            }
            None => {}
        }
    }

    fn report_viewport(&self) {
        let b = self.0.map.get_bounds();
        let (sw, ne) = (b.get_south_west(), b.get_north_east());
        let (dlat, dlng) = (
            (ne.lat() - sw.lat()) * VIEW_PAD,
            (ne.lng() - sw.lng()) * VIEW_PAD,
        );
        (self.0.on_viewport)(Viewport {
            south: (sw.lat() - dlat).max(-90.0),
            west: (sw.lng() - dlng).max(-180.0),
            north: (ne.lat() + dlat).min(90.0),
            east: (ne.lng() + dlng).min(180.0),
            zoom: self.0.map.get_zoom(),
        });
    }
}

/// The bundled Natural Earth countries (world-atlas, 1:50m), always drawn: the map works
/// with no network at all.
fn add_basemap(map: &Map) {
    let Ok(world) = js_sys::Reflect::get(&js_sys::global(), &"FLEETDASH_WORLD".into()) else {
        return;
    };
    if world.is_undefined()
        || js_sys::Reflect::get(&js_sys::global(), &"topojson".into())
            .is_ok_and(|t| t.is_undefined())
    {
        web_sys::console::warn_1(&"basemap assets missing".into());
        return;
    }
    let countries = js_sys::Reflect::get(&world, &"objects".into())
        .and_then(|o| js_sys::Reflect::get(&o, &"countries".into()))
        .unwrap_or(JsValue::UNDEFINED);
    let geo = topo_feature(&world, &countries);
    // The topology and its GeoJSON are only needed to build the layers (~13 MB of the web
    // process's heap for the 1:50m countries): forget the global, and the `feature` copy
    // Leaflet keeps on every layer, so both are collected once drawn.
    let _ = js_sys::Reflect::set(
        &js_sys::global(),
        &"FLEETDASH_WORLD".into(),
        &JsValue::UNDEFINED,
    );
    let forget_feature =
        Closure::<dyn Fn(JsValue, JsValue)>::new(|_feature: JsValue, layer: JsValue| {
            if let Some(layer) = layer.dyn_ref::<js_sys::Object>() {
                let _ = js_sys::Reflect::delete_property(layer, &"feature".into());
            }
        });
    let style = js_sys::Object::new();
    for (k, v) in [
        ("color", JsValue::from("#33445c")),
        ("weight", 0.8.into()),
        ("fillColor", "#1a2433".into()),
        ("fillOpacity", 1.into()),
        ("opacity", 1.into()),
    ] {
        let _ = js_sys::Reflect::set(&style, &k.into(), &v);
    }
    let opts = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&opts, &"style".into(), &style);
    let _ = js_sys::Reflect::set(&opts, &"interactive".into(), &false.into());
    let _ = js_sys::Reflect::set(&opts, &"renderer".into(), &canvas_renderer());
    let _ = js_sys::Reflect::set(&opts, &"onEachFeature".into(), forget_feature.as_ref());
    // Credit what is drawn: this layer is always there; OpenStreetMap's credit comes with
    // the online tile layer, only when one is configured (`add_tiles`).
    let _ = js_sys::Reflect::set(&opts, &"attribution".into(), &"Natural Earth".into());
    let layer = geo_json(&geo, &opts);
    // Leaflet keeps the options (and so the callback) for later `addData` calls; there are none.
    forget_feature.forget();
    layer.add_to(map);
}

/// The configured raster tiles over the basemap; failed tiles are hidden so the basemap
/// shows through when offline. Their attribution (OpenStreetMap's data) shows only while
/// this layer exists, i.e. when online tiles are enabled.
fn add_tiles(map: &Map, url: &str) {
    let opts = leaflet::TileLayerOptions::new();
    let _ = js_sys::Reflect::set(&opts, &"maxZoom".into(), &19.into());
    let _ = js_sys::Reflect::set(&opts, &"className".into(), &"fd-tiles".into());
    let _ = js_sys::Reflect::set(
        &opts,
        &"attribution".into(),
        &"© OpenStreetMap contributors".into(),
    );
    let layer = leaflet::TileLayer::new_options(url, &opts);
    let on_err = Closure::<dyn Fn(JsValue)>::new(|e: JsValue| {
        if let Ok(tile) = js_sys::Reflect::get(&e, &"tile".into())
            && let Ok(el) = tile.dyn_into::<HtmlElement>()
        {
            let _ = el.style().set_property("visibility", "hidden");
        }
    });
    layer.on("tileerror", on_err.as_ref());
    on_err.forget();
    layer.add_to(map);
}
