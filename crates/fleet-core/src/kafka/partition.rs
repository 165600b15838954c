//! One partition's sequence (SPEC §7): where a newly assigned partition starts, whether
//! the cache's resume point still belongs to it (a verification read of the last message
//! consumed, compared by fingerprint), and what each arriving offset means — hand over,
//! re-delivery, a broker quirk to re-fetch around, or a real hole. Gaps found here are
//! recorded, never skipped silently.

use super::poller::Poller;
use super::status::Tp;
use crate::config::StartFrom;
use crate::store::{GapRow, ResumePoint, now_ms};
use rdkafka::Offset;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// How long a verification read may bring nothing new before it is re-fetched from further
/// back (and, after the last attempt, the partition is taken as changed).
const VERIFY_PATIENCE: Duration = Duration::from_secs(2);

/// What the poller knows of one assigned partition.
#[derive(Debug, Clone)]
pub(super) struct Part {
    /// Next offset to hand over.
    pub(super) next: i64,
    /// Fingerprint of the message at `next - 1`, when one was consumed.
    pub(super) fingerprint: Option<i64>,
    /// Nothing at or past `next` has arrived since the last assign, seek or reconnect: a jump
    /// past `next` may be a broker answering a fetch that starts inside a record batch with
    /// the next batch, so it is verified by re-fetching. Once reading is sequential, a jump
    /// is a real hole (compaction, transaction markers) and is taken as it is: healing holes
    /// found while reading sequentially re-read whole partitions (quadratic on compacted
    /// topics).
    fresh: bool,
    /// Re-fetch attempts for the jump being verified.
    heal_attempts: u32,
    /// On resume: the offset and fingerprint of the last message consumed before, to check
    /// that this is still the same partition (SPEC §7).
    pub(super) verify: Option<(i64, i64)>,
    /// Low watermark when assigned: where a changed partition is read from.
    pub(super) low: i64,
    /// When the verification read (or its last re-fetch) started.
    verify_since: Instant,
}

/// What a newly assigned partition's start leaves to record in the cache.
pub(super) enum Record {
    /// Nothing: it resumes where the cache says.
    Nothing,
    /// The first run's start offset, so a restart before the first message loses nothing.
    Start(i64),
    /// The cached offsets cannot be used: (from, reason, detail); reading starts at the low
    /// watermark.
    Gap(i64, &'static str, String),
}

/// What to do with a message.
pub(super) enum Verdict {
    /// Hand it over.
    Accept,
    /// Drop it (re-delivery, verification read, or a re-fetch was started).
    Skip,
}

impl Poller {
    /// After a reconnect librdkafka fetches again from its own position; treat every
    /// partition as fresh so a broker quirk on that first fetch is still verified.
    pub(super) fn note_reconnect(&mut self) {
        let up = self.status.lock().conn.is_up();
        if up && !self.was_up {
            for p in self.parts.values_mut() {
                p.fresh = true;
            }
        }
        self.was_up = up;
    }

    /// A verification read that brought nothing for [`VERIFY_PATIENCE`]: some brokers answer a
    /// fetch starting inside a record batch with the next batch, or with nothing when it is
    /// the last. Re-fetch from further back, as for a jump. When the partition ends before
    /// that message, or even a read from its start does not bring it, the partition is not
    /// the one the offsets came from: a gap, and it is read again from its start.
    pub(super) fn nudge_verifications(&mut self) {
        let verifying: BTreeSet<Tp> = self
            .parts
            .iter()
            .filter(|(_, p)| p.verify.is_some())
            .map(|(tp, _)| tp.clone())
            .collect();
        {
            let mut s = self.status.lock();
            if s.verifying != verifying {
                s.verifying = verifying;
            }
        }
        let due: Vec<(Tp, i64)> = self
            .parts
            .iter()
            .filter_map(|(tp, p)| {
                let (voff, _) = p.verify?;
                (p.verify_since.elapsed() >= VERIFY_PATIENCE).then(|| (tp.clone(), voff))
            })
            .collect();
        for (tp, voff) in due {
            // The high watermark of the fetch responses (statistics), which brokers do not
            // under-report the way some answer ListOffsets.
            let hi = self.status.lock().watermarks.get(&tp).map(|w| w.1);
            if let Some(hi) = hi.filter(|hi| (0..=voff).contains(hi)) {
                self.restart_from_low(
                    &tp,
                    "beyond_end",
                    format!(
                        "the partition ends at offset {hi} but offset {voff} was read before: the topic was re-created or truncated"
                    ),
                );
            } else if !self.heal_gap(&tp, voff, voff) {
                self.restart_from_low(
                    &tp,
                    "topic_changed",
                    format!("the message at offset {voff} read before is not in the partition any more: the topic was re-created or the cluster replaced"),
                );
            }
        }
    }

