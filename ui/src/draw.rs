//! Drawing vehicles, clusters and the selected trail on the overlay canvas, and hit-testing
//! clicks against what was drawn. Pure canvas 2D; batched by state so each colour is one
//! path and one fill, whatever the number of vehicles.

use fleet_model::{Cluster, Dot, TrailPoint, VehicleState};
use std::f64::consts::PI;
use web_sys::CanvasRenderingContext2d;

/// Colours per state (also used by the legend and the details panel via CSS classes).
pub fn color(s: VehicleState) -> &'static str {
    match s {
        VehicleState::Moving => "#34d399",
        VehicleState::Parked => "#60a5fa",
        VehicleState::Stale => "#7b8794",
        VehicleState::Alerting => "#f43f5e",
    }
}

/// Below this zoom vehicles are plain dots; from it on they are heading arrows.
const ARROW_ZOOM: f64 = 12.0;
/// Click tolerance (px).
const HIT_PX: f64 = 12.0;

/// Web Mercator projection onto the map container, matching Leaflet's EPSG:3857.
#[derive(Debug, Clone, Copy)]
pub struct Projector {
    cx: f64,
    cy: f64,
    scale: f64,
    /// Container width (px).
    pub width: f64,
    /// Container height (px).
    pub height: f64,
    /// Zoom level.
    pub zoom: f64,
}

fn world(lat: f64, lng: f64, scale: f64) -> (f64, f64) {
    let lat = lat.clamp(-85.051_128_78, 85.051_128_78).to_radians();
    let x = scale * (lng + 180.0) / 360.0;
    let y = scale * (1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / PI) / 2.0;
    (x, y)
}

impl Projector {
    /// For a map centred on (lat, lng) at `zoom` in a `width`×`height` container.
    pub fn new(lat: f64, lng: f64, zoom: f64, width: f64, height: f64) -> Projector {
        let scale = 256.0 * 2f64.powf(zoom);
        let (cx, cy) = world(lat, lng, scale);
        Projector {
            cx,
            cy,
            scale,
            width,
            height,
            zoom,
        }
    }

    /// Container pixel of a point.
    pub fn project(&self, lat: f64, lng: f64) -> (f64, f64) {
        let (x, y) = world(lat, lng, self.scale);
        (
            x - self.cx + self.width / 2.0,
            y - self.cy + self.height / 2.0,
        )
    }

    fn visible(&self, x: f64, y: f64, margin: f64) -> bool {
        x >= -margin && y >= -margin && x <= self.width + margin && y <= self.height + margin
    }
}

/// What a click landed on.
pub enum Hit {
    /// A vehicle.
    Dot(String),
    /// A cluster (zoom into it).
    Cluster(f64, f64),
}

/// The latest frame's drawable content plus where things were drawn last time.
#[derive(Default)]
pub struct Scene {
    /// Vehicles.
    pub dots: Vec<Dot>,
    /// Clusters.
    pub clusters: Vec<Cluster>,
    /// Selected vehicle id.
    pub selected: Option<String>,
    /// Selected vehicle's position and heading.
    pub selected_pos: Option<(f64, f64, Option<f64>)>,
    /// Selected vehicle's trail, oldest first.
    pub trail: Vec<TrailPoint>,
    /// Alerts on the replayed track: where the vehicle was when each fired, and the
    /// severity's colour.
    pub track_marks: Vec<(f64, f64, &'static str)>,
    drawn_dots: Vec<(f64, f64, usize)>,
    drawn_clusters: Vec<(f64, f64, f64, usize)>,
}

impl Scene {
    /// Draws everything (the canvas is already cleared and scaled).
    pub fn draw(&mut self, ctx: &CanvasRenderingContext2d, p: &Projector) {
        self.drawn_dots.clear();
        self.drawn_clusters.clear();
        self.draw_trail(ctx, p);
        self.draw_clusters(ctx, p);
        let arrows = p.zoom >= ARROW_ZOOM;
        let dot_r = if p.zoom >= 10.0 { 3.5 } else { 2.5 };
        for state in [
            VehicleState::Parked,
            VehicleState::Stale,
            VehicleState::Moving,
            VehicleState::Alerting,
        ] {
            ctx.begin_path();
            let mut any = false;
            for (i, d) in self.dots.iter().enumerate() {
                if d.state != state {
                    continue;
                }
                let (x, y) = p.project(d.lat, d.lng);
                if !p.visible(x, y, 10.0) {
                    continue;
                }
                self.drawn_dots.push((x, y, i));
                any = true;
                match d.heading {
                    Some(h) if arrows => arrow(ctx, x, y, f64::from(h), 7.0),
                    _ => {
                        ctx.move_to(x + dot_r, y);
                        let _ = ctx.arc(x, y, dot_r, 0.0, 2.0 * PI);
                    }
                }
            }
            if any {
                ctx.set_fill_style_str(color(state));
                ctx.fill();
                // Outlines separate arrows up close; on dense zoomed-out views they would
                // merge into a dark blob.
                if arrows {
                    ctx.set_stroke_style_str("rgba(8,12,18,0.85)");
                    ctx.set_line_width(1.0);
                    ctx.stroke();
                }
            }
        }
        if let (Some(_), Some((lat, lng, _))) = (&self.selected, self.selected_pos) {
            let (x, y) = p.project(lat, lng);
            ctx.begin_path();
            let _ = ctx.arc(x, y, 11.0, 0.0, 2.0 * PI);
            ctx.set_stroke_style_str("#fbbf24");
            ctx.set_line_width(2.5);
            ctx.stroke();
        }
    }

