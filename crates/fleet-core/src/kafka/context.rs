//! librdkafka callbacks: statistics (watermarks, broker states) and errors feed
//! [`SharedStatus`], so connection health and lag are data the UI can show.

use super::status::SharedStatus;
use fleet_model::ConnState;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Statistics};
use tracing::{debug, warn};

/// The consumer's context.
pub struct FleetContext {
    pub(crate) status: SharedStatus,
}

impl ClientContext for FleetContext {
    fn stats(&self, stats: Statistics) {
        // A broker is usable when librdkafka reports it "UP"; bootstrap pseudo-brokers
        // (nodeid -1) count too, so a single-node cluster shows up at once.
        let up = stats.brokers.values().any(|b| b.state == "UP");
        let mut s = self.status.lock();
        if up {
            if !s.conn.is_up() {
                debug!("kafka connection up");
            }
            s.conn = ConnState::Up;
        } else if s.conn.is_up() {
            s.conn = ConnState::Down {
                reason: "no broker connection".into(),
            };
        }
        for (topic, t) in &stats.topics {
            for (p, part) in &t.partitions {
                if *p < 0 || !part.desired {
                    continue;
                }
                s.watermarks
                    .insert((topic.clone(), *p), (part.lo_offset, part.hi_offset));
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let down = matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::AllBrokersDown) | Some(RDKafkaErrorCode::BrokerTransportFailure)
        );
        if down {
            let mut s = self.status.lock();
            if !matches!(s.conn, ConnState::Down { .. }) {
                warn!(%reason, "kafka connection lost");
            }
            s.conn = ConnState::Down {
                reason: reason.lines().next().unwrap_or("").to_string(),
            };
        } else {
            warn!(error = %error, %reason, "kafka client error");
        }
    }
}

impl ConsumerContext for FleetContext {}
