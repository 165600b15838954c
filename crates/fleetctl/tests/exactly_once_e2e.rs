//! Exactly-once into the cache: crash the ingest process mid-stream (SIGKILL) and restart
//! it; stop the broker for 20 s and bring it back. Compare the cache with what was produced.

mod common;

use common::*;
use fleet_testkit::{Broker, Producer};
use std::time::Duration;

const GPS: &str = "cars.gps.json";

fn env_for(broker: &Broker) -> Env {
    Env::new(&format!(
        "{}\n[store]\npath = \"{{store}}\"\n{KEEP_ALL}",
        kafka_section(&broker.bootstrap(), &[(GPS, "position")])
    ))
}

/// `n` unique position messages starting at sequence `from`.
fn produce(p: &Producer, base: i64, from: i64, n: i64) {
    p.send_many(
        GPS,
        (from..from + n).map(|i| {
            (
                Some(format!("car-{:04}", i % 700).into_bytes()),
                format!(
                    r#"{{"lat":{:.6},"lng":{:.6},"ts":{}}}"#,
                    37.4 + (i % 1000) as f64 * 1e-4,
                    127.0 + (i % 997) as f64 * 1e-4,
                    base + i
                )
                .into_bytes(),
            )
        }),
    );
}

/// The cache holds exactly sequence numbers 0..n: right count, no duplicate Kafka
/// coordinates, and the same timestamps that were produced.
fn assert_exactly(env: &Env, base: i64, n: i64) {
    let cache = env.cache();
    assert_eq!(
        query_i64(&cache, "SELECT COUNT(*) FROM positions"),
        n,
        "count; log:\n{}",
        env.log()
    );
    assert_eq!(
        query_i64(
            &cache,
            "SELECT COUNT(*) FROM (SELECT DISTINCT kpartition, koffset FROM positions)"
        ),
        n,
        "duplicates"
    );
    assert_eq!(
        query_i64(&cache, "SELECT COUNT(DISTINCT ts) FROM positions"),
        n,
        "gaps or duplicates in content"
    );
    assert_eq!(query_i64(&cache, "SELECT MIN(ts) FROM positions"), base);
    assert_eq!(
        query_i64(&cache, "SELECT MAX(ts) FROM positions"),
        base + n - 1
    );
    assert_eq!(
        query_i64(&cache, "SELECT SUM(next_offset) FROM offsets"),
        n,
        "offsets match what was consumed"
    );
}

/// Runs on tansu's memory storage on purpose: it answers a fetch that starts inside a record
/// batch with the next batch, which is exactly what a restart from cached offsets does, so
/// this also proves the consumer's gap healing (it failed with 1–2 k lost messages without).
#[test]
fn killed_ingest_resumes_without_duplicates_or_gaps() {
    let broker = Broker::start_memory();
    broker.create_topic(GPS, 3);
    let env = env_for(&broker);
    const N: i64 = 150_000;
    const CHUNK: i64 = 5_000;
    let base = recent_base_ms();
    // Devices keep producing while ingest is crashed and restarted, so every kill lands
    // mid-stream however fast ingest is.
    let bootstrap = broker.bootstrap();
    let producer = std::thread::spawn(move || {
        let p = Producer::new(&bootstrap);
        for from in (0..N).step_by(CHUNK as usize) {
            produce(&p, base, from, CHUNK);
            std::thread::sleep(Duration::from_millis(60));
        }
    });
    for threshold in [15_000, 50_000] {
        let mut child = env.spawn_ingest(&[]);
        env.wait_stats(Duration::from_secs(120), "ingest progress", |s| {
            s["positions"].as_i64().unwrap_or(0) >= threshold
        });
        kill9(&mut child);
        let pos = env.stats()["positions"].as_i64().unwrap();
        assert!(pos < N, "killed before the end (got {pos})");
        assert_eq!(
            pos,
            query_i64(&env.cache(), "SELECT SUM(next_offset) FROM offsets"),
            "after a crash the cache's offsets match its contents; warnings:\n{}",
            env.log()
                .lines()
                .filter(|l| l.contains("WARN"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    producer.join().unwrap();
    let out = env.ingest_until_idle(1.0);
    assert!(
        out["messages"].as_i64().unwrap() < N,
        "the last run only read the rest: {out}"
    );
    assert_exactly(&env, base, N);
}

#[test]
fn ingest_survives_a_20s_broker_outage_and_loses_nothing() {
    let mut broker = Broker::start_sqlite();
    broker.create_topic(GPS, 3);
    let env = env_for(&broker);
    let base = recent_base_ms();
    produce(&Producer::new(&broker.bootstrap()), base, 0, 5_000);
    let mut child = env.spawn_ingest(&[]);
    env.wait_stats(Duration::from_secs(60), "first batch", |s| {
        s["positions"] == 5_000
    });

    broker.stop();
    std::thread::sleep(Duration::from_secs(20));
    assert!(
        child.try_wait().unwrap().is_none(),
        "ingest must keep running while the broker is down:\n{}",
        env.log()
    );
    broker.start();

    produce(&Producer::new(&broker.bootstrap()), base, 5_000, 5_000);
    env.wait_stats(Duration::from_secs(90), "recovery after the outage", |s| {
        s["positions"] == 10_000
    });
    let status = interrupt(&mut child);
    assert!(
        status.success(),
        "clean exit after SIGINT: {status}\n{}",
        env.log()
    );
    assert_exactly(&env, base, 10_000);
    assert!(
        env.log().contains("kafka connection lost") || env.log().contains("kafka poll error"),
        "the outage was noticed:\n{}",
        env.log()
    );
}

/// A vehicle's latest state commits with the offsets of the message that changed it: killed
/// right after a batch is stored, the `vehicles` row already holds that batch's position. It
/// used to wait up to 5 s for a periodic snapshot, so a crash in between left the row behind
/// for good (those messages are never read again): the fault suite's `vehicles` difference.
#[test]
fn a_crash_right_after_a_batch_keeps_the_vehicles_latest_position() {
    let broker = Broker::start_memory();
    broker.create_topic(GPS, 1);
    let env = env_for(&broker);
    let p = Producer::new(&broker.bootstrap());
    let base = recent_base_ms();
    let send = |i: i64, lat: f64| {
        p.send_many(
            GPS,
            std::iter::once((
                Some(b"car-0001".to_vec()),
                format!(r#"{{"lat":{lat},"lng":127.0,"ts":{}}}"#, base + i * 1_000).into_bytes(),
            )),
        )
    };
    send(0, 37.1);
    let mut child = env.spawn_ingest(&[]);
    env.wait_stats(Duration::from_secs(60), "the first position", |s| {
        s["positions"] == 1
    });
    // Three moves, each read back as soon as it is stored (what a crash at that moment would
    // leave): with a 5 s snapshot timer, they land between a commit and the next snapshot.
    for (i, lat) in [(1, 37.2), (2, 37.3), (3, 37.4)] {
        send(i, lat);
        env.wait_stats(Duration::from_secs(60), "the move stored", |s| {
            s["positions"] == i + 1
        });
        assert_eq!(
            fleet_testkit::sqlite3(
                &env.cache(),
                "SELECT last_lat FROM vehicles WHERE id = 'car-0001'"
            )
            .trim(),
            lat.to_string(),
            "the vehicle's row holds the position stored with it"
        );
    }
    kill9(&mut child);
}
