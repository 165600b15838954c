//! `ingest --frame-probe-ms`: builds the window's whole-world map frame on a timer beside the
//! engine, exactly as the app's frame stream does (same builder, under the same live-state
//! lock, serialized to JSON), so `bench churn` reports what a window would meet — frame
//! intervals and build times — from the engine's own process, whose peak RSS is measured too.

use super::bench::quantile;
use fleet_core::engine::Live;
use fleet_core::store::now_ms;
use fleet_core::view::{FrameBuilder, FrameInput};
use fleet_model::Viewport;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A running probe.
pub struct FrameProbe {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<Samples>,
}

#[derive(Default)]
struct Samples {
    /// Time between the ends of consecutive frames (ms): what the window sees.
    intervals: Vec<f64>,
    /// Time to build and serialize one frame, including waiting for the lock (ms).
    builds: Vec<f64>,
    /// Largest live fleet a frame was built from (what eviction bounds).
    max_fleet: u64,
    /// Most dots and clusters a frame carried.
    max_items: usize,
}

impl FrameProbe {
    /// Starts building a frame every `every`.
    pub fn spawn(live: Live, every: Duration) -> FrameProbe {
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut builder = FrameBuilder::default();
            let alerting = HashSet::new();
            let mut out = Samples::default();
            let mut last_end: Option<Instant> = None;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let start = Instant::now();
                let frame = {
                    let fleet = live.lock();
                    builder.build(
                        &fleet,
                        FrameInput {
                            viewport: Viewport::WORLD,
                            selected: None,
                            alerts: None,
                            alerting: &alerting,
                            open_alerts: 0,
                            demo: false,
                            now_ms: now_ms(),
                            live_counters: None,
                            group: None,
                        },
                    )
                };
                let bytes = serde_json::to_vec(&frame).map(|b| b.len()).unwrap_or(0);
                std::hint::black_box(bytes);
                let end = Instant::now();
                out.builds.push(ms(end - start));
                if let Some(prev) = last_end {
                    out.intervals.push(ms(end - prev));
                }
                last_end = Some(end);
                out.max_fleet = out.max_fleet.max(frame.counters.vehicles_total);
                out.max_items = out.max_items.max(frame.dots.len() + frame.clusters.len());
            }
            out
        });
        FrameProbe { cancel, task }
    }

    /// Stops the probe and summarizes what it saw.
    pub async fn finish(self) -> Value {
        self.cancel.cancel();
        let Ok(mut s) = self.task.await else {
            return Value::Null;
        };
        json!({
            "frames": s.builds.len(),
            "max_live_fleet": s.max_fleet,
            "max_items_in_frame": s.max_items,
            "interval_ms_p50": quantile(&mut s.intervals, 0.5),
            "interval_ms_p99": quantile(&mut s.intervals, 0.99),
            "interval_ms_max": quantile(&mut s.intervals, 1.0),
            "build_ms_p50": quantile(&mut s.builds, 0.5),
            "build_ms_p99": quantile(&mut s.builds, 0.99),
            "build_ms_max": quantile(&mut s.builds, 1.0),
        })
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
