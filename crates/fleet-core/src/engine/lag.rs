//! The lag panel's rows and the `consumer_stuck` alert (issue 12): per partition, the cache's
//! committed offset against the broker's high watermark, the read rate, when it last moved,
//! and whether it is stuck — behind the broker and not advancing for `fleet.stuck_after_s`.
//! A stuck partition is what an operator needs to hear about before the map goes stale.

use crate::kafka::KafkaStatus;
use fleet_model::{Alert, AlertState, PartitionLag, Severity, alert_id};
use std::collections::{BTreeMap, HashMap};

/// The stuck alert's rule name.
pub const STUCK_RULE: &str = "consumer_stuck";

#[derive(Debug, Default)]
struct Track {
    position: i64,
    /// When the position last moved (or was first seen), ms.
    advanced_ms: i64,
    /// Messages/s, smoothed over the ticks.
    rate: f64,
    last_tick_ms: i64,
    /// The open stuck alert.
    alert: Option<Alert>,
}

/// Tracks every assigned partition from tick to tick.
#[derive(Debug)]
pub struct LagTracker {
    parts: BTreeMap<(String, i32), Track>,
    stuck_after_ms: i64,
}

impl LagTracker {
    /// A tracker that calls a partition stuck after `stuck_after_s` without progress.
    pub fn new(stuck_after_s: f64) -> Self {
        Self {
            parts: BTreeMap::new(),
            stuck_after_ms: (stuck_after_s * 1000.0) as i64,
        }
    }

    /// One tick: the panel's rows; stuck alerts raised or resolved go to `out`.
    pub fn update(
        &mut self,
        st: &KafkaStatus,
        committed: &HashMap<(String, i32), i64>,
        now: i64,
        out: &mut Vec<Alert>,
    ) -> Vec<PartitionLag> {
        self.parts.retain(|tp, _| st.assigned.contains(tp));
        let lags: HashMap<(String, i32), i64> =
            st.lag().into_iter().map(|(t, p, l)| ((t, p), l)).collect();
        let mut rows = Vec::with_capacity(st.assigned.len());
        for tp in &st.assigned {
            let position = st.position.get(tp).copied();
            let lag = lags.get(tp).copied();
            let t = self.parts.entry(tp.clone()).or_insert_with(|| Track {
                position: position.unwrap_or(-1),
                advanced_ms: now,
                last_tick_ms: now,
                ..Default::default()
            });
            let pos = position.unwrap_or(t.position);
            let dt = (now - t.last_tick_ms).max(1) as f64 / 1000.0;
            let moved = (pos - t.position).max(0);
            if moved > 0 {
                t.advanced_ms = now;
            }
            // ~5 s smoothing at a 1 s tick.
            t.rate = if t.last_tick_ms == now {
                0.0
            } else {
                0.8 * t.rate + 0.2 * moved as f64 / dt
            };
            t.position = pos;
            t.last_tick_ms = now;
            let behind = lag.is_some_and(|l| l > 0);
            let stuck = behind && now - t.advanced_ms >= self.stuck_after_ms;
            match (&t.alert, stuck) {
                (None, true) => {
                    let at = format!("{}/{}", tp.0, tp.1);
                    let a = Alert::open(
                        alert_id(STUCK_RULE, &at, t.advanced_ms),
                        at,
                        STUCK_RULE,
                        Severity::Warning,
                        format!(
                            "{} messages behind and not advancing for {} s",
                            lag.unwrap_or(0),
                            (now - t.advanced_ms) / 1000
                        ),
                        now,
                    );
                    out.push(a.clone());
                    t.alert = Some(a);
                }
                (Some(_), false) => {
                    if let Some(mut a) = t.alert.take() {
                        a.state = AlertState::Resolved;
                        a.resolved_ms = Some(now);
                        out.push(a);
                    }
                }
                _ => {}
            }
            rows.push(PartitionLag {
                topic: tp.0.clone(),
                partition: tp.1,
                committed: committed.get(tp).copied(),
                high_watermark: st.watermarks.get(tp).map(|w| w.1).filter(|h| *h >= 0),
                lag,
                rate: t.rate,
                last_message_ms: Some(t.advanced_ms),
                stuck,
            });
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(pos: i64, hi: i64) -> KafkaStatus {
        let tp = ("t".to_string(), 0);
        let mut s = KafkaStatus::default();
        s.assigned.insert(tp.clone());
        s.watermarks.insert(tp.clone(), (0, hi));
        s.position.insert(tp, pos);
        s
    }

    #[test]
    fn a_partition_behind_and_not_moving_is_stuck_once_and_resolves_when_it_moves() {
        let mut l = LagTracker::new(60.0);
        let committed = HashMap::from([(("t".to_string(), 0), 90)]);
        let mut out = Vec::new();
        let rows = l.update(&status(100, 150), &committed, 0, &mut out);
        assert_eq!(
            (
                rows[0].committed,
                rows[0].high_watermark,
                rows[0].lag,
                rows[0].stuck
            ),
            (Some(90), Some(150), Some(50), false)
        );
        l.update(&status(100, 160), &committed, 59_000, &mut out);
        assert!(out.is_empty());
        let rows = l.update(&status(100, 160), &committed, 60_000, &mut out);
        assert!(rows[0].stuck);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].rule.as_str(), out[0].vehicle.as_str()),
            (STUCK_RULE, "t/0")
        );
        l.update(&status(100, 170), &committed, 70_000, &mut out);
        assert_eq!(out.len(), 1, "raised once");
        let rows = l.update(&status(120, 170), &committed, 71_000, &mut out);
        assert!(!rows[0].stuck);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].state, AlertState::Resolved);
        assert_eq!(out[1].id, out[0].id);
        assert!(rows[0].rate > 0.0);
    }

    #[test]
    fn caught_up_is_never_stuck() {
        let mut l = LagTracker::new(1.0);
        let mut out = Vec::new();
        l.update(&status(100, 100), &HashMap::new(), 0, &mut out);
        let rows = l.update(&status(100, 100), &HashMap::new(), 600_000, &mut out);
        assert!(!rows[0].stuck && out.is_empty());
        assert_eq!(rows[0].lag, Some(0));
    }
}
