//! The UI benchmark (issue 3; a measurement, not a pass/fail test, hence `#[ignore]`):
//! 20,000 simulated vehicles at 1 Hz into a real broker, the app under Xvfb, and
//! - frames per second while panning and zooming (requestAnimationFrame in the page),
//! - Kafka-message-to-screen latency of a marked vehicle (p50/p99),
//! - total RSS of the app's processes (the shell and its WebKit processes),
//! - produce-to-feed latency of alerts (issue 4): a status message that trips the low-battery
//!   rule until its alert is in the window's feed,
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
/// Alert probes (one new vehicle with a low battery each).
const ALERT_PROBES: u32 = 60;
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

/// Memory of one process (MiB), from `/proc/PID/smaps_rollup`.
#[derive(Debug, Default, Clone, Copy)]
struct Mem {
    /// Resident set: what the issue's target counts. Pages of shared libraries (WebKit's
    /// are mapped by the shell and by each WebKit process) count once per process.
    rss: f64,
    /// Proportional set: shared pages split among the processes mapping them, so the sum
    /// over processes is the real footprint.
    pss: f64,
    /// Private heap and the like (anonymous pages).
    anon: f64,
}

impl std::ops::AddAssign for Mem {
    fn add_assign(&mut self, o: Mem) {
        self.rss += o.rss;
        self.pss += o.pss;
        self.anon += o.anon;
    }
}

fn mem_of(pid: u32) -> Option<Mem> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    Some(Mem {
        rss: field("Rss:"),
        pss: field("Pss:"),
        anon: field("Anonymous:"),
    })
}

/// Resident MiB of `root` and its descendants from `/proc/PID/statm` (cheap counters).
fn tree_statm_mib(root: u32) -> f64 {
    let page_kib = 4.0;
    descendants(root)
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/statm")).ok())
        .filter_map(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|pages| pages * page_kib / 1024.0)
        .sum()
}

/// Memory of `root` and all its descendants, by process name (the shell, WebKit's web and
/// network processes), summed per name.
fn tree_mem(root: u32) -> Vec<(String, Mem)> {
    let mut by_name: Vec<(String, Mem)> = Vec::new();
    for p in descendants(root) {
        if let (Ok(name), Some(m)) = (
            std::fs::read_to_string(format!("/proc/{p}/comm")),
            mem_of(p),
        ) {
            let name = name.trim().to_string();
            match by_name.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => *v += m,
                None => by_name.push((name, m)),
            }
        }
    }
    by_name
}

/// `root` and every process below it.
fn descendants(root: u32) -> Vec<u32> {
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
    let (mut stack, mut all) = (vec![root], Vec::new());
    while let Some(p) = stack.pop() {
        all.push(p);
        stack.extend(children.get(&p).into_iter().flatten());
    }
    all
}

fn total(mem: &[(String, Mem)]) -> Mem {
    let mut t = Mem::default();
    for (_, m) in mem {
        t += *m;
    }
    t
}

