//! `fleetctl bench history` (issue 11): 72 hours of a 20,000-vehicle fleet in a cache, then
//! what looking back costs there — the cache's size on disk (≤ 2 GB), loading a 6-hour track
//! with its status and alerts and drawing its chart (≤ 100 ms), and building the whole-fleet
//! replay frame at a random time (≤ 50 ms; from the replay range's in-memory index, with the
//! cache's whole-fleet query beside it as the baseline). What is generated is described in
//! [`super::history_gen`]. No broker: the data goes straight through the store's writer.

use super::history_gen::{self, Generated, vehicle_id};
use super::{ok, quantile, rt};
use crate::cli::BenchHistoryArgs;
use crate::error::CliError;
use fleet_core::config::HistoryConfig;
use fleet_core::state::LiveFleet;
use fleet_core::store::replay_index::{DEFAULT_MAX_SAMPLES, ReplayIndex};
use fleet_core::store::{Retention, Store, now_ms};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Instant;

const HOUR: i64 = 3_600_000;
/// The track each probe loads.
const TRACK_MS: i64 = 6 * HOUR;
/// How far back the replay frame looks for a vehicle's last position (a parked tracker
/// reports every 10 minutes; thinned history keeps one sample a minute).
const LOOKBACK_MS: i64 = HOUR;
/// Issue 11's targets.
const SIZE_MAX_BYTES: u64 = 2 * 1024 * 1024 * 1024;
const TRACK_MAX_MS: f64 = 100.0;
const FRAME_MAX_MS: f64 = 50.0;
const CHART_SIZE: (u32, u32) = (1200, 600);
/// Replay ranges indexed (each timed, then framed at random instants).
const INDEXED_RANGES: u32 = 3;

pub async fn history(a: BenchHistoryArgs) -> Result<Value, CliError> {
    if a.vehicles == 0 || a.hours == 0 || a.probes == 0 || a.frames == 0 {
        return Err(CliError::Usage(
            "--vehicles, --hours, --probes and --frames must be at least 1".into(),
        ));
    }
    let probes = a.probes.min(a.vehicles);
    let tmp = tempfile::tempdir().map_err(rt)?;
    let path = a
        .cache
        .clone()
        .unwrap_or_else(|| tmp.path().join("history.sqlite"));
    let store = Store::open(&path).await?;
    let (gen_s, generated, end_ms) = match existing(&store).await? {
        Some((g, end)) => {
            eprintln!("bench: reusing {} (generated before)", path.display());
            (None, g, end)
        }
        None => {
            eprintln!(
                "bench: generating {} h of history for {} vehicles ({probes} kept whole) into {} …",
                a.hours,
                a.vehicles,
                path.display()
            );
            let end = now_ms();
            let started = Instant::now();
            let retention = Retention {
                history: HistoryConfig::default(),
                // The bench measures what 72 h take; the cap would hide it by dropping them.
                max_size_bytes: u64::MAX,
            };
            let (w, task) = store.start_writer(retention, Default::default()).await?;
            let g = history_gen::generate(&w, a.vehicles, probes, a.hours, end, a.seed).await?;
            drop(w);
            task.await.map_err(rt)?;
            (Some(started.elapsed().as_secs_f64()), g, end)
        }
    };
    // The WAL moved into the database: the file size is the data's.
    store.checkpoint().await?;
    let size = cache_bytes(&path);

    eprintln!("bench: loading 6-hour tracks and drawing their charts …");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed ^ 0x5eed);
    // The newest day is the dense one (not yet thinned): the tracks end in it.
    let span = i64::from(a.hours) * HOUR;
    let recent = span.clamp(TRACK_MS, 24 * HOUR);
    let fields: Vec<String> = fleet_chart::DEFAULT_FIELDS.map(String::from).to_vec();
    let (mut svg_ms, mut png_ms, mut rows) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..probes {
        let id = vehicle_id(i, probes);
        let to = end_ms - rng.random_range(0..=(recent - TRACK_MS).max(0));
        let from = to - TRACK_MS;
        for (times, png) in [(&mut svg_ms, false), (&mut png_ms, true)] {
            let t = Instant::now();
            let h = store
                .history(&id, from, to)
                .await?
                .ok_or_else(|| rt(format!("probe vehicle {id} is not in the cache")))?;
            let spec = fleet_chart::spec_for_history(&h, &fields, from, to, CHART_SIZE);
            let draw = |e: fleet_chart::ChartError| rt(e);
            if png {
                fleet_chart::render_png(&spec).map_err(draw)?;
            } else {
                fleet_chart::render_svg(&spec).map_err(draw)?;
                rows.push((h.positions.len() + h.status.len() + h.alerts.len()) as f64);
            }
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }

    eprintln!("bench: building whole-fleet replay frames from the cache …");
    let (mut frame_ms, mut frame_rows) = (Vec::new(), Vec::new());
    for _ in 0..a.frames {
        let t_ms = end_ms - rng.random_range(0..span);
        let t = Instant::now();
        let frame = store.fleet_at(t_ms, LOOKBACK_MS).await?;
        replayed_fleet(&frame, t_ms);
        frame_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        frame_rows.push(frame.len() as f64);
    }
    let indexed = indexed_frames(&store, &mut rng, end_ms, span, a.frames).await?;
    store.close().await;
    store.close().await;

    let report = Report {
        vehicles: a.vehicles,
        hours: a.hours,
        probes,
        generated,
        gen_s,
        size,
        svg: (quantile(&mut svg_ms, 0.5), quantile(&mut svg_ms, 0.99)),
        png: (quantile(&mut png_ms, 0.5), quantile(&mut png_ms, 0.99)),
        track_rows: quantile(&mut rows, 0.5),
        frame: (quantile(&mut frame_ms, 0.5), quantile(&mut frame_ms, 0.99)),
        frame_vehicles: quantile(&mut frame_rows, 0.5),
        indexed,
    };
    report.print();
    Ok(report.json())
}

