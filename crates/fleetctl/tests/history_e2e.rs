//! Looking back end to end (issue 11): telemetry and alerts produced to a real broker and
//! ingested by `fleetctl ingest` come back from `fleetctl history` exactly for the range
//! asked, and `fleetctl chart` draws them (SVG read back element by element, PNG decoded).
//! Bad input: from after to (exit 2), an unknown vehicle (exit 1, named), an empty range.

mod common;

use common::*;
use fleet_chart::{CURSOR_COLOUR, NO_DATA_TEXT, series_colour, severity_colour};
use fleet_model::Severity;
use fleet_testkit::{Broker, Producer};
use serde_json::Value;
use std::process::Output;

const TOPICS: [(&str, &str); 4] = [
    ("cars.gps.json", "position"),
    ("cars.status.json", "status"),
    ("cars.info.json", "info"),
    ("fleet.alerts.json", "alert"),
];
const S: i64 = 1000;
const M: i64 = 60 * S;

/// What was produced for the vehicle under test.
struct Produced {
    /// (ts, lat, lng, speed)
    positions: Vec<(i64, f64, f64, f64)>,
    /// (ts, fuel, battery, rpm)
    status: Vec<(i64, f64, f64, i64)>,
    /// (id, ts, severity)
    alerts: Vec<(String, i64, Severity)>,
}

