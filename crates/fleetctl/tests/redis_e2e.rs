//! The Redis geo source against the real Redis: positions from GEOADD reach the live state
//! and the cache; a Redis restart is survived.

mod common;

use common::*;
use fleet_testkit::{RedisDb, RedisServer};
use std::time::Duration;

fn geoadd(db: &RedisDb, key: &str, members: impl IntoIterator<Item = (String, f64, f64)>) {
    let mut conn = db.connection().unwrap();
    let mut cmd = redis::cmd("GEOADD");
    cmd.arg(key);
    for (m, lat, lng) in members {
        cmd.arg(lng).arg(lat).arg(m);
    }
    let _: i64 = cmd.query(&mut conn).unwrap();
}

fn env_for(db: &RedisDb, key: &str) -> Env {
    Env::new(&format!(
        "[redis]\nurl = \"{}\"\ngeo_keys = [\"{key}\"]\npoll_ms = 200\n\n[store]\npath = \"{{store}}\"\n{KEEP_ALL}",
        db.url
    ))
}

#[test]
fn geo_set_members_become_vehicles_with_positions() {
    let db = RedisDb::new();
    let key = db.key("cars#gps");
    geoadd(
        &db,
        &key,
        (0..250).map(|i| {
            (
                format!("car-{i}"),
                37.45 + f64::from(i) * 1e-4,
                127.01 + f64::from(i) * 1e-4,
            )
        }),
    );
    let env = env_for(&db, &key);
    env.ingest_until_idle(1.5);
    let s = env.stats();
    assert_eq!(s["vehicles"], 250, "{s}");
    assert_eq!(s["positions"], 250, "{s}");
    assert_eq!(
        query_i64(
            &env.cache(),
            "SELECT COUNT(*) FROM positions WHERE source='redis'"
        ),
        250
    );
    // GEOPOS-equivalent precision (Redis stores 52-bit geohashes: well under a metre).
    assert_eq!(
        query_i64(
            &env.cache(),
            "SELECT COUNT(*) FROM positions WHERE vehicle='car-10' AND abs(lat - 37.451) < 0.00001 AND abs(lng - 127.011) < 0.00001"
        ),
        1
    );
}

fn geoadd_url(url: &str, key: &str, members: impl IntoIterator<Item = (String, f64, f64)>) {
    let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
    let mut cmd = redis::cmd("GEOADD");
    cmd.arg(key);
    for (m, lat, lng) in members {
        cmd.arg(lng).arg(lat).arg(m);
    }
    let _: i64 = cmd.query(&mut conn).unwrap();
}

/// A private redis-server (real Redis, own port) so stopping it disturbs no other test.
#[test]
fn redis_restart_is_survived() {
    let mut server = RedisServer::start_new();
    let key = "cars#gps";
    geoadd_url(
        &server.url(),
        key,
        (0..20).map(|i| (format!("a-{i}"), 37.5, 127.0 + f64::from(i) * 1e-3)),
    );
    let env = Env::new(&format!(
        "[redis]\nurl = \"{}\"\ngeo_keys = [\"{key}\"]\npoll_ms = 200\n\n[store]\npath = \"{{store}}\"\n{KEEP_ALL}",
        server.url()
    ));
    let mut child = env.spawn_ingest(&[]);
    env.wait_stats(Duration::from_secs(30), "first members", |s| {
        s["vehicles"] == 20
    });
    server.stop();
    std::thread::sleep(Duration::from_secs(3));
    server.start();
    // This Redis keeps nothing on disk: after the restart the loader rebuilds the set.
    geoadd_url(
        &server.url(),
        key,
        (0..30).map(|i| (format!("b-{i}"), 37.6, 127.0 + f64::from(i) * 1e-3)),
    );
    env.wait_stats(
        Duration::from_secs(30),
        "members added after the restart",
        |s| s["vehicles"] == 50,
    );
    let status = interrupt(&mut child);
    assert!(status.success(), "{status}\n{}", env.log());
    assert!(
        env.log().contains("redis read failed"),
        "the restart was noticed:\n{}",
        env.log()
    );
}

/// With keyspace notifications on, changes arrive without waiting for the (here: 1 min) poll.
#[test]
fn keyspace_notifications_drive_refresh() {
    let server = RedisServer::start_with_args(&["--notify-keyspace-events", "KEA"]);
    let key = "cars#gps";
    geoadd_url(&server.url(), key, [("car-1".to_string(), 37.5, 127.0)]);
    let env = Env::new(&format!(
        "[redis]\nurl = \"{}\"\ngeo_keys = [\"{key}\"]\npoll_ms = 60000\n\n[store]\npath = \"{{store}}\"\n{KEEP_ALL}",
        server.url()
    ));
    let mut child = env.spawn_ingest(&[]);
    env.wait_stats(Duration::from_secs(30), "first member", |s| {
        s["vehicles"] == 1
    });
    std::thread::sleep(Duration::from_millis(500));
    geoadd_url(
        &server.url(),
        key,
        (0..10).map(|i| (format!("n-{i}"), 37.6, 127.0 + f64::from(i) * 1e-3)),
    );
    env.wait_stats(
        Duration::from_secs(10),
        "members announced by notifications",
        |s| s["vehicles"] == 11,
    );
    assert!(interrupt(&mut child).success());
    assert!(
        env.log().contains("keyspace notifications on"),
        "{}",
        env.log()
    );
}