    /// The partition is not the one the cached offsets came from: record the gap and read
    /// it again from its low watermark.
    fn restart_from_low(&mut self, tp: &Tp, reason: &'static str, detail: String) {
        let part = self.parts.get_mut(tp).expect("assigned");
        let (from, to) = (part.next, part.low);
        part.next = part.low;
        part.fingerprint = None;
        part.fresh = true;
        part.verify = None;
        part.heal_attempts = 0;
        self.gap(
            tp,
            from,
            to,
            reason,
            format!("{detail}; reading again from offset {to}"),
        );
        self.seek(tp, Offset::Offset(to));
    }

    /// Decides what a message means for its partition's sequence (SPEC §7: never skip
    /// silently; never hand anything over twice).
    pub(super) fn check(&mut self, tp: &Tp, m: &rdkafka::message::BorrowedMessage<'_>) -> Verdict {
        let Some(part) = self.parts.get_mut(tp) else {
            return Verdict::Accept;
        };
        let off = m.offset();
        match part.verify {
            Some((voff, vfp)) if off == voff => {
                part.verify = None;
                if fingerprint(m) == vfp {
                    debug!(topic = %tp.0, partition = tp.1, offset = off, "resume point verified");
                    return Verdict::Skip;
                }
                self.restart_from_low(
                    tp,
                    "topic_changed",
                    format!("the message at offset {voff} is not the one read before: the topic was re-created or the cluster replaced"),
                );
                return Verdict::Skip;
            }
            // Earlier records of the batch that holds it, or re-deliveries after a re-fetch
            // of ours: it is still to come.
            Some((voff, _)) if off < voff => part.verify_since = Instant::now(),
            // Jumped past it on a fresh fetch: re-fetch from further back to see it.
            Some((voff, _)) if part.fresh => {
                if self.heal_gap(tp, voff, off) {
                    return Verdict::Skip;
                }
                self.parts.get_mut(tp).expect("assigned").verify = None;
            }
            // Gone (compaction, transaction marker): it cannot be compared.
            Some(_) => part.verify = None,
            None => {}
        }
        let part = self.parts.get_mut(tp).expect("checked above");
        if off < part.next {
            // Already handed over: brokers answer a fetch with the whole record batch that
            // holds the fetch offset, and re-fetches of ours read again. Never twice.
            part.fresh = false;
            return Verdict::Skip;
        }
        if off > part.next && part.fresh {
            let expected = part.next;
            if self.heal_gap(tp, expected, off) {
                return Verdict::Skip;
            }
        }
        let part = self.parts.get_mut(tp).expect("checked above");
        if off > part.next {
            debug!(topic = %tp.0, partition = tp.1, expected = part.next, got = off, "offset hole (compaction or transaction markers)");
        }
        part.next = off + 1;
        part.fingerprint = Some(fingerprint(m));
        part.verify = None;
        part.fresh = false;
        part.heal_attempts = 0;
        if self.reference.is_waiting() {
            self.reference.note_read(tp, off + 1);
        }
        Verdict::Accept
    }

    pub(super) fn gap(
        &mut self,
        tp: &Tp,
        from: i64,
        to: i64,
        reason: &'static str,
        detail: String,
    ) {
        warn!(topic = %tp.0, partition = tp.1, from, to, reason, "{detail}");
        self.pending_gaps.push(GapRow {
            topic: tp.0.clone(),
            partition: tp.1,
            from,
            to,
            reason,
            detail,
            detected_ms: now_ms(),
        });
        self.pending_offsets.insert(tp.clone(), to);
    }

    pub(super) fn seek(&self, tp: &Tp, to: Offset) -> bool {
        match self.consumer.seek(&tp.0, tp.1, to, Duration::from_secs(5)) {
            Ok(()) => true,
            Err(e) => {
                warn!(topic = %tp.0, partition = tp.1, error = %e, "seek failed");
                false
            }
        }
    }

    /// Where a newly assigned partition starts: the cache's offset when it still belongs to
    /// this partition, else the earliest offset still readable with a gap recorded (SPEC §7);
    /// on the very first run the low or high watermark per `kafka.start`, recorded at once so
    /// a restart before the first message loses nothing. Returns (fetch offset, state, what to
    /// record once the assignment succeeded).
    pub(super) fn start_of(
        &self,
        tp: &Tp,
        lo: i64,
        hi: i64,
        at: Option<i64>,
    ) -> (i64, Part, Record) {
        let lo = lo.max(0);
        let mut part = Part {
            next: lo,
            fingerprint: None,
            fresh: true,
            heal_attempts: 0,
            verify: None,
            low: lo,
            verify_since: Instant::now(),
        };
        let Some(rp) = self.resume.get(tp).cloned() else {
            part.next = match self.start {
                StartFrom::Earliest => lo,
                StartFrom::Latest => hi.max(lo),
                // Nothing at or after the time (or no answer): the end, as `latest`.
                StartFrom::At(_) => at.unwrap_or(hi).clamp(lo, hi.max(lo)),
            };
            let next = part.next;
            return (next, part, Record::Start(next));
        };
        let problem = resume_problem(&rp, self.cluster_id.as_deref(), lo, hi);
        if let Some((reason, detail)) = problem {
            return (lo, part, Record::Gap(rp.next, reason, detail));
        }
        part.next = rp.next;
        part.fingerprint = rp.fingerprint;
        match rp.fingerprint {
            // Read the last message consumed again and compare it (`check`).
            Some(fp) if rp.next > lo => {
                part.verify = Some((rp.next - 1, fp));
                (rp.next - 1, part, Record::Nothing)
            }
            _ => (rp.next, part, Record::Nothing),
        }
    }