fn produce(broker: &Broker, base: i64) -> Produced {
    for (t, _) in TOPICS {
        broker.create_topic(t, 2);
    }
    let p = Producer::new(&broker.bootstrap());
    let key = || Some(b"car-h1".to_vec());
    let mut out = Produced {
        positions: Vec::new(),
        status: Vec::new(),
        alerts: Vec::new(),
    };
    let mut gps = Vec::new();
    // 30 minutes of positions every 10 s, another vehicle alongside.
    for i in 0..180 {
        let ts = base + i * 10 * S;
        let (lat, lng, speed) = (
            37.5 + i as f64 * 1e-4,
            127.0 - i as f64 * 5e-5,
            (i % 60) as f64 + 0.5,
        );
        out.positions.push((ts, lat, lng, speed));
        gps.push((
            key(),
            format!(r#"{{"lat":{lat},"lng":{lng},"speed":{speed},"ts":{ts}}}"#).into_bytes(),
        ));
        gps.push((
            Some(b"car-h2".to_vec()),
            format!(r#"{{"lat":35.1,"lng":129.0,"ts":{ts}}}"#).into_bytes(),
        ));
    }
    p.send_many("cars.gps.json", gps);
    let mut status = Vec::new();
    for i in 0..60 {
        let ts = base + i * 30 * S + 5 * S;
        let (fuel, battery, rpm) = (80.0 - i as f64 * 0.25, 95.0 - i as f64 * 0.5, 900 + i * 20);
        out.status.push((ts, fuel, battery, rpm));
        status.push((
            key(),
            format!(
                r#"{{"ts":{ts},"engine":"on","doors":"closed","headlights":"off","fuel":{fuel},"battery":{battery},"obd":{{"rpm":{rpm}}}}}"#
            )
            .into_bytes(),
        ));
    }
    p.send_many("cars.status.json", status);
    p.send(
        "cars.info.json",
        None,
        Some(b"car-h1"),
        br#"{"plate":"12GA3456","model":"Ioniq 5","driver":"Kim","group":"north","colour":"red"}"#,
    );
    for (id, vehicle, off, sev) in [
        ("up-warn", "car-h1", 5 * M, Severity::Warning),
        ("up-crit", "car-h1", 12 * M, Severity::Critical),
        ("up-late", "car-h1", 40 * M, Severity::Critical),
        ("up-other", "car-h2", 6 * M, Severity::Info),
    ] {
        let ts = base + off;
        p.send(
            "fleet.alerts.json",
            None,
            Some(id.as_bytes()),
            format!(r#"{{"id":"{id}","vehicle":"{vehicle}","rule":"rule_{id}","severity":"{}","message":"m","ts":{ts}}}"#, sev.as_str()).as_bytes(),
        );
        if vehicle == "car-h1" {
            out.alerts.push((id.to_string(), ts, sev));
        }
    }
    out
}

fn desktop(broker: &Broker) -> Env {
    Env::new(&format!(
        "{}\n[store]\npath = \"{{store}}\"\n\n{KEEP_ALL}\n[alerts]\nenabled = false\ndesktop_notifications = false\n",
        kafka_section(&broker.bootstrap(), &TOPICS)
    ))
}

fn run(env: &Env, args: &[&str]) -> Output {
    fleetctl()
        .args(args)
        .arg("--config")
        .arg(&env.config)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `<polyline>` elements with this stroke colour.
fn polylines(svg: &str, (r, g, b): (u8, u8, u8)) -> usize {
    let stroke = format!("stroke=\"#{r:02X}{g:02X}{b:02X}\"");
    svg.split('<')
        .filter(|e| e.starts_with("polyline") && e.contains(&stroke))
        .count()
}

/// The texts of the SVG's `<text>` elements.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|e| e.split_once('>'))
        .map(|(_, rest)| rest.split('<').next().unwrap_or("").trim().to_string())
        .collect()
}

fn hhmm(ms: i64) -> String {
    // Whole seconds from epoch → HH:MM in UTC, as the chart labels its axis.
    let day_ms = ms.rem_euclid(86_400_000);
    format!("{:02}:{:02}", day_ms / 3_600_000, day_ms / 60_000 % 60)
}

#[test]
fn history_and_chart_return_what_was_produced_for_the_range() {
    let broker = Broker::start_memory();
    let base = recent_base_ms();
    let produced = produce(&broker, base);
    let env = desktop(&broker);
    env.ingest_until_idle(1.0);

    // A range whose ends fall exactly on samples: both ends are in it.
    let (from, to) = (base + 3 * M, base + 20 * M);
    let (f, t) = (from.to_string(), to.to_string());
    let h = env.run_json(&["history", "--vehicle", "car-h1", "--from", &f, "--to", &t]);
    assert_eq!(h["vehicle"], "car-h1");
    assert_eq!(h["info"]["plate"], "12GA3456");
    assert_eq!(h["info"]["group"], "north");
    assert_eq!(h["info"]["colour"], "red");

    let inside = |ts: &i64| (from..=to).contains(ts);
    let want: Vec<(i64, f64, f64, f64)> = produced
        .positions
        .iter()
        .copied()
        .filter(|p| inside(&p.0))
        .collect();
    let got: Vec<(i64, f64, f64, f64)> = h["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["source"], "kafka");
            (
                p["ts"].as_i64().unwrap(),
                p["lat"].as_f64().unwrap(),
                p["lng"].as_f64().unwrap(),
                p["speed"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want, "the stored positions of the range, in order");
    assert!(want.iter().any(|p| p.0 == from) && want.iter().any(|p| p.0 == to));

    let want: Vec<(i64, f64, f64, i64)> = produced
        .status
        .iter()
        .copied()
        .filter(|s| inside(&s.0))
        .collect();
    let got: Vec<(i64, f64, f64, i64)> = h["status"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let f = &s["fields"];
            (
                s["ts"].as_i64().unwrap(),
                f["fuel"].as_f64().unwrap(),
                f["battery"].as_f64().unwrap(),
                f["obd.rpm"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got, want,
        "status samples of the range with flattened fields"
    );

    let want: Vec<(String, i64)> = produced
        .alerts
        .iter()
        .filter(|a| inside(&a.1))
        .map(|a| (a.0.clone(), a.1))
        .collect();
    let got: Vec<(String, i64)> = h["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_string(),
                a["ts"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(h["alerts"][0]["state"], "open");
    assert_eq!(h["alerts"][0]["severity"], "warning");

    // The chart of the same range, as SVG: one line per field, a mark per alert per panel
    // (km/h, %, obd.rpm: three panels), the range's ends on the time axis.
    let dir = tempfile::tempdir().unwrap();
    let svg_path = dir.path().join("car.svg");
    let fields = "speed,fuel,battery,obd.rpm";
    let out = run(
        &env,
        &[
            "chart",
            "--vehicle",
            "car-h1",
            "--from",
            &f,
            "--to",
            &t,
            "--fields",
            fields,
            "--out",
            svg_path.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        summary["series"]["speed"],
        h["positions"].as_array().unwrap().len()
    );
    assert_eq!(
        summary["series"]["fuel"],
        h["status"].as_array().unwrap().len()
    );
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    for i in 0..4 {
        assert_eq!(
            polylines(&svg, series_colour(i)),
            1,
            "field {i} drawn as one line"
        );
    }
    let panels = 3;
    for (sev, n) in [(Severity::Warning, 1), (Severity::Critical, 1)] {
        assert_eq!(polylines(&svg, severity_colour(sev)), n * panels, "{sev:?}");
    }
    assert_eq!(
        polylines(&svg, CURSOR_COLOUR),
        0,
        "no cursor outside the app"
    );
    let labels = texts(&svg);
    for want in [
        hhmm(from),
        hhmm(to),
        "rule_up-warn".into(),
        "rule_up-crit".into(),
    ] {
        assert!(labels.contains(&want), "{want} in {labels:?}");
    }
    assert!(!labels.contains(&"rule_up-late".to_string()));

    // …and as PNG: a picture of the asked size with the series' colours in it.
    let png_path = dir.path().join("car.png");
    let out = run(
        &env,
        &[
            "chart",
            "--vehicle",
            "car-h1",
            "--from",
            &f,
            "--to",
            &t,
            "--out",
            png_path.to_str().unwrap(),
            "--width",
            "800",
            "--height",
            "500",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let bytes = std::fs::read(&png_path).unwrap();
    let mut r = png::Decoder::new(std::io::Cursor::new(&bytes[..]))
        .read_info()
        .unwrap();
    let mut px = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut px).unwrap();
    assert_eq!((info.width, info.height), (800, 500));
    for i in 0..3 {
        let c = series_colour(i);
        let n = px.chunks(3).filter(|p| (p[0], p[1], p[2]) == c).count();
        assert!(n > 50, "series {i}: {n} pixels");
    }

    // A range with nothing in it: empty lists (exit 0), and a chart that says so.
    let (ef, et) = ((base - 50 * M).to_string(), (base - 40 * M).to_string());
    let out = run(
        &env,
        &[
            "history",
            "--vehicle",
            "car-h1",
            "--from",
            &ef,
            "--to",
            &et,
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no data in this range"),
        "{}",
        stderr(&out)
    );
    let empty: Value = serde_json::from_slice(&out.stdout).unwrap();
    for list in ["positions", "status", "alerts"] {
        assert_eq!(empty[list].as_array().map(Vec::len), Some(0), "{list}");
    }
    let out = run(
        &env,
        &[
            "chart",
            "--vehicle",
            "car-h1",
            "--from",
            &ef,
            "--to",
            &et,
            "--out",
            svg_path.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains(NO_DATA_TEXT));
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(texts(&svg).contains(&NO_DATA_TEXT.to_string()));
    assert_eq!(polylines(&svg, series_colour(0)), 0);
}

#[test]
fn bad_ranges_unknown_vehicles_and_formats_have_their_exit_codes() {
    let env = Env::new("[store]\npath = \"{store}\"\n");
    let out_svg = env.dir.path().join("x.svg");
    let out_svg = out_svg.to_str().unwrap();
    let later = "2024-05-01T09:00:00Z";
    let earlier = "2024-05-01T08:00:00Z";
    for args in [
        vec![
            "history",
            "--vehicle",
            "car-1",
            "--from",
            later,
            "--to",
            earlier,
        ],
        vec![
            "chart",
            "--vehicle",
            "car-1",
            "--from",
            later,
            "--to",
            earlier,
            "--out",
            out_svg,
        ],
        vec!["history", "--vehicle", "car-1", "--from", "yesterday"],
        vec!["chart", "--vehicle", "car-1", "--out", "x.jpg"],
        vec![
            "chart",
            "--vehicle",
            "car-1",
            "--out",
            out_svg,
            "--width",
            "5",
        ],
    ] {
        let out = run(&env, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert_eq!(
            stderr(&out).trim().lines().count(),
            1,
            "one-line reason: {}",
            stderr(&out)
        );
    }
    assert!(
        stderr(&run(
            &env,
            &[
                "history",
                "--vehicle",
                "v",
                "--from",
                later,
                "--to",
                earlier
            ]
        ))
        .contains("--from")
    );
    for args in [
        vec!["history", "--vehicle", "ghost-car-9"],
        vec!["chart", "--vehicle", "ghost-car-9", "--out", out_svg],
    ] {
        let out = run(&env, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("ghost-car-9") && err.trim().lines().count() == 1,
            "{err}"
        );
    }
    assert!(
        !std::path::Path::new(out_svg).exists(),
        "nothing written on failure"
    );
}

#[test]
fn bench_history_runs_at_a_tiny_size() {
    let out = fleetctl()
        .args([
            "bench",
            "history",
            "--vehicles",
            "40",
            "--hours",
            "2",
            "--probes",
            "3",
            "--frames",
            "5",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let g = &v["generated"];
    assert!(g["positions"].as_u64().unwrap() > 40, "{v}");
    assert!(g["status_samples"].as_u64().unwrap() > 40, "{v}");
    assert!(v["cache_bytes"].as_u64().unwrap() > 0);
    let frame = v["frame_vehicles_p50"].as_f64().unwrap();
    assert!(frame > 0.0 && frame <= 40.0, "{v}");
    assert!(v["track_rows_p50"].as_f64().unwrap() > 0.0, "{v}");
    for k in [
        "track_chart_svg_ms",
        "track_chart_png_ms",
        "frame_ms",
        "frame_from_cache_ms",
    ] {
        assert!(v[k]["p50"].as_f64().unwrap() > 0.0, "{k}: {v}");
    }
    assert!(
        v["range_index"]["positions_p50"].as_f64().unwrap() > 0.0,
        "{v}"
    );
    let err = stderr(&out);
    for figure in [
        "cache size on disk",
        "track + chart (SVG)",
        "whole-fleet replay frame",
        "replay range indexed",
        "target",
    ] {
        assert!(err.contains(figure), "{figure} in {err}");
    }
}
