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
        let code = error.rdkafka_error_code();
        let line = reason.lines().next().unwrap_or("").to_string();
        // Why the connection cannot work (bad credentials, untrusted certificate): shown as
        // the reason, and not overwritten by the "all brokers are down" that follows it.
        let cause = matches!(
            code,
            Some(RDKafkaErrorCode::Authentication)
                | Some(RDKafkaErrorCode::SaslAuthenticationFailed)
                | Some(RDKafkaErrorCode::SSL)
        );
        let down = cause
            || matches!(
                code,
                Some(RDKafkaErrorCode::AllBrokersDown)
                    | Some(RDKafkaErrorCode::BrokerTransportFailure)
            );
        if !down {
            warn!(error = %error, %reason, "kafka client error");
            return;
        }
        let mut s = self.status.lock();
        let was_down = matches!(s.conn, ConnState::Down { .. });
        if cause {
            warn!(error = %error, %reason, "kafka connection refused");
        } else if !was_down {
            warn!(%reason, "kafka connection lost");
        }
        // "1/1 brokers are down" says less than the reason already shown.
        let generic = code == Some(RDKafkaErrorCode::AllBrokersDown);
        if cause || !(generic && was_down) {
            s.conn = ConnState::Down { reason: line };
        }
    }
}

impl ConsumerContext for FleetContext {}

#[cfg(test)]
mod tests {
    use super::*;

    /// An operator with a wrong password must see why, not only "1/1 brokers are down".
    #[test]
    fn the_cause_of_a_refused_connection_stays_shown() {
        let ctx = FleetContext {
            status: SharedStatus::default(),
        };
        ctx.error(
            KafkaError::Global(RDKafkaErrorCode::Authentication),
            "sasl_ssl://127.0.0.1:9093/bootstrap: SASL authentication error: SASL SCRAM authentication failed",
        );
        ctx.error(
            KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
            "1/1 brokers are down",
        );
        let ConnState::Down { reason } = ctx.status.lock().conn.clone() else {
            panic!("down")
        };
        assert!(reason.contains("SASL authentication error"), "{reason}");
        // A transport failure with its own reason replaces it (the next attempt's cause).
        ctx.error(
            KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure),
            "ssl://127.0.0.1:9093/bootstrap: Connection refused",
        );
        let ConnState::Down { reason } = ctx.status.lock().conn.clone() else {
            panic!("down")
        };
        assert!(reason.contains("Connection refused"), "{reason}");
    }
}
