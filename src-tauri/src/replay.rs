//! Replay (issue 11): the fleet as it was at the timeline's instant, kept as a [`LiveFleet`]
//! so the frame stream draws it through exactly the same frame path as live data. A playing
//! timeline moves it on with the positions stored since the previous frame; a jump (seek,
//! backwards, or a step too large) rebuilds it.
//!
//! Both come from the range's in-memory [`ReplayIndex`] once it is built (in the background,
//! when a range is picked: microseconds per vehicle), and from the cache until then, or
//! when the range is too large to hold (a whole-fleet query: 5–20 µs per vehicle).

use fleet_core::state::LiveFleet;
use fleet_core::store::replay_index::{DEFAULT_MAX_SAMPLES, ReplayIndex};
use fleet_core::store::{Store, StoreError, now_ms};
use fleet_model::PositionSample;
use std::sync::{Arc, OnceLock};
use tracing::info;

/// How far back a vehicle's last position may lie and still be drawn at T (older: it was
/// silent then, and live it would be long stale too).
pub const LOOKBACK_MS: i64 = 30 * 60 * 1000;
/// The largest forward step applied incrementally; larger is a jump.
const MAX_STEP_MS: i64 = 5 * 60 * 1000;
/// Rows read for one incremental step; a step holding more is rebuilt instead.
const STEP_ROWS: i64 = 50_000;

/// The index of one timeline range: empty while it is being built, `None` inside when the
/// range could not be indexed (too large, or the read failed).
struct IndexSlot {
    range: (i64, i64),
    built: Arc<OnceLock<Option<ReplayIndex>>>,
    /// The build; dropping the slot (another range picked, replay stopped) stops it, so a
    /// superseded range is not read to the end (up to tens of seconds of I/O) for nothing.
    task: tokio::task::JoinHandle<()>,
}

impl Drop for IndexSlot {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The replayed fleet and the instant it shows.
pub struct Replayer {
    fleet: LiveFleet,
    at: Option<i64>,
    stale_after_s: f64,
    index: Option<IndexSlot>,
    max_samples: usize,
}

impl Replayer {
    /// An empty replay; vehicles go stale as the live view's do.
    pub fn new(stale_after_s: f64) -> Self {
        Replayer {
            fleet: LiveFleet::new(stale_after_s),
            at: None,
            stale_after_s,
            index: None,
            max_samples: DEFAULT_MAX_SAMPLES,
        }
    }

    /// The fleet as last moved to.
    pub fn fleet(&self) -> &LiveFleet {
        &self.fleet
    }

    /// Starts indexing the timeline range `(from, to)` in the background unless it is the
    /// range already indexed (or being indexed). The index reaches back by the look-back and
    /// forward to now at the latest (later positions are not stored yet).
    fn want_index(&mut self, store: &Store, range: (i64, i64)) {
        if self.index.as_ref().is_some_and(|s| s.range == range) {
            return;
        }
        let built = Arc::new(OnceLock::new());
        let (slot, store, max) = (built.clone(), store.clone(), self.max_samples);
        let (start, end) = (range.0.saturating_sub(LOOKBACK_MS), range.1.min(now_ms()));
        let task = tokio::spawn(async move {
            let t = std::time::Instant::now();
            let ix = match ReplayIndex::build(&store, start, end, max).await {
                Ok(ix) => {
                    info!(
                        positions = ix.len(),
                        mib = ix.bytes() >> 20,
                        ms = t.elapsed().as_millis() as u64,
                        "replay: range indexed"
                    );
                    Some(ix)
                }
                Err(e) => {
                    info!(error = %e, "replay: range not indexed; frames come from the cache");
                    None
                }
            };
            let _ = slot.set(ix);
        });
        self.index = Some(IndexSlot { range, built, task });
    }

    /// The range's index when it is built and answers at `t_ms`.
    fn index_at(&self, t_ms: i64) -> Option<&ReplayIndex> {
        let ix = self.index.as_ref()?.built.get()?.as_ref()?;
        ix.covers(t_ms, LOOKBACK_MS).then_some(ix)
    }

