//! The testkit tested for real: tansu processes, librdkafka clients, Redis.
//! Startup times are printed (`--nocapture`) so regressions are visible.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ::redis::Commands;

use crate::*;

const T: Duration = Duration::from_secs(30);

fn keyed(n: usize) -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
    (0..n)
        .map(|i| {
            (
                Some(format!("car-{}", i % 17).into_bytes()),
                format!("{{\"i\":{i}}}").into_bytes(),
            )
        })
        .collect()
}

#[test]
fn memory_broker_roundtrip_100_messages_over_3_partitions() {
    let started = Instant::now();
    let broker = Broker::start_memory();
    eprintln!(
        "memory broker ready in {:?} (total incl. port pick {:?})",
        broker.startup_time(),
        started.elapsed()
    );
    let t = Instant::now();
    broker.create_topic("cars.gps.json", 3);
    eprintln!("create_topic(3) took {:?}", t.elapsed());

    let producer = Producer::new(&broker.bootstrap());
    let t = Instant::now();
    assert_eq!(producer.send_many("cars.gps.json", keyed(100)), 100);
    eprintln!("send_many(100) took {:?}", t.elapsed());

    let t = Instant::now();
    let records = consume_all(&broker.bootstrap(), "cars.gps.json", T);
    eprintln!("consume_all(100) took {:?}", t.elapsed());
    assert_eq!(records.len(), 100);
    let partitions: BTreeSet<i32> = records.iter().map(|r| r.partition).collect();
    assert_eq!(
        partitions,
        BTreeSet::from([0, 1, 2]),
        "keys spread over partitions"
    );
    let payloads: BTreeSet<String> = records.iter().map(Record::payload_str).collect();
    assert_eq!(payloads.len(), 100);
    assert!(
        records
            .iter()
            .all(|r| r.key.is_some() && r.timestamp_ms.is_some())
    );

    let marks = watermarks(&broker.bootstrap(), "cars.gps.json");
    assert_eq!(marks.values().map(|(lo, hi)| hi - lo).sum::<i64>(), 100);
}

#[test]
fn send_reports_partition_and_offset_and_round_trips_bytes() {
    let broker = Broker::start_memory();
    broker.create_topic("raw", 3);
    let producer = broker.producer();
    let a = producer.send("raw", Some(2), Some(b"k"), b"\xff\x00not utf8");
    let b = producer.send("raw", Some(2), None, b"");
    assert_eq!((a.partition, b.partition), (2, 2));
    assert_eq!(b.offset, a.offset + 1);
    let records = broker.consume_all("raw", T);
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].key.as_deref(), Some(&b"k"[..]));
    assert_eq!(records[0].payload, b"\xff\x00not utf8");
    assert_eq!(records[1].key, None);
    assert_eq!(records[1].payload, b"");
    assert_eq!(records[0].offset, a.offset);
}

#[test]
fn consume_all_of_an_empty_topic_is_empty() {
    let broker = Broker::start_memory();
    broker.create_topic("empty", 3);
    assert!(broker.consume_all("empty", T).is_empty());
}

#[test]
fn sqlite_broker_keeps_data_across_a_crash() {
    let mut broker = Broker::start_sqlite();
    eprintln!("sqlite broker ready in {:?}", broker.startup_time());
    broker.create_topic("cars.status.json", 3);
    let port = broker.port();
    {
        let producer = broker.producer();
        assert_eq!(producer.send_many("cars.status.json", keyed(30)), 30);
    }

    broker.stop();
    assert!(!broker.is_running());
    assert!(
        std::net::TcpStream::connect(broker.bootstrap()).is_err(),
        "port must refuse connections while stopped"
    );

    broker.start();
    eprintln!("sqlite broker restarted in {:?}", broker.startup_time());
    assert_eq!(broker.port(), port, "same port after restart");
    let records = broker.consume_all("cars.status.json", T);
    assert_eq!(records.len(), 30, "log tail:\n{}", broker.log_tail());

    let producer = broker.producer();
    assert_eq!(producer.send_many("cars.status.json", keyed(20)), 20);
    let records = broker.consume_all("cars.status.json", T);
    assert_eq!(records.len(), 50);
    let unique: BTreeSet<(i32, i64)> = records.iter().map(|r| (r.partition, r.offset)).collect();
    assert_eq!(unique.len(), 50, "offsets continue after restart, no reuse");
}

