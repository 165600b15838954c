//! Trusting the cache (SPEC §7, issue 10) against a real broker: offsets that no longer
//! belong to the partition are never skipped silently (re-created topic, swapped broker,
//! expired retention — decided in `fleet-core`'s poller tests, since tansu cannot delete
//! records), one engine per cache, bad timestamps quarantined, and a full disk
//! stops `ingest` with the reason instead of stalling it.

mod common;

use common::*;
use fleet_testkit::{Broker, Producer};
use std::process::Command;
use std::time::{Duration, Instant};

const GPS: &str = "cars.gps.json";

fn env_for(brokers: &str, extra: &str) -> Env {
    Env::new(&format!(
        "{}\n[store]\npath = \"{{store}}\"\n{KEEP_ALL}{extra}",
        kafka_section(brokers, &[(GPS, "position")])
    ))
}

/// `n` position messages with sequence numbers `from..from + n` (ts = base + seq).
fn produce(p: &Producer, base: i64, from: i64, n: i64) {
    p.send_many(
        GPS,
        (from..from + n).map(|i| {
            (
                Some(format!("car-{:03}", i % 50).into_bytes()),
                format!(
                    r#"{{"lat":{:.5},"lng":{:.5},"ts":{}}}"#,
                    37.4 + (i % 100) as f64 * 1e-4,
                    127.0 + (i % 97) as f64 * 1e-4,
                    base + i
                )
                .into_bytes(),
            )
        }),
    );
}

