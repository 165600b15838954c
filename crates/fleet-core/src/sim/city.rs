//! The street grid vehicles drive on.
//!
//! A real city is neither a perfect square grid nor aligned with north, so the grid here has
//! irregular block sizes (150–250 m), is rotated by a few degrees, and every ~5th street is an
//! arterial with a higher speed limit. Only intersections inside the radius exist; because a
//! disc is convex, every street segment between two such intersections stays inside it, which
//! is what guarantees every reported position is within `radius_km` of the centre.
//!
//! Nothing is stored per intersection: the grid is two sorted lists of street offsets, so even
//! a 100 km radius costs a few kilobytes.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Metres per degree of latitude (and of longitude at the equator). An equirectangular
/// projection around the centre is accurate to well under a metre over a city.
pub(crate) const M_PER_DEG: f64 = 111_320.0;

/// An intersection: `i` indexes the avenues (streets along the local y axis), `j` the cross
/// streets (along the local x axis).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Node {
    pub i: i32,
    pub j: i32,
}

/// Speed limits in km/h. Side streets allow 50 (most traffic ends up at 20–50 with stops),
/// arterials 80.
const LIMIT_STREET_KMH: f64 = 50.0;
const LIMIT_ARTERIAL_KMH: f64 = 80.0;

/// The grid, immutable once built and shared by every vehicle.
#[derive(Debug, Clone)]
pub(crate) struct City {
    center: (f64, f64),
    radius_m: f64,
    /// Metres per degree of longitude at the centre's latitude.
    m_per_deg_lng: f64,
    sin: f64,
    cos: f64,
    /// Local x of each avenue (sorted).
    avenues: Vec<f64>,
    /// Local y of each cross street (sorted).
    streets: Vec<f64>,
    avenue_arterial: Vec<bool>,
    street_arterial: Vec<bool>,
}

impl City {
    /// Builds the grid from its own random stream, so the layout depends on the seed only.
    pub fn new(rng: &mut ChaCha8Rng, center: (f64, f64), radius_km: f64) -> Self {
        let radius_m = (radius_km * 1000.0).max(1.0);
        // Small cities get proportionally smaller blocks so they still have a few streets.
        let scale = (radius_m / 1000.0).min(1.0);
        let offsets = |rng: &mut ChaCha8Rng| {
            let mut at = -radius_m - rng.random_range(0.0..250.0 * scale);
            let mut v = Vec::new();
            while at <= radius_m {
                v.push(at);
                at += rng.random_range(150.0..250.0) * scale;
            }
            let phase = rng.random_range(0..5usize);
            let arterial = (0..v.len()).map(|k| k % 5 == phase).collect::<Vec<_>>();
            (v, arterial)
        };
        let (avenues, avenue_arterial) = offsets(rng);
        let (streets, street_arterial) = offsets(rng);
        let angle = rng.random_range(-20.0f64..20.0).to_radians();
        City {
            center,
            radius_m,
            m_per_deg_lng: M_PER_DEG * center.0.to_radians().cos(),
            sin: angle.sin(),
            cos: angle.cos(),
            avenues,
            streets,
            avenue_arterial,
            street_arterial,
        }
    }

    #[cfg(test)]
    pub fn radius_m(&self) -> f64 {
        self.radius_m
    }

    /// Local (unrotated) coordinates of an intersection in metres from the centre.
    pub fn local(&self, n: Node) -> (f64, f64) {
        (self.avenues[n.i as usize], self.streets[n.j as usize])
    }

    /// An intersection exists when it is on the grid and inside the radius.
    pub fn is_valid(&self, n: Node) -> bool {
        if n.i < 0 || n.j < 0 {
            return false;
        }
        let (Some(x), Some(y)) = (
            self.avenues.get(n.i as usize),
            self.streets.get(n.j as usize),
        ) else {
            return false;
        };
        x.hypot(*y) <= self.radius_m
    }