#[test]
fn a_producer_survives_a_broker_restart() {
    let mut broker = Broker::start_sqlite();
    broker.create_topic("t", 1);
    let producer = broker.producer();
    producer.send("t", Some(0), None, b"before");
    broker.stop();
    broker.start();
    // The same producer reconnects by itself.
    producer.send("t", Some(0), None, b"after");
    let got: Vec<String> = broker
        .consume_all("t", T)
        .iter()
        .map(Record::payload_str)
        .collect();
    assert_eq!(got, ["before", "after"]);
}

#[test]
fn memory_broker_comes_back_empty_after_restart() {
    let mut broker = Broker::start_memory();
    broker.create_topic("t", 1);
    broker.producer().send("t", None, None, b"x");
    broker.stop();
    broker.start();
    broker.create_topic("t", 1);
    assert!(broker.consume_all("t", T).is_empty());
    broker.producer().send("t", None, None, b"y");
    assert_eq!(broker.consume_all("t", T).len(), 1);
}

#[test]
fn two_brokers_run_concurrently_and_are_isolated() {
    let a = std::thread::spawn(Broker::start_memory);
    let b = std::thread::spawn(Broker::start_sqlite);
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    assert_ne!(a.port(), b.port());
    for broker in [&a, &b] {
        broker.create_topic("same.name", 3);
    }
    assert_eq!(a.producer().send_many("same.name", keyed(7)), 7);
    assert_eq!(b.producer().send_many("same.name", keyed(11)), 11);
    assert_eq!(a.consume_all("same.name", T).len(), 7);
    assert_eq!(b.consume_all("same.name", T).len(), 11);
}

#[test]
fn dropping_a_broker_kills_it_and_removes_its_dir() {
    let broker = Broker::start_sqlite();
    let pid = broker.pid().expect("running");
    let dir = broker.dir().to_path_buf();
    let bootstrap = broker.bootstrap();
    assert!(dir.join("tansu.log").exists());
    drop(broker);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(!dir.exists());
    assert!(std::net::TcpStream::connect(bootstrap).is_err());
}

#[test]
fn compacted_topic_config_is_accepted() {
    let broker = Broker::start_memory();
    broker.create_topic_with_config("cars.info.json", 3, &[("cleanup.policy", "compact")]);
    broker
        .producer()
        .send("cars.info.json", None, Some(b"car-1"), b"{}");
    assert_eq!(broker.consume_all("cars.info.json", T).len(), 1);
}

/// The engine quarantines payloads over 1 MiB, so tests must be able to
/// deliver one: a 1.5 MiB message with the producer's limit raised.
#[test]
fn oversized_message_of_1_5_mib() {
    let broker = Broker::start_memory();
    broker.create_topic("big", 1);
    let producer = Producer::with_config(&broker.bootstrap(), &[("message.max.bytes", "4000000")]);
    let payload = vec![b'x'; 1536 * 1024];
    let result = producer.try_send("big", Some(0), Some(b"car-big"), &payload);
    eprintln!("1.5 MiB message: {result:?}");
    let delivered = result.unwrap_or_else(|e| {
        panic!(
            "tansu refused a 1.5 MiB message: {e}\n{}",
            broker.log_tail()
        )
    });
    producer.send("big", Some(0), None, b"small after big");

    // With librdkafka's default message.max.bytes (1,000,000) the client
    // refuses it before the broker sees it.
    let err = broker
        .producer()
        .try_send("big", Some(0), None, &payload)
        .expect_err("default producer limit is 1 MB");
    assert_eq!(
        err.kafka_code(),
        Some(RDKafkaErrorCode::MessageSizeTooLarge),
        "{err}"
    );
    let records = broker.consume_all("big", T);
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].offset, delivered.offset);
    assert_eq!(records[0].payload.len(), payload.len());
    assert_eq!(records[1].payload, b"small after big");
}

