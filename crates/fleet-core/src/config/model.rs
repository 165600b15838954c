//! The configuration structs. Every field has a serde default so a minimal file works, and
//! `deny_unknown_fields` everywhere so a typo is an error that names the key.

use fleet_model::TopicKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Kafka source; absent means no Kafka.
    #[serde(default)]
    pub kafka: Option<KafkaConfig>,
    /// Redis geo source; absent means no Redis.
    #[serde(default)]
    pub redis: Option<RedisConfig>,
    /// Local cache.
    #[serde(default)]
    pub store: StoreConfig,
    /// What history the cache keeps.
    #[serde(default)]
    pub history: HistoryConfig,
    /// Live-state thresholds.
    #[serde(default)]
    pub fleet: FleetConfig,
    /// Who acknowledges alerts from this desktop.
    #[serde(default)]
    pub operator: OperatorConfig,
    /// Alert rules and geofences.
    #[serde(default)]
    pub alerts: super::AlertsConfig,
    /// The Kafka → Redis loader (`fleetctl connect`); absent unless a loader runs here.
    #[serde(default)]
    pub connect: Option<super::ConnectConfig>,
    /// Secrets named in the file (`env:NAME`, `keyring:NAME`, `password_env`,
    /// `password_keyring`) that could not be resolved: (key, why). Commands that only read the cache do not need them; commands that
    /// connect call [`Config::require_secrets`](super::Config::require_secrets).
    #[serde(skip)]
    pub unresolved_secrets: Vec<(String, String)>,
}

/// Where consumption starts on the very first run (later runs resume from the cache).
/// In TOML: `"latest"`, `"earliest"`, or an RFC 3339 time such as `"2026-11-30T08:00:00Z"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StartFrom {
    /// Only new messages.
    #[default]
    Latest,
    /// Everything the broker still retains.
    Earliest,
    /// The first message at or after this time (ms since the epoch) on every partition, found
    /// with the broker's offsets-for-times; the end where nothing is that recent.
    At(i64),
}

impl Serialize for StartFrom {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            StartFrom::Latest => s.serialize_str("latest"),
            StartFrom::Earliest => s.serialize_str("earliest"),
            StartFrom::At(ms) => match chrono::DateTime::from_timestamp_millis(*ms) {
                Some(t) => s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                None => s.serialize_i64(*ms),
            },
        }
    }
}

impl<'de> Deserialize<'de> for StartFrom {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.trim() {
            "latest" => Ok(StartFrom::Latest),
            "earliest" => Ok(StartFrom::Earliest),
            t => chrono::DateTime::parse_from_rfc3339(t)
                .map(|t| StartFrom::At(t.timestamp_millis()))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "`{t}` is not `latest`, `earliest` or an RFC 3339 time like 2026-11-30T08:00:00Z"
                    ))
                }),
        }
    }
}

/// `[kafka]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma separated.
    pub brokers: String,
    /// Consumer group; default `fleetdash-<hostname>` so every desktop sees every message.
    #[serde(default)]
    pub group_id: Option<String>,
    /// First run only: `latest` or `earliest`.
    #[serde(default)]
    pub start: StartFrom,
    /// Passed to librdkafka verbatim. A value `env:NAME` is read from the environment
    /// variable NAME, and `keyring:NAME` from the OS keyring (entry NAME of service
    /// `fleetdash`), so secrets (`sasl.password`) need not be in the file.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Topics and their field mapping; default: the five SPEC topics.
    #[serde(default = "default_topics")]
    pub topics: Vec<TopicConfig>,
    /// Largest batch handed to the engine (messages).
    #[serde(default = "default_batch_max")]
    pub batch_max_messages: usize,
    /// Longest a batch waits before it is handed over (ms). Bounds cache and UI latency.
    #[serde(default = "default_batch_ms")]
    pub batch_max_ms: u64,
}

/// `[[kafka.topics]]`: one topic and how to read it (the "handler map").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    /// Topic name.
    pub name: String,
    /// What it carries.
    pub kind: TopicKind,
    /// Field name → JSON path (dotted) or `$key` for the message key. Missing entries take the
    /// kind's defaults (see [`default_fields`]); position and status topics also take
    /// `device` ([`optional_fields`]).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// How each message is wrapped: plain JSON, or an AWS DMS change envelope (SPEC §8).
    #[serde(default, skip_serializing_if = "TopicFormat::is_plain")]
    pub format: TopicFormat,
}

impl TopicConfig {
    /// A plain-JSON topic of `kind` with the kind's default fields.
    pub fn new(name: impl Into<String>, kind: TopicKind) -> Self {
        Self {
            name: name.into(),
            kind,
            fields: BTreeMap::new(),
            format: TopicFormat::Plain,
        }
    }
}

