//! Geofence geometry: circles by great-circle distance, polygons by ray casting (with a
//! bounding-box pre-check, so thousands of positions per second stay cheap).

use crate::config::{FenceTrigger, Geofence};
use crate::geo::distance_m;
use fleet_model::Severity;

/// A compiled fence.
#[derive(Debug, Clone)]
pub struct Fence {
    /// Name.
    pub name: String,
    shape: Shape,
    /// When it alerts.
    pub trigger: FenceTrigger,
    /// Severity.
    pub severity: Severity,
}

#[derive(Debug, Clone)]
enum Shape {
    Circle {
        lat: f64,
        lng: f64,
        radius_m: f64,
    },
    Polygon {
        points: Vec<[f64; 2]>,
        min: [f64; 2],
        max: [f64; 2],
    },
}

impl Fence {
    /// Compiles a validated config entry.
    pub fn new(g: &Geofence) -> Fence {
        let shape = match (&g.center, g.radius_m, &g.points) {
            (Some(c), Some(r), _) => Shape::Circle {
                lat: c[0],
                lng: c[1],
                radius_m: r,
            },
            (_, _, Some(p)) => {
                let min = p
                    .iter()
                    .fold([f64::MAX; 2], |m, q| [m[0].min(q[0]), m[1].min(q[1])]);
                let max = p
                    .iter()
                    .fold([f64::MIN; 2], |m, q| [m[0].max(q[0]), m[1].max(q[1])]);
                Shape::Polygon {
                    points: p.clone(),
                    min,
                    max,
                }
            }
            // Validation guarantees one of the two; an empty polygon contains nothing.
            _ => Shape::Polygon {
                points: Vec::new(),
                min: [0.0; 2],
                max: [0.0; 2],
            },
        };
        Fence {
            name: g.name.clone(),
            shape,
            trigger: g.alert_on,
            severity: g.severity,
        }
    }

    /// Whether (lat, lng) is inside.
    pub fn contains(&self, lat: f64, lng: f64) -> bool {
        match &self.shape {
            Shape::Circle {
                lat: clat,
                lng: clng,
                radius_m,
            } => distance_m(*clat, *clng, lat, lng) <= *radius_m,
            Shape::Polygon { points, min, max } => {
                if lat < min[0] || lat > max[0] || lng < min[1] || lng > max[1] {
                    return false;
                }
                let mut inside = false;
                let mut j = points.len() - 1;
                for i in 0..points.len() {
                    let (yi, xi) = (points[i][0], points[i][1]);
                    let (yj, xj) = (points[j][0], points[j][1]);
                    if (yi > lat) != (yj > lat) && lng < (xj - xi) * (lat - yi) / (yj - yi) + xi {
                        inside = !inside;
                    }
                    j = i;
                }
                inside
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fence(
        center: Option<[f64; 2]>,
        radius: Option<f64>,
        points: Option<Vec<[f64; 2]>>,
    ) -> Fence {
        Fence::new(&Geofence {
            name: "f".into(),
            center,
            radius_m: radius,
            points,
            alert_on: FenceTrigger::Leave,
            severity: Severity::Warning,
        })
    }

    #[test]
    fn circle_and_polygon() {
        let c = fence(Some([37.5, 127.0]), Some(1000.0), None);
        assert!(c.contains(37.5, 127.0));
        assert!(c.contains(37.508, 127.0)); // ~890 m
        assert!(!c.contains(37.51, 127.0)); // ~1.1 km
        let sq = fence(
            None,
            None,
            Some(vec![
                [37.0, 127.0],
                [37.0, 127.1],
                [37.1, 127.1],
                [37.1, 127.0],
            ]),
        );
        assert!(sq.contains(37.05, 127.05));
        assert!(!sq.contains(37.15, 127.05));
        assert!(!sq.contains(37.05, 126.99));
    }
}
