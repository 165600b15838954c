//! The spatial index and the census against the plain scans they replace (issue 13): after
//! any sequence of fixes, moves, metadata changes, removals and re-attributions, a
//! viewport's vehicles, the counters and the clusters' totals are what scanning every
//! vehicle gives.

use super::*;
use crate::view::{FrameBuilder, FrameInput, cluster, in_group};
use fleet_model::Source;
use proptest::prelude::*;
use std::collections::HashSet;

#[derive(Debug, Clone)]
enum Op {
    Fix { v: u8, lat: f64, lng: f64, at: i64 },
    Group { v: u8, g: Option<u8> },
    Remove { v: u8 },
    Reattribute { from: u8, to: u8, at: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..40, 37.0f64..38.0, 126.5f64..127.5, 0i64..600_000)
            .prop_map(|(v, lat, lng, at)| Op::Fix { v, lat, lng, at }),
        1 => (0u8..40, proptest::option::of(0u8..3)).prop_map(|(v, g)| Op::Group { v, g }),
        1 => (0u8..40).prop_map(|v| Op::Remove { v }),
        1 => (0u8..40, 0u8..40, 0i64..600_000)
            .prop_map(|(from, to, at)| Op::Reattribute { from, to, at }),
    ]
}

fn viewport() -> impl Strategy<Value = Viewport> {
    (
        37.0f64..38.0,
        126.5f64..127.5,
        0.0f64..1.0,
        0.0f64..1.0,
        3.0f64..18.0,
    )
        .prop_map(|(south, west, h, w, zoom)| Viewport {
            south,
            west,
            north: south + h,
            east: west + w,
            zoom,
        })
}

fn apply(f: &mut LiveFleet, op: &Op) {
    let id = |v: u8| format!("v{v}");
    match op {
        Op::Fix { v, lat, lng, at } => {
            f.apply_position(
                &PositionSample {
                    vehicle: id(*v),
                    ts_ms: *at,
                    lat: *lat,
                    lng: *lng,
                    speed: None,
                    heading: None,
                    source: Source::Kafka,
                },
                *at,
            );
        }
        Op::Group { v, g } => {
            f.apply_info(
                &VehicleInfo {
                    vehicle: id(*v),
                    group: Some(g.map(|g| format!("g{g}")).unwrap_or_default()),
                    ..Default::default()
                },
                0,
            );
        }
        Op::Remove { v } => {
            f.remove(&id(*v));
        }
        Op::Reattribute { from, to, at } => {
            if from != to {
                f.reattribute(&id(*from), &id(*to), *at);
            }
        }
    }
}

proptest! {
    #[test]
    fn index_and_census_equal_the_scans(
        ops in proptest::collection::vec(op(), 1..120),
        vp in viewport(),
        group in proptest::option::of(0u8..3),
        now in 0i64..1_000_000,
    ) {
        let mut f = LiveFleet::new(60.0);
        for o in &ops {
            apply(&mut f, o);
        }
        let group = group.map(|g| format!("g{g}"));
        let group = group.as_deref();
        // visible
        let mut got: Vec<String> = f
            .visible(&vp, group)
            .iter()
            .map(|m| f.at_slot(m.slot).0.clone())
            .collect();
        got.sort();
        let mut want: Vec<String> = f
            .vehicles()
            .filter(|(_, v)| {
                v.position.as_ref().is_some_and(|p| vp.contains(p.lat, p.lng)) && in_group(v, group)
            })
            .map(|(id, _)| id.clone())
            .collect();
        want.sort();
        prop_assert_eq!(&got, &want);
        // counters
        let stale = f.vehicles().filter(|(_, v)| f.is_stale(v, now)).count() as u64;
        let c = f.counters(now);
        prop_assert_eq!((c.vehicles_total, c.vehicles_stale), (f.len() as u64, stale));
        if let Some(g) = group {
            let members: Vec<_> = f.vehicles().filter(|(_, v)| in_group(v, Some(g))).collect();
            let stale = members.iter().filter(|(_, v)| f.is_stale(v, now)).count() as u64;
            prop_assert_eq!(f.group_counts(g, now), (members.len() as u64, stale));
        }
        // clusters: every visible vehicle once, alerting and stale as the dots would say
        let alerting: HashSet<String> = want.iter().step_by(3).cloned().collect();
        let visible = f.visible(&vp, group);
        let clusters = cluster(&f, &visible, &vp, &alerting, group, now);
        let stale_shown = want
            .iter()
            .filter(|id| !alerting.contains(*id) && f.is_stale(f.vehicle(id).unwrap(), now))
            .count() as u32;
        let sum = |k: fn(&fleet_model::Cluster) -> u32| clusters.iter().map(k).sum::<u32>();
        prop_assert_eq!(sum(|c| c.count) as usize, want.len());
        prop_assert_eq!(sum(|c| c.alerting) as usize, alerting.len());
        prop_assert_eq!(sum(|c| c.stale), stale_shown);
        // and the frame: dots when few are visible
        let frame = FrameBuilder::default().build(&f, FrameInput {
            viewport: vp,
            selected: None,
            alerts: None,
            alerting: &alerting,
            open_alerts: 0,
            demo: false,
            now_ms: now,
            live_counters: None,
            group,
        });
        prop_assert_eq!(frame.dots.len(), want.len());
    }

    /// Eviction from the census and the per-slot seconds picks what sorting every vehicle
    /// by age would: all the silent ones, and the oldest while over the cap.
    #[test]
    fn eviction_picks_the_silent_and_the_oldest(
        ops in proptest::collection::vec(op(), 1..120),
        silent_before in 0i64..700_000,
        max in 0usize..45,
    ) {
        let mut f = LiveFleet::new(60.0);
        for o in &ops {
            apply(&mut f, o);
        }
        let gone = f.eviction_candidates(silent_before, max, |_| false);
        let gone_set: HashSet<&String> = gone.iter().collect();
        prop_assert_eq!(gone_set.len(), gone.len(), "no id twice");
        let over = f.len().saturating_sub(max);
        prop_assert!(gone.len() >= over);
        let seen = |id: &String| f.vehicle(id).unwrap().last_seen_ms;
        let stays: Vec<i64> = f.vehicles().filter(|(id, _)| !gone_set.contains(id)).map(|(_, v)| v.last_seen_ms).collect();
        prop_assert!(stays.iter().all(|s| *s >= silent_before), "every silent one goes");
        if over > 0 {
            // the `over` oldest went: nothing that stays is older than what went for age
            let went_for_age = gone.iter().map(seen).filter(|s| *s >= silent_before).max();
            if let (Some(w), Some(m)) = (went_for_age, stays.iter().min()) {
                prop_assert!(w <= *m, "{} went but {} stays", w, m);
            }
        }
        prop_assert!(gone.iter().all(|id| seen(id) < silent_before) || over > 0);
    }
}
