//! The IPC contract between the desktop shell and the WASM UI: the UI sends requests, the
//! engine streams one batched [`Frame`] per tick (≤ 10 Hz) with only what the viewport shows.

use crate::{Alert, FleetCounters, PositionSample, StatusSample, VehicleInfo};
use serde::{Deserialize, Serialize};

/// What the map shows, in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Viewport {
    /// South edge (lat).
    pub south: f64,
    /// West edge (lng).
    pub west: f64,
    /// North edge (lat).
    pub north: f64,
    /// East edge (lng).
    pub east: f64,
    /// Leaflet zoom level.
    pub zoom: f64,
}

impl Viewport {
    /// The whole world at zoom 2.
    pub const WORLD: Viewport = Viewport {
        south: -85.0,
        west: -180.0,
        north: 85.0,
        east: 180.0,
        zoom: 2.0,
    };

    /// Whether a point is inside.
    pub fn contains(&self, lat: f64, lng: f64) -> bool {
        lat >= self.south && lat <= self.north && lng >= self.west && lng <= self.east
    }
}

/// How a vehicle is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VehicleState {
    /// Moving (speed above ~3 km/h).
    Moving,
    /// Parked / idle.
    Parked,
    /// No message for longer than the stale threshold.
    Stale,
    /// Has an open alert.
    Alerting,
}

/// One vehicle marker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dot {
    /// Vehicle id.
    pub id: String,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lng: f64,
    /// Heading in degrees, when known.
    pub heading: Option<f32>,
    /// Drawing state.
    pub state: VehicleState,
}

/// A cluster of vehicles (zoomed out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    /// Centroid latitude.
    pub lat: f64,
    /// Centroid longitude.
    pub lng: f64,
    /// Vehicles in it.
    pub count: u32,
    /// Of which alerting.
    pub alerting: u32,
    /// Of which stale.
    pub stale: u32,
}

/// Everything the details panel shows about one vehicle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VehicleDetail {
    /// Id.
    pub id: String,
    /// Metadata.
    pub info: Option<VehicleInfo>,
    /// Last position (with its source: Kafka or Redis).
    pub position: Option<PositionSample>,
    /// Last status.
    pub status: Option<StatusSample>,
    /// Drawing state.
    pub state: VehicleState,
    /// Last message arrival (ms).
    pub last_seen_ms: i64,
}

/// One tick's worth of updates for the UI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    /// Increases by one per frame.
    pub seq: u64,
    /// When it was built (ms).
    pub ts_ms: i64,
    /// Counters bar.
    pub counters: FleetCounters,
    /// Individual vehicles in the viewport (when zoomed in far enough).
    pub dots: Vec<Dot>,
    /// Clusters in the viewport (when zoomed out).
    pub clusters: Vec<Cluster>,
    /// The selected vehicle, refreshed every frame.
    pub selected: Option<VehicleDetail>,
    /// The alert feed (open first, then acknowledged, then resolved; newest first within
    /// each) through the window's filter — only when it changed since this stream's previous
    /// frame (`None` = keep showing what you have), so a quiet feed costs nothing per frame.
    pub alerts: Option<Vec<Alert>>,
    /// Open (unacknowledged) alerts in total.
    pub open_alerts: u64,
    /// The feed's open alerts per rule, sent with `alerts` (same filter, same timing).
    #[serde(default)]
    pub alert_groups: Option<Vec<crate::AlertGroup>>,
    /// Snoozes running now, sent with `alerts`.
    #[serde(default)]
    pub snoozes: Option<Vec<crate::Snooze>>,
    /// Running the embedded demo (show the banner).
    pub demo: bool,
    /// Messages per second over the last minute, one value per second (sparkline).
    pub rate_history: Vec<f64>,
    /// The ack outbox (`outbox-count`): set by the shell from the cache, not by the frame
    /// builder, which sees only the live state.
    #[serde(default)]
    pub outbox: OutboxStatus,
    /// Set while the map replays history (issue 11): the dots are the fleet as it was at
    /// `replay.t_ms`, built by the same frame path as live data; counters stay live.
    #[serde(default)]
    pub replay: Option<ReplayStatus>,
}

/// Where a replay stands (the timeline bar draws it; the shell advances it).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReplayStatus {
    /// The replayed instant (ms since the epoch).
    pub t_ms: i64,
    /// The range's start.
    pub from_ms: i64,
    /// The range's end.
    pub to_ms: i64,
    /// Playing (else paused at `t_ms`).
    pub playing: bool,
    /// Replay seconds per wall-clock second (1–120).
    pub speed: f64,
}

impl ReplayStatus {
    /// Slowest and fastest replay speeds offered.
    pub const SPEEDS: [f64; 7] = [1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0];

    /// A replay of `[from_ms, to_ms]` paused at `t_ms` (clamped into the range).
    pub fn new(from_ms: i64, to_ms: i64, t_ms: i64) -> Self {
        let (from_ms, to_ms) = (from_ms.min(to_ms), from_ms.max(to_ms));
        ReplayStatus {
            t_ms: t_ms.clamp(from_ms, to_ms),
            from_ms,
            to_ms,
            playing: false,
            speed: 1.0,
        }
    }

    /// Moves the replayed instant on by `wall_ms` of wall-clock time at `speed`; stops
    /// (pauses) at the range's end.
    pub fn advance(&mut self, wall_ms: i64) {
        if !self.playing {
            return;
        }
        let step = (wall_ms.max(0) as f64 * self.speed.clamp(1.0, 120.0)).round() as i64;
        self.t_ms = self.t_ms.saturating_add(step).min(self.to_ms);
        if self.t_ms >= self.to_ms {
            self.playing = false;
        }
    }
}

/// The ack outbox (SPEC §6): acks made here and not yet published, and those the broker
/// refused for good (too large, not allowed, invalid), which are set aside as dead letters so
/// the acks queued after them still go out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxStatus {
    /// Waiting to be published (Kafka unreachable, or not tried yet).
    pub pending: u64,
    /// Refused for good and never to be published (dead letters).
    pub dead: u64,
    /// Why the most recent dead letter was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Longest acknowledgement note in bytes (UTF-8). Longer notes are cut where they are made (the
/// engine, `fleetctl ack`, the note field), so an ack always fits a Kafka message.
pub const ACK_NOTE_MAX_BYTES: usize = 4096;

/// `note` cut to at most [`ACK_NOTE_MAX_BYTES`] bytes, on a character boundary.
pub fn cap_ack_note(note: &str) -> &str {
    &note[..note.floor_char_boundary(ACK_NOTE_MAX_BYTES)]
}

/// A search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// Vehicle id.
    pub id: String,
    /// Plate, if known.
    pub plate: Option<String>,
    /// Last position.
    pub lat: Option<f64>,
    /// Last position.
    pub lng: Option<f64>,
}

/// A point of a vehicle's trail (from the cache).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrailPoint {
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lng: f64,
    /// Time (ms).
    pub ts_ms: i64,
}

/// A quarantined message as the UI lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuarantineEntry {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Reason code.
    pub reason: String,
    /// One-line detail.
    pub detail: String,
    /// First bytes of the payload, lossily as text.
    pub preview: String,
    /// Arrival (ms).
    pub received_ms: i64,
}

/// An error at the IPC edge: the UI branches on `code`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IpcError {
    /// Stable code (`config_invalid`, `not_found`, `store`, …).
    pub code: String,
    /// Human-readable.
    pub message: String,
}
