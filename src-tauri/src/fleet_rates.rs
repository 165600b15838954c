//! The fleet chart's data (issue 11): messages/s and rejected/s over the last hour, one
//! sample every 10 s taken from the live counters by the frame stream, drawn on request by
//! the same `fleet-chart` code as the vehicle chart.

use fleet_chart::{ChartSpec, Series};
use fleet_model::FleetCounters;
use std::collections::VecDeque;

/// One sample per this many ms.
const EVERY_MS: i64 = 10_000;
/// An hour of samples.
const KEEP: usize = 360;

/// The last hour of the fleet's message and rejection rates.
#[derive(Debug, Default)]
pub struct FleetRates {
    /// (time, messages/s, rejected/s), oldest first.
    samples: VecDeque<(i64, f64, f64)>,
    last: Option<(i64, u64)>,
}

impl FleetRates {
    /// Takes a sample from the counters when the previous one is 10 s old.
    pub fn observe(&mut self, c: &FleetCounters, now_ms: i64) {
        match self.last {
            Some((t, _)) if now_ms - t < EVERY_MS => {}
            Some((t, rejected)) => {
                let secs = (now_ms - t) as f64 / 1000.0;
                let rej = c.rejected.saturating_sub(rejected) as f64 / secs;
                self.samples.push_back((now_ms, c.rate, rej));
                while self.samples.len() > KEEP {
                    self.samples.pop_front();
                }
                self.last = Some((now_ms, c.rejected));
            }
            None => self.last = Some((now_ms, c.rejected)),
        }
    }

    /// Forgets everything (another engine: its rates are not this one's).
    pub fn clear(&mut self) {
        *self = FleetRates::default();
    }

    /// The chart of the last hour up to `now_ms`.
    pub fn spec(&self, now_ms: i64, (width, height): (u32, u32)) -> ChartSpec {
        let series = |name: &str, pick: fn(&(i64, f64, f64)) -> f64| Series {
            name: name.into(),
            unit: "msg/s".into(),
            points: self.samples.iter().map(|s| (s.0, pick(s))).collect(),
        };
        ChartSpec {
            title: "Fleet · last hour".into(),
            from_ms: now_ms - KEEP as i64 * EVERY_MS,
            to_ms: now_ms,
            series: vec![series("messages/s", |s| s.1), series("rejected/s", |s| s.2)],
            alerts: Vec::new(),
            cursor_ms: None,
            width,
            height,
            utc_offset_s: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(rate: f64, rejected: u64) -> FleetCounters {
        FleetCounters {
            rate,
            rejected,
            ..Default::default()
        }
    }

    #[test]
    fn samples_every_10_s_with_rejections_per_second() {
        let mut r = FleetRates::default();
        r.observe(&counters(100.0, 0), 0);
        r.observe(&counters(100.0, 5), 5_000);
        r.observe(&counters(120.0, 20), 10_000);
        r.observe(&counters(80.0, 20), 20_000);
        assert_eq!(
            r.samples.iter().copied().collect::<Vec<_>>(),
            vec![(10_000, 120.0, 2.0), (20_000, 80.0, 0.0)]
        );
        let spec = r.spec(20_000, (400, 200));
        assert_eq!(spec.series[0].points, vec![(10_000, 120.0), (20_000, 80.0)]);
        assert_eq!(spec.to_ms - spec.from_ms, 3_600_000);
    }

    #[test]
    fn keeps_one_hour() {
        let mut r = FleetRates::default();
        for i in 0..1000 {
            r.observe(&counters(1.0, 0), i * 10_000);
        }
        assert_eq!(r.samples.len(), KEEP);
    }
}
