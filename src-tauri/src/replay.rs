//! Replay (issue 11): the fleet as it was at the timeline's instant, kept as a [`LiveFleet`]
//! so the frame stream draws it through exactly the same frame path as live data. A playing
//! timeline moves it on with the positions stored since the previous frame; a jump (seek,
//! backwards, or a step too large) rebuilds it from the cache's whole-fleet query.

use fleet_core::state::LiveFleet;
use fleet_core::store::{Store, StoreError};

/// How far back a vehicle's last position may lie and still be drawn at T (older: it was
/// silent then, and live it would be long stale too).
pub const LOOKBACK_MS: i64 = 30 * 60 * 1000;
/// The largest forward step applied incrementally; larger is a jump.
const MAX_STEP_MS: i64 = 5 * 60 * 1000;
/// Rows read for one incremental step; a step holding more is rebuilt instead.
const STEP_ROWS: i64 = 50_000;

/// The replayed fleet and the instant it shows.
pub struct Replayer {
    fleet: LiveFleet,
    at: Option<i64>,
    stale_after_s: f64,
}

impl Replayer {
    /// An empty replay; vehicles go stale as the live view's do.
    pub fn new(stale_after_s: f64) -> Self {
        Replayer {
            fleet: LiveFleet::new(stale_after_s),
            at: None,
            stale_after_s,
        }
    }

    /// The fleet as last moved to.
    pub fn fleet(&self) -> &LiveFleet {
        &self.fleet
    }

    /// Moves the replayed fleet to `t_ms`.
    pub async fn move_to(&mut self, store: &Store, t_ms: i64) -> Result<(), StoreError> {
        match self.at {
            Some(at) if at == t_ms => return Ok(()),
            Some(at) if t_ms > at && t_ms - at <= MAX_STEP_MS => {
                let rows = store.positions_between(at, t_ms, STEP_ROWS).await?;
                if (rows.len() as i64) < STEP_ROWS {
                    for p in &rows {
                        self.fleet.apply_position(p, t_ms);
                    }
                    self.at = Some(t_ms);
                    return Ok(());
                }
            }
            _ => {}
        }
        let rows = store.fleet_at(t_ms, LOOKBACK_MS).await?;
        let mut fleet = LiveFleet::new(self.stale_after_s);
        for p in &rows {
            fleet.apply_position(p, t_ms);
        }
        self.fleet = fleet;
        self.at = Some(t_ms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_core::config::HistoryConfig;
    use fleet_core::store::{Origin, Retention, VehicleSnapshot, WriteBatch, now_ms};
    use fleet_model::{PositionSample, Source};

    fn pos(v: &str, ts: i64, lat: f64) -> PositionSample {
        PositionSample {
            vehicle: v.into(),
            ts_ms: ts,
            lat,
            lng: 127.0,
            speed: None,
            heading: None,
            source: Source::Kafka,
        }
    }

    fn lat_of(r: &Replayer, v: &str) -> Option<f64> {
        r.fleet().vehicle(v)?.position.as_ref().map(|p| p.lat)
    }

    /// Forward steps are applied from the slice in between; a step back rebuilds, so a
    /// vehicle that appeared later is gone again and every vehicle is where the cache says.
    #[tokio::test]
    async fn the_replayed_fleet_is_the_cache_at_each_instant_forwards_and_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("c.sqlite")).await.unwrap();
        let (w, _task) = store
            .start_writer(
                Retention {
                    history: HistoryConfig::default(),
                    max_size_bytes: u64::MAX,
                },
                Default::default(),
            )
            .await
            .unwrap();
        let t = now_ms() - 600_000;
        let snap = |v: &str| VehicleSnapshot {
            vehicle: v.into(),
            first_seen: t,
            position: None,
            status_json: None,
        };
        let rows = [
            pos("a", t + 1_000, 1.0),
            pos("a", t + 2_000, 2.0),
            pos("a", t + 3_000, 3.0),
            pos("b", t + 2_500, 10.0),
        ];
        w.write(WriteBatch {
            snapshots: vec![snap("a"), snap("b")],
            positions: rows
                .iter()
                .map(|p| (p.clone(), Origin::default()))
                .collect(),
            ..Default::default()
        })
        .await
        .unwrap();
        w.flush().await.unwrap();

        let mut r = Replayer::new(300.0);
        r.move_to(&store, t + 2_200).await.unwrap();
        assert_eq!((lat_of(&r, "a"), lat_of(&r, "b")), (Some(2.0), None));
        r.move_to(&store, t + 2_600).await.unwrap();
        assert_eq!((lat_of(&r, "a"), lat_of(&r, "b")), (Some(2.0), Some(10.0)));
        r.move_to(&store, t + 3_100).await.unwrap();
        assert_eq!(lat_of(&r, "a"), Some(3.0));
        r.move_to(&store, t + 1_500).await.unwrap();
        assert_eq!((lat_of(&r, "a"), lat_of(&r, "b")), (Some(1.0), None));
        r.move_to(&store, t + 500).await.unwrap();
        assert!(r.fleet().is_empty(), "nothing was there yet");
    }
}
