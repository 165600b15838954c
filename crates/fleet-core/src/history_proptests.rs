//! Property tests for the history policy ([`HistoryPolicy::keep`], SPEC §2) on arbitrary
//! sequences of one vehicle's samples and status changes (time may go backwards: late data).
//!
//! The reference a sample is measured against is the newest kept sample: an out-of-order
//! sample that is kept does not become the reference (see `keep`).

use crate::config::HistoryConfig;
use crate::geo::distance_m;
use crate::history::HistoryPolicy;
use fleet_model::{PositionSample, Source};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Event {
    /// A sample `dt_ms` after the previous one (negative: late data), moved by (dlat, dlng).
    Sample { dt_ms: i64, dlat: f64, dlng: f64 },
    /// The vehicle's status changed.
    Status,
}

fn event() -> impl Strategy<Value = Event> {
    let step = prop_oneof![Just(0.0), -0.001..0.001f64];
    prop_oneof![
        8 => (
            prop_oneof![Just(0i64), -60_000..-1i64, 0..120_000i64],
            step.clone(),
            step
        )
            .prop_map(|(dt_ms, dlat, dlng)| Event::Sample { dt_ms, dlat, dlng }),
        1 => Just(Event::Status),
    ]
}

fn config() -> impl Strategy<Value = HistoryConfig> {
    (
        prop_oneof![Just(0.0), Just(25.0), 0.0..200.0f64],
        prop_oneof![Just(0.0), Just(30.0), 0.0..90.0f64],
    )
        .prop_map(|(min_distance_m, min_interval_s)| HistoryConfig {
            min_distance_m,
            min_interval_s,
            ..Default::default()
        })
}

fn sample(ts_ms: i64, lat: f64, lng: f64) -> PositionSample {
    PositionSample {
        vehicle: "car-1".into(),
        ts_ms,
        lat,
        lng,
        speed: None,
        heading: None,
        source: Source::Kafka,
    }
}

/// Runs `events` through `policy`: each sample with its decision and whether a status change
/// came since the previous sample.
fn run(policy: &mut HistoryPolicy, events: &[Event]) -> Vec<(PositionSample, bool, bool)> {
    let (mut ts, mut lat, mut lng) = (1_700_000_000_000_i64, 37.5, 127.0);
    let mut status = false;
    let mut out = Vec::new();
    for e in events {
        match e {
            Event::Status => {
                policy.status_changed("car-1");
                status = true;
            }
            Event::Sample { dt_ms, dlat, dlng } => {
                ts += dt_ms;
                lat += dlat;
                lng += dlng;
                let p = sample(ts, lat, lng);
                let kept = policy.keep(&p);
                out.push((p, kept, std::mem::take(&mut status)));
            }
        }
    }
    out
}

proptest! {
    #[test]
    fn prop_history_first_sample_always_kept(cfg in config(), events in prop::collection::vec(event(), 1..60)) {
        let decisions = run(&mut HistoryPolicy::new(&cfg), &events);
        if let Some((_, kept, _)) = decisions.first() {
            prop_assert!(*kept);
        }
    }

    /// A sample is kept exactly when it is far enough in space or time from the newest kept
    /// sample, or the status changed since the previous sample.
    #[test]
    fn prop_history_kept_iff_moved_waited_or_status_changed(
        cfg in config(),
        events in prop::collection::vec(event(), 1..60),
    ) {
        let min_interval_ms = (cfg.min_interval_s * 1000.0) as i64;
        let decisions = run(&mut HistoryPolicy::new(&cfg), &events);
        let mut reference: Option<&PositionSample> = None;
        for (p, kept, status_changed) in &decisions {
            let expected = match reference {
                None => true,
                Some(r) => {
                    *status_changed
                        || (p.ts_ms - r.ts_ms).abs() >= min_interval_ms
                        || distance_m(r.lat, r.lng, p.lat, p.lng) >= cfg.min_distance_m
                }
            };
            prop_assert_eq!(*kept, expected, "sample {:?} against {:?}", p, reference);
            if *kept && reference.is_none_or(|r| p.ts_ms >= r.ts_ms) {
                reference = Some(p);
            }
        }
    }

    /// Same input, same decisions; and a policy seeded from the newest kept sample (a restart,
    /// SPEC §2) continues exactly as the uninterrupted one.
    #[test]
    fn prop_history_deterministic_and_restartable(
        cfg in config(),
        events in prop::collection::vec(event(), 1..60),
        cut in any::<prop::sample::Index>(),
    ) {
        let first = run(&mut HistoryPolicy::new(&cfg), &events);
        let second = run(&mut HistoryPolicy::new(&cfg), &events);
        let decisions = |d: &[(PositionSample, bool, bool)]| d.iter().map(|x| x.1).collect::<Vec<_>>();
        prop_assert_eq!(decisions(&first), decisions(&second));

        // Restart right after sample `cut`; status changes after it are replayed as they come.
        if first.is_empty() {
            return Ok(());
        }
        let cut = cut.index(first.len());
        let mut newest: Option<&PositionSample> = None;
        for (p, kept, _) in &first[..=cut] {
            if *kept && newest.is_none_or(|r| p.ts_ms >= r.ts_ms) {
                newest = Some(p);
            }
        }
        let mut restarted = HistoryPolicy::new(&cfg);
        restarted.seed(newest.cloned());
        for (p, kept, status_changed) in &first[cut + 1..] {
            if *status_changed {
                restarted.status_changed("car-1");
            }
            prop_assert_eq!(restarted.keep(p), *kept, "after restart: {:?}", p);
        }
    }
}