fn breakdown(mem: &[(String, Mem)]) -> String {
    mem.iter()
        .map(|(n, m)| format!("{n} {:.0} (pss {:.0}, anon {:.0})", m.rss, m.pss, m.anon))
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
async fn settle_and_measure(app: &App, shot: &str) -> (f64, Vec<(String, Mem)>) {
    tokio::time::sleep(Duration::from_secs(5)).await;
    let fps = app
        .client
        .execute_async(FPS_JS, vec![])
        .await
        .unwrap()
        .as_f64()
        .unwrap_or(0.0);
    let rss = tree_mem(app_pid(app.driver_pid()));
    app.screenshot(shot).await;
    (fps, rss)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// (p50, p99), NaN when nothing was measured.
fn p50_p99(v: &mut [f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    (pct(v, 0.5), pct(v, 0.99))
}

/// Produces `payload` with `key` to `topic` and watches the page until the JS expression
/// `seen` (evaluated every animation frame) is truthy. Returns when the message was sent
/// (ms, taken right before the send, which runs off this thread) and what `seen` gave
/// (`null` after 10 s).
async fn produce_and_watch(
    app: &App,
    producer: &std::sync::Arc<Producer>,
    (topic, key, payload): (&'static str, String, String),
    seen: &str,
) -> (f64, serde_json::Value) {
    let watch = format!(
        "const done = arguments[arguments.length - 1]; const t0 = Date.now();
         (function f() {{ const v = {seen};
           if (v) done(v); else if (Date.now() - t0 > 10000) done(null); else requestAnimationFrame(f); }})();"
    );
    let client = app.client.clone();
    let watching = tokio::spawn(async move { client.execute_async(&watch, vec![]).await });
    let p = producer.clone();
    let sent = tokio::task::spawn_blocking(move || {
        let sent = now_ms();
        p.send(topic, None, Some(key.as_bytes()), payload.as_bytes());
        sent
    })
    .await
    .unwrap();
    (sent, watching.await.unwrap().unwrap())
}

/// Produces, per probe, a status message for a new vehicle whose battery is below the
/// low-battery threshold, and times it until its alert (known id) is in the feed.
async fn alert_to_feed(app: &App, producer: &std::sync::Arc<Producer>) -> (f64, f64) {
    let mut lat = Vec::new();
    for i in 0..ALERT_PROBES {
        let vehicle = format!("alert-probe-{i:03}");
        let ts = now_ms() as i64;
        let id = fleet_model::alert_id("low_battery", &vehicle, ts);
        let payload = format!(
            r#"{{"ts":{ts},"engine":"on","doors":"closed","headlights":"off","battery":4}}"#
        );
        let (sent, seen) = produce_and_watch(
            app,
            producer,
            ("cars.status.json", vehicle, payload),
            &format!("document.querySelector('[data-alert-id=\"{id}\"]') && Date.now()"),
        )
        .await;
        match seen.as_f64() {
            Some(shown) => lat.push(shown - sent),
            None => eprintln!("alert {id} not in the feed within 10 s"),
        }
        tokio::time::sleep(Duration::from_millis(150 + 37 * u64::from(i % 7))).await;
    }
    p50_p99(&mut lat)
}

/// Frames per second while the whole fleet replays at 60× (issue 11): the replay of the
/// history the run has put in the cache so far, panned and zoomed like the live measurement.
/// Returns the fps and the seconds of history replayed.
async fn replay_fps(app: &App, from: i64) -> (f64, f64) {
    let now = now_ms() as i64;
    let started = app
        .client
        .execute_async(
            &format!(
                "const done = arguments[arguments.length - 1];
                 window.__TAURI__.core.invoke('replay_start', {{ fromMs: {from}, toMs: {now}, atMs: {from}, playing: true, speed: 60 }})
                   .then(() => done(true), (e) => done(String(e)));"
            ),
            vec![],
        )
        .await
        .unwrap_or_default();
    assert_eq!(
        started,
        serde_json::Value::Bool(true),
        "replay_start: {started}"
    );
    // The run's history is a few minutes, seconds at 60×: play it again whenever it ends
    // (play at the end starts over), so the whole measurement is of a playing replay.
    app.js("window.__replayKeep = setInterval(() => window.__TAURI__.core.invoke('replay_control', { playing: true }), 500); return true")
        .await;
    app.wait_for("the replay frames", Duration::from_secs(10), async |a| {
        a.js("return window.__fleetdash.replay_t")
            .await
            .as_f64()
            .unwrap_or(0.0)
            > 0.0
    })
    .await;
    let (fps, _) = settle_and_measure(app, "bench-replay").await;
    app.js("clearInterval(window.__replayKeep); window.__TAURI__.core.invoke('replay_stop'); return true")
        .await;
    (fps, (now - from) as f64 / 1000.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run explicitly"]
async fn bench_ui() {
    let broker = fleet_e2e::broker(false).await;
    let config = |store: &std::path::Path| {
        format!(
            "[kafka]\nbrokers = \"{}\"\nstart = \"earliest\"\n\n[store]\npath = \"{}\"\n",
            broker.bootstrap(),
            store.join("cache.sqlite").display()
        )
    };
    // The floor under both pages: the same app and window with no fleet yet (nothing produced).
    let empty_store = tempfile::tempdir().unwrap();
    let empty = App::launch("bench-empty", Some(&config(empty_store.path()))).await;
    let (_, empty_rss) = settle_and_measure(&empty, "bench-empty").await;
    empty.close().await;

    let store = tempfile::tempdir().unwrap();
    let cfg = config(store.path());
    let sim_started = now_ms() as i64;
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
    // RSS once a second while the fleet streams in (latency and alert phases): one reading
    // right after the pan/zoom burst depends on when WebKit last collected garbage. From
    // `statm` (counters): walking page tables for PSS every second would stall the app.
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (on, pid) = (sampling.clone(), app_pid(app.driver_pid()));
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while on.load(std::sync::atomic::Ordering::Relaxed) {
                seen.push(
                    tokio::task::spawn_blocking(move || tree_statm_mib(pid))
                        .await
                        .unwrap_or(0.0),
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            seen
        })
    };
    // (produce → screen, produce → frame built, frame built → screen) per sample
    let mut samples: Vec<(f64, f64, f64)> = Vec::new();
    for k in 0..=SAMPLES {
        let lat = 37.4979 + f64::from(k % 2) * 0.0004;
        let payload =
            format!("{{\"lat\": {lat}, \"lng\": 127.0276, \"speed\": 20, \"heading\": 90}}");
        let (sent, seen) = produce_and_watch(
            &app,
            &producer,
            ("cars.gps.json", "bench-marker".into(), payload),
            &format!(
                "(() => {{ const d = window.__fleetdash.dot('bench-marker');
                   return d && Math.abs(d[2] - {lat}) < 1e-9 && [Date.now(), window.__fleetdash.frame_ts]; }})()"
            ),
        )
        .await;
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
    let (p50, p99) = p50_p99(&mut total_ms);
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

    let (alert_p50, alert_p99) = alert_to_feed(&app, &producer).await;
    let replay_fps = replay_fps(&app, sim_started).await;
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let mem = sampler.await.unwrap();
    let mut rss_s = mem.clone();
    let streaming = format!(
        "RSS median {:.0} / max {:.0} MiB ({} readings)",
        pct(&mut rss_s, 0.5),
        pct(&mut rss_s, 1.0),
        mem.len()
    );

    // Baseline in the same window and run.
    app.client
        .goto("tauri://localhost/bench/baseline.html?n=20000")
        .await
        .unwrap();
    let (base_fps, base_rss) = settle_and_measure(&app, "bench-baseline").await;
    eprintln!("\n== UI benchmark: {VEHICLES} vehicles at 1 Hz ==");
    eprintln!(
        "fleetdash : {fps:6.1} fps panning/zooming | latency p50 {p50:.0} ms, p99 {p99:.0} ms ({} samples) | RSS {:.0} MiB (PSS {:.0} MiB)",
        samples.len(),
        total(&rss).rss,
        total(&rss).pss
    );
    eprintln!("            latency: {parts}");
    eprintln!("            MiB after panning: {}", breakdown(&rss));
    eprintln!("            memory while streaming: {streaming}");
    eprintln!(
        "baseline  : {base_fps:6.1} fps panning/zooming | latency n/a (in-page data)    | RSS {:.0} MiB (PSS {:.0} MiB; engine still running)",
        total(&base_rss).rss,
        total(&base_rss).pss
    );
    eprintln!("            MiB after panning: {}", breakdown(&base_rss));
    eprintln!(
        "no fleet  : RSS {:.0} MiB (PSS {:.0} MiB): the same app before any vehicle, the floor",
        total(&empty_rss).rss,
        total(&empty_rss).pss
    );
    eprintln!("            MiB after panning: {}", breakdown(&empty_rss));
    eprintln!("ratio fps : {:.2}x", fps / base_fps.max(0.01));
    eprintln!(
        "alerts    : produce → alert in the feed p50 {alert_p50:.0} ms, p99 {alert_p99:.0} ms ({ALERT_PROBES} probes, all rules on)"
    );
    let (replay_fps, history_s) = replay_fps;
    eprintln!(
        "replay    : {replay_fps:6.1} fps panning/zooming while replaying the last {history_s:.0} s of the whole fleet at 60× (target ≥ 30)"
    );
    app.close().await;
}
