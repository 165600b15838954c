//! Redis output: `GEOADD` of every reporting vehicle's position, as an upstream loader would.
//!
//! The producing thread hands over snapshots through a one-slot mailbox, and only builds one
//! when the slot is empty. So Redis gets the latest positions once per tick when it keeps up,
//! and simply fewer, newer snapshots when it does not (or is down): Kafka never waits for Redis,
//! and a failed write is retried with fresher data on the next tick instead of piling up.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// Members per `GEOADD`: big enough to amortise round trips, small enough not to stall Redis.
const CHUNK: usize = 1000;
/// Bounds every connect and pipeline so a dead Redis cannot hang the end of a run.
const TIMEOUT: Duration = Duration::from_secs(5);

/// (member, lat, lng)
pub(crate) type Snapshot = Vec<(String, f64, f64)>;

/// The mailbox between the producing thread and the Redis task.
#[derive(Default)]
pub(crate) struct GeoFeed {
    slot: Mutex<Option<Snapshot>>,
    notify: Notify,
    done: AtomicBool,
}

impl GeoFeed {
    /// True when the writer has taken the previous snapshot (worth building a new one).
    pub fn wants_snapshot(&self) -> bool {
        self.slot.lock().map(|s| s.is_none()).unwrap_or(false)
    }

    /// Replaces any pending snapshot: only the newest positions matter.
    pub fn offer(&self, snapshot: Snapshot) {
        if let Ok(mut slot) = self.slot.lock() {
            *slot = Some(snapshot);
        }
        self.notify.notify_one();
    }

    /// No more snapshots; the writer flushes the pending one and exits.
    pub fn finish(&self) {
        self.done.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }

    fn take(&self) -> Option<Snapshot> {
        self.slot.lock().ok().and_then(|mut s| s.take())
    }
}

/// Writes snapshots until [`GeoFeed::finish`]; returns the number of members written.
pub(crate) async fn writer(
    feed: std::sync::Arc<GeoFeed>,
    client: redis::Client,
    key: String,
) -> u64 {
    let mut conn: Option<redis::aio::MultiplexedConnection> = None;
    let mut written = 0u64;
    let mut failures = 0u64;
    loop {
        feed.notify.notified().await;
        let done = feed.done.load(Ordering::SeqCst);
        let Some(snapshot) = feed.take() else {
            if done {
                break;
            }
            continue;
        };
        match write(&client, &mut conn, &key, &snapshot).await {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(failures, "redis geo writes recovered");
                    failures = 0;
                }
                written += snapshot.len() as u64;
            }
            Err(e) => {
                // Logged once per outage streak (and every 100th failure), retried next tick.
                if failures.is_multiple_of(100) {
                    tracing::warn!(error = %e, key = %key, "redis GEOADD failed; retrying next tick");
                }
                failures += 1;
                conn = None;
            }
        }
        if done {
            break;
        }
    }
    written
}

async fn write(
    client: &redis::Client,
    conn: &mut Option<redis::aio::MultiplexedConnection>,
    key: &str,
    snapshot: &Snapshot,
) -> Result<(), String> {
    if conn.is_none() {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT));
        let c = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        *conn = Some(c);
    }
    let Some(c) = conn.as_mut() else {
        return Err("no connection".into());
    };
    let mut pipe = redis::pipe();
    for chunk in snapshot.chunks(CHUNK) {
        let mut cmd = redis::cmd("GEOADD");
        cmd.arg(key);
        for (member, lat, lng) in chunk {
            cmd.arg(*lng).arg(*lat).arg(member.as_str());
        }
        pipe.add_command(cmd).ignore();
    }
    tokio::time::timeout(TIMEOUT, pipe.query_async::<()>(c))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())
}
