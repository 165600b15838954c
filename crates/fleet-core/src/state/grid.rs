//! The live fleet's spatial index (issue 13): every vehicle with a position sits in one cell
//! of a fixed Web Mercator grid (the tiles of zoom [`CELL_LEVEL`]), kept up to date on each
//! fix. A frame visits only the cells its viewport covers, and the map's clusters are
//! Mercator tiles too, so a cluster is what the screen shows as one 64-pixel square at every
//! latitude (the old clustering used degree cells, which stretch towards the poles).
//!
//! Positions are kept as integer Mercator coordinates at zoom [`LEVEL`] (~2 m at the
//! equator): a tile at any zoom `z ≤ LEVEL` is the coordinate shifted right by `LEVEL - z`.

use fleet_model::Viewport;
use std::collections::HashMap;

/// Zoom of the integer coordinates.
pub const LEVEL: u32 = 24;
/// Zoom of the index's cells (~2.4 km at the equator): fine enough that a street-level
/// viewport visits a few hundred vehicles, coarse enough that a city is a few hundred cells.
pub const CELL_LEVEL: u32 = 14;
const CELL_SHIFT: u32 = LEVEL - CELL_LEVEL;
/// Web Mercator's latitude limit.
const MAX_LAT: f64 = 85.051_128_779_806_59;
const SCALE: f64 = (1u64 << LEVEL) as f64;

/// A vehicle in the index: its slot in the live fleet and its integer Mercator position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Slot in the live fleet.
    pub slot: u32,
    /// Mercator x at zoom [`LEVEL`].
    pub x: u32,
    /// Mercator y at zoom [`LEVEL`] (0 at the north edge).
    pub y: u32,
}

/// Mercator coordinates at zoom [`LEVEL`] of a position (latitude clamped to the projection).
pub fn project(lat: f64, lng: f64) -> (u32, u32) {
    let max = SCALE - 1.0;
    let x = ((lng + 180.0) / 360.0 * SCALE).clamp(0.0, max);
    let s = lat.clamp(-MAX_LAT, MAX_LAT).to_radians().sin();
    let y = ((0.5 - ((1.0 + s) / (1.0 - s)).ln() / (4.0 * std::f64::consts::PI)) * SCALE)
        .clamp(0.0, max);
    (x as u32, y as u32)
}

/// The position of fractional Mercator coordinates at zoom [`LEVEL`] (a cluster's centre).
pub fn unproject(x: f64, y: f64) -> (f64, f64) {
    let lng = x / SCALE * 360.0 - 180.0;
    let n = std::f64::consts::PI * (1.0 - 2.0 * y / SCALE);
    (n.sinh().atan().to_degrees(), lng)
}

fn cell_of(x: u32, y: u32) -> u64 {
    (u64::from(x >> CELL_SHIFT) << 32) | u64::from(y >> CELL_SHIFT)
}

/// The index.
#[derive(Debug, Default)]
pub struct Grid {
    cells: HashMap<u64, Vec<Member>>,
    /// Per slot: its cell and index there, when it has a position.
    at: Vec<Option<(u64, u32)>>,
}

/// How a cell lies in a viewport.
enum Cover {
    /// Wholly inside: every member is visible.
    Inside,
    /// On the edge: each member needs the exact test.
    Edge,
}

impl Grid {
    /// Puts (or moves) a slot at a position.
    pub fn set(&mut self, slot: u32, lat: f64, lng: f64) {
        let (x, y) = project(lat, lng);
        let key = cell_of(x, y);
        let m = Member { slot, x, y };
        let s = slot as usize;
        if self.at.len() <= s {
            self.at.resize(s + 1, None);
        }
        match self.at[s] {
            Some((k, i)) if k == key => {
                if let Some(cell) = self.cells.get_mut(&k) {
                    cell[i as usize] = m;
                }
            }
            _ => {
                self.remove(slot);
                let cell = self.cells.entry(key).or_default();
                cell.push(m);
                self.at[s] = Some((key, (cell.len() - 1) as u32));
            }
        }
    }

    /// Takes a slot out of the index.
    pub fn remove(&mut self, slot: u32) {
        let Some((key, i)) = self.at.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        let Some(cell) = self.cells.get_mut(&key) else {
            return;
        };
        cell.swap_remove(i as usize);
        if let Some(moved) = cell.get(i as usize) {
            self.at[moved.slot as usize] = Some((key, i));
        }
        if cell.is_empty() {
            self.cells.remove(&key);
        }
    }

