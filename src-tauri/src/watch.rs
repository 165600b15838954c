//! The alert watcher: one per app, not per window. Twice a second it looks at the open
//! alerts (re-read from the cache only when the writer says alerts changed), shows desktop
//! notifications for new warning and critical alerts and for escalations (fleet-core's
//! [`Notifier`] decides which), and keeps the unacknowledged count in the window title, so
//! an operator sees it in the taskbar while working in another window.

use crate::host::Host;
use fleet_core::notify::{Notice, Notifier};
use fleet_core::store::now_ms;
use fleet_model::{Alert, Severity};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tauri::{AppHandle, Manager};
use tauri_plugin_notification::NotificationExt;
use tracing::{debug, info, warn};

/// How often the watcher looks.
const TICK: Duration = Duration::from_millis(500);
/// Notices kept for `recent_notifications`.
const KEEP: usize = 100;

/// The notices shown lately (newest last).
#[derive(Default)]
pub struct NoticeLog(Mutex<VecDeque<Notice>>);

impl NoticeLog {
    fn push(&self, n: Notice) {
        let mut q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        q.push_back(n);
        while q.len() > KEEP {
            q.pop_front();
        }
    }

    /// A copy of what was shown.
    pub fn recent(&self) -> Vec<Notice> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

/// The window title for `open` unacknowledged alerts.
pub fn title(open: usize, demo: bool) -> String {
    let base = if demo {
        "fleetdash (demo)"
    } else {
        "fleetdash"
    };
    match open {
        0 => base.to_string(),
        1 => format!("{base} — 1 unacknowledged alert"),
        n => format!("{base} — {n} unacknowledged alerts"),
    }
}

/// Per-engine state: a new engine (Settings reconnected) starts over.
struct Watch {
    generation: u64,
    notifier: Notifier,
    open: Vec<Alert>,
    version: Option<u64>,
}

/// Starts the watcher for the app's lifetime.
pub fn spawn(app: AppHandle, host: Arc<Host>, log: Arc<NoticeLog>) {
    tauri::async_runtime::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut watch: Option<Watch> = None;
        let mut shown_title = String::new();
        let mut delivery_failed = false;
        loop {
            tick.tick().await;
            let Some(cur) = host.current() else {
                set_title(&app, &mut shown_title, title(0, false));
                continue;
            };
            let w = match &mut watch {
                Some(w) if w.generation == cur.generation => w,
                _ => watch.insert(Watch {
                    generation: cur.generation,
                    notifier: Notifier::new(cur.alerts.escalate_after_s),
                    open: Vec::new(),
                    version: None,
                }),
            };
            let version = cur.committed.borrow().alerts_version;
            if w.version != Some(version) {
                match cur.store.open_alerts_at_least(Severity::Info).await {
                    Ok(open) => {
                        w.open = open;
                        w.version = Some(version);
                    }
                    Err(e) => debug!(error = %e, "alert watcher: cache read failed"),
                }
            }
            set_title(&app, &mut shown_title, title(w.open.len(), cur.demo));
            for n in w.notifier.step(&w.open, now_ms()) {
                info!(kind = ?n.kind, title = %n.title, "desktop notification");
                if cur.alerts.desktop_notifications
                    && let Err(e) = show(&app, &n)
                    && !std::mem::replace(&mut delivery_failed, true)
                {
                    // Once: a desktop without a notification daemon would log this forever.
                    warn!(error = %e, "desktop notifications cannot be shown here");
                }
                log.push(n);
            }
        }
    });
}

/// Hands the notice to the notification daemon, escaped: alert text comes from upstream
/// producers and the daemon would otherwise render it as markup (links, styling).
fn show(app: &AppHandle, n: &Notice) -> Result<(), tauri_plugin_notification::Error> {
    let (title, body) = n.for_daemon();
    app.notification().builder().title(title).body(body).show()
}

fn set_title(app: &AppHandle, shown: &mut String, want: String) {
    if *shown == want {
        return;
    }
    if let Some(w) = app.get_webview_window("main") {
        match w.set_title(&want) {
            Ok(()) => *shown = want,
            Err(e) => debug!(error = %e, "window title"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_counts_unacknowledged_alerts() {
        assert_eq!(title(0, false), "fleetdash");
        assert_eq!(title(1, false), "fleetdash — 1 unacknowledged alert");
        assert_eq!(
            title(12, true),
            "fleetdash (demo) — 12 unacknowledged alerts"
        );
    }
}
