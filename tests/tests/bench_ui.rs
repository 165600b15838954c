//! The UI benchmark (issue 3; a measurement, not a pass/fail test, hence `#[ignore]`):
//! 20,000 simulated vehicles at 1 Hz into a real broker, the app under Xvfb, and
//! - frames per second while panning and zooming (requestAnimationFrame in the page),
//! - Kafka-message-to-screen latency of a marked vehicle (p50/p99),
//! - total RSS of the app's processes (the shell and its WebKit processes),
//!
//! beside a baseline in the same run: plain Leaflet, one `L.circleMarker` per vehicle on the
//! canvas renderer, updated every second, loaded into the same window.
//!
//! Run: `cargo nextest run -p fleet-e2e --run-ignored only bench_ui --no-capture`
//! (after `./dev test` or `./dev ui` + `cargo build -p fleetdash -p fleetctl`).

use fleet_e2e::{App, sim};
use fleet_testkit::Producer;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const VEHICLES: u32 = 20_000;
/// Latency samples (one marked message each).
const SAMPLES: u32 = 120;
/// Pans and zooms every animation frame for `ms`, returns frames per second.
const FPS_JS: &str = r#"
const done = arguments[arguments.length - 1];
let n = 0, i = 0; const t0 = performance.now();
function f(t) {
  n++; i++;
  const lat = 37.4979 + Math.sin(i / 40) * 0.02, lng = 127.0276 + Math.cos(i / 40) * 0.03;
  window.__fleetdash.setView(lat, lng, 11 + Math.floor(i / 45) % 3);
  if (t - t0 < 6000) requestAnimationFrame(f); else done(n * 1000 / (t - t0));
}
requestAnimationFrame(f);
"#;

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        * 1000.0
}

/// VmRSS (MiB) of `root` and all its descendants, by process name (the shell, WebKit's web
/// and network processes), summed per name.
fn tree_rss_mib(root: u32) -> Vec<(String, f64)> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
        if let Some(ppid) = after.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut stack = vec![root];
    let mut by_name: Vec<(String, f64)> = Vec::new();
    while let Some(p) = stack.pop() {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{p}/status"))
            && let Some(l) = s.lines().find(|l| l.starts_with("VmRSS:"))
        {
            let kb: f64 = l
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
            let name = s
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("Name:"))
                .unwrap_or("?")
                .trim()
                .to_string();
            match by_name.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => *v += kb / 1024.0,
                None => by_name.push((name, kb / 1024.0)),
            }
        }
        stack.extend(children.get(&p).into_iter().flatten());
    }
    by_name
}

fn total(rss: &[(String, f64)]) -> f64 {
    rss.iter().map(|(_, v)| v).sum()
}