/// The replayed fleet as the app builds it from a frame's rows (part of the frame's cost).
fn replayed_fleet(rows: &[fleet_model::PositionSample], t_ms: i64) -> LiveFleet {
    let mut fleet = LiveFleet::new(300.0);
    for p in rows {
        fleet.apply_position(p, t_ms);
    }
    fleet
}

/// Replay frames from the range's in-memory index, as the app serves them once a range is
/// picked: [`INDEXED_RANGES`] random 6-hour ranges, each indexed (timed) and then framed at
/// random instants.
async fn indexed_frames(
    store: &Store,
    rng: &mut impl Rng,
    end_ms: i64,
    span: i64,
    frames: u32,
) -> Result<Indexed, CliError> {
    let (mut build_ms, mut mib, mut positions, mut frame_ms) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let range = TRACK_MS.min(span);
    for r in 0..INDEXED_RANGES {
        let to = end_ms - rng.random_range(0..=(span - range));
        let from = to - range;
        eprintln!(
            "bench: indexing replay range {} of {INDEXED_RANGES} (6 h) …",
            r + 1
        );
        let t = Instant::now();
        let ix = ReplayIndex::build(store, from - LOOKBACK_MS, to, DEFAULT_MAX_SAMPLES)
            .await
            .map_err(rt)?;
        build_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        mib.push(ix.bytes() as f64 / 1048576.0);
        positions.push(ix.len() as f64);
        for _ in 0..frames.div_ceil(INDEXED_RANGES) {
            let t_ms = rng.random_range(from..=to);
            let t = Instant::now();
            let frame = ix.fleet_at(t_ms, LOOKBACK_MS);
            replayed_fleet(&frame, t_ms);
            frame_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    Ok(Indexed {
        build_ms: quantile(&mut build_ms, 0.5),
        mib: quantile(&mut mib, 0.5),
        positions: quantile(&mut positions, 0.5),
        frame: (quantile(&mut frame_ms, 0.5), quantile(&mut frame_ms, 0.99)),
    })
}

/// Replay from the range's index: building it (median over ranges) and its frames.
struct Indexed {
    build_ms: f64,
    mib: f64,
    positions: f64,
    frame: (f64, f64),
}

/// What a cache generated earlier holds: its counts and the end of its history. The
/// vehicles' snapshots are the generation's last write, so a cache without them was cut
/// short and is refused rather than measured as if it were whole.
async fn existing(store: &Store) -> Result<Option<(Generated, i64)>, CliError> {
    let s = store.stats().await?;
    if s.positions == 0 {
        return Ok(None);
    }
    let end = store
        .vehicles()
        .await?
        .iter()
        .filter_map(|v| v.last.as_ref().map(|p| p.ts_ms))
        .max()
        .ok_or_else(|| {
            CliError::Runtime(format!(
                "{} holds an unfinished generation (no vehicle snapshots): remove it and run again",
                store.path().display()
            ))
        })?;
    let g = Generated {
        positions: s.positions as u64,
        statuses: s.status_samples as u64,
        alerts: (s.alerts.open + s.alerts.acknowledged + s.alerts.resolved) as u64,
    };
    Ok(Some((g, end)))
}

/// The cache's bytes on disk: the database with its WAL and shared-memory files.
fn cache_bytes(path: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|s| {
            let mut p = path.as_os_str().to_owned();
            p.push(s);
            std::fs::metadata(p).ok()
        })
        .map(|m| m.len())
        .sum()
}

struct Report {
    vehicles: u32,
    hours: u32,
    probes: u32,
    generated: Generated,
    gen_s: Option<f64>,
    size: u64,
    svg: (f64, f64),
    png: (f64, f64),
    track_rows: f64,
    frame: (f64, f64),
    frame_vehicles: f64,
    indexed: Indexed,
}

impl Report {
    fn rows(&self) -> u64 {
        self.generated.positions + self.generated.statuses + self.generated.alerts
    }

    fn print(&self) {
        let g = &self.generated;
        let mb = self.size as f64 / 1e6;
        eprintln!(
            "\nbench history — {} vehicles, {} h ({} kept whole), {}",
            self.vehicles,
            self.hours,
            self.probes,
            match self.gen_s {
                Some(s) => format!("generated in {s:.0} s"),
                None => "reused cache".into(),
            }
        );
        eprintln!(
            "  rows                           {} positions, {} status samples, {} alerts ({:.0} B/row on disk)",
            g.positions,
            g.statuses,
            g.alerts,
            self.size as f64 / self.rows().max(1) as f64
        );
        eprintln!(
            "  cache size on disk             {mb:>9.1} MB   target ≤ 2048 MB (2 GiB) {}",
            ok(self.size <= SIZE_MAX_BYTES)
        );
        let row = |label: &str, (p50, p99): (f64, f64), max: f64| {
            eprintln!(
                "  {label:<30} p50 {p50:>6.1} ms  p99 {p99:>6.1} ms   target ≤ {max:.0} ms {}",
                ok(p99 <= max)
            );
        };
        eprintln!(
            "  6-hour track: median {:.0} rows (positions + status + alerts)",
            self.track_rows
        );
        row("track + chart (SVG)", self.svg, TRACK_MAX_MS);
        row("track + chart (PNG)", self.png, TRACK_MAX_MS);
        eprintln!(
            "  replay frame: median {:.0} vehicles (look-back {} min)",
            self.frame_vehicles,
            LOOKBACK_MS / 60_000
        );
        let ix = &self.indexed;
        eprintln!(
            "  replay frame from the cache    p50 {:>6.1} ms  p99 {:>6.1} ms   (before the range is indexed)",
            self.frame.0, self.frame.1
        );
        eprintln!(
            "  replay range indexed (6 h)     {:>6.0} ms for {:.0} positions, {:.0} MiB (median of {INDEXED_RANGES})",
            ix.build_ms, ix.positions, ix.mib
        );
        row("whole-fleet replay frame", ix.frame, FRAME_MAX_MS);
        eprintln!(
            "  indexed vs cache frame (p50)   {:.0}× faster",
            self.frame.0 / ix.frame.0.max(1e-6)
        );
    }

    fn json(&self) -> Value {
        json!({
            "vehicles": self.vehicles,
            "hours": self.hours,
            "probes": self.probes,
            "generated": {
                "positions": self.generated.positions,
                "status_samples": self.generated.statuses,
                "alerts": self.generated.alerts,
                "seconds": self.gen_s,
            },
            "cache_bytes": self.size,
            "track_rows_p50": self.track_rows,
            "track_chart_svg_ms": {"p50": self.svg.0, "p99": self.svg.1},
            "track_chart_png_ms": {"p50": self.png.0, "p99": self.png.1},
            "frame_from_cache_ms": {"p50": self.frame.0, "p99": self.frame.1},
            "frame_vehicles_p50": self.frame_vehicles,
            "frame_ms": {"p50": self.indexed.frame.0, "p99": self.indexed.frame.1},
            "range_index": {
                "build_ms_p50": self.indexed.build_ms,
                "mib_p50": self.indexed.mib,
                "positions_p50": self.indexed.positions,
            },
            "targets": {
                "size_le_2gb": self.size <= SIZE_MAX_BYTES,
                "track_chart_le_100ms": self.svg.1 <= TRACK_MAX_MS && self.png.1 <= TRACK_MAX_MS,
                "frame_le_50ms": self.indexed.frame.1 <= FRAME_MAX_MS,
            },
        })
    }
}
