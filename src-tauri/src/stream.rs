//! The frame stream: one `Channel<Frame>` per window, one batched frame per tick (10 Hz)
//! built for the window's current viewport and selection — never one event per message,
//! so the UI's cost does not grow with the message rate or the fleet.

use crate::host::{Current, Host};
use crate::replay::Replayer;
use fleet_core::store::now_ms;
use fleet_core::view::{FrameBuilder, FrameInput};
use fleet_model::ui::OutboxStatus;
use fleet_model::{Alert, AlertFilter, AlertGroup, Frame, ReplayStatus, Snooze, Viewport};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tauri::ipc::{Channel, InvokeResponseBody};
use tracing::{debug, warn};

/// Frame period (10 Hz, the DESIGN's ceiling).
const TICK: Duration = Duration::from_millis(100);
/// The alert feed is re-read when the cache says alerts changed, and at least this often.
const ALERTS_EVERY: Duration = Duration::from_secs(10);
/// Alerts carried per frame.
const FEED_LEN: i64 = 100;
/// The ack outbox's counts are re-read this often (two counts; the frame carries them).
const OUTBOX_EVERY: Duration = Duration::from_secs(1);

/// What the window looks at; set by commands, read every tick.
#[derive(Debug, Clone)]
pub struct View {
    /// The map's bounds and zoom.
    pub viewport: Viewport,
    /// The selected vehicle.
    pub selected: Option<String>,
    /// What the alert feed shows.
    pub alert_filter: AlertFilter,
    /// The timeline's replay, while the map shows the past (`None`: live).
    pub replay: Option<ReplayStatus>,
}

impl Default for View {
    fn default() -> Self {
        View {
            viewport: Viewport::WORLD,
            selected: None,
            alert_filter: AlertFilter::default(),
            replay: None,
        }
    }
}

/// Shared view state plus the subscription generation (a reloaded page replaces the
/// previous stream instead of adding a second one).
#[derive(Default)]
pub struct Streams {
    /// What the window looks at.
    pub view: Mutex<View>,
    /// The fleet chart's last hour of rates, sampled by the stream.
    pub rates: Mutex<crate::fleet_rates::FleetRates>,
    generation: AtomicU64,
}

