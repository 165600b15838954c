//! The frame stream: one `Channel<Frame>` per window, one batched frame per tick (10 Hz)
//! built for the window's current viewport and selection — never one event per message,
//! so the UI's cost does not grow with the message rate or the fleet.

use crate::host::{Current, Host};
use fleet_core::store::now_ms;
use fleet_core::view::{FrameBuilder, FrameInput};
use fleet_model::{Alert, AlertState, Frame, Viewport};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tauri::ipc::Channel;
use tracing::{debug, warn};

/// Frame period (10 Hz, the DESIGN's ceiling).
const TICK: Duration = Duration::from_millis(100);
/// How often the alert feed is re-read from the cache.
const ALERTS_EVERY: Duration = Duration::from_secs(1);
/// Alerts carried per frame.
const FEED_LEN: usize = 100;

/// What the window looks at; set by commands, read every tick.
#[derive(Debug, Clone)]
pub struct View {
    /// The map's bounds and zoom.
    pub viewport: Viewport,
    /// The selected vehicle.
    pub selected: Option<String>,
}

impl Default for View {
    fn default() -> Self {
        View {
            viewport: Viewport::WORLD,
            selected: None,
        }
    }
}

/// Shared view state plus the subscription generation (a reloaded page replaces the
/// previous stream instead of adding a second one).
#[derive(Default)]
pub struct Streams {
    /// What the window looks at.
    pub view: Mutex<View>,
    generation: AtomicU64,
}

impl Streams {
    /// A copy of the view.
    pub fn view(&self) -> View {
        self.view.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Changes the view.
    pub fn update(&self, f: impl FnOnce(&mut View)) {
        f(&mut self.view.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// The alert feed, refreshed from the cache at most once per [`ALERTS_EVERY`].
#[derive(Default)]
struct Feed {
    alerts: Vec<Alert>,
    alerting: HashSet<String>,
    open: u64,
    at: Option<tokio::time::Instant>,
}

impl Feed {
    async fn refresh(&mut self, cur: &Current) {
        if self.at.is_some_and(|t| t.elapsed() < ALERTS_EVERY) {
            return;
        }
        self.at = Some(tokio::time::Instant::now());
        match cur.store.alerts(None).await {
            Ok(mut all) => {
                let rank = |a: &Alert| match a.state {
                    AlertState::Open => 0,
                    AlertState::Acknowledged => 1,
                    AlertState::Resolved => 2,
                };
                self.alerting = all
                    .iter()
                    .filter(|a| a.state == AlertState::Open)
                    .map(|a| a.vehicle.clone())
                    .collect();
                self.open = all.iter().filter(|a| a.state == AlertState::Open).count() as u64;
                all.sort_by(|a, b| rank(a).cmp(&rank(b)).then(b.ts_ms.cmp(&a.ts_ms)));
                all.truncate(FEED_LEN);
                self.alerts = all;
            }
            Err(e) => debug!(error = %e, "alert feed: cache read failed"),
        }
    }
}

/// Starts streaming frames into `channel` until the window goes away or subscribes again.
pub fn spawn(host: Arc<Host>, streams: Arc<Streams>, channel: Channel<Frame>) {
    let generation = streams.generation.fetch_add(1, Ordering::SeqCst) + 1;
    tauri::async_runtime::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut builder = FrameBuilder::default();
        let mut feed = Feed::default();
        loop {
            tick.tick().await;
            if streams.generation.load(Ordering::SeqCst) != generation {
                break;
            }
            let Some(cur) = host.current() else { continue };
            feed.refresh(&cur).await;
            let view = streams.view();
            let frame = {
                let live = cur.live.lock();
                builder.build(
                    &live,
                    FrameInput {
                        viewport: view.viewport,
                        selected: view.selected.as_deref(),
                        alerts: feed.alerts.clone(),
                        alerting: &feed.alerting,
                        open_alerts: feed.open,
                        demo: cur.demo,
                        now_ms: now_ms(),
                    },
                )
            };
            if let Err(e) = channel.send(frame) {
                warn!(error = %e, "frame stream closed");
                break;
            }
        }
    });
}
