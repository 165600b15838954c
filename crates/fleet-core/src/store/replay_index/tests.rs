//! The in-memory index answers exactly what the cache answers: [`Store::fleet_at`] for any
//! instant and look-back in its range, [`Store::positions_between`] for any step.

use super::*;
use crate::store::tests::{fresh_store, pos, query_plan};
use crate::store::{Origin, VehicleSnapshot, WriteBatch};
use rand::{Rng, SeedableRng};

fn key(p: &PositionSample) -> (String, i64) {
    (p.vehicle.clone(), p.ts_ms)
}

/// Same vehicle and time; coordinates within the index's 1e-7° and speed/heading within f32.
fn assert_same(a: &PositionSample, b: &PositionSample, what: &str) {
    assert_eq!(key(a), key(b), "{what}");
    assert_eq!(a.source, b.source, "{what}");
    assert!(
        (a.lat - b.lat).abs() <= 1e-7 && (a.lng - b.lng).abs() <= 1e-7,
        "{what}: {a:?} {b:?}"
    );
    let close = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (None, None) => true,
        (Some(x), Some(y)) => (x - y).abs() <= 1e-4 * x.abs().max(1.0),
        _ => false,
    };
    assert!(
        close(a.speed, b.speed) && close(a.heading, b.heading),
        "{what}: {a:?} {b:?}"
    );
}

#[tokio::test]
async fn the_index_answers_what_the_cache_answers_at_every_instant() {
    let (_dir, store, w, _task) = fresh_store().await;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut b = WriteBatch::default();
    for v in 0..60 {
        let id = format!("car-{v:02}");
        b.snapshots.push(VehicleSnapshot {
            vehicle: id.clone(),
            first_seen: 0,
            position: None,
            status_json: None,
        });
        // Distinct times per vehicle (the cache's pick between equal times is arbitrary).
        let mut times: Vec<i64> = (0..rng.random_range(1..40))
            .map(|_| rng.random_range(0..100_000))
            .collect();
        times.sort();
        times.dedup();
        for ts in times {
            let mut p = pos(&id, ts);
            p.lat = rng.random_range(-80.0..80.0);
            p.lng = rng.random_range(-170.0..170.0);
            p.speed = rng.random_bool(0.7).then(|| rng.random_range(0.0..200.0));
            p.heading = rng.random_bool(0.5).then(|| rng.random_range(0.0..360.0));
            if rng.random_bool(0.2) {
                p.source = Source::Redis;
            }
            b.positions.push((p, Origin::default()));
        }
    }
    w.write(b).await.unwrap();
    w.flush().await.unwrap();

    let range = (10_000, 90_000);
    // A keyframe every 13 samples, so frames start from many different keyframes.
    let ix = ReplayIndex::build_keyed(&store, range, 1_000_000, 13)
        .await
        .unwrap();
    assert!(ix.keyframes.len() > 20, "{} keyframes", ix.keyframes.len());
    for _ in 0..120 {
        let lookback = [1_000, 5_000, 10_000][rng.random_range(0..3)];
        let t = rng.random_range(range.0 + lookback..=range.1);
        assert!(ix.covers(t, lookback));
        let mut want = store.fleet_at(t, lookback).await.unwrap();
        let mut got = ix.fleet_at(t, lookback);
        want.sort_by_key(key);
        got.sort_by_key(key);
        assert_eq!(got.len(), want.len(), "T={t} lookback={lookback}");
        for (g, w) in got.iter().zip(&want) {
            assert_same(g, w, &format!("T={t}"));
        }
        // A step inside the range (the replay steps from an instant the index covers).
        let after = (t - rng.random_range(0..5_000)).max(range.0);
        let want = store.positions_between(after, t, 1_000_000).await.unwrap();
        let got = ix.between(after, t);
        assert_eq!(got.len(), want.len(), "({after}, {t}]");
        let (mut g, mut w): (Vec<_>, Vec<_>) = (got, want);
        g.sort_by_key(key);
        w.sort_by_key(key);
        for (g, w) in g.iter().zip(&w) {
            assert_same(g, w, &format!("({after}, {t}]"));
        }
    }
    assert!(
        !ix.covers(range.0 + 500, 1_000),
        "look-back before the range"
    );
    assert!(!ix.covers(range.1 + 1, 0), "after the range");
}

#[tokio::test]
async fn a_range_over_the_cap_is_refused_not_truncated() {
    let (_dir, store, w, _task) = fresh_store().await;
    let b = WriteBatch {
        positions: (0..50)
            .map(|i| (pos("car-1", i * 10), Origin::default()))
            .collect(),
        ..Default::default()
    };
    w.write(b).await.unwrap();
    w.flush().await.unwrap();
    assert!(matches!(
        ReplayIndex::build(&store, 0, 1_000, 49).await,
        Err(IndexError::TooLarge(49))
    ));
    let ix = ReplayIndex::build(&store, 0, 1_000, 50).await.unwrap();
    assert_eq!(ix.len(), 50);
    assert!(matches!(
        ReplayIndex::build(&store, 10, 5, 50).await,
        Err(IndexError::BadRange(10, 5))
    ));
}

/// The range is read in table order (a rowid range found through the `ts` index), not row
/// by row through the index: 91 s for a 6-hour range of 20,000 vehicles that way.
#[tokio::test]
async fn the_range_is_read_as_a_run_of_table_pages() {
    let (_dir, store, _w, _task) = fresh_store().await;
    let plan = query_plan(&store, RANGE_SQL, &[0, 1]).await;
    let text = plan.join("\n");
    assert!(text.contains("COVERING INDEX positions_ts"), "{text}");
    assert!(
        text.contains("SEARCH positions USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"),
        "{text}"
    );
}