impl Streams {
    /// Changes the view.
    pub fn update(&self, f: impl FnOnce(&mut View)) {
        f(&mut self.view.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// The alert feed, re-read from the cache when the writer's `alerts_version` moves or the
/// window's filter changes (and every [`ALERTS_EVERY`] as a safety net), not on every tick;
/// a frame carries it only when it changed.
#[derive(Default)]
struct Feed {
    alerts: Vec<Alert>,
    groups: Vec<AlertGroup>,
    snoozes: Vec<Snooze>,
    alerting: HashSet<String>,
    open: u64,
    version: Option<u64>,
    filter: AlertFilter,
    at: Option<tokio::time::Instant>,
    /// The window has not been sent the current list yet.
    unsent: bool,
}

impl Feed {
    async fn refresh(&mut self, cur: &Current, filter: &AlertFilter) {
        let version = cur.committed.borrow().alerts_version;
        if self.version == Some(version)
            && self.filter == *filter
            && self.at.is_some_and(|t| t.elapsed() < ALERTS_EVERY)
        {
            return;
        }
        self.at = Some(tokio::time::Instant::now());
        match cur.store.feed(filter, FEED_LEN).await {
            Ok(feed) => {
                self.version = Some(version);
                self.alerting = feed.alerting.into_iter().collect();
                self.open = feed.open;
                if self.alerts != feed.alerts
                    || self.groups != feed.groups
                    || self.snoozes != feed.snoozes
                    || self.filter != *filter
                {
                    self.unsent = true;
                }
                self.snoozes = feed.snoozes;
                self.filter = filter.clone();
                self.alerts = feed.alerts;
                self.groups = feed.groups;
            }
            Err(e) => debug!(error = %e, "alert feed: cache read failed"),
        }
    }

    /// The list, its groups and the snoozes for the next frame: only when the window does
    /// not have them yet.
    fn take_changes(&mut self) -> Option<(Vec<Alert>, Vec<AlertGroup>, Vec<Snooze>)> {
        std::mem::take(&mut self.unsent).then(|| {
            (
                self.alerts.clone(),
                self.groups.clone(),
                self.snoozes.clone(),
            )
        })
    }
}

/// The ack outbox (`outbox-count`) as last read from the cache.
#[derive(Default)]
struct Outbox {
    status: OutboxStatus,
    at: Option<tokio::time::Instant>,
}

impl Outbox {
    async fn refresh(&mut self, cur: &Current) {
        if self.at.is_some_and(|t| t.elapsed() < OUTBOX_EVERY) {
            return;
        }
        self.at = Some(tokio::time::Instant::now());
        match cur.store.outbox_status().await {
            Ok(s) => self.status = s,
            Err(e) => debug!(error = %e, "outbox: cache read failed"),
        }
    }
}

/// Starts streaming frames into `channel` until the window goes away or subscribes again.
pub fn spawn(host: Arc<Host>, streams: Arc<Streams>, channel: Channel) {
    let generation = streams.generation.fetch_add(1, Ordering::SeqCst) + 1;
    tauri::async_runtime::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut builder = FrameBuilder::default();
        let mut feed = Feed {
            unsent: true,
            ..Feed::default()
        };
        let mut outbox = Outbox::default();
        let mut engine = 0;
        let mut last_len = 0;
        let mut replayer: Option<Replayer> = None;
        let mut last_tick = tokio::time::Instant::now();
        loop {
            tick.tick().await;
            let wall = last_tick.elapsed();
            last_tick = tokio::time::Instant::now();
            if streams.generation.load(Ordering::SeqCst) != generation {
                break;
            }
            let Some(cur) = host.current() else { continue };
            if cur.generation != engine {
                engine = cur.generation;
                builder = FrameBuilder::default();
                feed = Feed {
                    unsent: true,
                    ..Feed::default()
                };
                outbox = Outbox::default();
                replayer = None;
                streams
                    .rates
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clear();
            }
            let view = advance_replay(&streams, wall);
            feed.refresh(&cur, &view.alert_filter).await;
            outbox.refresh(&cur).await;
            let replaying = match view.replay {
                Some(r) => {
                    let rp = replayer.get_or_insert_with(|| Replayer::new(cur.stale_after_s));
                    // A failed read keeps showing the fleet as last moved to.
                    if let Err(e) = rp.move_to(&cur.store, (r.from_ms, r.to_ms), r.t_ms).await {
                        debug!(error = %e, "replay: cache read failed");
                    }
                    if let Some(id) = view.selected.as_deref()
                        && let Err(e) = rp.show_status(&cur.store, id).await
                    {
                        debug!(error = %e, "replay: status read failed");
                    }
                    Some((r, &*rp))
                }
                None => {
                    replayer = None;
                    None
                }
            };
            let (mut alerts, groups, snoozes) = match feed.take_changes() {
                Some((a, g, z)) => (Some(a), Some(g), Some(z)),
                None => (None, None, None),
            };
            let mut frame = match replaying {
                None => {
                    let live = cur.live.lock();
                    builder.build(
                        &live,
                        FrameInput {
                            viewport: view.viewport,
                            selected: view.selected.as_deref(),
                            alerts: alerts.take(),
                            alerting: &feed.alerting,
                            open_alerts: feed.open,
                            demo: cur.demo,
                            now_ms: now_ms(),
                            live_counters: None,
                            group: view.alert_filter.group.as_deref(),
                        },
                    )
                }
                Some((r, rp)) => {
                    let now = now_ms();
                    let (counters, info) = {
                        let live = cur.live.lock();
                        let info = view
                            .selected
                            .as_deref()
                            .and_then(|id| live.vehicle(id))
                            .and_then(|v| v.info.clone());
                        (live.counters(now), info)
                    };
                    let mut f = builder.build(
                        rp.fleet(),
                        FrameInput {
                            viewport: view.viewport,
                            selected: view.selected.as_deref(),
                            alerts: alerts.take(),
                            alerting: &HashSet::new(),
                            open_alerts: feed.open,
                            demo: cur.demo,
                            now_ms: r.t_ms,
                            live_counters: Some((counters, now)),
                            group: view.alert_filter.group.as_deref(),
                        },
                    );
                    if let Some(d) = f.selected.as_mut()
                        && d.info.is_none()
                    {
                        d.info = info;
                    }
                    f.replay = Some(r);
                    f
                }
            };
            frame.outbox = outbox.status.clone();
            frame.alert_groups = groups;
            frame.snoozes = snoozes;
            streams
                .rates
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .observe(&frame.counters, now_ms());
            if let Err(e) = channel.send(encode(&frame, &mut last_len)) {
                warn!(error = %e, "frame stream closed");
                break;
            }
        }
    });
}

/// Moves a playing replay on by the wall-clock time since the previous tick (under the view's
/// lock, so a seek made meanwhile is not overwritten) and returns the view to draw.
fn advance_replay(streams: &Streams, wall: Duration) -> View {
    let mut view = streams.view.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = view.replay.as_mut() {
        r.advance(wall.as_millis() as i64);
    }
    view.clone()
}

/// A frame as raw JSON bytes: the window parses them with serde_json inside wasm, which is
/// several times cheaper than Tauri's default (JSON parsed into JS objects, then walked
/// property by property into Rust types) for frames of thousands of vehicles.
///
/// The buffer starts a little larger than the previous frame: grown by doubling from empty, a
/// 1 MB frame left a trail of freed 64 KB…1 MB buffers every tick, which fragmented the heap
/// (~20 MB of the shell's peak at 20,000 vehicles, measured with heaptrack).
fn encode(frame: &Frame, last_len: &mut usize) -> InvokeResponseBody {
    let mut buf = Vec::with_capacity(*last_len + *last_len / 8 + 1024);
    if serde_json::to_writer(&mut buf, frame).is_err() {
        buf.clear();
    }
    *last_len = buf.len();
    InvokeResponseBody::Raw(buf)
}
