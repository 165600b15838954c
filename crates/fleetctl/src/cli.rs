//! Command-line shape (clap). Names follow SPEC §4.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// fleetctl — headless companion of the fleetdash desktop app.
#[derive(Parser, Debug)]
#[command(name = "fleetctl", version, about)]
pub struct Cli {
    /// More logging (-v debug, -vv trace). `FLEETDASH_LOG` overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// Config file argument shared by commands that read the cache.
#[derive(Args, Debug, Clone)]
pub struct ConfigArg {
    /// Config file (else $FLEETDASH_CONFIG, else the per-user default).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Simulate a realistic fleet: produce telemetry to Kafka and GEOADD to Redis.
    Sim(SimArgs),
    /// Run the full pipeline headless (Kafka + Redis → live state → cache).
    Ingest(IngestArgs),
    /// Print what the cache holds.
    Stats(StatsArgs),
    /// Export history from the cache as CSV or GeoJSON.
    Export(ExportArgs),
    /// One vehicle's timeline from the cache: positions, status samples and alerts.
    History(HistoryArgs),
    /// Draw one vehicle's telemetry chart (with its alerts) to a PNG or SVG file.
    Chart(ChartArgs),
    /// List alerts from the cache.
    Alerts(AlertsArgs),
    /// Acknowledge an alert as the configured operator (queued if Kafka is down).
    Ack(AckArgs),
    /// Run a benchmark and print its figures.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Run the embedded demo headless (in-process broker + simulator + pipeline).
    Demo(DemoArgs),
    /// Connect exactly as `ingest` would and report what is there (or why it fails).
    Check(CheckArgs),
    /// The Kafka → Redis loader: GEOADD each vehicle's latest position (SPEC §9).
    Connect(ConnectArgs),
    /// The schema registry: every field path seen per topic, its type, counts and an example.
    Fields(FieldsArgs),
    /// Vehicles in the cache with their metadata, devices, last position and state.
    Vehicles(VehiclesArgs),
}

impl Command {
    /// Whether `--json` was asked for.
    pub fn json(&self) -> bool {
        match self {
            Command::Sim(a) => a.json,
            Command::Ingest(a) => a.json,
            Command::Stats(a) => a.json,
            Command::Export(_) => false,
            Command::History(a) => a.json,
            Command::Chart(a) => a.json,
            Command::Alerts(a) => a.json,
            Command::Ack(a) => a.json,
            Command::Bench(BenchCommand::Ingest(a)) => a.json,
            Command::Bench(BenchCommand::Rules(a)) => a.json,
            Command::Bench(BenchCommand::Alerts(a)) => a.json,
            Command::Bench(BenchCommand::Churn(a)) => a.json,
            Command::Bench(BenchCommand::History(a)) => a.json,
            Command::Demo(a) => a.json,
            Command::Check(a) => a.json,
            Command::Connect(a) => a.json,
            Command::Fields(a) => a.json,
            Command::Vehicles(a) => a.json,
            Command::Bench(BenchCommand::Connect(a)) => a.json,
        }
    }
}

/// `fleetctl sim`
#[derive(Args, Debug)]
pub struct SimArgs {
    /// Kafka bootstrap servers.
    #[arg(long)]
    pub brokers: String,
    /// Redis URL to GEOADD positions to.
    #[arg(long)]
    pub redis: Option<String>,
    /// Geo set key.
    #[arg(long, default_value = "cars#gps")]
    pub geo_key: String,
    /// Number of vehicles.
    #[arg(long)]
    pub vehicles: u32,
    /// Position messages per vehicle per second.
    #[arg(long)]
    pub rate: f64,
    /// How long to run (seconds).
    #[arg(long)]
    pub duration: f64,
    /// Random seed (same seed → same fleet and messages).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// City centre `LAT,LNG`.
    #[arg(long, value_parser = parse_latlng, allow_hyphen_values = true)]
    pub center: Option<(f64, f64)>,
    /// City radius in km.
    #[arg(long, default_value_t = 5.0)]
    pub radius_km: f64,
    /// Stop after this many position messages.
    #[arg(long)]
    pub max_messages: Option<u64>,
    /// Produce as fast as the broker accepts (sim clock runs ahead of the wall clock).
    #[arg(long)]
    pub unthrottled: bool,
    /// Extra librdkafka producer property `KEY=VALUE` (repeatable).
    #[arg(long = "property", value_parser = parse_kv)]
    pub properties: Vec<(String, String)>,
    /// SOCAR's CDC shape: `carinfo` and `deviceinfo` as AWS DMS envelopes, two or three
    /// devices per car, device-keyed telemetry (position and status in one message) on
    /// `cars.telemetry.json`.
    #[arg(long)]
    pub cdc: bool,
    /// With `--cdc`: the devices' firmware changes this many sim seconds after the start and
    /// telemetry gains nested fields (`tpms.*`, `adas.*`).
    #[arg(long, requires = "cdc")]
    pub firmware_change: Option<f64>,
    /// Print counts per topic as JSON at the end.
    #[arg(long)]
    pub json: bool,
}

/// `fleetctl ingest`
#[derive(Args, Debug)]
pub struct IngestArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Exit cleanly once caught up on every partition with no new message for SECS.
    #[arg(long, value_name = "SECS")]
    pub idle_exit: Option<f64>,
    /// Print a JSON summary at the end.
    #[arg(long)]
    pub json: bool,
    /// Benchmarks only: build a whole-world map frame every MS milliseconds, as the window's
    /// stream does, and report the frame intervals and build times in the JSON summary.
    #[arg(long, value_name = "MS", hide = true)]
    pub frame_probe_ms: Option<u64>,
}

