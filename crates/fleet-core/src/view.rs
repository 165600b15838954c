//! What the UI sees: one [`Frame`] per tick built from the live state for the UI's viewport,
//! individual vehicles when few are visible and grid clusters otherwise, so the UI's cost
//! does not grow with the fleet.

use crate::state::{LiveFleet, Member, VehicleState as Live, grid};
use fleet_model::{
    Alert, Cluster, Dot, FleetCounters, Frame, SearchHit, VehicleDetail, VehicleState, Viewport,
};
use std::collections::{HashMap, HashSet, VecDeque};

/// Above this many visible vehicles the frame carries clusters instead of dots.
pub const MAX_DOTS: usize = 4000;
/// At or beyond this zoom level dots are always sent (a street-level view).
pub const DOTS_ZOOM: f64 = 15.0;
/// Speed (km/h) above which a vehicle counts as moving.
pub const MOVING_KMH: f64 = 3.0;
/// Seconds of rate history for the sparkline.
const HISTORY: usize = 60;

/// Builds frames; keeps the sequence number and the rate history.
#[derive(Debug, Default)]
pub struct FrameBuilder {
    seq: u64,
    rate_history: VecDeque<f64>,
    last_history_sec: i64,
}

/// Classifies a vehicle for drawing.
pub fn state_of(fleet: &LiveFleet, v: &Live, alerting: bool, now_ms: i64) -> VehicleState {
    if alerting {
        VehicleState::Alerting
    } else if fleet.is_stale(v, now_ms) {
        VehicleState::Stale
    } else {
        let speed = v
            .position
            .as_ref()
            .and_then(|p| p.speed)
            .or_else(|| v.status.as_ref().and_then(|s| s.known.speed))
            .unwrap_or(0.0);
        if speed > MOVING_KMH {
            VehicleState::Moving
        } else {
            VehicleState::Parked
        }
    }
}

/// Inputs of one frame besides the live state.
pub struct FrameInput<'a> {
    /// The UI's viewport.
    pub viewport: Viewport,
    /// Selected vehicle.
    pub selected: Option<&'a str>,
    /// The alert feed, when it changed since the previous frame.
    pub alerts: Option<Vec<Alert>>,
    /// Vehicles with an open alert.
    pub alerting: &'a HashSet<String>,
    /// Open alerts in total.
    pub open_alerts: u64,
    /// Demo mode.
    pub demo: bool,
    /// Now (ms): the frame's time, which a replay sets to the replayed instant.
    pub now_ms: i64,
    /// The counters bar from another fleet, with the wall clock they were read at: a replay
    /// draws the fleet as it was but keeps the counters (and their sparkline) live.
    pub live_counters: Option<(FleetCounters, i64)>,
    /// Only vehicles of this group (`group-filter`, SPEC §8): the map and the vehicle
    /// counters show that group alone.
    pub group: Option<&'a str>,
}

/// Whether `v` belongs to `group` (`None` = every vehicle does).
pub fn in_group(v: &Live, group: Option<&str>) -> bool {
    group.is_none_or(|g| v.info.as_ref().and_then(|i| i.group.as_deref()) == Some(g))
}

/// Every group the live fleet's metadata names, sorted (the `group-filter` choices).
pub fn groups(fleet: &LiveFleet) -> Vec<String> {
    fleet.groups()
}

