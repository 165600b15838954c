//! CLI contract: exit codes, config errors that name the key and the file, export formats.

mod common;

use common::*;

#[test]
fn config_errors_name_key_and_file_and_exit_2() {
    let env = Env::new(
        "[kafka]\nbrokers = \"127.0.0.1:1\"\n[[kafka.topics]]\nname = \"t\"\nkind = \"gps\"\n",
    );
    let out = fleetctl()
        .args(["ingest", "--config"])
        .arg(&env.config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("kafka.topics[0].kind") && err.contains(&env.config.display().to_string()),
        "{err}"
    );

    let env = Env::new("[redis]\nurl = \"redis://127.0.0.1:6379\"\npoll = 5\n");
    let out = fleetctl()
        .args(["stats", "--config"])
        .arg(&env.config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("poll"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = fleetctl()
        .args(["stats", "--config", "/nonexistent/fleet.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = fleetctl()
        .args([
            "sim",
            "--brokers",
            "x:1",
            "--vehicles",
            "0",
            "--rate",
            "1",
            "--duration",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = fleetctl().args(["frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bad_librdkafka_property_is_a_config_error() {
    let env = Env::new(
        "[kafka]\nbrokers = \"127.0.0.1:1\"\n[kafka.properties]\n\"no.such.property\" = \"1\"\n[store]\npath = \"{store}\"\n",
    );
    let out = fleetctl()
        .args(["ingest", "--config"])
        .arg(&env.config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no.such.property"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn empty_cache_stats_and_export() {
    let env = Env::new("[store]\npath = \"{store}\"\n");
    let s = env.stats();
    assert_eq!(s["positions"], 0);
    assert_eq!(s["alerts"]["open"], 0);
    let out = fleetctl()
        .args(["export", "--format", "csv", "--config"])
        .arg(&env.config)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "vehicle,plate,ts,time,lat,lng,speed,heading,source"
    );
    let out = fleetctl()
        .args([
            "export",
            "--format",
            "geojson",
            "--from",
            "yesterday",
            "--config",
        ])
        .arg(&env.config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
