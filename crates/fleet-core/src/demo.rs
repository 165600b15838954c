//! The embedded demo (SPEC §5): an in-process Kafka-protocol broker (librdkafka's mock
//! cluster) fed by the simulator, and a config pointing the real pipeline at it — so a new
//! user sees a live fleet without installing anything.

use crate::config::{Config, FleetConfig, HistoryConfig, KafkaConfig, StartFrom, StoreConfig};
use crate::sim::{self, SimOptions};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// When the demo's devices change firmware (sim seconds after the start): just after the
/// telemetry topic's 10-minute drift baseline, so the drift notice follows.
pub const FIRMWARE_CHANGE_S: f64 = 660.0;

/// Demo errors.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The mock broker could not start.
    #[error("cannot start the in-process demo broker: {0}")]
    Broker(#[from] rdkafka::error::KafkaError),
    /// The temp dir for the demo cache.
    #[error("cannot create the demo cache directory: {0}")]
    Dir(#[from] std::io::Error),
}

/// A running demo world. Dropping it stops the broker.
pub struct Demo {
    /// Config pointing at the demo broker and a throw-away cache.
    pub config: Config,
    _cluster: MockCluster<'static, DefaultProducerContext>,
    _dir: tempfile::TempDir,
    sim: tokio::task::JoinHandle<()>,
}

impl Demo {
    /// Starts the broker, creates the topics and starts `vehicles` simulated vehicles.
    ///
    /// The demo runs SOCAR's CDC shape (SPEC §8): car and device tables as DMS envelopes,
    /// device-keyed telemetry, and a firmware change after [`FIRMWARE_CHANGE_S`] that adds
    /// nested fields — so a new user sees plates, drivers, groups and devices everywhere, and
    /// a drift notice once the topic's 10-minute baseline has passed.
    pub fn start(vehicles: u32, cancel: CancellationToken) -> Result<Demo, DemoError> {
        let cluster = MockCluster::new(1)?;
        let topics = sim::cdc_topics();
        let mut created = std::collections::HashSet::new();
        for t in &topics {
            if created.insert(t.name.clone()) {
                cluster.create_topic(&t.name, 3, 1)?;
            }
        }
        let brokers = cluster.bootstrap_servers();
        let dir = tempfile::Builder::new()
            .prefix("fleetdash-demo-")
            .tempdir()?;
        let mut kafka = KafkaConfig::with_brokers(&brokers);
        kafka.topics = topics;
        kafka.start = StartFrom::Earliest;
        kafka.group_id = Some("fleetdash-demo".into());
        let config = Config {
            kafka: Some(kafka),
            redis: None,
            store: StoreConfig {
                path: Some(dir.path().join("cache.sqlite")),
                ..Default::default()
            },
            history: HistoryConfig::default(),
            fleet: FleetConfig::default(),
            operator: Default::default(),
            alerts: Default::default(),
            connect: None,
            unresolved_secrets: Vec::new(),
        };
        let opts = SimOptions {
            brokers,
            vehicles,
            rate_hz: 1.0,
            duration: Duration::ZERO,
            seed: 7,
            topics: sim::SimTopics::cdc(),
            cdc: Some(sim::CdcOptions {
                firmware_change_s: Some(FIRMWARE_CHANGE_S),
                devices_per_car: None,
            }),
            ..SimOptions::default()
        };
        let sim = tokio::spawn(async move {
            if let Err(e) = sim::run(opts, cancel).await {
                tracing::warn!(error = %e, "demo simulator stopped");
            }
        });
        Ok(Demo {
            config,
            _cluster: cluster,
            _dir: dir,
            sim,
        })
    }

    /// Waits for the simulator to stop (after cancellation).
    pub async fn stop(self) {
        let _ = self.sim.await;
    }
}