    /// Where a slot is in the index.
    pub fn member(&self, slot: u32) -> Option<Member> {
        let (key, i) = (*self.at.get(slot as usize)?)?;
        self.cells.get(&key)?.get(i as usize).copied()
    }

    /// Calls `f` for every member in the cells `vp` covers, with whether the cell lies wholly
    /// inside (members of edge cells need the exact test). Cost: the cells covered and their
    /// members, never the whole fleet unless the viewport covers it.
    pub fn visit(&self, vp: &Viewport, mut f: impl FnMut(&Member, bool)) {
        let (x0, y0) = project(vp.north, vp.west);
        let (x1, y1) = project(vp.south, vp.east);
        let (cx0, cy0, cx1, cy1) = (
            x0 >> CELL_SHIFT,
            y0 >> CELL_SHIFT,
            x1 >> CELL_SHIFT,
            y1 >> CELL_SHIFT,
        );
        if cx1 < cx0 || cy1 < cy0 {
            return;
        }
        let cover = |key: u64| {
            let (cx, cy) = ((key >> 32) as u32, key as u32);
            if cx < cx0 || cx > cx1 || cy < cy0 || cy > cy1 {
                None
            } else if cx > cx0 && cx < cx1 && cy > cy0 && cy < cy1 {
                Some(Cover::Inside)
            } else {
                Some(Cover::Edge)
            }
        };
        let mut each = |key: u64, cell: &Vec<Member>| {
            if let Some(c) = cover(key) {
                let inside = matches!(c, Cover::Inside);
                for m in cell {
                    f(m, inside);
                }
            }
        };
        let span = u64::from(cx1 - cx0 + 1) * u64::from(cy1 - cy0 + 1);
        if span > self.cells.len() as u64 {
            for (key, cell) in &self.cells {
                each(*key, cell);
            }
        } else {
            for cx in cx0..=cx1 {
                for cy in cy0..=cy1 {
                    let key = (u64::from(cx) << 32) | u64::from(cy);
                    if let Some(cell) = self.cells.get(&key) {
                        each(key, cell);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_round_trips_and_tiles_nest() {
        for (lat, lng) in [
            (37.5665, 126.978),
            (-33.86, 151.2),
            (0.0, 0.0),
            (60.17, -0.1),
        ] {
            let (x, y) = project(lat, lng);
            let (la, ln) = unproject(f64::from(x) + 0.5, f64::from(y) + 0.5);
            assert!(
                (la - lat).abs() < 1e-4 && (ln - lng).abs() < 1e-4,
                "{la} {ln}"
            );
        }
        // Seoul city hall is in tile 13/6985/3172 (OpenStreetMap's numbering).
        let (x, y) = project(37.5665, 126.978);
        assert_eq!((x >> (LEVEL - 13), y >> (LEVEL - 13)), (6985, 3172));
    }

    #[test]
    fn moves_and_removals_keep_every_member_findable() {
        let mut g = Grid::default();
        for s in 0..100u32 {
            g.set(s, 37.0 + f64::from(s) * 0.05, 127.0);
        }
        // move half of them across cells, some within their cell
        for s in (0..100u32).step_by(2) {
            g.set(s, -10.0, 20.0 + f64::from(s) * 1e-5);
        }
        for s in (0..100u32).step_by(3) {
            g.remove(s);
        }
        g.remove(5_000);
        let mut seen = Vec::new();
        g.visit(&Viewport::WORLD, |m, _| seen.push(m.slot));
        seen.sort_unstable();
        let want: Vec<u32> = (0..100).filter(|s| s % 3 != 0).collect();
        assert_eq!(seen, want);
        for s in want {
            assert_eq!(g.member(s).unwrap().slot, s);
        }
        assert_eq!(g.member(3), None);
    }

    #[test]
    fn a_viewport_visits_its_cells_only() {
        let mut g = Grid::default();
        g.set(1, 37.5, 127.0);
        g.set(2, 35.1, 129.0);
        let vp = Viewport {
            south: 37.0,
            west: 126.5,
            north: 38.0,
            east: 127.5,
            zoom: 10.0,
        };
        let mut seen = Vec::new();
        g.visit(&vp, |m, inside| seen.push((m.slot, inside)));
        assert_eq!(seen, [(1, true)]);
    }
}
