//! Live counters and connection health, as shown in the counters bar and by `fleetctl`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Health of one upstream connection. Data, not a log line: the UI shows it at all times.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum ConnState {
    /// Not configured.
    #[default]
    Disabled,
    /// Trying for the first time.
    Connecting,
    /// Connected and working.
    Up,
    /// Lost; reconnecting with backoff.
    Down {
        /// Last error, one line.
        reason: String,
    },
}

impl std::fmt::Display for ConnState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnState::Disabled => f.write_str("off"),
            ConnState::Connecting => f.write_str("connecting"),
            ConnState::Up => f.write_str("up"),
            ConnState::Down { reason } => write!(f, "down ({reason})"),
        }
    }
}

impl ConnState {
    /// True when connected.
    pub fn is_up(&self) -> bool {
        matches!(self, ConnState::Up)
    }
}

/// Counters of one topic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TopicCounters {
    /// Messages consumed since start (good and bad).
    pub messages: u64,
    /// Messages rejected since start.
    pub rejected: u64,
    /// Messages per second over the last few seconds.
    pub rate: f64,
    /// Consumer lag summed over partitions (messages behind the high watermark), when known.
    pub lag: Option<i64>,
}

/// The live counters bar.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetCounters {
    /// The group the vehicle counts are narrowed to (`group-filter`), if any; the message
    /// rates, lag and rejections stay the whole pipeline's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Every vehicle ever seen.
    pub vehicles_total: u64,
    /// Vehicles heard from within the stale threshold.
    pub vehicles_online: u64,
    /// Vehicles silent for longer than the stale threshold.
    pub vehicles_stale: u64,
    /// Messages per second, all topics.
    pub rate: f64,
    /// Rejected messages since start, all topics.
    pub rejected: u64,
    /// Rejected messages by reason code.
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Total consumer lag, when known.
    pub lag: Option<i64>,
    /// The lag panel: one row per consumed partition.
    #[serde(default)]
    pub partitions: Vec<PartitionLag>,
    /// Arrival time of the last message (ms epoch).
    pub last_message_ms: Option<i64>,
    /// Per-topic counters.
    pub topics: BTreeMap<String, TopicCounters>,
    /// Redis position updates per second.
    pub redis_rate: f64,
    /// Kafka connection health.
    pub kafka: ConnState,
    /// Redis connection health.
    pub redis: ConnState,
    /// Gaps recorded in the cache (SPEC §7): data that could not be read. Shown, never silent.
    #[serde(default)]
    pub gaps: u64,
    /// The cache cannot be written (disk full, read-only, corrupt…): the reason, shown at once.
    #[serde(default)]
    pub cache_error: Option<String>,
}

/// One partition of the lag panel (`lag-panel`): where the cache stands against the broker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartitionLag {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Next offset the cache has committed (what a restart resumes from).
    pub committed: Option<i64>,
    /// The broker's high watermark (next offset it will write), when known.
    pub high_watermark: Option<i64>,
    /// Messages between what was read and the high watermark.
    pub lag: Option<i64>,
    /// Messages per second read from it (over the last seconds).
    pub rate: f64,
    /// When its position last advanced (ms epoch).
    pub last_message_ms: Option<i64>,
    /// Lagging without advancing for `fleet.stuck_after_s` (a `consumer_stuck` alert is open).
    pub stuck: bool,
}
