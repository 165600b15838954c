//! Secure connections, tested for real (issue 10): the real `fleetctl ingest` consumes from a
//! real broker that requires a SASL login and/or TLS, configured only through
//! `[kafka.properties]` (SPEC §1, §3) with the password from the environment (`env:NAME`);
//! and reads a TLS-only Redis as an ACL user. Wrong credentials and untrusted certificates
//! are refused with the reason in the log, and `--idle-exit` never reports success.
//!
//! What the broker (tansu 0.6.0) can and cannot do, and how the testkit works around it,
//! is in `fleet_testkit::Broker`'s module docs. In short: SASL is real tansu (SCRAM-SHA-256
//! and -512; no PLAIN), TLS is terminated by socat (OpenSSL) in front of tansu because
//! tansu's own `--cert/--key` do nothing; every certificate comes from a CA generated per
//! test. The client side — librdkafka's TLS handshake, CA and hostname verification, client
//! certificate, SASL over TLS — is exactly what a user gets.

mod common;

use common::*;
use fleet_testkit::{Broker, CertFiles, RedisServer, SaslMechanism, Security, TestCa};
use serde_json::Value;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

const GPS: &str = "cars.gps.json";
/// Messages each positive test produces and expects in the cache.
const N: i64 = 200;
/// Where the tests' configs take the Kafka password from.
const KAFKA_PW_VAR: &str = "FLEETDASH_TEST_KAFKA_PW";
const USER: &str = "fleet";
const PASSWORD: &str = "s3cret-Pa55";

/// `N` position messages for 20 vehicles through the broker's own (secure) producer.
fn produce(broker: &Broker) {
    let base = recent_base_ms();
    broker.producer().send_many(
        GPS,
        (0..N).map(|i| {
            (
                Some(format!("car-{:02}", i % 20).into_bytes()),
                format!(
                    r#"{{"lat":{:.5},"lng":{:.5},"ts":{}}}"#,
                    37.4 + i as f64 * 1e-4,
                    127.0 + i as f64 * 1e-4,
                    base + i
                )
                .into_bytes(),
            )
        }),
    );
}

/// A config for `broker` with `props` as `[kafka.properties]`.
fn kafka_env(broker: &Broker, props: &[(&str, String)]) -> Env {
    let mut toml = kafka_section(&broker.bootstrap(), &[(GPS, "position")]);
    toml.push_str("\n[kafka.properties]\n");
    for (k, v) in props {
        toml.push_str(&format!("{k:?} = {v:?}\n"));
    }
    toml.push_str(&format!("\n[store]\npath = \"{{store}}\"\n{KEEP_ALL}"));
    Env::new(&toml)
}

