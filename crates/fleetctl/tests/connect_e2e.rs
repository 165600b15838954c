//! `fleetctl connect` (SPEC §9) against the real broker and Redis: every vehicle's latest
//! position lands in its geo set, bad messages are counted by reason, a SIGKILL loses nothing,
//! offsets wait for Redis, two instances share the partitions, and the app's Redis source
//! reads what the loader wrote.

mod common;

use common::*;
use fleet_testkit::{Broker, Producer, RedisDb, RedisServer};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

const GPS: &str = "cars.gps.json";

/// A config for the loader: `[kafka]` on `broker`, `[redis]` at `url`, one route GPS → `key`.
fn loader_env(broker: &Broker, url: &str, key: &str, group: &str, extra: &str) -> Env {
    Env::new(&format!(
        "[kafka]\nbrokers = \"{}\"\n\n[redis]\nurl = \"{url}\"\ngeo_keys = [\"{key}\"]\npoll_ms = 200\n\n[store]\npath = \"{{store}}\"\n\n[connect]\ngroup_id = \"{group}\"\n{extra}\n[[connect.routes]]\ntopic = \"{GPS}\"\ngeo_key = \"{key}\"\n",
        broker.bootstrap()
    ))
}

/// Fix `round` of vehicle `v`: a position unique to both, so the latest is recognisable.
fn fix(v: u32, round: u32) -> (f64, f64) {
    (
        37.40 + f64::from(v) * 1e-4,
        127.00 + f64::from(round) * 1e-3,
    )
}