#[test]
fn redis_db_namespaces_are_isolated_and_cleaned_up() {
    let a = RedisDb::new();
    let b = RedisDb::new();
    assert_ne!(a.prefix, b.prefix);
    assert!(a.url.starts_with("redis://127.0.0.1:6379/"));
    let key = a.key("cars#gps");
    assert!(key.starts_with(&a.prefix) && key.ends_with("cars#gps"));

    let mut conn = a.connection().unwrap();
    let _: usize = ::redis::cmd("GEOADD")
        .arg(&key)
        .arg(13.4)
        .arg(52.5)
        .arg("car-1")
        .query(&mut conn)
        .unwrap();
    let _: () = conn.set(a.key("plain"), "v").unwrap();
    assert_eq!(a.keys().len(), 2);
    assert!(b.keys().is_empty(), "other namespace sees nothing");

    drop(a);
    let left: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{key}*"))
        .query(&mut conn)
        .unwrap();
    assert!(left.is_empty(), "drop removed the keys: {left:?}");
}

/// Serialised by the nextest `serial-redis` group (name contains `redis_restart`).
#[test]
fn redis_restart_local_server_comes_back() {
    let db = RedisDb::new();
    if !db.restart_server_supported() {
        eprintln!("skipped: restarting the local Redis is not supported here");
        return;
    }
    let mut conn = db.connection().unwrap();
    let _: () = conn.set(db.key("k"), "v").unwrap();
    let t = Instant::now();
    restart_local_redis();
    eprintln!("local Redis restarted in {:?}", t.elapsed());
    let mut conn = db.connection().unwrap();
    let v: Option<String> = conn.get(db.key("k")).unwrap();
    assert_eq!(v, None, "nothing survives: no persistence");
    let _: () = conn.set(db.key("k"), "again").unwrap();
}

#[test]
fn private_redis_server_stops_and_starts() {
    let mut server = RedisServer::start_with_args(&["--notify-keyspace-events", "KEA"]);
    let client = ::redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let cfg: Vec<String> = ::redis::cmd("CONFIG")
        .arg("GET")
        .arg("notify-keyspace-events")
        .query(&mut conn)
        .unwrap();
    assert!(cfg[1].contains('K') && cfg[1].contains('E'), "{cfg:?}");
    let _: () = conn.set("k", "v").unwrap();
    server.stop();
    assert!(client.get_connection().is_err());
    server.start();
    let mut conn = client.get_connection().unwrap();
    let v: Option<String> = conn.get("k").unwrap();
    assert_eq!(v, None);
}

#[test]
fn tansu_bin_is_found() {
    let bin = tansu_bin();
    let out = std::process::Command::new(&bin)
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success(), "{} --version failed", bin.display());
}

/// tansu 0.6's memory engine answers ListOffsets(latest) with "base offset
/// of the newest batch + 1"; `watermarks` and `consume_all` must not rely on
/// it. Prints what ListOffsets says so the quirk stays visible.
#[test]
fn watermarks_are_right_despite_memory_list_offsets_quirk() {
    for broker in [Broker::start_memory(), Broker::start_sqlite()] {
        broker.create_topic("w", 3);
        let p = broker.producer();
        let delivered = p.send_many_to("w", None, keyed(20));
        let mut expected = std::collections::BTreeMap::new();
        for d in &delivered {
            let e = expected.entry(d.partition).or_insert((0, 0));
            e.1 = e.1.max(d.offset + 1);
        }
        let t = Instant::now();
        assert_eq!(watermarks(&broker.bootstrap(), "w"), expected);
        eprintln!(
            "{:?}: watermarks() took {:?}",
            broker.storage(),
            t.elapsed()
        );

        use rdkafka::consumer::{BaseConsumer, Consumer};
        let c: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap())
            .create()
            .unwrap();
        let listed: Vec<_> = (0..3)
            .map(|p| c.fetch_watermarks("w", p, T).unwrap())
            .collect();
        eprintln!(
            "{:?}: ListOffsets says {listed:?}, true {expected:?}",
            broker.storage()
        );
    }
}
