//! Snapshots coalesced in one transaction leave the `vehicles` rows exactly as writing them
//! one by one does (the writer merges them: Kafka batches carry one per changed vehicle).

use super::tests::{fresh_store, pos};
use super::*;
use rand::{Rng, SeedableRng};

/// Every column of every row, as text (`quote` shows NULL and keeps numbers exact).
const ROWS: &str = "SELECT quote(id) || '|' || quote(first_seen) || '|' || quote(last_ts) || '|' || \
                    quote(last_lat) || '|' || quote(last_lng) || '|' || quote(last_speed) || '|' || \
                    quote(last_heading) || '|' || quote(last_source) || '|' || quote(status_json) \
                    FROM vehicles ORDER BY id";

async fn rows(store: &Store) -> Vec<String> {
    sqlx::query_scalar(ROWS)
        .fetch_all(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn coalesced_snapshots_leave_the_rows_that_one_by_one_writes_leave() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let snaps: Vec<VehicleSnapshot> = (0..400)
        .map(|i| {
            let id = format!("car-{}", rng.random_range(0..6));
            let position = rng.random_bool(0.7).then(|| {
                let mut p = pos(&id, 1_000 + i);
                p.lat = rng.random_range(-80.0..80.0);
                p.speed = rng.random_bool(0.5).then(|| rng.random_range(0.0..100.0));
                p.heading = rng.random_bool(0.5).then(|| rng.random_range(0.0..360.0));
                p
            });
            VehicleSnapshot {
                vehicle: id,
                first_seen: 1_000 + i,
                position,
                status_json: rng.random_bool(0.4).then(|| format!(r#"{{"fuel":{i}}}"#)),
            }
        })
        .collect();

    let (_d1, one_by_one, w1, _t1) = fresh_store().await;
    for s in &snaps {
        w1.write(WriteBatch {
            snapshots: vec![s.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
        w1.flush().await.unwrap();
    }
    let (_d2, coalesced, w2, _t2) = fresh_store().await;
    let mut b = WriteBatch {
        snapshots: snaps.clone(),
        ..Default::default()
    };
    b.coalesce_snapshots();
    assert_eq!(b.snapshots.len(), 6, "one row write per vehicle");
    w2.write(b).await.unwrap();
    w2.flush().await.unwrap();
    let (a, c) = (rows(&one_by_one).await, rows(&coalesced).await);
    assert_eq!(a.len(), 6);
    assert_eq!(a, c);
}
