//! Trusting the cache, seen in the window (SPEC §5 pipeline hooks, §7): a gap in the data is
//! shown (`gap-notice`), the cache's health is always visible (`cache-status`, red with the
//! reason when the disk is full), and the ack outbox is counted (`outbox-count`).

use fleet_e2e::{App, built_binary};
use fleet_testkit::Producer;
use std::process::Command;
use std::time::Duration;

const GPS: &str = "cars.gps.json";

fn positions(p: &Producer, from: i64, n: i64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    p.send_many(
        GPS,
        (from..from + n).map(|i| {
            (
                Some(format!("car-{:03}", i % 40).into_bytes()),
                format!(
                    r#"{{"lat":{:.5},"lng":127.03,"ts":{}}}"#,
                    37.5 + (i % 100) as f64 * 1e-4,
                    now - 60_000 + i
                )
                .into_bytes(),
            )
        }),
    );
}

fn config(brokers: &str, store: &std::path::Path) -> String {
    format!(
        "[kafka]\nbrokers = \"{brokers}\"\nstart = \"earliest\"\n\n[store]\npath = \"{}\"\n\n[history]\nmin_distance_m = 0\nmin_interval_s = 0\n",
        store.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_in_the_data_and_the_cache_health_are_shown() {
    let broker = fleet_e2e::broker(false).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("fleetdash.toml");
    let cfg = config(&broker.bootstrap(), &dir.path().join("cache.sqlite"));
    std::fs::write(&cfg_path, &cfg).unwrap();
    positions(&broker.producer(), 0, 300);
    // A first run fills the cache; then the topic is deleted and re-created under it.
    let st = Command::new(built_binary("fleetctl").unwrap())
        .args(["ingest", "--idle-exit", "1", "--config"])
        .arg(&cfg_path)
        .env_remove("FLEETDASH_CONFIG")
        .status()
        .unwrap();
    assert!(st.success());
    let bootstrap = broker.bootstrap();
    let broker = tokio::task::spawn_blocking(move || {
        broker.delete_topic(GPS);
        broker.create_topic(GPS, 3);
        positions(&Producer::new(&bootstrap), 300, 300);
        broker
    })
    .await
    .unwrap();

    let app = App::launch("trust", Some(&cfg)).await;
    app.wait_for("the gap notice", Duration::from_secs(60), async |a| {
        a.attr("gap-notice", "data-value").await.as_deref() == Some("3")
    })
    .await;
    let text = app.text("gap-notice").await.unwrap_or_default();
    assert!(text.contains("3 gaps"), "{text}");
    assert_eq!(
        app.attr("cache-status", "data-state").await.as_deref(),
        Some("ok")
    );
    assert_eq!(
        app.attr("outbox-count", "data-value").await.as_deref(),
        Some("0")
    );
    app.screenshot("01-gap-notice").await;
    app.close().await;
    drop(broker);
}

/// The cache on a full disk: the window says so within seconds, naming the cause. Needs root
/// for a small tmpfs (CI runs as root).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_turns_the_cache_status_red_with_the_reason() {
    if !Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
    {
        eprintln!("SKIPPED: mounting a tmpfs needs root");
        return;
    }
    let broker = fleet_e2e::broker(false).await;
    let mnt = tempfile::tempdir().unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
        .arg(mnt.path())
        .status()
        .unwrap();
    assert!(st.success());
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.path().to_path_buf());
    let cfg = config(&broker.bootstrap(), &mnt.path().join("cache.sqlite"));
    let app = App::launch("trust-full", Some(&cfg)).await;
    app.wait_for("Kafka up", Duration::from_secs(30), async |a| {
        a.attr("conn-kafka", "data-state").await.as_deref() == Some("up")
    })
    .await;
    assert_eq!(
        app.attr("cache-status", "data-state").await.as_deref(),
        Some("ok")
    );
    let bootstrap = broker.bootstrap();
    tokio::task::spawn_blocking(move || positions(&Producer::new(&bootstrap), 0, 60_000))
        .await
        .unwrap();
    let took = app
        .wait_for("cache-status error", Duration::from_secs(30), async |a| {
            a.attr("cache-status", "data-state").await.as_deref() == Some("error")
        })
        .await;
    eprintln!("cache error shown {took:?} after the burst was produced");
    app.screenshot("02-cache-full").await;
    let title = app.attr("cache-status", "title").await.unwrap_or_default();
    assert!(
        title.contains("disk is full"),
        "the reason is shown: {title}"
    );
    app.close().await;
}

/// One engine per cache (SPEC §7): launching fleetdash again while it runs hands over to the
/// running window (brought to the front) and exits, instead of starting a second engine on
/// the same cache that doubled every row and counter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_launch_focuses_the_first_window_and_exits() {
    let broker = fleet_e2e::broker(false).await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache.sqlite");
    let cfg = config(&broker.bootstrap(), &cache);
    let app = App::launch("single", Some(&cfg)).await;
    app.wait_for("Kafka up", Duration::from_secs(30), async |a| {
        a.attr("conn-kafka", "data-state").await.as_deref() == Some("up")
    })
    .await;
    let holder = std::fs::read_to_string(cache.with_extension("sqlite.lock")).unwrap_or_default();
    assert!(
        !holder.trim().is_empty(),
        "the first window's engine holds the cache"
    );

    let status = tokio::task::block_in_place(|| app.launch_again(Duration::from_secs(20)));
    let status = status.expect("the second launch exits instead of opening a second window");
    assert!(status.success(), "second launch: {status}");

    // The running window was told (and its engine is the one holding the cache).
    let logs = app.home().join("data/fleetdash/logs");
    let told = (0..50).any(|_| {
        let found = std::fs::read_dir(&logs)
            .into_iter()
            .flatten()
            .flatten()
            .any(|f| {
                std::fs::read_to_string(f.path())
                    .is_ok_and(|t| t.contains("fleetdash was launched again"))
            });
        if !found {
            std::thread::sleep(Duration::from_millis(100));
        }
        found
    });
    assert!(
        told,
        "the first window did not hear of the second launch (logs in {logs:?})"
    );
    assert_eq!(
        std::fs::read_to_string(cache.with_extension("sqlite.lock")).unwrap_or_default(),
        holder,
        "the cache is still held by the first window"
    );
    // The first window still works: new data arrives.
    positions(&broker.producer(), 0, 100);
    app.wait_for(
        "data in the first window",
        Duration::from_secs(30),
        async |a| {
            a.attr("counter-vehicles", "data-value")
                .await
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|n| n > 0)
        },
    )
    .await;
    app.close().await;
}