    /// The up to four intersections one block away.
    pub fn neighbors(&self, n: Node) -> impl Iterator<Item = Node> + '_ {
        [(1, 0), (-1, 0), (0, 1), (0, -1)]
            .into_iter()
            .map(move |(di, dj)| Node {
                i: n.i + di,
                j: n.j + dj,
            })
            .filter(|m| self.is_valid(*m))
    }

    /// A uniformly random existing intersection (rejection sampling: the disc covers ~78 % of
    /// the bounding square), falling back to the one nearest the centre.
    pub fn random_node(&self, rng: &mut ChaCha8Rng) -> Node {
        for _ in 0..1000 {
            let n = Node {
                i: rng.random_range(0..self.avenues.len()) as i32,
                j: rng.random_range(0..self.streets.len()) as i32,
            };
            if self.is_valid(n) && self.neighbors(n).next().is_some() {
                return n;
            }
        }
        let nearest = |v: &[f64]| {
            (0..v.len())
                .min_by(|a, b| v[*a].abs().total_cmp(&v[*b].abs()))
                .unwrap_or(0) as i32
        };
        Node {
            i: nearest(&self.avenues),
            j: nearest(&self.streets),
        }
    }

    /// Length of the block between two adjacent intersections, in metres.
    pub fn edge_len(&self, a: Node, b: Node) -> f64 {
        let (ax, ay) = self.local(a);
        let (bx, by) = self.local(b);
        (bx - ax).hypot(by - ay)
    }

    /// Whether the block from `a` to `b` lies on an arterial.
    pub fn is_arterial(&self, a: Node, b: Node) -> bool {
        if a.i == b.i {
            self.avenue_arterial[a.i as usize]
        } else {
            self.street_arterial[a.j as usize]
        }
    }

    /// Speed limit of the block from `a` to `b` in km/h.
    pub fn limit_kmh(&self, a: Node, b: Node) -> f64 {
        if self.is_arterial(a, b) {
            LIMIT_ARTERIAL_KMH
        } else {
            LIMIT_STREET_KMH
        }
    }

    /// Local point `s` metres from `a` towards `b`.
    pub fn along(&self, a: Node, b: Node, s: f64) -> (f64, f64) {
        let (ax, ay) = self.local(a);
        let (bx, by) = self.local(b);
        let len = (bx - ax).hypot(by - ay);
        let f = if len > 0.0 {
            (s / len).clamp(0.0, 1.0)
        } else {
            0.0
        };
        (ax + (bx - ax) * f, ay + (by - ay) * f)
    }

    /// Local grid metres to (lat, lng): rotate, then project around the centre.
    pub fn to_lat_lng(&self, (x, y): (f64, f64)) -> (f64, f64) {
        let east = x * self.cos - y * self.sin;
        let north = x * self.sin + y * self.cos;
        let lat = self.center.0 + north / M_PER_DEG;
        let mut lng = self.center.1 + east / self.m_per_deg_lng;
        // A city straddling the antimeridian still reports valid longitudes.
        if lng > 180.0 {
            lng -= 360.0;
        } else if lng < -180.0 {
            lng += 360.0;
        }
        (lat, lng)
    }

    /// Inverse of [`City::to_lat_lng`] (tests use it to check vehicles stay on streets).
    #[cfg(test)]
    pub fn to_local(&self, lat: f64, lng: f64) -> (f64, f64) {
        let mut dlng = lng - self.center.1;
        if dlng > 180.0 {
            dlng -= 360.0;
        } else if dlng < -180.0 {
            dlng += 360.0;
        }
        let north = (lat - self.center.0) * M_PER_DEG;
        let east = dlng * self.m_per_deg_lng;
        (
            east * self.cos + north * self.sin,
            -east * self.sin + north * self.cos,
        )
    }

    /// Compass heading (0 = north, clockwise, degrees in [0, 360)) of travel from `a` to `b`.
    pub fn heading(&self, a: Node, b: Node) -> f64 {
        let (ax, ay) = self.local(a);
        let (bx, by) = self.local(b);
        let (dx, dy) = (bx - ax, by - ay);
        let east = dx * self.cos - dy * self.sin;
        let north = dx * self.sin + dy * self.cos;
        east.atan2(north).to_degrees().rem_euclid(360.0)
    }

    /// Distance in metres from a position to the nearest street centre line (test helper).
    #[cfg(test)]
    pub fn distance_to_street(&self, lat: f64, lng: f64) -> f64 {
        let (x, y) = self.to_local(lat, lng);
        let nearest = |v: &[f64], p: f64| v.iter().map(|s| (s - p).abs()).fold(f64::MAX, f64::min);
        nearest(&self.avenues, x).min(nearest(&self.streets, y))
    }
}

/// Great-circle distance in metres (haversine); used for the radius checks.
#[cfg(test)]
pub(crate) fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, la2) = (a.0.to_radians(), b.0.to_radians());
    let dla = la2 - la1;
    let dlo = (b.1 - a.1).to_radians();
    let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
    2.0 * 6_371_000.0 * h.sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn city() -> City {
        City::new(&mut ChaCha8Rng::seed_from_u64(7), (37.4979, 127.0276), 5.0)
    }

    #[test]
    fn projection_round_trips_and_blocks_are_city_sized() {
        let c = city();
        let (lat, lng) = c.to_lat_lng((1234.0, -987.0));
        let (x, y) = c.to_local(lat, lng);
        assert!((x - 1234.0).abs() < 1e-6 && (y + 987.0).abs() < 1e-6);
        for w in c.avenues.windows(2).chain(c.streets.windows(2)) {
            assert!((150.0..250.0).contains(&(w[1] - w[0])));
        }
        assert!(c.avenue_arterial.iter().any(|a| *a));
    }

    #[test]
    fn every_intersection_is_inside_the_radius() {
        let c = city();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..2000 {
            let n = c.random_node(&mut rng);
            let p = c.to_lat_lng(c.local(n));
            assert!(distance_m(p, (37.4979, 127.0276)) <= 5000.0 + 1.0);
            assert!(c.neighbors(n).all(|m| c.edge_len(n, m) > 100.0));
        }
    }

    #[test]
    fn headings_follow_the_rotation() {
        let c = city();
        let n = Node { i: 20, j: 20 };
        let east = c.heading(n, Node { i: 21, j: 20 });
        let north = c.heading(n, Node { i: 20, j: 21 });
        assert!(((east - north).rem_euclid(360.0) - 90.0).abs() < 1e-9);
        assert!(
            !(25.0..=335.0).contains(&north),
            "grid is only slightly rotated: {north}"
        );
    }

    #[test]
    fn tiny_cities_still_have_streets() {
        let c = City::new(&mut ChaCha8Rng::seed_from_u64(3), (0.0, 179.999), 0.1);
        let n = c.random_node(&mut ChaCha8Rng::seed_from_u64(4));
        assert!(c.is_valid(n));
        assert!(c.neighbors(n).count() >= 1);
        let (_, lng) = c.to_lat_lng((90.0, 0.0));
        assert!(lng.abs() <= 180.0);
    }
}