/// ACL user + password (from the environment, not the file); a wrong password is reported.
#[test]
fn acl_user_and_password_from_env() {
    let server =
        RedisServer::start_with_args(&["--user", "fleet", "on", ">s3cret", "~*", "&*", "+@all"]);
    let admin_url = server.url().replace("redis://", "redis://fleet:s3cret@");
    geoadd_url(&admin_url, "cars#gps", [("car-1".to_string(), 37.5, 127.0)]);
    let toml = format!(
        "[redis]\nurl = \"{}\"\nusername = \"fleet\"\npassword_env = \"FLEETDASH_TEST_REDIS_PW\"\ngeo_keys = [\"cars#gps\"]\npoll_ms = 200\n\n[store]\npath = \"{{store}}\"\n{KEEP_ALL}",
        server.url()
    );
    let env = Env::new(&toml);
    let out = fleetctl()
        .args(["ingest", "--idle-exit", "1", "--json", "--config"])
        .arg(&env.config)
        .env("FLEETDASH_TEST_REDIS_PW", "s3cret")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.stats()["vehicles"], 1);

    // The credentials are really used: a wrong password reads nothing and says why.
    let wrong = Env::new(&toml);
    let mut child = wrong.spawn_ingest_with_env(&[], &[("FLEETDASH_TEST_REDIS_PW", "wrong")]);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        child.try_wait().unwrap().is_none(),
        "not connected is not idle: ingest keeps trying"
    );
    assert!(interrupt(&mut child).success());
    assert_eq!(wrong.stats()["vehicles"], 0);
    assert!(
        wrong.log().contains("authentication failed"),
        "{}",
        wrong.log()
    );

    // Without the variable the config names the key.
    let out = fleetctl()
        .args(["ingest", "--config"])
        .arg(&env.config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("redis.password_env"));
}

/// One member that is not UTF-8 (and two other bad ids, SPEC §7) no longer stops the set from
/// being read: the 50 good members land in the cache, each bad one is counted and
/// quarantined once as `bad_id` however many polls see it, and the samples' times sit on the
/// poll grid (deterministic across desktops, not the arrival instant).
#[test]
fn bad_members_are_skipped_and_counted() {
    let db = RedisDb::new();
    let key = db.key("cars#gps");
    geoadd(
        &db,
        &key,
        (0..50).map(|i| (format!("car-{i}"), 37.45 + f64::from(i) * 1e-4, 127.01)),
    );
    let mut conn = db.connection().unwrap();
    let score: f64 = redis::cmd("ZSCORE")
        .arg(&key)
        .arg("car-0")
        .query(&mut conn)
        .unwrap();
    let not_utf8: &[u8] = b"car-\xff\xfe";
    let _: i64 = redis::cmd("ZADD")
        .arg(&key)
        .arg(score)
        .arg(not_utf8)
        .query(&mut conn)
        .unwrap();
    geoadd(
        &db,
        &key,
        [
            ("x".repeat(300), 37.5, 127.0),
            ("car\t9".to_string(), 37.5, 127.0),
        ],
    );
    let env = env_for(&db, &key);
    // Spawned, not `--idle-exit`: a source that never gets through its first read is never
    // idle, and the old code reconnected forever.
    let mut child = env.spawn_ingest(&[]);
    env.wait_stats(Duration::from_secs(30), "the 50 good members", |s| {
        s["vehicles"] == 50 && s["rejected"] == 3
    });
    // Several more polls (200 ms) see the bad members again: still counted once.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(interrupt(&mut child).success(), "{}", env.log());
    let s = env.stats();
    assert_eq!(s["vehicles"], 50, "{s}");
    assert_eq!(s["positions"], 50, "{s}");
    assert_eq!(s["rejected"], 3, "{s}");
    assert_eq!(s["rejected_by_reason"]["bad_id"], 3, "{s}");
    assert_eq!(
        query_i64(
            &env.cache(),
            &format!(
                "SELECT COUNT(*) FROM quarantine WHERE topic = 'redis:{key}' AND raw = X'{}'",
                not_utf8
                    .iter()
                    .map(|b| format!("{b:02X}"))
                    .collect::<String>()
            )
        ),
        1,
        "the member's bytes are kept"
    );
    assert!(
        env.log().contains("redis geo member skipped"),
        "{}",
        env.log()
    );
    assert_eq!(
        query_i64(
            &env.cache(),
            "SELECT COUNT(*) FROM positions WHERE source = 'redis' AND ts % 200 != 0"
        ),
        0,
        "redis sample times are rounded down to the 200 ms poll grid"
    );
}

/// A 50,000-member set is read with `ZSCAN … COUNT`, a page per round trip, never with one
/// `ZRANGE 0 -1` reply. A private server so its command statistics count only this test.
#[test]
fn large_geo_set_is_scanned_in_pages() {
    let server = RedisServer::start_new();
    let key = "cars#gps";
    for chunk in 0..10 {
        geoadd_url(
            &server.url(),
            key,
            (0..5_000).map(|i| {
                let n = chunk * 5_000 + i;
                (
                    format!("car-{n}"),
                    37.0 + f64::from(n) * 1e-5,
                    127.0 + f64::from(n) * 1e-5,
                )
            }),
        );
    }
    server.reset_stats();
    let env = Env::new(&format!(
        "[redis]\nurl = \"{}\"\ngeo_keys = [\"{key}\"]\npoll_ms = 200\n\n[store]\npath = \"{{store}}\"\n{KEEP_ALL}",
        server.url()
    ));
    env.ingest_until_idle(1.5);
    let s = env.stats();
    assert_eq!(s["vehicles"], 50_000, "{s}");
    assert_eq!(s["positions"], 50_000, "{s}");
    let (zscan, zrange) = (
        server.command_calls("zscan"),
        server.command_calls("zrange"),
    );
    assert_eq!(zrange, 0, "no full-set ZRANGE");
    // ~1,000 members per reply: at least ~50 round trips per cycle, several cycles.
    assert!(zscan >= 45, "zscan calls {zscan}");
}