/// `topics` as the config file spells them: one `[[kafka.topics]]` table each (for tools
/// that write a config, such as the benchmarks).
pub fn topics_toml(topics: &[TopicConfig]) -> String {
    #[derive(Serialize)]
    struct Kafka<'a> {
        topics: &'a [TopicConfig],
    }
    #[derive(Serialize)]
    struct File<'a> {
        kafka: Kafka<'a>,
    }
    toml::to_string(&File {
        kafka: Kafka { topics },
    })
    // A map of strings and two enums always serializes.
    .unwrap_or_default()
}

/// `format` of a topic (SPEC §8).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TopicFormat {
    /// The message is the record.
    #[default]
    Plain,
    /// AWS DMS: `{"data": {…}, "metadata": {"operation": "load"|"insert"|"update"|"delete"}}`;
    /// fields are read inside `data`, and `delete` removes the record.
    Dms,
}

impl TopicFormat {
    /// True for plain JSON (the default, not written out).
    pub fn is_plain(&self) -> bool {
        *self == TopicFormat::Plain
    }
}

/// Redis URL(s): one URL, or several for a Redis Cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RedisUrls {
    /// A single server.
    One(String),
    /// Cluster seed nodes.
    Many(Vec<String>),
}

impl RedisUrls {
    /// All URLs as a list.
    pub fn list(&self) -> Vec<String> {
        match self {
            RedisUrls::One(u) => vec![u.clone()],
            RedisUrls::Many(v) => v.clone(),
        }
    }
}

/// `[redis]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:pass@]host:port/db` or `rediss://…`; a list means Redis Cluster.
    pub url: RedisUrls,
    /// Geo sets to read.
    #[serde(default = "default_geo_keys")]
    pub geo_keys: Vec<String>,
    /// ACL user name (overrides the URL's).
    #[serde(default)]
    pub username: Option<String>,
    /// Name of an environment variable holding the password (keeps it out of the file).
    #[serde(default)]
    pub password_env: Option<String>,
    /// Name of an OS keyring entry (service `fleetdash`) holding the password.
    #[serde(default)]
    pub password_keyring: Option<String>,
    /// The password read from the keyring when the config was loaded (never serialized).
    #[serde(skip)]
    pub keyring_password: Option<String>,
    /// Poll interval when keyspace notifications are off (ms).
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
}

/// `[store]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// SQLite file; default `<data_dir>/fleetdash/cache.sqlite`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Cap on the cache file (MB): over it, the oldest history is dropped first (SPEC §7).
    #[serde(default = "default_max_size_mb")]
    pub max_size_mb: u64,
}

fn default_max_size_mb() -> u64 {
    2048
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: None,
            max_size_mb: default_max_size_mb(),
        }
    }
}

/// `[history]`: which position samples the cache keeps and for how long (SPEC §2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryConfig {
    /// Keep a sample when the vehicle moved at least this far since the last kept one (m).
    #[serde(default = "default_min_distance")]
    pub min_distance_m: f64,
    /// …or at least this much time passed (s).
    #[serde(default = "default_min_interval")]
    pub min_interval_s: f64,
    /// Drop history older than this (hours).
    #[serde(default = "default_retention")]
    pub retention_hours: f64,
    /// Thin out history older than this (hours)…
    #[serde(default = "default_downsample_after")]
    pub downsample_after_hours: f64,
    /// …to at most one sample per vehicle per this interval (s).
    #[serde(default = "default_downsample_interval")]
    pub downsample_interval_s: f64,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            min_distance_m: default_min_distance(),
            min_interval_s: default_min_interval(),
            retention_hours: default_retention(),
            downsample_after_hours: default_downsample_after(),
            downsample_interval_s: default_downsample_interval(),
        }
    }
}

/// `[fleet]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// A vehicle is stale after this long without a message (s).
    #[serde(default = "default_stale")]
    pub stale_after_s: f64,
    /// Timestamps more than this far ahead of the local clock are quarantined as `bad_ts`
    /// (SPEC §7): a device with a broken clock must not pin its vehicle in the future.
    #[serde(default = "default_max_future_skew")]
    pub max_future_skew_s: f64,
    /// At most this many vehicles are kept in memory; past it the longest silent ones are
    /// evicted (they stay in the cache). Vehicles silent for `history.retention_hours` are
    /// evicted in any case (SPEC §7 bounded).
    #[serde(default = "default_max_live_vehicles")]
    pub max_live_vehicles: usize,
    /// A partition that is behind the broker and has not advanced for this long raises a
    /// `consumer_stuck` alert (s).
    #[serde(default = "default_stuck_after")]
    pub stuck_after_s: f64,
}

fn default_stuck_after() -> f64 {
    60.0
}

fn default_max_live_vehicles() -> usize {
    250_000
}

fn default_max_future_skew() -> f64 {
    300.0
}