    /// A message arrived beyond the expected offset on a fresh fetch. Kafka has real holes
    /// (compaction, transaction markers), but some brokers answer a fetch that starts inside
    /// a record batch with the *next* batch, which would silently lose messages. So we
    /// re-fetch from further and further back (re-delivered messages are skipped) and accept
    /// the hole when a sequential read jumps over it too. Only fresh fetches get here, so the
    /// cost is per (re)start, not per hole. Returns true when a re-fetch was started.
    pub(super) fn heal_gap(&mut self, tp: &Tp, expected: i64, got: i64) -> bool {
        let part = self.parts.get_mut(tp).expect("assigned");
        let target = match part.heal_attempts {
            0 => expected,
            1 => (expected - 1_000).max(part.low),
            2 => (expected - 50_000).max(part.low),
            3 => part.low,
            _ => return false,
        };
        warn!(topic = %tp.0, partition = tp.1, expected, got, attempt = part.heal_attempts, "offset gap on a fresh fetch; re-fetching");
        part.heal_attempts += 1;
        part.verify_since = Instant::now();
        self.seek(tp, Offset::Offset(target))
    }
}

/// Why a cached resume point cannot be used as it is, judged from the broker's answers at
/// assignment (SPEC §7): another cluster, an emptied partition, or expired offsets. A
/// non-empty partition that only *looks* too short is left to the verification read, since
/// some brokers under-report the high watermark.
fn resume_problem(
    rp: &ResumePoint,
    cluster_now: Option<&str>,
    lo: i64,
    hi: i64,
) -> Option<(&'static str, String)> {
    match (rp.cluster_id.as_deref(), cluster_now) {
        (Some(was), Some(now)) if was != now => Some((
            "cluster_changed",
            format!(
                "the cached offsets came from cluster {was}, this is cluster {now}; reading from offset {lo}"
            ),
        )),
        _ if hi <= lo && rp.next > lo => Some((
            "beyond_end",
            format!(
                "the cached offset {} is past the partition's end ({hi}): the topic was re-created or truncated; reading from offset {lo}",
                rp.next
            ),
        )),
        _ if rp.next < lo => Some((
            "expired",
            format!(
                "offsets {}..{lo} expired (retention) before fleetdash read them",
                rp.next
            ),
        )),
        _ => None,
    }
}

/// Identifies a message well enough to tell a re-created topic from the one read before:
/// FNV-1a over its timestamp, key, payload length and first 256 payload bytes.
fn fingerprint(m: &rdkafka::message::BorrowedMessage<'_>) -> i64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(PRIME);
        }
    };
    eat(&m.timestamp().to_millis().unwrap_or(-1).to_le_bytes());
    eat(m.key().unwrap_or_default());
    let payload = m.payload().unwrap_or_default();
    eat(&(payload.len() as u64).to_le_bytes());
    eat(&payload[..payload.len().min(256)]);
    h as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rp(next: i64, cluster: Option<&str>) -> ResumePoint {
        ResumePoint {
            topic: "t".into(),
            partition: 0,
            next,
            fingerprint: Some(1),
            cluster_id: cluster.map(str::to_string),
        }
    }

    /// Retention is decided here because the test broker (tansu) cannot delete records: the
    /// offsets the cache would resume from are below the low watermark → a gap from the
    /// cached offset to the low watermark.
    #[test]
    fn resume_problems() {
        let reason = |r: &ResumePoint, c, lo, hi| resume_problem(r, c, lo, hi).map(|p| p.0);
        assert_eq!(reason(&rp(100, None), None, 150, 200), Some("expired"));
        assert_eq!(
            reason(&rp(100, Some("a")), Some("b"), 0, 200),
            Some("cluster_changed")
        );
        assert_eq!(reason(&rp(100, None), None, 0, 0), Some("beyond_end"));
        // A partition that merely looks short is verified by reading, not judged here.
        assert_eq!(reason(&rp(100, Some("a")), Some("a"), 0, 50), None);
        assert_eq!(reason(&rp(100, None), Some("a"), 100, 100), None);
        assert_eq!(reason(&rp(0, None), None, 0, 0), None);
        let (_, detail) = resume_problem(&rp(100, None), None, 150, 200).unwrap();
        assert!(detail.contains("100..150"), "{detail}");
    }
}
