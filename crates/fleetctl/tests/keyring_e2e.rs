//! Secrets from the OS keyring (issue 10): `keyring:NAME` in `[kafka.properties]` is read from
//! a real Secret Service — GNOME Keyring's daemon on a private D-Bus session bus
//! ([`fleet_testkit::Keyring`]) — and `fleetctl check` and `fleetctl ingest` log in to a real
//! broker that requires SCRAM with it. A missing entry, and no Secret Service at all, are
//! config errors naming the key and the file (exit 2), never an empty or literal password.
//!
//! The bus address reaches `fleetctl` only through its environment
//! (`DBUS_SESSION_BUS_ADDRESS`); the test process's own environment is never changed.

mod common;

use common::*;
use fleet_testkit::{Broker, Keyring, SaslMechanism, Security};
use serde_json::Value;
use std::process::Output;
use std::time::Duration;

const GPS: &str = "cars.gps.json";
const N: i64 = 100;
const USER: &str = "fleet";
const PASSWORD: &str = "k3yring-Pa55-e2e";
/// The keyring entry the config names.
const ENTRY: &str = "e2e.kafka.sasl.password";

fn sasl_broker() -> Broker {
    let broker =
        Broker::start_secure(Security::new().sasl(SaslMechanism::ScramSha512, USER, PASSWORD));
    broker.create_topic(GPS, 1);
    let base = recent_base_ms();
    broker.producer().send_many(
        GPS,
        (0..N).map(|i| {
            (
                Some(format!("car-{:02}", i % 10).into_bytes()),
                format!(
                    r#"{{"lat":{:.5},"lng":127.0,"ts":{}}}"#,
                    37.4 + i as f64 * 1e-4,
                    base + i
                )
                .into_bytes(),
            )
        }),
    );
    broker
}

/// A config whose SASL password is `password` (`keyring:NAME` in these tests).
fn sasl_env(broker: &Broker, password: &str) -> Env {
    let mut toml = kafka_section(&broker.bootstrap(), &[(GPS, "position")]);
    toml.push_str(&format!(
        "\n[kafka.properties]\n\"security.protocol\" = \"SASL_PLAINTEXT\"\n\
         \"sasl.mechanism\" = \"SCRAM-SHA-512\"\n\"sasl.username\" = \"{USER}\"\n\
         \"sasl.password\" = \"{password}\"\n\n[store]\npath = \"{{store}}\"\n{KEEP_ALL}"
    ));
    Env::new(&toml)
}

/// `fleetctl ARGS --config F --json` on the session bus `bus`, bounded in time.
fn run(env: &Env, args: &[&str], bus: &str) -> Output {
    let mut child = fleetctl()
        .args(args)
        .arg("--config")
        .arg(&env.config)
        .arg("--json")
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .env("FLEETDASH_LOG_DIR", env.dir.path().join("logs"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read the pipes on threads so a chatty child cannot block on a full pipe.
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out = read(Box::new(child.stdout.take().unwrap()));
    let err = read(Box::new(child.stderr.take().unwrap()));
    let status = wait_timeout(&mut child, Duration::from_secs(30));
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Before: `keyring:NAME` went to librdkafka as the literal password, the login failed and
/// `ingest` never finished. Now the password comes from the keyring and everything arrives.
#[test]
fn the_sasl_password_comes_from_the_os_keyring() {
    let keyring = Keyring::start();
    keyring.store(ENTRY, PASSWORD);
    assert_eq!(keyring.lookup(ENTRY).as_deref(), Some(PASSWORD));
    let broker = sasl_broker();
    let env = sasl_env(&broker, &format!("keyring:{ENTRY}"));
    assert!(
        !std::fs::read_to_string(&env.config)
            .unwrap()
            .contains(PASSWORD)
    );

    let check = run(&env, &["check"], keyring.bus_address());
    let check_err = String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "check failed:\n{check_err}");
    let report: Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");

    let out = run(&env, &["ingest", "--idle-exit", "1"], keyring.bus_address());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "ingest failed ({}):\n{stderr}",
        out.status
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["stopped"], "idle", "{summary}\n{stderr}");
    assert_eq!(summary["messages"], N, "{summary}\n{stderr}");
    assert_eq!(env.stats()["positions"], N);
    // The secret is in no output, no log and not in the file.
    for text in [&check_err, &stderr] {
        assert!(!text.contains(PASSWORD), "{text}");
    }
    assert!(!String::from_utf8_lossy(&check.stdout).contains(PASSWORD));
    let mut logged = 0;
    for log in std::fs::read_dir(env.dir.path().join("logs"))
        .unwrap()
        .flatten()
    {
        let text = String::from_utf8_lossy(&std::fs::read(log.path()).unwrap()).into_owned();
        logged += text.len();
        assert!(
            !text.contains(PASSWORD),
            "{} holds the password",
            log.path().display()
        );
    }
    assert!(logged > 0, "ingest wrote no log file to search");
}

/// A missing entry, and no Secret Service at all, are config errors naming the key, the
/// entry and the file (exit 2) — nothing connects with an empty or literal password.
#[test]
fn a_missing_keyring_entry_or_no_keyring_names_the_key_and_the_file() {
    let keyring = Keyring::start();
    let broker = sasl_broker();
    let env = sasl_env(&broker, "keyring:no-such-entry");
    let file = env.config.display().to_string();
    for cmd in [&["check"][..], &["ingest", "--idle-exit", "1"]] {
        let out = run(&env, cmd, keyring.bus_address());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd:?}: {err}");
        assert!(
            err.contains("kafka.properties.\"sasl.password\"")
                && err.contains("no entry `no-such-entry` in the OS keyring")
                && err.contains(&file),
            "{cmd:?}: {err}"
        );
    }

    let dead = env.dir.path().join("no-bus-here");
    let out = run(&env, &["check"], &format!("unix:path={}", dead.display()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("kafka.properties.\"sasl.password\"")
            && err.contains("OS keyring (Secret Service) is not available")
            && err.contains(&file),
        "{err}"
    );
    assert_eq!(env.stats()["positions"], 0);
}