/// `fleetctl connect`
#[derive(Args, Debug)]
pub struct ConnectArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Exit once caught up on every assigned partition with no new message for SECS.
    #[arg(long, value_name = "SECS")]
    pub idle_exit: Option<f64>,
    /// Print a JSON summary at the end.
    #[arg(long)]
    pub json: bool,
}

/// `fleetctl vehicles`
#[derive(Args, Debug)]
pub struct VehiclesArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Only vehicles of this group.
    #[arg(long)]
    pub group: Option<String>,
    /// Only vehicles whose id or plate contains this (case-insensitive).
    #[arg(long)]
    pub search: Option<String>,
    /// Print the list as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `fleetctl fields`
#[derive(Args, Debug)]
pub struct FieldsArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Only this topic's fields.
    #[arg(long)]
    pub topic: Option<String>,
    /// Only fields first seen at or after this time (RFC 3339 or ms epoch).
    #[arg(long)]
    pub since: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `fleetctl check`
#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Print a JSON report at the end.
    #[arg(long)]
    pub json: bool,
}

/// `fleetctl stats`
#[derive(Args, Debug)]
pub struct StatsArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Export formats.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum Format {
    /// CSV with a header row.
    Csv,
    /// GeoJSON FeatureCollection.
    Geojson,
}

/// `fleetctl export`
#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// One vehicle only.
    #[arg(long)]
    pub vehicle: Option<String>,
    /// From (RFC 3339 or ms epoch).
    #[arg(long)]
    pub from: Option<String>,
    /// To (RFC 3339 or ms epoch).
    #[arg(long)]
    pub to: Option<String>,
    /// Output format.
    #[arg(long)]
    pub format: Format,
    /// Write to this file instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// `fleetctl history`
#[derive(Args, Debug)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The vehicle.
    #[arg(long)]
    pub vehicle: String,
    /// From (RFC 3339 or ms epoch; default: an hour before --to).
    #[arg(long)]
    pub from: Option<String>,
    /// To (RFC 3339 or ms epoch; default: now).
    #[arg(long)]
    pub to: Option<String>,
    /// Print the history as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `fleetctl chart`
#[derive(Args, Debug)]
pub struct ChartArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The vehicle.
    #[arg(long)]
    pub vehicle: String,
    /// Status fields to draw, comma-separated (flattened names such as `engine.rpm`).
    #[arg(long, value_delimiter = ',', default_value = "speed,fuel,battery")]
    pub fields: Vec<String>,
    /// From (RFC 3339 or ms epoch; default: an hour before --to).
    #[arg(long)]
    pub from: Option<String>,
    /// To (RFC 3339 or ms epoch; default: now).
    #[arg(long)]
    pub to: Option<String>,
    /// Output file; `.png` or `.svg` picks the format.
    #[arg(long)]
    pub out: PathBuf,
    /// Width in pixels.
    #[arg(long, default_value_t = 1200)]
    pub width: u32,
    /// Height in pixels.
    #[arg(long, default_value_t = 600)]
    pub height: u32,
    /// Print a JSON summary at the end.
    #[arg(long)]
    pub json: bool,
}

/// Alert states for filtering.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum StateArg {
    /// Open.
    Open,
    /// Acknowledged.
    Acknowledged,
    /// Resolved.
    Resolved,
}

/// `fleetctl alerts`
#[derive(Args, Debug)]
pub struct AlertsArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Only alerts in this state.
    #[arg(long)]
    pub state: Option<StateArg>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `fleetctl ack`
#[derive(Args, Debug)]
pub struct AckArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The alert to acknowledge.
    pub alert_id: String,
    /// A note for the other operators.
    #[arg(long)]
    pub note: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Benchmarks.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// End-to-end ingest throughput vs a bare consumer on the same broker.
    Ingest(BenchIngestArgs),
    /// Throughput cost of the alert rules (rules off vs on, same data).
    Rules(BenchRulesArgs),
    /// Message-to-alert latency under a live fleet load.
    Alerts(BenchAlertsArgs),
    /// Memory and frame intervals under a flood of distinct vehicle ids (SPEC §7 bounds).
    Churn(BenchChurnArgs),
    /// Looking back: cache size of 72 h of a fleet, track + chart load, replay frame time.
    History(BenchHistoryArgs),
    /// The Kafka → Redis loader against a Python peer and the bare consumer, same run.
    Connect(BenchConnectArgs),
}