    fn draw_trail(&self, ctx: &CanvasRenderingContext2d, p: &Projector) {
        if self.selected.is_none() || self.trail.len() < 2 {
            return;
        }
        ctx.begin_path();
        for (i, t) in self.trail.iter().enumerate() {
            let (x, y) = p.project(t.lat, t.lng);
            if i == 0 {
                ctx.move_to(x, y)
            } else {
                ctx.line_to(x, y)
            }
        }
        ctx.set_stroke_style_str("rgba(251,191,36,0.75)");
        ctx.set_line_width(2.5);
        ctx.set_line_join("round");
        ctx.stroke();
        for (lat, lng, colour) in &self.track_marks {
            let (x, y) = p.project(*lat, *lng);
            ctx.begin_path();
            ctx.move_to(x, y - 7.0);
            ctx.line_to(x + 7.0, y);
            ctx.line_to(x, y + 7.0);
            ctx.line_to(x - 7.0, y);
            ctx.close_path();
            ctx.set_fill_style_str(colour);
            ctx.fill();
            ctx.set_stroke_style_str("rgba(8,12,18,0.9)");
            ctx.set_line_width(1.5);
            ctx.stroke();
        }
    }

    fn draw_clusters(&mut self, ctx: &CanvasRenderingContext2d, p: &Projector) {
        ctx.set_font("600 11px Inter, system-ui, sans-serif");
        ctx.set_text_align("center");
        ctx.set_text_baseline("middle");
        for (i, c) in self.clusters.iter().enumerate() {
            let (x, y) = p.project(c.lat, c.lng);
            if !p.visible(x, y, 40.0) {
                continue;
            }
            let r = 10.0 + (f64::from(c.count)).log10() * 6.0;
            self.drawn_clusters.push((x, y, r, i));
            ctx.begin_path();
            let _ = ctx.arc(x, y, r + 4.0, 0.0, 2.0 * PI);
            ctx.set_fill_style_str("rgba(45,212,191,0.18)");
            ctx.fill();
            ctx.begin_path();
            let _ = ctx.arc(x, y, r, 0.0, 2.0 * PI);
            ctx.set_fill_style_str("#134e4a");
            ctx.fill();
            ctx.set_stroke_style_str("#2dd4bf");
            ctx.set_line_width(1.5);
            ctx.stroke();
            // The alerting share as a red arc, the stale share as a grey one.
            let total = f64::from(c.count.max(1));
            let mut start = -PI / 2.0;
            for (n, col) in [(c.alerting, "#f43f5e"), (c.stale, "#7b8794")] {
                if n == 0 {
                    continue;
                }
                let end = start + 2.0 * PI * f64::from(n) / total;
                ctx.begin_path();
                let _ = ctx.arc(x, y, r, start, end);
                ctx.set_stroke_style_str(col);
                ctx.set_line_width(3.0);
                ctx.stroke();
                start = end;
            }
            ctx.set_fill_style_str("#e6fffa");
            let _ = ctx.fill_text(&compact(c.count), x, y + 0.5);
        }
    }

    /// What is under a click: the nearest vehicle within a few pixels, else a cluster.
    pub fn hit(&self, x: f64, y: f64) -> Option<Hit> {
        let best = self
            .drawn_dots
            .iter()
            .map(|&(dx, dy, i)| ((dx - x).hypot(dy - y), i))
            .filter(|&(d, _)| d <= HIT_PX)
            .min_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((_, i)) = best {
            return Some(Hit::Dot(self.dots[i].id.clone()));
        }
        self.drawn_clusters
            .iter()
            .find(|&&(cx, cy, r, _)| (cx - x).hypot(cy - y) <= r + 4.0)
            .map(|&(_, _, _, i)| Hit::Cluster(self.clusters[i].lat, self.clusters[i].lng))
    }
}

/// A heading arrow (a chevron-shaped triangle pointing along `heading`, degrees from north).
fn arrow(ctx: &CanvasRenderingContext2d, x: f64, y: f64, heading: f64, size: f64) {
    let a = heading.to_radians();
    let (s, c) = a.sin_cos();
    let pt = |fx: f64, fy: f64| (x + fx * c - fy * s, y + fx * s + fy * c);
    // In the arrow's own frame: tip up (−y), notch at the back.
    let (tx, ty) = pt(0.0, -size);
    let (lx, ly) = pt(-size * 0.7, size * 0.75);
    let (nx, ny) = pt(0.0, size * 0.35);
    let (rx, ry) = pt(size * 0.7, size * 0.75);
    ctx.move_to(tx, ty);
    ctx.line_to(lx, ly);
    ctx.line_to(nx, ny);
    ctx.line_to(rx, ry);
    ctx.close_path();
}

/// 1234 → "1.2k".
pub fn compact(n: u32) -> String {
    match n {
        0..1000 => n.to_string(),
        1000..10_000 => format!("{:.1}k", f64::from(n) / 1000.0),
        _ => format!("{}k", n / 1000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_matches_leaflet_at_the_center_and_scales_with_zoom() {
        let p = Projector::new(37.5, 127.0, 10.0, 800.0, 600.0);
        let (x, y) = p.project(37.5, 127.0);
        assert!((x - 400.0).abs() < 1e-6 && (y - 300.0).abs() < 1e-6);
        // One degree of longitude at zoom 10 is 256·1024/360 px.
        let (x2, _) = p.project(37.5, 128.0);
        assert!((x2 - x - 256.0 * 1024.0 / 360.0).abs() < 1e-6);
        let (_, y3) = p.project(38.0, 127.0);
        assert!(y3 < y, "north is up");
    }

    #[test]
    fn compact_counts() {
        assert_eq!(compact(999), "999");
        assert_eq!(compact(1234), "1.2k");
        assert_eq!(compact(20_000), "20k");
    }
}
