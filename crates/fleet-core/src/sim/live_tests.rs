//! Manual tests against a real broker and Redis; ignored by default because they need both.
//!
//! ```text
//! FLEETDASH_SIM_BROKERS=127.0.0.1:19092 FLEETDASH_SIM_REDIS=redis://127.0.0.1:6379/15 \
//!   cargo test -p fleet-core --release sim::live_tests -- --ignored --nocapture --test-threads 1
//! ```
//! `FLEETDASH_SIM_MESSAGES` (default 1,000,000) and `FLEETDASH_SIM_VEHICLES` (default 20,000)
//! size the throughput run, which mirrors the `fleetctl bench ingest` prefill;
//! `FLEETDASH_SIM_KAFKA_PROPS` (`key=value,…`) adds producer properties.

use super::SimTopics;
use super::{SimOptions, run};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn options() -> Option<SimOptions> {
    Some(SimOptions {
        brokers: env("FLEETDASH_SIM_BROKERS")?,
        redis_url: env("FLEETDASH_SIM_REDIS"),
        geo_key: "fleetdash-sim-test#gps".into(),
        // e.g. `queue.buffering.max.messages=1000` to exercise the QueueFull backpressure.
        kafka_properties: env("FLEETDASH_SIM_KAFKA_PROPS")
            .unwrap_or_default()
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect(),
        ..SimOptions::default()
    })
}

async fn geo_count(url: &str, key: &str, delete: bool) -> u64 {
    let client = redis::Client::open(url).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let n: u64 = redis::cmd("ZCARD")
        .arg(key)
        .query_async(&mut conn)
        .await
        .expect("zcard");
    if delete {
        let _: () = redis::cmd("DEL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .expect("del");
    }
    n
}

fn consumer(brokers: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "fleetdash-sim-live-test")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer")
}

/// Fresh topics for one run, so reading back does not depend on what earlier runs left.
async fn fresh_topics(brokers: &str) -> (AdminClient<DefaultClientContext>, SimTopics) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let topics = SimTopics {
        gps: format!("sim-test-{nonce}.gps"),
        status: format!("sim-test-{nonce}.status"),
        info: format!("sim-test-{nonce}.info"),
        alerts: format!("sim-test-{nonce}.alerts"),
        devices: format!("sim-test-{nonce}.devices"),
    };
    let names = [&topics.gps, &topics.status, &topics.info, &topics.alerts];
    let new: Vec<NewTopic> = names
        .iter()
        .map(|n| NewTopic::new(n, 3, TopicReplication::Fixed(1)))
        .collect();
    for r in admin
        .create_topics(&new, &AdminOptions::new())
        .await
        .expect("create")
    {
        r.expect("topic created");
    }
    (admin, topics)
}