fn breakdown(rss: &[(String, f64)]) -> String {
    rss.iter()
        .map(|(n, v)| format!("{n} {v:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn app_pid(driver: u32) -> u32 {
    let out = std::process::Command::new("pgrep")
        .args(["-P", &driver.to_string()])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("the app's pid")
}

/// Lets the page settle, then measures what fleetdash and the baseline are compared on:
/// frames per second while panning and zooming, and RSS per process; saves a screenshot.
async fn settle_and_measure(app: &App, shot: &str) -> (f64, Vec<(String, f64)>) {
    tokio::time::sleep(Duration::from_secs(5)).await;
    let fps = app
        .client
        .execute_async(FPS_JS, vec![])
        .await
        .unwrap()
        .as_f64()
        .unwrap_or(0.0);
    let rss = tree_rss_mib(app_pid(app.driver_pid()));
    app.screenshot(shot).await;
    (fps, rss)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run explicitly"]
async fn bench_ui() {
    let broker = fleet_e2e::broker(false).await;
    let store = tempfile::tempdir().unwrap();
    let cfg = format!(
        "[kafka]\nbrokers = \"{}\"\nstart = \"earliest\"\n\n[store]\npath = \"{}\"\n",
        broker.bootstrap(),
        store.path().join("cache.sqlite").display()
    );
    let _sim = sim(&broker.bootstrap(), None, VEHICLES, 900);
    let app = App::launch("bench", Some(&cfg)).await;
    app.wait_for("the whole fleet", Duration::from_secs(180), async |a| {
        a.attr("counter-vehicles", "data-value")
            .await
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
            >= VEHICLES
    })
    .await;
    let (fps, rss) = settle_and_measure(&app, "bench-app").await;

    // Latency: move a marked vehicle and time its marker's move on screen.
    app.js("window.__fleetdash.setView(37.4979, 127.0276, 16); return true")
        .await;
    let producer = std::sync::Arc::new(Producer::new(&broker.bootstrap()));
    // (produce → screen, produce → frame built, frame built → screen) per sample
    let mut samples: Vec<(f64, f64, f64)> = Vec::new();
    for k in 0..=SAMPLES {
        let lat = 37.4979 + f64::from(k % 2) * 0.0004;
        let wait = format!(
            "const done = arguments[arguments.length - 1]; const t0 = Date.now();
             (function f() {{ const d = window.__fleetdash.dot('bench-marker');
               if (d && Math.abs(d[2] - {lat}) < 1e-9) done([Date.now(), window.__fleetdash.frame_ts]);
               else if (Date.now() - t0 > 10000) done(null); else requestAnimationFrame(f); }})();"
        );
        let payload =
            format!("{{\"lat\": {lat}, \"lng\": 127.0276, \"speed\": 20, \"heading\": 90}}");
        let p = producer.clone();
        let (client, w) = (app.client.clone(), wait.clone());
        let seen = tokio::spawn(async move { client.execute_async(&w, vec![]).await });
        // Produced off this thread; `sent` is taken right before the send.
        let sent = tokio::task::spawn_blocking(move || {
            let sent = now_ms();
            p.send(
                "cars.gps.json",
                None,
                Some(b"bench-marker"),
                payload.as_bytes(),
            );
            sent
        })
        .await
        .unwrap();
        let seen = seen.await.unwrap().unwrap();
        let (Some(screen), Some(built)) = (
            seen.get(0).and_then(serde_json::Value::as_f64),
            seen.get(1).and_then(serde_json::Value::as_f64),
        ) else {
            continue;
        };
        // The first sample only places the marker.
        if k > 0 {
            samples.push((screen - sent, built - sent, screen - built));
        }
        // Spread the sends over the frame period instead of locking onto its phase.
        tokio::time::sleep(Duration::from_millis(250 + 37 * u64::from(k % 7))).await;
    }
    let col = |f: fn(&(f64, f64, f64)) -> f64| samples.iter().map(f).collect::<Vec<f64>>();
    let (mut total_ms, mut to_frame, mut to_screen) = (col(|s| s.0), col(|s| s.1), col(|s| s.2));
    let (p50, p99) = if total_ms.is_empty() {
        (f64::NAN, f64::NAN)
    } else {
        (pct(&mut total_ms, 0.5), pct(&mut total_ms, 0.99))
    };
    let parts = if samples.is_empty() {
        String::new()
    } else {
        format!(
            "produce → frame built p50 {:.0} / p99 {:.0} ms; frame built → on screen p50 {:.0} / p99 {:.0} ms",
            pct(&mut to_frame, 0.5),
            pct(&mut to_frame, 0.99),
            pct(&mut to_screen, 0.5),
            pct(&mut to_screen, 0.99)
        )
    };

    // Baseline in the same window and run.
    app.client
        .goto("tauri://localhost/bench/baseline.html?n=20000")
        .await
        .unwrap();
    let (base_fps, base_rss) = settle_and_measure(&app, "bench-baseline").await;
    eprintln!("\n== UI benchmark: {VEHICLES} vehicles at 1 Hz ==");
    eprintln!(
        "fleetdash : {fps:6.1} fps panning/zooming | latency p50 {p50:.0} ms, p99 {p99:.0} ms ({} samples) | RSS {:.0} MiB",
        samples.len(),
        total(&rss)
    );
    eprintln!("            latency: {parts}");
    eprintln!("            RSS MiB: {}", breakdown(&rss));
    eprintln!(
        "baseline  : {base_fps:6.1} fps panning/zooming | latency n/a (in-page data)    | RSS {:.0} MiB (engine still running)",
        total(&base_rss)
    );
    eprintln!("            RSS MiB: {}", breakdown(&base_rss));
    eprintln!("ratio fps : {:.2}x", fps / base_fps.max(0.01));
    app.close().await;
}