impl FrameBuilder {
    /// Builds the next frame.
    pub fn build(&mut self, fleet: &LiveFleet, input: FrameInput<'_>) -> Frame {
        let now = input.now_ms;
        let (mut counters, wall_ms) = input
            .live_counters
            .clone()
            .unwrap_or_else(|| (fleet.counters(now), now));
        if let Some(g) = input.group {
            let (total, stale) = fleet.group_counts(g, now);
            counters.group = Some(g.to_string());
            counters.vehicles_total = total;
            counters.vehicles_stale = stale;
            counters.vehicles_online = total - stale;
        }
        let sec = wall_ms.div_euclid(1000);
        if sec != self.last_history_sec {
            self.last_history_sec = sec;
            self.rate_history.push_back(counters.rate);
            while self.rate_history.len() > HISTORY {
                self.rate_history.pop_front();
            }
        }
        let vp = input.viewport;
        let visible = fleet.visible(&vp, input.group);
        let state = |id: &String, v: &Live| state_of(fleet, v, input.alerting.contains(id), now);
        let (dots, clusters) = if visible.len() <= MAX_DOTS || vp.zoom >= DOTS_ZOOM {
            let max = if vp.zoom >= DOTS_ZOOM {
                MAX_DOTS * 4
            } else {
                MAX_DOTS
            };
            let dots = visible
                .iter()
                .take(max)
                .filter_map(|m| {
                    let (id, v) = fleet.at_slot(m.slot);
                    let p = v.position.as_ref()?;
                    Some(Dot {
                        id: id.clone(),
                        lat: p.lat,
                        lng: p.lng,
                        heading: p.heading.map(|h| h as f32),
                        state: state(id, v),
                    })
                })
                .collect();
            (dots, Vec::new())
        } else {
            (
                Vec::new(),
                cluster(fleet, &visible, &vp, input.alerting, input.group, now),
            )
        };
        let selected = input.selected.and_then(|id| {
            fleet.vehicle(id).map(|v| VehicleDetail {
                id: id.to_string(),
                info: v.info.clone(),
                position: v.position.clone(),
                status: v.status.clone(),
                state: state(&id.to_string(), v),
                last_seen_ms: v.last_seen_ms,
            })
        });
        self.seq += 1;
        Frame {
            seq: self.seq,
            ts_ms: now,
            counters,
            dots,
            clusters,
            selected,
            alerts: input.alerts,
            open_alerts: input.open_alerts,
            // The shell adds the groups with the alerts (src-tauri/src/stream.rs).
            alert_groups: None,
            snoozes: None,
            demo: input.demo,
            rate_history: self.rate_history.iter().copied().collect(),
            // The shell fills it in from the cache (src-tauri/src/stream.rs).
            outbox: Default::default(),
            replay: None,
        }
    }
}

/// Clustering: the Web Mercator tiles of ~64 screen pixels at the viewport's zoom (a tile
/// two zoom levels down), so a cluster covers the same screen area at every latitude. Each
/// visible vehicle costs a shift and an addition; consecutive vehicles of one index cell
/// usually share a tile, so the tile map is looked up once per run. Alerting vehicles (few)
/// are counted afterwards: alerting wins over stale, as for dots.
pub(crate) fn cluster(
    fleet: &LiveFleet,
    visible: &[Member],
    vp: &Viewport,
    alerting: &HashSet<String>,
    group: Option<&str>,
    now: i64,
) -> Vec<Cluster> {
    let tile_zoom = (vp.zoom.floor().clamp(0.0, 22.0) as u32 + 2).min(grid::LEVEL);
    let shift = grid::LEVEL - tile_zoom;
    /// Running sums of one tile.
    #[derive(Default, Clone, Copy)]
    struct Acc {
        x: f64,
        y: f64,
        count: u32,
        alerting: u32,
        stale: u32,
    }
    let mut tiles: HashMap<(u32, u32), Acc> = HashMap::new();
    let mut run: Option<((u32, u32), Acc)> = None;
    for m in visible {
        let key = (m.x >> shift, m.y >> shift);
        let acc = match &mut run {
            Some((k, acc)) if *k == key => acc,
            _ => {
                if let Some((k, acc)) = run.take() {
                    add(tiles.entry(k).or_default(), &acc);
                }
                &mut run.insert((key, Acc::default())).1
            }
        };
        acc.x += f64::from(m.x);
        acc.y += f64::from(m.y);
        acc.count += 1;
        acc.stale += u32::from(fleet.slot_is_stale(m.slot, now));
    }
    if let Some((k, acc)) = run {
        add(tiles.entry(k).or_default(), &acc);
    }
    fn add(to: &mut Acc, a: &Acc) {
        to.x += a.x;
        to.y += a.y;
        to.count += a.count;
        to.stale += a.stale;
    }
    for id in alerting {
        let Some(slot) = fleet.slot_of(id) else {
            continue;
        };
        let (_, v) = fleet.at_slot(slot);
        let Some(m) = fleet.member(slot) else {
            continue;
        };
        let shown = v
            .position
            .as_ref()
            .is_some_and(|p| vp.contains(p.lat, p.lng))
            && in_group(v, group);
        if let Some(t) = tiles
            .get_mut(&(m.x >> shift, m.y >> shift))
            .filter(|_| shown)
        {
            t.alerting += 1;
            t.stale -= u32::from(fleet.slot_is_stale(slot, now));
        }
    }
    tiles
        .into_values()
        .map(|t| {
            let n = f64::from(t.count);
            // +0.5: the centre of the integer cells the vehicles are in.
            let (lat, lng) = grid::unproject(t.x / n + 0.5, t.y / n + 0.5);
            Cluster {
                lat,
                lng,
                count: t.count,
                alerting: t.alerting,
                stale: t.stale,
            }
        })
        .collect()
}

