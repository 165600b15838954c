//! The fault suite's app item (issue 10): the desktop app SIGKILLed while it ingests mixed
//! traffic of all five topic kinds, started again, left to catch up; its cache must then
//! hold exactly what an uninterrupted `fleetctl ingest` of the same topics holds — the same
//! positions, status samples, quarantine, acks, vehicles and alerts. The headless `ingest`
//! is killed 3 (CI) or 20 (`./dev faults`) times in `crates/fleetctl/tests/faults_e2e.rs`;
//! this is the same guarantee for the app's own engine, UI frames and shutdown path.
//! `FLEETDASH_FAULT_APP_MESSAGES` sets the traffic (CI 30,000; `./dev faults` 200,000).

use fleet_e2e::{App, built_binary};
use fleet_testkit::{
    MixedFleet, Producer, compare_caches, describe, integrity_check, mixed_config,
};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Messages consumed into `cache`, all topics (next offsets summed; offsets start at 0).
fn consumed(cache: &Path) -> u64 {
    fleet_testkit::try_sqlite3(cache, "SELECT COALESCE(SUM(next_offset), 0) FROM offsets")
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// The `fleetdash` process under the WebDriver process `root` (the driver launches it).
fn app_pid(root: u32) -> Option<u32> {
    let mut family = vec![root];
    let mut found = None;
    // Parent links from /proc/*/stat ("pid (comm) state ppid …"), walked down from root.
    let procs: Vec<(u32, String, u32)> = std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| {
            let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (comm, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
            let ppid = rest.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, comm.to_string(), ppid))
        })
        .collect();
    while let Some(parent) = family.pop() {
        for (pid, comm, ppid) in &procs {
            if *ppid == parent {
                if comm == "fleetdash" {
                    found = Some(*pid);
                }
                family.push(*pid);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_killed_mid_stream_ends_like_an_uninterrupted_ingest() {
    let n: u64 = std::env::var("FLEETDASH_FAULT_APP_MESSAGES")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(30_000);
    let started = Instant::now();
    let broker = fleet_e2e::broker(false).await;
    let dir = tempfile::tempdir().unwrap();
    let app_cache = dir.path().join("app.sqlite");
    let cfg = mixed_config(&broker.bootstrap(), &app_cache, "faults-app");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let base = (now - 3_600_000) / 1000 * 1000;

    // Devices keep sending while the app runs, crashes and comes back: over ~15 s.
    let progress = Arc::new(AtomicU64::new(0));
    let producer = {
        let (bootstrap, progress) = (broker.bootstrap(), progress.clone());
        std::thread::spawn(move || {
            let p = Producer::new(&bootstrap);
            let mut fleet = MixedFleet::for_messages(n, base, fleet_model::alert_id);
            let (t0, rate) = (Instant::now(), n as f64 / 15.0);
            while fleet.total() < n {
                fleet.next_batch(2_000.min(n - fleet.total())).send(&p);
                progress.store(fleet.total(), Ordering::SeqCst);
                let due = Duration::from_secs_f64(fleet.total() as f64 / rate);
                if let Some(wait) = due.checked_sub(t0.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            fleet.total()
        })
    };

    let app = App::launch("faults-app", Some(&cfg)).await;
    let c = app_cache.clone();
    app.wait_for("the app ingesting", Duration::from_secs(60), async |_| {
        consumed(&c) >= n / 5
    })
    .await;
    let pid = app_pid(app.driver_pid()).expect("the fleetdash process under WebKitWebDriver");
    let st = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let at_kill = consumed(&app_cache);
    eprintln!(
        "faults: app (pid {pid}) SIGKILLed with {at_kill} messages in its cache, {} produced",
        progress.load(Ordering::SeqCst)
    );
    drop(app);
    assert_eq!(integrity_check(&app_cache), "ok", "intact after the crash");
    let total = tokio::task::spawn_blocking(move || producer.join().unwrap())
        .await
        .unwrap();
    assert!(at_kill < total, "killed mid-stream");

    let app = App::launch("faults-app-restarted", Some(&cfg)).await;
    let c = app_cache.clone();
    app.wait_for(
        "the restarted app caught up",
        Duration::from_secs(180),
        async |_| consumed(&c) >= total,
    )
    .await;
    // The vehicles' latest state (last fix, speed, source) is written every 5 s, apart from
    // the offsets' transaction: wait for one such round so it is in the cache too.
    tokio::time::sleep(Duration::from_secs(7)).await;
    app.close().await;

    let ref_dir = tempfile::tempdir().unwrap();
    let ref_cache = ref_dir.path().join("reference.sqlite");
    let ref_cfg = ref_dir.path().join("fleetdash.toml");
    std::fs::write(
        &ref_cfg,
        mixed_config(&broker.bootstrap(), &ref_cache, "faults-app-reference"),
    )
    .unwrap();
    let out = Command::new(built_binary("fleetctl").unwrap())
        .args(["ingest", "--idle-exit", "2", "--config"])
        .arg(&ref_cfg)
        .env_remove("FLEETDASH_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(consumed(&ref_cache), total);
    assert_eq!(integrity_check(&app_cache), "ok");
    let diffs = compare_caches(&app_cache, &ref_cache);
    eprintln!(
        "faults: {total} messages; app killed once and restarted; {:.1} s in all\n\
         app vs uninterrupted fleetctl ingest:\n{}",
        started.elapsed().as_secs_f64(),
        describe(&diffs)
    );
    assert!(diffs.iter().all(|d| d.same), "{}", describe(&diffs));
}
