//! Helpers of the fault suite (`faults_e2e.rs`): its scale, a seeded RNG for kill points,
//! the mixed-topic environment and a size-limited tmpfs.

use super::Env;
use fleet_testkit::{Broker, MIXED_TOPICS, sqlite3_i64};
use std::collections::BTreeMap;
use std::path::Path;

/// An integer from the environment, or `default`: the suite's scale is set by
/// `FLEETDASH_FAULT_*` so CI runs a short version and `./dev faults` the full one.
pub fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .replace(['_', ','], "")
            .parse()
            .unwrap_or_else(|e| panic!("{name}={v}: {e}")),
        Err(_) => default,
    }
}

/// Messages produced by the kill test (`FLEETDASH_FAULT_MESSAGES`; CI 60,000, full 1M).
pub fn fault_messages() -> u64 {
    env_u64("FLEETDASH_FAULT_MESSAGES", 60_000)
}

/// SIGKILLs of `ingest` (`FLEETDASH_FAULT_KILLS`; CI 3, full 20).
pub fn fault_kills() -> u64 {
    env_u64("FLEETDASH_FAULT_KILLS", 3)
}

/// Broker and Redis outage (`FLEETDASH_FAULT_OUTAGE_S`; CI 20 s, full 120 s).
pub fn fault_outage_s() -> u64 {
    env_u64("FLEETDASH_FAULT_OUTAGE_S", 20)
}

/// The RNG seed (`FLEETDASH_FAULT_SEED` repeats a run), printed by the tests.
pub fn fault_seed() -> u64 {
    env_u64(
        "FLEETDASH_FAULT_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    )
}

/// SplitMix64: enough randomness for kill points, reproducible from the printed seed,
/// without a dependency.
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A broker with the five mixed topics.
pub fn mixed_broker() -> Broker {
    let b = Broker::start_memory();
    for (topic, _, partitions) in MIXED_TOPICS {
        b.create_topic(topic, partitions);
    }
    b
}

/// An [`Env`] whose config reads the mixed topics into its cache.
pub fn mixed_env(broker: &Broker, name: &str) -> Env {
    let env = Env::new("");
    let cfg = fleet_testkit::mixed_config(&broker.bootstrap(), &env.cache(), name);
    std::fs::write(&env.config, cfg).unwrap();
    env
}

/// Per topic: the cache's next offsets summed (= messages consumed, offsets start at 0).
pub fn consumed(cache: &Path) -> BTreeMap<String, u64> {
    MIXED_TOPICS
        .iter()
        .map(|(t, _, _)| {
            let n = sqlite3_i64(
                cache,
                &format!("SELECT COALESCE(SUM(next_offset), 0) FROM offsets WHERE topic = '{t}'"),
            );
            ((*t).to_string(), n as u64)
        })
        .collect()
}

/// After a crash, what the cache says it consumed is what it holds: the offsets were
/// committed with the rows. Checked on the keep-all topics (one row per message).
pub fn assert_offsets_match_contents(cache: &Path, when: &str) {
    let c = consumed(cache);
    for (topic, table) in [
        ("cars.gps.json", "positions"),
        ("cars.status.json", "status_samples"),
    ] {
        let rows = sqlite3_i64(
            cache,
            &format!(
                "SELECT (SELECT COUNT(*) FROM {table} WHERE ktopic = '{topic}') + \
                 (SELECT COUNT(*) FROM quarantine WHERE topic = '{topic}')"
            ),
        );
        assert_eq!(
            rows as u64, c[topic],
            "{when}: {topic} rows + quarantined = next offsets"
        );
        let dups = sqlite3_i64(
            cache,
            &format!(
                "SELECT COUNT(*) - COUNT(DISTINCT kpartition || ':' || koffset) FROM {table} \
                 WHERE ktopic = '{topic}'"
            ),
        );
        assert_eq!(dups, 0, "{when}: no message stored twice in {table}");
    }
}

/// Fills the file system holding `path` to the last byte with a ballast file at `path`:
/// big writes first, then small ones until ENOSPC. Returns the ballast's size.
pub fn fill_with_ballast(path: &Path) -> u64 {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let mut size = 0u64;
    for chunk in [1 << 20, 64 << 10, 4 << 10, 512] {
        let buf = vec![0xa5u8; chunk];
        while f.write_all(&buf).is_ok() {
            size += chunk as u64;
        }
    }
    let _ = f.sync_all();
    size
}