    /// Waits for the range's index (tests: frames from memory are then certain).
    #[cfg(test)]
    async fn index_ready(&self) -> bool {
        let Some(slot) = &self.index else {
            return false;
        };
        loop {
            if let Some(ix) = slot.built.get() {
                return ix.is_some();
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Moves the replayed fleet to `t_ms` of the timeline range `range`.
    pub async fn move_to(
        &mut self,
        store: &Store,
        range: (i64, i64),
        t_ms: i64,
    ) -> Result<(), StoreError> {
        self.want_index(store, range);
        let step = match self.at {
            Some(at) if at == t_ms => return Ok(()),
            Some(at) if t_ms > at && t_ms - at <= MAX_STEP_MS => Some(at),
            _ => None,
        };
        if let Some(ix) = self.index_at(t_ms) {
            match step {
                Some(at) => {
                    let rows = ix.between(at, t_ms);
                    self.step(&rows, t_ms);
                }
                None => {
                    let rows = ix.fleet_at(t_ms, LOOKBACK_MS);
                    self.rebuild(&rows, t_ms);
                }
            }
            return Ok(());
        }
        if let Some(at) = step {
            let rows = store.positions_between(at, t_ms, STEP_ROWS).await?;
            if (rows.len() as i64) < STEP_ROWS {
                self.step(&rows, t_ms);
                return Ok(());
            }
        }
        let rows = store.fleet_at(t_ms, LOOKBACK_MS).await?;
        self.rebuild(&rows, t_ms);
        Ok(())
    }

    /// Gives `vehicle` (the selected one) its last stored status at the replayed instant, so
    /// the panel shows speed, fuel, battery and every field as they were then. Called after
    /// each move (a rebuilt fleet holds positions only).
    pub async fn show_status(&mut self, store: &Store, vehicle: &str) -> Result<(), StoreError> {
        let Some(at) = self.at else { return Ok(()) };
        if let Some(s) = store.status_at(vehicle, at).await? {
            self.fleet.apply_status(&s, at);
        }
        Ok(())
    }

    fn step(&mut self, rows: &[PositionSample], t_ms: i64) {
        for p in rows {
            self.fleet.apply_position(p, t_ms);
        }
        self.at = Some(t_ms);
    }

    fn rebuild(&mut self, rows: &[PositionSample], t_ms: i64) {
        self.fleet = LiveFleet::new(self.stale_after_s);
        self.step(rows, t_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_core::config::HistoryConfig;
    use fleet_core::store::{Origin, Retention, VehicleSnapshot, WriteBatch, WriterHandle, now_ms};
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

    /// A fresh cache in a temporary directory, with its writer.
    async fn store_with_writer() -> (tempfile::TempDir, Store, WriterHandle) {
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
        (dir, store, w)
    }

    fn lat_of(r: &Replayer, v: &str) -> Option<f64> {
        r.fleet().vehicle(v)?.position.as_ref().map(|p| p.lat)
    }

    /// Forward steps are applied from the slice in between; a step back rebuilds, so a
    /// vehicle that appeared later is gone again and every vehicle is where the cache says.
    #[tokio::test]
    async fn the_replayed_fleet_is_the_cache_at_each_instant_forwards_and_back() {
        let (_dir, store, w) = store_with_writer().await;
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

        let range = (t, t + 10_000);
        // From the cache (an index is refused at once with a cap of 0), then from memory.
        let mut from_cache = Replayer::new(300.0);
        from_cache.max_samples = 0;
        check_moves(&mut from_cache, &store, range, t).await;
        assert!(!from_cache.index_ready().await, "no index under a cap of 0");
        let mut from_index = Replayer::new(300.0);
        from_index.move_to(&store, range, t).await.unwrap();
        assert!(from_index.index_ready().await, "the range was indexed");
        check_moves(&mut from_index, &store, range, t).await;
    }

    async fn check_moves(r: &mut Replayer, store: &Store, range: (i64, i64), t: i64) {
        r.move_to(store, range, t + 2_200).await.unwrap();
        assert_eq!((lat_of(r, "a"), lat_of(r, "b")), (Some(2.0), None));
        r.move_to(store, range, t + 2_600).await.unwrap();
        assert_eq!((lat_of(r, "a"), lat_of(r, "b")), (Some(2.0), Some(10.0)));
        r.move_to(store, range, t + 3_100).await.unwrap();
        assert_eq!(lat_of(r, "a"), Some(3.0));
        r.move_to(store, range, t + 1_500).await.unwrap();
        assert_eq!((lat_of(r, "a"), lat_of(r, "b")), (Some(1.0), None));
        r.move_to(store, range, t + 500).await.unwrap();
        assert!(r.fleet().is_empty(), "nothing was there yet");
    }

    /// The selected vehicle's status in the panel is the one stored at the replayed instant
    /// (it was empty during replay: the replayed fleet held positions only).
    #[tokio::test]
    async fn the_selected_vehicle_shows_its_status_as_it_was_then() {
        let (_dir, store, w) = store_with_writer().await;
        let t = now_ms() - 600_000;
        let status = |ts: i64, fuel: f64| fleet_model::StatusSample {
            vehicle: "a".into(),
            ts_ms: ts,
            known: fleet_model::StatusFields {
                fuel: Some(fuel),
                ..Default::default()
            },
            fields: format!(r#"{{"fuel":{fuel},"engine.rpm":{}}}"#, fuel * 10.0),
        };
        w.write(WriteBatch {
            positions: vec![(pos("a", t + 500, 1.0), Origin::default())],
            statuses: vec![
                (status(t + 1_000, 50.0), Origin::default()),
                (status(t + 3_000, 40.0), Origin::default()),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
        w.flush().await.unwrap();
        let fuel = |r: &Replayer| {
            r.fleet()
                .vehicle("a")
                .and_then(|v| v.status.as_ref())
                .and_then(|s| s.known.fuel)
        };
        let range = (t, t + 10_000);
        let mut r = Replayer::new(300.0);
        for (at, want) in [
            (2_000, Some(50.0)),
            (3_500, Some(40.0)),
            (1_500, Some(50.0)),
        ] {
            r.move_to(&store, range, t + at).await.unwrap();
            r.show_status(&store, "a").await.unwrap();
            assert_eq!(fuel(&r), want, "at +{at} ms");
        }
        let fields = &r
            .fleet()
            .vehicle("a")
            .unwrap()
            .status
            .as_ref()
            .unwrap()
            .fields;
        assert!(fields.contains("engine.rpm"), "every field: {fields}");
        r.move_to(&store, range, t + 700).await.unwrap();
        r.show_status(&store, "a").await.unwrap();
        assert_eq!(fuel(&r), None, "no status stored yet at +700 ms");
    }
}