/// `[kafka.properties]` for a SASL login, the password from [`KAFKA_PW_VAR`].
fn sasl_props(protocol: &str, mechanism: SaslMechanism) -> Vec<(&'static str, String)> {
    vec![
        ("security.protocol", protocol.into()),
        ("sasl.mechanism", mechanism.name().into()),
        ("sasl.username", USER.into()),
        ("sasl.password", format!("env:{KAFKA_PW_VAR}")),
    ]
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// `fleetctl ingest --idle-exit 1 --json` with `vars`, bounded in time.
fn ingest(env: &Env, vars: &[(&str, &str)]) -> Output {
    let mut child = fleetctl()
        .args(["ingest", "--idle-exit", "1", "--json", "--config"])
        .arg(&env.config)
        .envs(vars.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read the pipes on threads so a chatty child cannot block on a full pipe.
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let (out, err) = (read(Box::new(out)), read(Box::new(err)));
    let status = wait_timeout(&mut child, Duration::from_secs(20));
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Ingest consumed all `N` messages over the secure connection, and the cache has them.
fn assert_consumed_all(env: &Env, vars: &[(&str, &str)]) {
    let out = ingest(env, vars);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "ingest failed ({}):\n{stderr}",
        out.status
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["stopped"], "idle", "{summary}\n{stderr}");
    assert_eq!(summary["messages"], N, "{summary}\n{stderr}");
    let s = env.stats();
    assert_eq!(s["positions"], N, "{s}");
    assert_eq!(s["vehicles"], 20, "{s}");
    assert_eq!(s["topics"][GPS]["offsets"]["0"], N, "{s}");
}

/// How long a refused ingest is watched: past the 1 s idle time several times over, and
/// long enough for its 5-second progress line, which shows the connection state.
const WATCH: Duration = Duration::from_secs(7);

/// Runs `ingest --idle-exit 1 --json` that cannot connect: it must not stop on its own
/// (not connected is not idle, so it never claims success); its log must say why
/// (`expect`: every string must appear) and its progress line must show the Kafka
/// connection down *with the cause* (`state`), not only "brokers are down". Then Ctrl-C
/// stops it with nothing consumed. Returns the log.
fn assert_refused(env: &Env, vars: &[(&str, &str)], expect: &[&str], state: &str) -> String {
    let mut child = env.spawn_ingest_with_env(&["--idle-exit", "1", "--json"], vars);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(20);
    loop {
        let log = env.log();
        if started.elapsed() >= WATCH
            && expect.iter().all(|e| log.contains(e))
            && log.lines().any(|l| {
                l.starts_with("ingest:") && l.contains("kafka down (") && l.contains(state)
            })
        {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("ingest exited ({status}) although it never connected:\n{log}");
        }
        assert!(
            Instant::now() < deadline,
            "the log does not show {expect:?} and {state:?}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "still running: not connected is not idle"
    );
    let status = interrupt(&mut child);
    let log = env.log();
    assert!(
        status.success(),
        "Ctrl-C is a clean stop ({status}):\n{log}"
    );
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["stopped"], "interrupted", "{summary}");
    assert_eq!(summary["messages"], 0, "{summary}");
    assert_eq!(env.stats()["positions"], 0);
    log
}

fn scram_broker(mechanism: SaslMechanism, ca: &TestCa) -> Broker {
    let broker = Broker::start_secure(
        Security::new()
            .sasl(mechanism, USER, PASSWORD)
            .tls(ca.cert_path(), &ca.server_cert("broker")),
    );
    broker.create_topic(GPS, 1);
    broker
}

/// CA-verified TLS, then a SCRAM login with `mech`; every message arrives.
fn scram_round_trip(mech: SaslMechanism) {
    let ca = TestCa::new("fleetdash test CA");
    let broker = scram_broker(mech, &ca);
    produce(&broker);
    let mut props = sasl_props("SASL_SSL", mech);
    props.push(("ssl.ca.location", path(ca.cert_path())));
    assert_consumed_all(&kafka_env(&broker, &props), &[(KAFKA_PW_VAR, PASSWORD)]);
}

/// (a) SASL_SSL with SCRAM-SHA-256.
#[test]
fn sasl_ssl_scram_sha_256() {
    scram_round_trip(SaslMechanism::ScramSha256);
}

/// (b) SASL_SSL with SCRAM-SHA-512.
#[test]
fn sasl_ssl_scram_sha_512() {
    scram_round_trip(SaslMechanism::ScramSha512);
}

/// A wrong password: the broker refuses the login, the log says so, the Kafka connection
/// shows as down, and `--idle-exit` never reports success.
#[test]
fn sasl_wrong_password_is_refused_with_the_reason() {
    let ca = TestCa::new("fleetdash test CA");
    let broker = scram_broker(SaslMechanism::ScramSha256, &ca);
    produce(&broker);
    let mut props = sasl_props("SASL_SSL", SaslMechanism::ScramSha256);
    props.push(("ssl.ca.location", path(ca.cert_path())));
    let env = kafka_env(&broker, &props);
    assert_refused(
        &env,
        &[(KAFKA_PW_VAR, "not-the-password")],
        &["SASL authentication error: SASL SCRAM authentication failed"],
        "SASL authentication error",
    );
}

/// (c) PLAIN cannot be tested for success against tansu 0.6.0: it offers SCRAM-SHA-512,
/// SCRAM-SHA-256 and OAUTHBEARER only (its rsasl is built without `plain`), and answers a
/// PLAIN `SaslHandshake` by closing the connection (broker log:
/// `error=Auth(Sasl(NoSharedMechanism))`) instead of `UnsupportedSaslMechanism`. What is
/// checked: `sasl.mechanism = "PLAIN"` really reaches the broker's handshake over TLS, the
/// refusal is reported, and it is not taken for success. When the broker offers PLAIN,
/// turn this into the positive test (as for SCRAM above).
#[test]
fn sasl_ssl_plain_is_not_offered_by_tansu_and_that_is_reported() {
    let ca = TestCa::new("fleetdash test CA");
    let broker = scram_broker(SaslMechanism::ScramSha256, &ca);
    produce(&broker);
    let mut props = sasl_props("SASL_SSL", SaslMechanism::Plain);
    props.push(("ssl.ca.location", path(ca.cert_path())));
    let env = kafka_env(&broker, &props);
    assert_refused(
        &env,
        &[(KAFKA_PW_VAR, PASSWORD)],
        &["SASL PLAIN mechanism handshake failed"],
        "SASL PLAIN mechanism handshake failed",
    );
}

/// (d) TLS (`SSL`) with a private CA: the client verifies the broker's certificate (and its
/// name, 127.0.0.1) against the CA from `ssl.ca.location`.
#[test]
fn ssl_with_a_private_ca() {
    let ca = TestCa::new("fleetdash test CA");
    let broker =
        Broker::start_secure(Security::new().tls(ca.cert_path(), &ca.server_cert("broker")));
    broker.create_topic(GPS, 1);
    produce(&broker);
    let props = [
        ("security.protocol", "SSL".to_string()),
        ("ssl.ca.location", path(ca.cert_path())),
    ];
    assert_consumed_all(&kafka_env(&broker, &props), &[]);
}

/// A broker certificate from a CA the client does not trust: the handshake fails, the log
/// says why, the connection shows as down, and `--idle-exit` never reports success.
#[test]
fn ssl_untrusted_ca_is_refused_with_the_reason() {
    let ca = TestCa::new("fleetdash test CA");
    let stranger = TestCa::new("some other CA");
    let broker =
        Broker::start_secure(Security::new().tls(ca.cert_path(), &ca.server_cert("broker")));
    broker.create_topic(GPS, 1);
    produce(&broker);
    let props = [
        ("security.protocol", "SSL".to_string()),
        ("ssl.ca.location", path(stranger.cert_path())),
    ];
    assert_refused(
        &kafka_env(&broker, &props),
        &[],
        &["certificate verify failed"],
        "certificate verify failed",
    );
}

fn mtls_broker(ca: &TestCa) -> (Broker, CertFiles) {
    let broker = Broker::start_secure(
        Security::new()
            .tls(ca.cert_path(), &ca.server_cert("broker"))
            .require_client_cert(&ca.client_cert("testkit")),
    );
    broker.create_topic(GPS, 1);
    (broker, ca.client_cert("fleetdash-desktop"))
}

/// (e) Mutual TLS: the broker side requires a client certificate signed by the CA; fleetdash
/// presents its own (`ssl.certificate.location`, `ssl.key.location`).
#[test]
fn mutual_tls_with_a_client_certificate() {
    let ca = TestCa::new("fleetdash test CA");
    let (broker, client) = mtls_broker(&ca);
    produce(&broker);
    let props = [
        ("security.protocol", "SSL".to_string()),
        ("ssl.ca.location", path(ca.cert_path())),
        ("ssl.certificate.location", path(&client.cert)),
        ("ssl.key.location", path(&client.key)),
    ];
    assert_consumed_all(&kafka_env(&broker, &props), &[]);
}

/// Mutual TLS without a client certificate is refused, and said.
#[test]
fn mutual_tls_without_a_client_certificate_is_refused() {
    let ca = TestCa::new("fleetdash test CA");
    let (broker, _) = mtls_broker(&ca);
    produce(&broker);
    let props = [
        ("security.protocol", "SSL".to_string()),
        ("ssl.ca.location", path(ca.cert_path())),
    ];
    assert_refused(
        &kafka_env(&broker, &props),
        &[],
        &["certificate required"],
        "certificate required",
    );
}

const REDIS_PW_VAR: &str = "FLEETDASH_TEST_REDIS_PW";

/// (f) `rediss://` to a TLS-only Redis (no plaintext port) whose certificate comes from a
/// private CA, as an ACL user whose password comes from the environment.
///
/// fleetdash's Redis client (the `redis` crate over native-tls, i.e. OpenSSL on Linux)
/// takes no CA setting from the config: it trusts the system's roots plus the file named
/// by `SSL_CERT_FILE` (native-tls loads `openssl_probe`'s result, which honours it), so
/// that is how a private CA is given. Without it the same config is refused as untrusted.
#[test]
fn rediss_with_a_private_ca_and_an_acl_user() {
    let ca = TestCa::new("fleetdash test CA");
    let server = RedisServer::start_tls(ca.cert_path(), &ca.server_cert("redis"), &[]);
    server.acl_setuser(USER, PASSWORD);
    let mut conn = server.connection_as(USER, PASSWORD).unwrap();
    let mut geoadd = redis::cmd("GEOADD");
    geoadd.arg("cars#gps");
    for i in 0..25 {
        geoadd
            .arg(127.0 + f64::from(i) * 1e-3)
            .arg(37.5)
            .arg(format!("car-{i}"));
    }
    let _: i64 = geoadd.query(&mut conn).unwrap();
    // Only the ACL user can log in from now on: fleetdash cannot be reading as `default`.
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("default")
        .arg("off")
        .query(&mut conn)
        .unwrap();
    let url = format!("rediss://{USER}@127.0.0.1:{}/0", server.port());
    let toml = format!(
        "[redis]\nurl = \"{url}\"\npassword_env = \"{REDIS_PW_VAR}\"\ngeo_keys = [\"cars#gps\"]\npoll_ms = 200\n\n[store]\npath = \"{{store}}\"\n{KEEP_ALL}"
    );
    let ca_file = path(ca.cert_path());

    let env = Env::new(&toml);
    let out = ingest(
        &env,
        &[
            ("SSL_CERT_FILE", ca_file.as_str()),
            (REDIS_PW_VAR, PASSWORD),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "ingest failed ({}):\n{stderr}",
        out.status
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["stopped"], "idle", "{summary}\n{stderr}");
    let s = env.stats();
    assert_eq!(s["vehicles"], 25, "{s}\n{stderr}");
    assert_eq!(s["positions"], 25, "{s}");

    // The CA is really what makes it work: without it the certificate is not trusted
    // (`SSL_CERT_FILE` naming no file: the system's roots only).
    assert_redis_refused(
        &toml,
        &[("SSL_CERT_FILE", "/nonexistent"), (REDIS_PW_VAR, PASSWORD)],
        "certificate verify failed",
    );
    // And the password is really used, over TLS.
    assert_redis_refused(
        &toml,
        &[
            ("SSL_CERT_FILE", ca_file.as_str()),
            (REDIS_PW_VAR, "not-the-password"),
        ],
        "authentication failed",
    );
}

/// A Redis-only ingest that cannot log in: it says why (`expect`), keeps retrying instead of
/// reporting idle, and stops cleanly on Ctrl-C with nothing read.
fn assert_redis_refused(toml: &str, vars: &[(&str, &str)], expect: &str) {
    let env = Env::new(toml);
    let mut child = env.spawn_ingest_with_env(&["--idle-exit", "1", "--json"], vars);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !env.log().contains(expect) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "ingest stopped although it cannot log in:\n{}",
            env.log()
        );
        assert!(
            Instant::now() < deadline,
            "{expect:?} is not in the log:\n{}",
            env.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Twice the idle time: an ingest that took "not connected" for idle would be gone.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        child.try_wait().unwrap().is_none(),
        "not connected is not idle: ingest keeps trying:\n{}",
        env.log()
    );
    assert!(interrupt(&mut child).success(), "{}", env.log());
    assert_eq!(env.stats()["vehicles"], 0);
}