fn gaps(env: &Env) -> (i64, Vec<String>) {
    let s = env.stats();
    let reasons = s["recent_gaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["reason"].as_str().unwrap().to_string())
        .collect();
    (s["gaps"].as_i64().unwrap(), reasons)
}

/// Review finding 1: a topic deleted and re-created while fleetdash was closed. Before,
/// 0 of the new messages reached the cache and nothing said so.
#[test]
fn a_recreated_topic_is_read_again_and_the_gap_recorded() {
    let broker = Broker::start_memory();
    broker.create_topic(GPS, 1);
    let env = env_for(&broker.bootstrap(), "");
    let base = recent_base_ms();
    produce(&broker.producer(), base, 0, 900);
    env.ingest_until_idle(1.0);
    assert_eq!(env.stats()["positions"], 900);
    assert_eq!(gaps(&env).0, 0, "no gap on a clean run");

    broker.delete_topic(GPS);
    broker.create_topic(GPS, 1);
    // As many messages as before: the cached offset is exactly the new end, so only the
    // partition's identity can tell (a plain watermark check would see "caught up").
    produce(&broker.producer(), base, 900, 900);
    env.ingest_until_idle(1.0);
    let s = env.stats();
    assert_eq!(
        s["positions"],
        1800,
        "every new message arrived: {s}\n{}",
        env.log()
    );
    let (n, reasons) = gaps(&env);
    assert_eq!(n, 1, "one gap recorded: {s}");
    assert!(
        reasons[0] == "topic_changed",
        "found by the partition's identity, not its length: {s}"
    );
    assert_eq!(
        query_i64(&env.cache(), "SELECT COUNT(DISTINCT ts) FROM positions"),
        1800,
        "no duplicates, no losses"
    );
    // A third run reads nothing again and records nothing new.
    let out = env.ingest_until_idle(1.0);
    assert_eq!(out["messages"], 0, "{out}");
    assert_eq!(gaps(&env).0, 1);
}

/// The same while the engine is running. Still open (issue 10), and not for the reason
/// first thought: the engine does not wait at its old position, it dies. Deleting the topic
/// makes tansu answer librdkafka's metadata refresh with a topic that has no name, and
/// librdkafka 2.12.1 (bundled) dereferences that name: SIGSEGV in
/// `rd_kafka_metadata_cache_find` on its main thread (gdb, 2026-12-05). The stats the test
/// reads come from the cache, so the dead engine looked like a stalled one. Kafka names the
/// topic in that answer; with tansu the case cannot run until either side is fixed. The
/// same happened with the broker restarted empty under the engine, even with the engine
/// paused (SIGSTOP) until the topic existed again.
#[test]
#[ignore = "open: a topic re-created while ingesting is only detected on the next start"]
fn a_topic_recreated_while_ingesting_is_read_again_and_the_gap_recorded() {
    let broker = Broker::start_memory();
    broker.create_topic(GPS, 1);
    let env = env_for(&broker.bootstrap(), "");
    let base = recent_base_ms();
    produce(&broker.producer(), base, 0, 900);
    let mut ingest = env.spawn_ingest(&[]);
    env.wait_stats(Duration::from_secs(60), "the first 900 arrive", |s| {
        s["positions"] == 900
    });

    broker.delete_topic(GPS);
    broker.create_topic(GPS, 1);
    produce(&broker.producer(), base, 900, 300);
    env.wait_stats(
        Duration::from_secs(60),
        "the re-created topic's 300 messages arrive and a gap is recorded",
        |s| s["positions"] == 1200 && s["gaps"] == 1,
    );
    // Still reading sequentially afterwards, nothing twice.
    produce(&broker.producer(), base, 1200, 200);
    env.wait_stats(Duration::from_secs(30), "later messages arrive", |s| {
        s["positions"] == 1400
    });
    assert!(interrupt(&mut ingest).success(), "{}", env.log());
    let (n, reasons) = gaps(&env);
    assert_eq!(n, 1, "{reasons:?}");
    assert!(
        reasons[0] == "beyond_end" || reasons[0] == "topic_changed",
        "{reasons:?}"
    );
    assert_eq!(
        query_i64(&env.cache(), "SELECT COUNT(DISTINCT ts) FROM positions"),
        1400,
        "no duplicates, no losses"
    );
}

/// Settings can point the app at another cluster: the cached offsets (past the new
/// partition's end) must not hide the new cluster's messages.
#[test]
fn another_broker_behind_the_same_address_is_detected() {
    let first = Broker::start_memory();
    first.create_topic(GPS, 1);
    let env = env_for(&first.bootstrap(), "");
    let base = recent_base_ms();
    produce(&first.producer(), base, 0, 500);
    env.ingest_until_idle(1.0);
    assert_eq!(env.stats()["positions"], 500);

    let second = Broker::start_memory();
    second.create_topic(GPS, 1);
    produce(&second.producer(), base, 500, 100);
    let config = std::fs::read_to_string(&env.config)
        .unwrap()
        .replace(&first.bootstrap(), &second.bootstrap());
    std::fs::write(&env.config, config).unwrap();
    env.ingest_until_idle(1.0);
    let s = env.stats();
    assert_eq!(s["positions"], 600, "{s}\n{}", env.log());
    let (n, reasons) = gaps(&env);
    assert_eq!(n, 1, "{s}");
    assert!(
        reasons[0] == "beyond_end" || reasons[0] == "cluster_changed",
        "{reasons:?}"
    );
}

/// Review finding 3: two engines on one cache doubled every row. The second one now exits 1
/// naming the holder, and readers keep working beside the engine.
#[test]
fn a_second_engine_on_the_same_cache_is_refused() {
    let broker = Broker::start_memory();
    broker.create_topic(GPS, 1);
    let env = env_for(&broker.bootstrap(), "");
    produce(&broker.producer(), recent_base_ms(), 0, 300);
    let mut first = env.spawn_ingest(&[]);
    env.wait_stats(Duration::from_secs(60), "the first engine ingests", |s| {
        s["positions"] == 300
    });
    let second = fleetctl()
        .args(["ingest", "--idle-exit", "1", "--config"])
        .arg(&env.config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{err}");
    assert!(
        err.contains("is in use by process") && err.contains(&first.id().to_string()),
        "{err}"
    );
    assert_eq!(
        env.stats()["positions"],
        300,
        "the refused engine changed nothing"
    );
    assert!(interrupt(&mut first).success());
    // Once the first has stopped, the cache is free again.
    env.ingest_until_idle(0.5);
}

/// Runs `fleetctl ARGS --config F` and returns (exit code, stderr).
fn fleetctl_fails(env: &Env, args: &[&str]) -> (Option<i32>, String) {
    let out = fleetctl()
        .args(args)
        .arg("--config")
        .arg(&env.config)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// SPEC §7: a cache file that is not a fleetdash cache — garbage, another program's SQLite
/// database, a truncated cache — is reported as such (exit 1, no panic) and never written to.
/// Before, another program's database was migrated (our tables added to it).
#[test]
fn a_file_that_is_not_a_cache_is_reported_and_left_untouched() {
    let broker = Broker::start_memory();
    broker.create_topic(GPS, 1);
    let env = env_for(&broker.bootstrap(), "");
    let cache = env.cache();

    // Not SQLite at all.
    let garbage: Vec<u8> = (0..64 * 1024u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&cache, &garbage).unwrap();
    for args in [&["ingest", "--idle-exit", "1"][..], &["stats"][..]] {
        let (code, err) = fleetctl_fails(&env, args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(err.contains("is not a fleetdash cache"), "{args:?}: {err}");
    }
    assert!(
        std::fs::read(&cache).unwrap() == garbage,
        "garbage left as it was"
    );

    // Another program's database.
    std::fs::remove_file(&cache).unwrap();
    let made = Command::new("sqlite3")
        .arg(&cache)
        .arg("CREATE TABLE invoices(id INTEGER PRIMARY KEY, total REAL); INSERT INTO invoices VALUES (1, 9.5);")
        .status()
        .expect("sqlite3 (apt: sqlite3)");
    assert!(made.success());
    let before = std::fs::read(&cache).unwrap();
    let (code, err) = fleetctl_fails(&env, &["ingest", "--idle-exit", "1"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("is not a fleetdash cache") && err.contains("invoices"),
        "{err}"
    );
    assert!(
        std::fs::read(&cache).unwrap() == before,
        "the other database is untouched"
    );

    // A real cache cut short (a copy interrupted, a disk error).
    std::fs::remove_file(&cache).unwrap();
    produce(&broker.producer(), recent_base_ms(), 0, 3_000);
    env.ingest_until_idle(0.5);
    let len = std::fs::metadata(&cache).unwrap().len();
    assert!(len > 64 * 1024, "cache of {len} bytes");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&cache)
        .unwrap();
    f.set_len(len / 3).unwrap();
    drop(f);
    let truncated = std::fs::read(&cache).unwrap();
    let (code, err) = fleetctl_fails(&env, &["stats"]);
    assert_eq!(code, Some(1), "a clean error, not a panic: {err}");
    assert!(
        err.contains("is not a fleetdash cache") || err.contains("malformed"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        std::fs::read(&cache).unwrap() == truncated,
        "not overwritten"
    );
}

/// Review finding 8 / SPEC §7: a fix dated in the year 5000 or 1980 is quarantined as
/// `bad_ts` and does not pin its vehicle; good fixes around it are kept.
#[test]
fn timestamps_far_from_now_are_quarantined() {
    let broker = Broker::start_memory();
    broker.create_topic(GPS, 1);
    let env = env_for(&broker.bootstrap(), "");
    let base = recent_base_ms();
    let p = broker.producer();
    produce(&p, base, 0, 10);
    p.send_many(
        GPS,
        [
            r#"{"lat":1,"lng":2,"ts":"5000-01-01T00:00:00Z"}"#,
            r#"{"lat":1,"lng":2,"ts":315532800000}"#,
        ]
        .map(|v| (Some(b"car-000".to_vec()), v.as_bytes().to_vec())),
    );
    produce(&p, base, 10, 10);
    env.ingest_until_idle(1.0);
    let s = env.stats();
    assert_eq!(s["positions"], 20, "{s}");
    assert_eq!(s["rejected_by_reason"]["bad_ts"], 2, "{s}");
    let last: i64 = query_i64(
        &env.cache(),
        "SELECT last_ts FROM vehicles WHERE id = 'car-000'",
    );
    assert!(
        last < base + 100,
        "the vehicle is not pinned in the future: {last}"
    );
}

/// Review finding 2: a cache on a full disk made ingest run silently until killed. Now it
/// exits 1 within seconds naming the cause, the file stays intact, and once space is freed
/// a new run resumes and loses nothing. Needs root for a small tmpfs (CI runs as root).
#[test]
fn a_full_disk_stops_ingest_with_the_reason_and_loses_nothing() {
    if !is_root() {
        eprintln!("SKIPPED: mounting a tmpfs needs root");
        return;
    }
    let broker = Broker::start_memory();
    broker.create_topic(GPS, 1);
    let mnt = tempfile::tempdir().unwrap();
    let _mount = Tmpfs::mount(mnt.path(), "4m");
    let cache = mnt.path().join("cache.sqlite");
    let env = Env::new(&format!(
        "{}\n[store]\npath = \"{}\"\n{KEEP_ALL}",
        kafka_section(&broker.bootstrap(), &[(GPS, "position")]),
        cache.display()
    ));
    const N: i64 = 60_000;
    produce(&broker.producer(), recent_base_ms(), 0, N);
    let started = Instant::now();
    let out = fleetctl()
        .args(["ingest", "--idle-exit", "2", "--config"])
        .arg(&env.config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot be written") && err.contains("full"),
        "names the cause: {err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "stopped promptly, not after a time-out: {:?}",
        started.elapsed()
    );
    let check = Command::new("sqlite3")
        .arg(&cache)
        .arg("PRAGMA integrity_check")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&check.stdout).trim(), "ok");
    let partial = query_i64(&cache, "SELECT COUNT(*) FROM positions");
    assert!(partial < N, "the disk filled up before the end ({partial})");
    assert_eq!(
        partial,
        query_i64(&cache, "SELECT COALESCE(SUM(next_offset), 0) FROM offsets"),
        "offsets match contents"
    );
    Tmpfs::resize(mnt.path(), "64m");
    env.ingest_until_idle(1.0);
    assert_eq!(query_i64(&cache, "SELECT COUNT(*) FROM positions"), N);
    assert_eq!(
        query_i64(&cache, "SELECT COUNT(DISTINCT ts) FROM positions"),
        N
    );
}

/// SPEC §4 `fleetctl check`: what the app would connect to, and why it fails.
#[test]
fn check_reports_topics_lag_and_the_first_failure() {
    // SQLite storage: tansu's memory engine under-reports ListOffsets' high watermark.
    let broker = Broker::start_sqlite();
    broker.create_topic(GPS, 2);
    let env = env_for(
        &broker.bootstrap(),
        "[redis]\nurl = \"redis://127.0.0.1:6379/9\"\ngeo_keys = [\"fleetdash-check-none\"]\n",
    );
    produce(&broker.producer(), recent_base_ms(), 0, 40);
    env.ingest_until_idle(0.5);
    produce(&broker.producer(), recent_base_ms(), 40, 10);
    let r = env.run_json(&["check"]);
    assert_eq!(r["ok"], true, "{r}");
    let parts = &r["kafka"]["topics"][GPS]["partitions"];
    let lag: i64 = (0..2)
        .map(|p| parts[p.to_string()]["lag"].as_i64().unwrap())
        .sum();
    assert_eq!(lag, 10, "the 10 messages produced after the ingest: {r}");
    assert_eq!(r["redis"]["ok"], true, "{r}");

    // A topic that does not exist is named, exit 1.
    let missing = Env::new(&format!(
        "{}\n[store]\npath = \"{{store}}\"\n",
        kafka_section(&broker.bootstrap(), &[("no.such.topic", "position")])
    ));
    let out = fleetctl()
        .args(["check", "--config"])
        .arg(&missing.config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no.such.topic"), "{err}");

    // Nobody listening: the brokers are named, exit 1.
    let port = fleet_testkit::free_port();
    let down = Env::new(&format!(
        "{}\n[store]\npath = \"{{store}}\"\n",
        kafka_section(&format!("127.0.0.1:{port}"), &[(GPS, "position")])
    ));
    let out = fleetctl()
        .args(["check", "--config"])
        .arg(&down.config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}

/// Issue 10, churn: the cap was enforced only on the engine's 1 s tick, so a flood of new ids
/// took the live fleet far over `fleet.max_live_vehicles` (340,000 under 250,000 in `bench
/// churn`). Now every batch that crosses the cap evicts at once: the fleet never holds more
/// than the cap plus one batch, and the cache still gets every vehicle.
#[test]
fn a_flood_of_new_ids_never_takes_the_live_fleet_past_its_cap_plus_a_batch() {
    let broker = Broker::start_memory();
    broker.create_topic(GPS, 1);
    let n = 6000;
    broker.producer().send_many(
        GPS,
        (0..n).map(|i| {
            (
                Some(format!("flood-{i:05}").into_bytes()),
                format!(r#"{{"lat":37.5,"lng":{:.5}}}"#, 127.0 + f64::from(i) * 1e-5).into_bytes(),
            )
        }),
    );
    let kafka = kafka_section(&broker.bootstrap(), &[(GPS, "position")]).replace(
        "batch_max_ms = 20\n",
        "batch_max_ms = 20\nbatch_max_messages = 100\n",
    );
    let env = Env::new(&format!(
        "{kafka}\n[store]\npath = \"{{store}}\"\n\n[fleet]\nmax_live_vehicles = 200\n"
    ));
    let s = env.run_json(&["ingest", "--idle-exit", "1", "--frame-probe-ms", "2"]);
    let probe = &s["frames"];
    let largest = probe["max_live_fleet"].as_u64().unwrap();
    assert!(probe["frames"].as_u64().unwrap() > 10, "{probe}");
    assert!(
        largest <= 300,
        "the live fleet reached {largest} vehicles under a cap of 200 with batches of 100"
    );
    assert_eq!(env.stats()["vehicles"], n, "every vehicle is in the cache");
}
