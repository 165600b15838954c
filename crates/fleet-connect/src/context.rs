//! librdkafka callbacks of the loader's consumer: the group's assignment (logged, and kept
//! for `--idle-exit` and the summary), failed commits, and client errors into `tracing`.

use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::{ClientContext, TopicPartitionList};
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tracing::{info, warn};

/// What the callbacks saw.
#[derive(Default)]
pub(crate) struct ConnectContext {
    /// Partitions the group gave this instance: (topic, partition).
    assigned: Mutex<BTreeSet<(String, i32)>>,
    /// Rebalance events so far (the first one means the group has been joined).
    rebalances: AtomicU64,
    /// Offset commits the broker refused (e.g. after the partition moved to another
    /// instance: that instance re-reads from the last good commit, nothing is lost).
    commit_errors: AtomicU64,
    /// High watermarks from librdkafka's statistics, i.e. from fetch responses (some brokers
    /// answer ListOffsets, which `fetch_watermarks` uses, with a wrong high watermark).
    high: Mutex<std::collections::HashMap<(String, i32), (i64, i64)>>,
}

fn names(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}

/// `topic[0,1,2] other[0]`, for logs and the summary.
pub(crate) fn describe<'a>(parts: impl IntoIterator<Item = &'a (String, i32)>) -> String {
    let mut by_topic: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for (t, p) in parts {
        by_topic.entry(t).or_default().push(p.to_string());
    }
    let v: Vec<String> = by_topic
        .into_iter()
        .map(|(t, ps)| format!("{t}[{}]", ps.join(",")))
        .collect();
    if v.is_empty() {
        "nothing".into()
    } else {
        v.join(" ")
    }
}

impl ConnectContext {
    /// The current assignment.
    pub(crate) fn assigned(&self) -> BTreeSet<(String, i32)> {
        self.assigned.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Rebalance events so far.
    pub(crate) fn rebalances(&self) -> u64 {
        self.rebalances.load(Ordering::Relaxed)
    }

    /// The (low, high) watermarks last reported for a partition (`None` until a fetch
    /// answered).
    pub(crate) fn watermarks(&self, topic: &str, partition: i32) -> Option<(i64, i64)> {
        let h = self.high.lock().ok()?;
        h.get(&(topic.to_string(), partition)).copied()
    }

    /// Refused commits so far.
    pub(crate) fn commit_errors(&self) -> u64 {
        self.commit_errors.load(Ordering::Relaxed)
    }
}

impl ClientContext for ConnectContext {
    fn stats(&self, stats: rdkafka::Statistics) {
        let Ok(mut high) = self.high.lock() else {
            return;
        };
        for (topic, t) in &stats.topics {
            for (p, part) in &t.partitions {
                if *p >= 0 && part.desired && part.hi_offset >= 0 {
                    high.insert((topic.clone(), *p), (part.lo_offset.max(0), part.hi_offset));
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        warn!(error = %error, %reason, "kafka client error");
    }
}

impl ConsumerContext for ConnectContext {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Ok(mut assigned) = self.assigned.lock() else {
            return;
        };
        // Assign and Revoke are applied as deltas: right for the eager protocol (revoke all,
        // then assign all) and for the cooperative one (increments) alike.
        match rebalance {
            Rebalance::Assign(tpl) => assigned.extend(names(tpl)),
            Rebalance::Revoke(tpl) => {
                for n in names(tpl) {
                    assigned.remove(&n);
                }
            }
            Rebalance::Error(e) => warn!(error = %e, "consumer group rebalance failed"),
        }
        info!("connect: assigned {}", describe(assigned.iter()));
        self.rebalances.fetch_add(1, Ordering::Relaxed);
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(e) = result {
            self.commit_errors.fetch_add(1, Ordering::Relaxed);
            warn!(error = %e, partitions = %describe(&names(offsets)), "offset commit refused; those messages will be loaded again (GEOADD is idempotent)");
        }
    }
}