/// Vehicles whose id or plate contains `q` (case-insensitive), exact matches first.
pub fn search(fleet: &LiveFleet, q: &str, limit: usize, group: Option<&str>) -> Vec<SearchHit> {
    let q = q.trim().to_lowercase();
    if q.is_empty() {
        return Vec::new();
    }
    let mut hits: Vec<(bool, SearchHit)> = fleet
        .vehicles()
        .filter(|(_, v)| in_group(v, group))
        .filter_map(|(id, v)| {
            let plate = v.info.as_ref().and_then(|i| i.plate.clone());
            let idl = id.to_lowercase();
            let pl = plate.as_deref().map(str::to_lowercase);
            let exact = idl == q || pl.as_deref() == Some(q.as_str());
            (exact || idl.contains(&q) || pl.as_deref().is_some_and(|p| p.contains(&q))).then(
                || {
                    (
                        exact,
                        SearchHit {
                            id: id.clone(),
                            plate,
                            lat: v.position.as_ref().map(|p| p.lat),
                            lng: v.position.as_ref().map(|p| p.lng),
                        },
                    )
                },
            )
        })
        .collect();
    hits.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
    hits.into_iter().take(limit).map(|(_, h)| h).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_model::{PositionSample, Source, VehicleInfo};

    fn fleet(n: usize) -> LiveFleet {
        let mut f = LiveFleet::new(300.0);
        for i in 0..n {
            let p = PositionSample {
                vehicle: format!("car-{i:05}"),
                ts_ms: 1000,
                lat: 37.4 + (i % 100) as f64 * 0.002,
                lng: 127.0 + (i / 100) as f64 * 0.002,
                speed: Some(if i % 2 == 0 { 30.0 } else { 0.0 }),
                heading: Some(90.0),
                source: Source::Kafka,
            };
            f.apply_position(&p, 1000);
        }
        f.apply_info(
            &VehicleInfo {
                vehicle: "car-00007".into(),
                plate: Some("12가3456".into()),
                ..Default::default()
            },
            1000,
        );
        f
    }

    fn input(vp: Viewport, alerting: &HashSet<String>) -> FrameInput<'_> {
        FrameInput {
            viewport: vp,
            selected: Some("car-00003"),
            alerts: None,
            alerting,
            open_alerts: 0,
            demo: false,
            now_ms: 2000,
            live_counters: None,
            group: None,
        }
    }

    #[test]
    fn few_vehicles_are_dots_many_are_clusters() {
        let none = HashSet::new();
        let f = fleet(500);
        let vp = Viewport {
            south: 37.0,
            west: 126.5,
            north: 38.0,
            east: 127.5,
            zoom: 12.0,
        };
        let fr = FrameBuilder::default().build(&f, input(vp, &none));
        assert_eq!(fr.dots.len(), 500);
        assert!(fr.clusters.is_empty());
        assert_eq!(fr.selected.as_ref().unwrap().id, "car-00003");
        assert_eq!(
            fr.dots
                .iter()
                .filter(|d| d.state == VehicleState::Moving)
                .count(),
            250
        );
        let f = fleet(20_000);
        let fr = FrameBuilder::default().build(&f, input(vp, &none));
        assert!(fr.dots.is_empty());
        assert_eq!(fr.clusters.iter().map(|c| c.count).sum::<u32>(), 20_000);
        assert!(fr.clusters.len() < 2000, "{}", fr.clusters.len());
    }

    #[test]
    fn viewport_filters_and_alerting_wins() {
        let f = fleet(500);
        let alerting: HashSet<String> = ["car-00000".to_string()].into();
        let vp = Viewport {
            south: 37.399,
            west: 126.999,
            north: 37.4005,
            east: 127.0005,
            zoom: 16.0,
        };
        let fr = FrameBuilder::default().build(&f, input(vp, &alerting));
        assert_eq!(fr.dots.len(), 1);
        assert_eq!(fr.dots[0].state, VehicleState::Alerting);
    }

    /// Issue 13: clusters are Web Mercator tiles two zoom levels down (64 px), whatever the
    /// latitude. At 60° N a zoom-10 tile is 0.35° wide but only ~0.18° tall; the old degree
    /// cells (0.35° × 0.35°) merged the vehicles of a tile with those just south of it into
    /// squares twice as tall on screen as wide.
    #[test]
    fn clusters_are_mercator_tiles() {
        let mut f = LiveFleet::new(300.0);
        let (x, y) = grid::project(60.0, 10.0);
        let shift = grid::LEVEL - 10;
        // the tile of zoom 10 holding (60, 10): its corners
        let tile = |dx: u32, dy: u32| {
            grid::unproject(
                f64::from(((x >> shift) + dx) << shift),
                f64::from(((y >> shift) + dy) << shift),
            )
        };
        let (north, west) = tile(0, 0);
        let (south, east) = tile(1, 1);
        let put = |f: &mut LiveFleet, id: String, lat: f64, lng: f64| {
            f.apply_position(
                &PositionSample {
                    vehicle: id,
                    ts_ms: 1000,
                    lat,
                    lng,
                    speed: None,
                    heading: None,
                    source: Source::Kafka,
                },
                1000,
            );
        };
        // 3,000 vehicles inside the tile, 3,000 just south of it
        for i in 0..3000 {
            let t = (f64::from(i) + 0.5) / 3000.0;
            put(
                &mut f,
                format!("in-{i}"),
                south + (north - south) * t,
                west + (east - west) * t,
            );
            put(
                &mut f,
                format!("out-{i}"),
                south - (north - south) * t * 0.9,
                west + (east - west) * t,
            );
        }
        let vp = Viewport {
            south: 50.0,
            west: 0.0,
            north: 70.0,
            east: 20.0,
            zoom: 8.0,
        };
        let none = HashSet::new();
        let fr = FrameBuilder::default().build(&f, input(vp, &none));
        let mut counts: Vec<u32> = fr.clusters.iter().map(|c| c.count).collect();
        counts.sort_unstable();
        assert_eq!(counts, [3000, 3000], "one cluster per tile");
        let inside = fr.clusters.iter().find(|c| c.lat > south).unwrap();
        assert!(inside.lat < north && inside.lng > west && inside.lng < east);
    }

    #[test]
    fn search_by_id_and_plate() {
        let f = fleet(50);
        assert_eq!(search(&f, "12가3456", 10, None)[0].id, "car-00007");
        assert_eq!(search(&f, "CAR-0001", 20, None).len(), 10);
        assert_eq!(
            search(&f, "car-00001", 20, None)[0].id,
            "car-00001",
            "exact match first"
        );
        assert!(search(&f, "  ", 10, None).is_empty());
    }

    /// SPEC §8 `group-filter`: the map, the vehicle counters and search show one group.
    #[test]
    fn a_group_narrows_the_map_the_counters_and_search() {
        let mut f = fleet(50);
        for i in [3, 7, 9] {
            f.apply_info(
                &VehicleInfo {
                    vehicle: format!("car-{i:05}"),
                    group: Some("gangnam".into()),
                    ..Default::default()
                },
                1000,
            );
        }
        assert_eq!(groups(&f), vec!["gangnam".to_string()]);
        let none = HashSet::new();
        let mut inp = input(Viewport::WORLD, &none);
        inp.group = Some("gangnam");
        inp.viewport.zoom = 16.0;
        let fr = FrameBuilder::default().build(&f, inp);
        let mut ids: Vec<&str> = fr.dots.iter().map(|d| d.id.as_str()).collect();
        ids.sort_unstable();
        assert_eq!(ids, ["car-00003", "car-00007", "car-00009"]);
        assert_eq!(fr.counters.vehicles_total, 3);
        assert_eq!(fr.counters.group.as_deref(), Some("gangnam"));
        assert_eq!(search(&f, "car-0000", 20, Some("gangnam")).len(), 3);
        let all = FrameBuilder::default().build(&f, input(Viewport::WORLD, &none));
        assert_eq!(all.counters.vehicles_total, 50);
        assert_eq!(all.counters.group, None);
    }
}
