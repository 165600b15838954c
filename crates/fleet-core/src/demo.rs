//! The embedded demo (SPEC §5): an in-process Kafka-protocol broker (librdkafka's mock
//! cluster) fed by the simulator, and a config pointing the real pipeline at it — so a new
//! user sees a live fleet without installing anything.

use crate::config::{
    Config, FleetConfig, HistoryConfig, KafkaConfig, StartFrom, StoreConfig, default_topics,
};
use crate::sim::{self, SimOptions};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
    /// Starts the broker, creates the SPEC topics and starts `vehicles` simulated vehicles.
    pub fn start(vehicles: u32, cancel: CancellationToken) -> Result<Demo, DemoError> {
        let cluster = MockCluster::new(1)?;
        let topics = default_topics();
        for t in &topics {
            cluster.create_topic(&t.name, 3, 1)?;
        }
        let brokers = cluster.bootstrap_servers();
        let dir = tempfile::Builder::new()
            .prefix("fleetdash-demo-")
            .tempdir()?;
        let mut kafka = KafkaConfig::with_brokers(&brokers);
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