async fn delete_topics(admin: &AdminClient<DefaultClientContext>, t: &SimTopics) {
    let names = [t.gps.as_str(), &t.status, &t.info, &t.alerts];
    let _ = admin.delete_topics(&names, &AdminOptions::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker (FLEETDASH_SIM_BROKERS)"]
async fn live_unthrottled_prefill_rate() {
    let Some(mut opts) = options() else {
        eprintln!("FLEETDASH_SIM_BROKERS not set; skipping");
        return;
    };
    let messages: u64 = env("FLEETDASH_SIM_MESSAGES").map_or(1_000_000, |v| v.parse().unwrap());
    opts.vehicles = env("FLEETDASH_SIM_VEHICLES").map_or(20_000, |v| v.parse().unwrap());
    opts.max_messages = Some(messages);
    opts.unthrottled = true;
    opts.duration = Duration::ZERO;
    let (admin, topics) = fresh_topics(&opts.brokers).await;
    opts.topics = topics;
    let report = run(opts.clone(), CancellationToken::new())
        .await
        .expect("run");
    // Read everything back: lz4 batches decode, payloads are the contract JSON, nothing is
    // lost or duplicated.
    let c = consumer(&opts.brokers);
    let mut tpl = TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition_offset(&opts.topics.gps, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut seen = std::collections::HashSet::new();
    let mut read = 0u64;
    let mut offsets = std::collections::HashSet::new();
    while let Some(msg) = c.poll(Duration::from_secs(5)) {
        let msg = msg.expect("consume");
        let v: serde_json::Value = serde_json::from_slice(msg.payload().unwrap()).unwrap();
        assert!(v["lat"].is_f64() && v["heading"].is_f64(), "{v}");
        let key = String::from_utf8(msg.key().unwrap().to_vec()).unwrap();
        seen.insert((key, v["ts"].as_i64().unwrap()));
        read += 1;
        offsets.insert((msg.partition(), msg.offset()));
    }
    eprintln!(
        "read back {read}, distinct offsets {}, distinct contents {}",
        offsets.len(),
        seen.len()
    );
    // librdkafka 2.12 can crash (strcmp on a missing topic name in a metadata update) when a
    // live client sees tansu's metadata for deleted topics: close the consumer first.
    drop(c);
    delete_topics(&admin, &opts.topics).await;
    drop(admin);
    // Tansu's fetches sometimes hand the same offset out twice, so count distinct offsets and
    // distinct contents: both must be exact.
    assert_eq!(
        offsets.len() as u64,
        messages,
        "positions stored by the broker"
    );
    assert_eq!(seen.len() as u64, messages, "no message stored twice");
    let total: u64 = report.produced.values().sum();
    eprintln!("{}", serde_json::to_string_pretty(&report).unwrap());
    eprintln!(
        "positions/s {:.0}, all messages/s {:.0}",
        messages as f64 / report.elapsed_s,
        total as f64 / report.elapsed_s
    );
    assert_eq!(report.produced[&opts.topics.gps], messages);
    assert_eq!(report.delivery_errors, 0);
    if let Some(url) = &opts.redis_url {
        let n = geo_count(url, &opts.geo_key, true).await;
        assert!(
            n > u64::from(opts.vehicles) * 9 / 10,
            "{n} members in the geo set"
        );
        assert!(report.geoadds >= n);
    }
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs a Kafka broker (FLEETDASH_SIM_BROKERS)"]
async fn live_throttled_run_is_paced_and_cancellable() {
    let Some(mut opts) = options() else {
        eprintln!("FLEETDASH_SIM_BROKERS not set; skipping");
        return;
    };
    opts.vehicles = 300;
    opts.rate_hz = 5.0;
    opts.duration = Duration::from_secs(3);
    let report = run(opts.clone(), CancellationToken::new())
        .await
        .expect("run");
    eprintln!("{}", serde_json::to_string(&report).unwrap());
    assert!(
        (2.9..4.5).contains(&report.elapsed_s),
        "paced: {}",
        report.elapsed_s
    );
    assert!((report.sim_seconds - 3.0).abs() < 1e-9);
    assert!(report.produced[&opts.topics.gps] > 300 * 15 * 6 / 10);
    assert_eq!(report.delivery_errors, 0);
    if let Some(url) = &opts.redis_url {
        assert!(report.geoadds >= 300 * 9 / 10);
        geo_count(url, &opts.geo_key, true).await;
    }

    // Unbounded run, stopped by the token: a normal end with what was produced.
    opts.duration = Duration::ZERO;
    let cancel = CancellationToken::new();
    let stopper = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        stopper.cancel();
    });
    let report = run(opts.clone(), cancel).await.expect("run");
    assert!(
        (1.4..3.0).contains(&report.elapsed_s),
        "{}",
        report.elapsed_s
    );
    assert!(report.produced[&opts.topics.gps] > 0);
    if let Some(url) = &opts.redis_url {
        geo_count(url, &opts.geo_key, true).await;
    }
}

#[tokio::test]
#[ignore = "tries to connect to a closed port for 10 s"]
async fn unreachable_brokers_fail_fast_with_a_clear_error() {
    let opts = SimOptions {
        brokers: "127.0.0.1:19099".into(),
        duration: Duration::from_secs(1),
        ..SimOptions::default()
    };
    let err = run(opts, CancellationToken::new()).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot reach the Kafka brokers at 127.0.0.1:19099"),
        "{err}"
    );
}