impl FleetConfig {
    /// [`FleetConfig::max_future_skew_s`] in ms.
    pub fn max_future_skew_ms(&self) -> i64 {
        (self.max_future_skew_s * 1000.0) as i64
    }
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            stale_after_s: default_stale(),
            max_future_skew_s: default_max_future_skew(),
            max_live_vehicles: default_max_live_vehicles(),
            stuck_after_s: default_stuck_after(),
        }
    }
}

/// `[operator]`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorConfig {
    /// Name used on acknowledgements; default: the OS user name.
    #[serde(default)]
    pub name: Option<String>,
}

impl OperatorConfig {
    /// The configured name, or `$USER`, or `operator`.
    pub fn effective_name(&self) -> String {
        self.name
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "operator".into())
    }
}

/// The field names a kind understands, and their defaults (`$key` = the message key).
pub fn default_fields(kind: TopicKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        TopicKind::Position => &[
            ("id", "$key"),
            ("lat", "lat"),
            ("lng", "lng"),
            ("ts", "ts"),
            ("speed", "speed"),
            ("heading", "heading"),
        ],
        TopicKind::Status => &[
            ("id", "$key"),
            ("ts", "ts"),
            ("engine", "engine"),
            ("doors", "doors"),
            ("headlights", "headlights"),
            ("speed", "speed"),
            ("fuel", "fuel"),
            ("battery", "battery"),
        ],
        TopicKind::Info => &[
            ("id", "$key"),
            ("plate", "plate"),
            ("model", "model"),
            ("driver", "driver"),
            ("group", "group"),
        ],
        TopicKind::Alert => &[
            ("id", "id"),
            ("vehicle", "vehicle"),
            ("rule", "rule"),
            ("severity", "severity"),
            ("message", "message"),
            ("ts", "ts"),
            ("state", "state"),
        ],
        TopicKind::Ack => &[
            ("alert_id", "alert_id"),
            ("operator", "operator"),
            ("note", "note"),
            ("ts", "ts"),
        ],
        TopicKind::Device => &[("id", "$key"), ("vehicle", "vehicle")],
    }
}

/// Fields a kind understands that have no default: `device` on telemetry (SPEC §8) names the
/// device id the message is keyed by; without it the message's id is the vehicle's.
pub fn optional_fields(kind: TopicKind) -> &'static [&'static str] {
    match kind {
        TopicKind::Position | TopicKind::Status => &["device"],
        _ => &[],
    }
}

/// The five SPEC §1 topics.
pub fn default_topics() -> Vec<TopicConfig> {
    [
        ("cars.gps.json", TopicKind::Position),
        ("cars.status.json", TopicKind::Status),
        ("cars.info.json", TopicKind::Info),
        ("fleet.alerts.json", TopicKind::Alert),
        ("fleet.alert-acks.json", TopicKind::Ack),
    ]
    .into_iter()
    .map(|(name, kind)| TopicConfig::new(name, kind))
    .collect()
}

fn default_batch_max() -> usize {
    5000
}
fn default_batch_ms() -> u64 {
    20
}
fn default_geo_keys() -> Vec<String> {
    vec!["cars#gps".into()]
}
fn default_poll_ms() -> u64 {
    1000
}
fn default_min_distance() -> f64 {
    25.0
}
fn default_min_interval() -> f64 {
    30.0
}
fn default_retention() -> f64 {
    72.0
}
fn default_downsample_after() -> f64 {
    24.0
}
fn default_downsample_interval() -> f64 {
    60.0
}
fn default_stale() -> f64 {
    300.0
}

impl KafkaConfig {
    /// A config for `brokers` with every default (the five SPEC topics, start at latest).
    pub fn with_brokers(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            group_id: None,
            start: StartFrom::Latest,
            properties: BTreeMap::new(),
            topics: default_topics(),
            batch_max_messages: default_batch_max(),
            batch_max_ms: default_batch_ms(),
        }
    }

    /// The group id to use: configured, or `fleetdash-<hostname>`.
    pub fn effective_group_id(&self) -> String {
        self.group_id.clone().unwrap_or_else(|| {
            let host = hostname::get()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "desktop".into());
            format!("fleetdash-{host}")
        })
    }

    /// The topic configured for a kind, if any (the first one).
    pub fn topic_of(&self, kind: TopicKind) -> Option<&TopicConfig> {
        self.topics.iter().find(|t| t.kind == kind)
    }
}

impl Config {
    /// The cache path: configured, or `<data_dir>/fleetdash/cache.sqlite`.
    pub fn store_path(&self) -> PathBuf {
        self.store.path.clone().unwrap_or_else(|| {
            dirs::data_dir()
                .unwrap_or_else(std::env::temp_dir)
                .join("fleetdash")
                .join("cache.sqlite")
        })
    }
}
