//! Snoozes on the ack topic (issue 12): fleetdash's own message, decoded beside the acks.

use super::json::{as_f64, as_text};
use super::{Decoded, Decoder, RawMessage, Rejection, check_id, reject, short};
use fleet_model::{RejectReason, Snooze, SnoozeKind};
use serde_json::{Map, Value};

impl Decoder {
    /// A snooze on the ack topic: fleetdash's own format (see [`Snooze`]), not mapped.
    pub(super) fn snooze(
        &self,
        kind: &Value,
        obj: &Map<String, Value>,
        msg: &RawMessage,
        now_ms: i64,
    ) -> Result<Decoded, Rejection> {
        let snooze = kind.as_str().and_then(SnoozeKind::parse).ok_or_else(|| {
            reject(
                RejectReason::InvalidField,
                format!("snooze {} is not `rule` or `vehicle`", short(kind)),
            )
        })?;
        let target = obj
            .get("target")
            .and_then(as_text)
            .ok_or_else(|| reject(RejectReason::MissingId, "snooze has no target"))?;
        check_id(&target)?;
        let until = obj
            .get("until")
            .and_then(as_f64)
            .filter(|u| u.is_finite())
            .ok_or_else(|| reject(RejectReason::InvalidField, "snooze has no `until` time"))?
            as i64;
        let operator = obj
            .get("operator")
            .and_then(as_text)
            .ok_or_else(|| reject(RejectReason::InvalidField, "snooze has no operator"))?;
        let ts = self.timestamp(obj, msg, now_ms)?;
        Ok(Decoded::Snooze(Snooze {
            snooze,
            target,
            until,
            operator,
            ts,
        }))
    }
}