/// `fleetctl bench connect`
#[derive(Args, Debug)]
pub struct BenchConnectArgs {
    /// Kafka bootstrap servers (default: a private tansu broker).
    #[arg(long)]
    pub brokers: Option<String>,
    /// Redis URL (the geo sets written are the bench's own and deleted afterwards).
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    pub redis: String,
    /// Position messages produced and loaded.
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: u64,
    /// Distinct vehicles among them.
    #[arg(long, default_value_t = 20_000)]
    pub vehicles: u32,
    /// Partitions of the bench topic.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    /// Runs of each contender (medians reported).
    #[arg(long, default_value_t = 3)]
    pub runs: u32,
    /// The Python peer's interpreter (needs confluent-kafka and redis; `./dev setup` makes one).
    #[arg(long)]
    pub python: Option<std::path::PathBuf>,
    /// Print the figures as JSON at the end.
    #[arg(long)]
    pub json: bool,
}

/// `fleetctl bench history`
#[derive(Args, Debug)]
pub struct BenchHistoryArgs {
    /// Vehicles in the generated fleet.
    #[arg(long, default_value_t = 20_000)]
    pub vehicles: u32,
    /// Hours of history generated (ending now).
    #[arg(long, default_value_t = 72)]
    pub hours: u32,
    /// Vehicles timed (track + chart) and kept whole by a keep-all history policy.
    #[arg(long, default_value_t = 50)]
    pub probes: u32,
    /// Random replay times to build the fleet frame at.
    #[arg(long, default_value_t = 50)]
    pub frames: u32,
    /// Seed of the generated fleet.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Keep the generated cache here (and reuse it if it is already there) instead of a
    /// temporary file: generating 72 h of a large fleet takes minutes.
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `fleetctl bench churn`
#[derive(Args, Debug)]
pub struct BenchChurnArgs {
    /// Broker to use; default: a private tansu broker.
    #[arg(long)]
    pub brokers: Option<String>,
    /// Distinct vehicle ids, one position each.
    #[arg(long, default_value_t = 10_000_000)]
    pub ids: u64,
    /// Vehicles of the baseline run (the same number of messages from a steady fleet).
    #[arg(long, default_value_t = 20_000)]
    pub baseline_vehicles: u64,
    /// Message time the ids are spread over (seconds, ending now).
    #[arg(long, default_value_t = 3600)]
    pub span_s: u64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `fleetctl bench ingest`
#[derive(Args, Debug)]
pub struct BenchIngestArgs {
    /// Broker to use; default: start a private tansu broker on a free loopback port.
    #[arg(long)]
    pub brokers: Option<String>,
    /// Messages to pre-fill.
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: u64,
    /// Vehicles they come from.
    #[arg(long, default_value_t = 20_000)]
    pub vehicles: u32,
    /// Partitions of the bench topic.
    #[arg(long, default_value_t = 3)]
    pub partitions: i32,
    /// Repetitions (medians are reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Also ingest SOCAR's CDC shape (DMS car and device tables, 3 devices per car,
    /// device-keyed telemetry, drift registry, 10 threshold rules) in the same runs.
    #[arg(long)]
    pub cdc: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `fleetctl bench rules`
#[derive(Args, Debug)]
pub struct BenchRulesArgs {
    /// Broker to use; default: a private tansu broker.
    #[arg(long)]
    pub brokers: Option<String>,
    /// Position messages to pre-fill (status messages come on top).
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: u64,
    /// Vehicles.
    #[arg(long, default_value_t = 20_000)]
    pub vehicles: u32,
    /// Repetitions of each side (medians are reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `fleetctl bench alerts`
#[derive(Args, Debug)]
pub struct BenchAlertsArgs {
    /// Broker to use; default: a private tansu broker.
    #[arg(long)]
    pub brokers: Option<String>,
    /// Vehicles of background load (1 Hz each).
    #[arg(long, default_value_t = 20_000)]
    pub vehicles: u32,
    /// Alerts to time.
    #[arg(long, default_value_t = 200)]
    pub probes: usize,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 10)]
    pub warmup: u64,
    /// Extra librdkafka consumer property `KEY=VALUE` for the engine (repeatable).
    #[arg(long = "property", value_parser = parse_kv)]
    pub properties: Vec<(String, String)>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `fleetctl demo`
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Simulated vehicles.
    #[arg(long, default_value_t = 2000)]
    pub vehicles: u32,
    /// Seconds to run (default: until Ctrl-C).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Print a JSON summary at the end.
    #[arg(long)]
    pub json: bool,
}

fn parse_latlng(s: &str) -> Result<(f64, f64), String> {
    let (a, b) = s.split_once(',').ok_or("expected LAT,LNG")?;
    let lat: f64 = a
        .trim()
        .parse()
        .map_err(|_| format!("bad latitude `{a}`"))?;
    let lng: f64 = b
        .trim()
        .parse()
        .map_err(|_| format!("bad longitude `{b}`"))?;
    if lat.abs() > 85.0 || lng.abs() > 180.0 {
        return Err("latitude must be within ±85 and longitude within ±180".into());
    }
    Ok((lat, lng))
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or("expected KEY=VALUE")?;
    Ok((k.to_string(), v.to_string()))
}
