//! Types shared by the fleetdash engine (`fleet-core`), the desktop shell and the WASM UI.
//!
//! Everything here is plain data with serde derives and no native dependency, so the same
//! definitions compile for `wasm32-unknown-unknown` and the IPC edge cannot drift.

pub mod alert;
pub mod counters;
pub mod history;
pub mod sample;
pub mod ui;

pub use alert::{
    Ack, Alert, AlertFilter, AlertGroup, AlertState, Severity, Snooze, SnoozeKind, alert_id,
};
pub use counters::{ConnState, FleetCounters, PartitionLag, TopicCounters};
pub use history::{HistoryAlert, StatusPoint, TrackPoint, VehicleHistory};
pub use sample::{
    PositionSample, RejectReason, Source, StatusFields, StatusSample, TopicKind, VehicleId,
    VehicleInfo,
};
pub use ui::{
    Cluster, Dot, Frame, IpcError, QuarantineEntry, ReplayStatus, SearchHit, TrailPoint,
    VehicleDetail, VehicleState, Viewport,
};