/// `rounds` fixes of each of `vehicles` vehicles, round by round (the last round is latest).
fn produce(p: &Producer, vehicles: u32, rounds: std::ops::Range<u32>) -> usize {
    p.send_many(
        GPS,
        rounds.flat_map(|r| {
            (0..vehicles).map(move |v| {
                let (lat, lng) = fix(v, r);
                (
                    Some(format!("car-{v:04}").into_bytes()),
                    format!(r#"{{"lat":{lat:.6},"lng":{lng:.6}}}"#).into_bytes(),
                )
            })
        }),
    )
}

/// Asserts the set holds exactly the vehicles, each at round `round`'s fix (Redis keeps
/// 52-bit geohashes: well under a metre, so 1e-5° is plenty).
fn assert_latest(conn: &mut redis::Connection, key: &str, vehicles: u32, round: u32) {
    let card: u32 = redis::cmd("ZCARD").arg(key).query(conn).unwrap();
    assert_eq!(card, vehicles, "members of {key}");
    let mut cmd = redis::cmd("GEOPOS");
    cmd.arg(key);
    for v in 0..vehicles {
        cmd.arg(format!("car-{v:04}"));
    }
    let pos: Vec<Option<(f64, f64)>> = cmd.query(conn).unwrap();
    for (v, p) in (0..vehicles).zip(pos) {
        let (lng, lat) = p.unwrap_or_else(|| panic!("car-{v:04} missing"));
        let (want_lat, want_lng) = fix(v, round);
        assert!(
            (lat - want_lat).abs() < 1e-5 && (lng - want_lng).abs() < 1e-5,
            "car-{v:04} at {lat},{lng}, latest fix was {want_lat},{want_lng}"
        );
    }
}

fn connect_until_idle(env: &Env, secs: f64) -> Value {
    let out = fleetctl()
        .args([
            "connect",
            "--idle-exit",
            &secs.to_string(),
            "--json",
            "--config",
        ])
        .arg(&env.config)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "fleetctl connect failed: {log}");
    // Kept for a failing assertion's context.
    std::fs::write(env.dir.path().join("last-connect.log"), log.as_bytes()).unwrap();
    eprintln!("--- fleetctl connect ---\n{log}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn spawn_connect(env: &Env, log: &str, extra: &[&str]) -> Guard {
    let log = std::fs::File::create(env.dir.path().join(log)).unwrap();
    fleetctl()
        .arg("connect")
        .arg("--config")
        .arg(&env.config)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map(Guard)
        .unwrap()
}

fn wait_for(what: &str, timeout: Duration, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn every_vehicles_latest_position_lands_in_its_set_and_the_app_reads_it() {
    let broker = Broker::start_memory();
    broker.create_topic(GPS, 3);
    let db = RedisDb::new();
    let key = db.key("cars#gps");
    let p = broker.producer();
    let n = produce(&p, 300, 0..10);
    // Unusable: not JSON, a latitude Redis cannot store (it would fail the whole GEOADD it
    // travels in), no vehicle id (no key).
    p.send_many(
        GPS,
        [
            (Some(b"car-0001".to_vec()), b"{oops".to_vec()),
            (
                Some(b"car-0002".to_vec()),
                br#"{"lat":86.5,"lng":10}"#.to_vec(),
            ),
            (None, br#"{"lat":37.5,"lng":127.1}"#.to_vec()),
        ],
    );
    let env = loader_env(&broker, &db.url, &key, "connect-latest", "");
    let s = connect_until_idle(&env, 1.0);
    assert_eq!(s["messages"], n as u64 + 3, "{s}");
    assert_eq!(s["rejected"], 3, "{s}");
    for reason in ["not_json", "lat_out_of_range", "missing_id"] {
        assert_eq!(s["rejected_by_reason"][reason], 1, "{reason}: {s}");
    }
    assert_eq!(s["exit"], "idle", "{s}");
    assert_eq!(s["partitions"].as_array().unwrap().len(), 3, "{s}");
    assert!(s["loaded"].as_u64().unwrap() >= 300, "{s}");
    assert_latest(&mut db.connection().unwrap(), &key, 300, 9);

    // Offsets were committed to the group: a second run has nothing to do.
    let again = connect_until_idle(&env, 1.0);
    assert_eq!(again["messages"], 0, "{again}");

    // Closing the loop: the desktop's Redis geo source reads what the loader wrote.
    let app = Env::new(&format!(
        "[redis]\nurl = \"{}\"\ngeo_keys = [\"{key}\"]\npoll_ms = 200\n\n[store]\npath = \"{{store}}\"\n",
        db.url
    ));
    app.ingest_until_idle(1.5);
    let stats = app.stats();
    assert_eq!(stats["vehicles"], 300, "{stats}");
    let (lat, lng) = fix(42, 9);
    assert_eq!(
        query_i64(
            &app.cache(),
            &format!(
                "SELECT COUNT(*) FROM vehicles WHERE id = 'car-0042' AND abs(last_lat - {lat}) < 1e-5 AND abs(last_lng - {lng}) < 1e-5"
            )
        ),
        1,
        "the app sees car-0042 where its latest fix put it"
    );
}

#[test]
fn a_sigkill_mid_load_loses_nothing_and_the_restart_resumes_from_the_commits() {
    let broker = Broker::start_memory();
    broker.create_topic(GPS, 2);
    let db = RedisDb::new();
    let key = db.key("cars#gps");
    let p = broker.producer();
    let vehicles = 2000;
    let first = produce(&p, vehicles, 0..15);
    // Restarted under the same static identity (tansu 0.6 never hands a crashed member's
    // partitions to a newcomer; Kafka does after `session.timeout.ms`).
    let env = loader_env(
        &broker,
        &db.url,
        &key,
        "connect-kill",
        "batch_max_messages = 200\ninstance_id = \"loader-1\"\n",
    );
    let mut child = spawn_connect(&env, "connect.log", &[]);
    let mut conn = db.connection().unwrap();
    // Wait until the first rounds are in Redis (so commits have been made), then give the
    // async commits a moment to land.
    wait_for("the first rounds in redis", Duration::from_secs(60), || {
        redis::cmd("ZCARD")
            .arg(&key)
            .query::<u32>(&mut conn)
            .unwrap()
            == vehicles
    });
    std::thread::sleep(Duration::from_secs(1));
    // More data while it runs, then a crash somewhere in the middle of loading it.
    let second = produce(&p, vehicles, 15..30);
    kill9(&mut child);

    let s = connect_until_idle(&env, 1.0);
    let read = s["messages"].as_u64().unwrap();
    assert!(
        read < (first + second) as u64,
        "the restart read {read} messages: it did not resume from the commits made before the crash"
    );
    assert_latest(&mut conn, &key, vehicles, 29);
}

#[test]
fn offsets_wait_for_redis_while_it_is_down() {
    let broker = Broker::start_memory();
    broker.create_topic(GPS, 1);
    let mut server = RedisServer::start_new();
    let url = server.url();
    let key = "cars#gps";
    let n = produce(&broker.producer(), 100, 0..5);
    server.stop();
    let env = loader_env(
        &broker,
        &url,
        key,
        "connect-outage",
        "instance_id = \"loader-1\"\n",
    );
    let mut child = spawn_connect(&env, "connect.log", &[]);
    let log = env.dir.path().join("connect.log");
    wait_for(
        "the loader to find redis down",
        Duration::from_secs(30),
        || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("redis unreachable")
        },
    );
    // It has read the messages but cannot write them: a crash now must lose none of them.
    std::thread::sleep(Duration::from_secs(1));
    kill9(&mut child);
    server.start();
    let s = connect_until_idle(&env, 1.0);
    assert_eq!(
        s["messages"], n as u64,
        "offsets were committed while redis was down: {s}"
    );
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    assert_latest(&mut conn, key, 100, 4);
}

#[test]
fn two_instances_of_one_group_split_the_partitions_and_load_everything() {
    let broker = Broker::start_memory();
    broker.create_topic(GPS, 4);
    let db = RedisDb::new();
    let key = db.key("cars#gps");
    let env = loader_env(&broker, &db.url, &key, "connect-pair", "");
    // Idle long enough that the first to join (holding all four partitions of an empty
    // topic, so caught up) is still there when the second joins and the group splits them.
    let mut a = spawn_connect(&env, "a.log", &["--idle-exit", "12", "--json"]);
    let mut b = spawn_connect(&env, "b.log", &["--idle-exit", "12", "--json"]);
    // Each has joined and holds part of the topic once both logged a 2-partition assignment.
    let assigned = |log: &str| -> Option<String> {
        std::fs::read_to_string(env.dir.path().join(log))
            .unwrap_or_default()
            .lines()
            .rev()
            .find_map(|l| {
                l.split_once("connect: assigned ")
                    .map(|(_, a)| a.to_string())
            })
    };
    let halves = || {
        [assigned("a.log"), assigned("b.log")]
            .iter()
            .all(|a| a.as_deref().is_some_and(|a| a.matches(',').count() == 1))
    };
    wait_for(
        "both instances to hold two partitions",
        Duration::from_secs(60),
        halves,
    );
    let n = produce(&broker.producer(), 400, 0..10);
    let out = |c: &mut Guard| -> Value {
        let status = wait_timeout(c, Duration::from_secs(60));
        assert!(status.success(), "connect exited with {status}");
        let mut s = String::new();
        std::io::Read::read_to_string(c.stdout.as_mut().unwrap(), &mut s).unwrap();
        serde_json::from_str(&s).unwrap()
    };
    let (sa, sb) = (out(&mut a), out(&mut b));
    let parts = |s: &Value| -> BTreeSet<String> {
        (s["partitions"].as_array().unwrap().iter())
            .map(|p| p.as_str().unwrap().to_string())
            .collect()
    };
    let (pa, pb) = (parts(&sa), parts(&sb));
    assert!(
        pa.is_disjoint(&pb),
        "both loaded {:?}",
        pa.intersection(&pb)
    );
    assert_eq!(pa.len() + pb.len(), 4, "a {pa:?}, b {pb:?}");
    assert!(!pa.is_empty() && !pb.is_empty(), "a {pa:?}, b {pb:?}");
    let total = sa["messages"].as_u64().unwrap() + sb["messages"].as_u64().unwrap();
    assert_eq!(total, n as u64, "a {sa}, b {sb}");
    assert_latest(&mut db.connection().unwrap(), &key, 400, 9);
}

#[test]
fn a_missing_section_or_a_bad_route_is_a_config_error_naming_it() {
    let no_connect =
        Env::new("[kafka]\nbrokers = \"127.0.0.1:1\"\n\n[redis]\nurl = \"redis://127.0.0.1:1\"\n");
    let bad_field = Env::new(
        "[kafka]\nbrokers = \"127.0.0.1:1\"\n\n[redis]\nurl = \"redis://127.0.0.1:1\"\n\n[connect]\n[[connect.routes]]\ntopic = \"t\"\ngeo_key = \"k\"\nfields = { vehicle = \"$key\" }\n",
    );
    for (env, want) in [
        (&no_connect, "needs [connect]"),
        (&bad_field, "connect.routes[0].fields.vehicle"),
    ] {
        let out = fleetctl()
            .args(["connect", "--config"])
            .arg(&env.config)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(want), "{err}");
    }
}
