//! The live counters: message rates, rejections, lag and the counters bar (vehicle counts
//! come from the census).

use super::LiveFleet;
use fleet_model::{FleetCounters, RejectReason, TopicCounters};
use std::collections::BTreeMap;

/// A rate over a sliding window of one-second buckets.
#[derive(Debug, Clone, Default)]
pub(super) struct Rate {
    buckets: [(i64, u64); RATE_WINDOW],
}

const RATE_WINDOW: usize = 5;

impl Rate {
    pub(super) fn add(&mut self, now_ms: i64, n: u64) {
        let sec = now_ms.div_euclid(1000);
        let slot = &mut self.buckets[sec.rem_euclid(RATE_WINDOW as i64) as usize];
        if slot.0 != sec {
            *slot = (sec, 0);
        }
        slot.1 += n;
    }

    /// Messages per second over the last complete seconds of the window.
    fn per_second(&self, now_ms: i64) -> f64 {
        let sec = now_ms.div_euclid(1000);
        let lo = sec - RATE_WINDOW as i64 + 1;
        let total: u64 = self
            .buckets
            .iter()
            .filter(|(s, _)| *s >= lo && *s < sec)
            .map(|(_, n)| n)
            .sum();
        total as f64 / (RATE_WINDOW - 1) as f64
    }
}

#[derive(Debug, Clone, Default)]
pub(super) struct TopicState {
    messages: u64,
    rejected: u64,
    rate: Rate,
    lag: BTreeMap<i32, i64>,
}

impl LiveFleet {
    /// Counts messages of a topic.
    pub fn count(&mut self, topic: &str, messages: u64, rejected: u64, now_ms: i64) {
        let t = self.topics.entry(topic.to_string()).or_default();
        t.messages += messages;
        t.rejected += rejected;
        t.rate.add(now_ms, messages);
        if messages > 0 {
            self.last_message_ms = Some(now_ms);
        }
    }

    /// Counts a rejection by reason.
    pub fn count_rejection(&mut self, reason: RejectReason) {
        *self.rejected_by_reason.entry(reason).or_default() += 1;
    }

    /// Replaces the lag figures of a topic's partitions.
    pub fn set_lag(&mut self, topic: &str, partition: i32, lag: i64) {
        self.topics
            .entry(topic.to_string())
            .or_default()
            .lag
            .insert(partition, lag);
    }

    /// The counters bar.
    pub fn counters(&self, now_ms: i64) -> FleetCounters {
        let stale = self.census.before(self.cutoff_s(now_ms));
        let total = self.census.total();
        let mut c = FleetCounters {
            vehicles_total: total,
            vehicles_online: total - stale,
            vehicles_stale: stale,
            last_message_ms: self.last_message_ms,
            redis_rate: self.redis_rate.per_second(now_ms),
            kafka: self.kafka.clone(),
            redis: self.redis.clone(),
            gaps: self.gaps,
            cache_error: self.cache_error.clone(),
            partitions: self.partitions.clone(),
            ..Default::default()
        };
        for (name, t) in &self.topics {
            let lag = (!t.lag.is_empty()).then(|| t.lag.values().map(|l| (*l).max(0)).sum::<i64>());
            let rate = t.rate.per_second(now_ms);
            c.rate += rate;
            c.rejected += t.rejected;
            if let Some(l) = lag {
                *c.lag.get_or_insert(0) += l;
            }
            c.topics.insert(
                name.clone(),
                TopicCounters {
                    messages: t.messages,
                    rejected: t.rejected,
                    rate,
                    lag,
                },
            );
        }
        c.rejected_by_reason = self
            .rejected_by_reason
            .iter()
            .map(|(r, n)| (r.as_str().to_string(), *n))
            .collect();
        c
    }
}
