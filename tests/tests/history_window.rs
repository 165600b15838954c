//! Looking back in the real window (issue 11): a vehicle's chart in its panel (drawn by
//! plotters from the cache), one click from an alert to a replay of the minutes around it
//! with the vehicle drawn where the cache says it was, back to live, an empty range said so,
//! and export through the system's save dialog to a file that parses back to the cache's rows.

use fantoccini::Locator;
use fleet_e2e::{App, sel};
use fleet_testkit::Producer;
use fleet_testkit::sqlite3;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const VEHICLE: &str = "hist-1";
const ALERT: &str = "hist-alert";
const MIN: i64 = 60_000;
/// One position every 15 s for the last 20 minutes, 0.001° of latitude (~110 m) apart.
const STEP_MS: i64 = 15_000;
const STEPS: i64 = 80;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

fn lat_at(i: i64) -> f64 {
    37.40 + i as f64 * 0.001
}

/// The frame now drawn: its replayed instant (0 = live) and where `VEHICLE` is on it.
async fn drawn(app: &App) -> (i64, Option<(f64, f64)>) {
    let v = app
        .js(&format!(
            "const h = window.__fleetdash; return [h.replay_t || 0, h.dot('{VEHICLE}')];"
        ))
        .await;
    let t = v[0].as_f64().unwrap_or(0.0) as i64;
    let at = v[1]
        .as_array()
        .and_then(|a| Some((a[2].as_f64()?, a[3].as_f64()?)));
    (t, at)
}

/// Where the cache says `VEHICLE` was at `t`: its last stored position at or before it.
fn cached_at(cache: &Path, t: i64) -> (f64, f64) {
    let s = sqlite3(
        cache,
        &format!(
            "SELECT lat || ',' || lng FROM positions WHERE vehicle = '{VEHICLE}' AND ts <= {t} ORDER BY ts DESC LIMIT 1"
        ),
    );
    let (lat, lng) = s.trim().split_once(',').expect("a position at or before t");
    (lat.parse().unwrap(), lng.parse().unwrap())
}

async fn set_time_input(app: &App, testid: &str, ms: i64) {
    // datetime-local takes local time; let the page format it.
    let script = format!(
        "const d = new Date({ms}); const p = (n) => String(n).padStart(2, '0');
         const v = d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + 'T' + p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());
         const el = document.querySelector('{}'); el.value = v; el.dispatchEvent(new Event('change', {{bubbles: true}})); return v;",
        sel(testid)
    );
    app.js(&script).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_replay_from_an_alert_back_to_live_and_export() {
    let broker = fleet_e2e::broker(false).await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache.sqlite");
    let cfg = format!(
        "[kafka]\nbrokers = \"{}\"\nstart = \"earliest\"\n\n[store]\npath = \"{}\"\n\n[alerts]\nenabled = false\n",
        broker.bootstrap(),
        cache.display()
    );
    // A vehicle driving north for 20 minutes, its status every 30 s, and one upstream alert
    // 8 minutes ago.
    let now = now_ms();
    let start = now - STEPS * STEP_MS;
    let t_alert = now - 8 * MIN;
    let p = Producer::new(&broker.bootstrap());
    for i in 0..=STEPS {
        let ts = start + i * STEP_MS;
        let pos = format!(
            r#"{{"lat":{:.6},"lng":127.0,"speed":26.4,"heading":0,"ts":{ts}}}"#,
            lat_at(i)
        );
        p.send(
            "cars.gps.json",
            None,
            Some(VEHICLE.as_bytes()),
            pos.as_bytes(),
        );
        if i % 2 == 0 {
            let st = format!(
                r#"{{"ts":{ts},"engine":"on","doors":"closed","headlights":"off","speed":26.4,"fuel":{:.1},"battery":{:.1},"engine_detail":{{"rpm":{}}}}}"#,
                80.0 - i as f64 * 0.1,
                90.0 - i as f64 * 0.05,
                1800 + i
            );
            p.send(
                "cars.status.json",
                None,
                Some(VEHICLE.as_bytes()),
                st.as_bytes(),
            );
        }
    }
    let alert = format!(
        r#"{{"id":"{ALERT}","vehicle":"{VEHICLE}","rule":"harsh_cornering","severity":"warning","message":"hard left","ts":{t_alert}}}"#
    );
    p.send(
        "fleet.alerts.json",
        None,
        Some(ALERT.as_bytes()),
        alert.as_bytes(),
    );
    p.flush();

    let app = App::launch("history", Some(&cfg)).await;
    let item = format!("[data-alert-id=\"{ALERT}\"]");
    app.wait_for(
        "the alert in the feed",
        Duration::from_secs(60),
        async |a| a.client.find(Locator::Css(&item)).await.is_ok(),
    )
    .await;

    // The vehicle's panel: its chart from the cache, and every field it sent.
    let search = app
        .client
        .find(Locator::Css(&sel("vehicle-search")))
        .await
        .unwrap();
    search.send_keys(VEHICLE).await.unwrap();
    app.wait_for("a search hit", Duration::from_secs(10), async |a| {
        a.exists("search-result").await
    })
    .await;
    search.send_keys("\u{E007}").await.unwrap();
    app.wait_for("the chart", Duration::from_secs(20), async |a| {
        a.attr("vehicle-chart", "data-state").await.as_deref() == Some("ready")
    })
    .await;
    let svg = app
        .js("return document.querySelector('[data-testid=vehicle-chart] svg').outerHTML")
        .await
        .as_str()
        .unwrap_or_default()
        .to_string();
    for field in ["speed", "fuel", "battery"] {
        assert!(svg.contains(field), "the chart's legend names {field}");
    }
    let lines = svg.matches("<polyline").count() + svg.matches("<path").count();
    assert!(lines >= 3, "one line per series at least: {lines}");
    // The fields come with the panel's status, which may follow the chart by a frame.
    app.wait_for(
        "the panel to list every flattened field",
        Duration::from_secs(10),
        async |a| {
            a.client
                .find(Locator::Css(
                    "[data-testid=status-field][data-field=\"engine_detail.rpm\"]",
                ))
                .await
                .is_ok()
        },
    )
    .await;
    app.screenshot("01-chart").await;

    // One click from the alert: the range around it, playing from 2 minutes before.
    app.client
        .find(Locator::Css(&format!("{item} {}", sel("replay-alert"))))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    app.wait_for("the replay", Duration::from_secs(10), async |a| {
        a.attr("timeline", "data-state").await.as_deref() == Some("replay")
    })
    .await;
    assert_eq!(
        app.attr("timeline", "data-from").await,
        Some((t_alert - 10 * MIN).to_string())
    );
    assert_eq!(
        app.attr("timeline", "data-to").await,
        Some((t_alert + 5 * MIN).to_string())
    );
    let clock = app.text("timeline-clock").await.unwrap_or_default();
    assert!(clock.starts_with("replaying "), "{clock}");
    app.wait_for(
        "the alert marked on the timeline",
        Duration::from_secs(10),
        async |a| {
            a.client
                .find(Locator::Css(&format!(
                    "[data-testid=timeline-mark][data-alert-id=\"{ALERT}\"]"
                )))
                .await
                .is_ok()
        },
    )
    .await;
    // Pause, and see the vehicle where the cache says it was at the replayed instant.
    app.click("timeline-play").await;
    app.wait_for("the replay paused", Duration::from_secs(10), async |a| {
        a.attr("timeline-play", "data-playing").await.as_deref() == Some("false")
    })
    .await;
    app.js(&format!(
        "window.__fleetdash.setView({}, 127.0, 12); return true;",
        lat_at(STEPS / 2)
    ))
    .await;
    let seen = std::sync::Mutex::new((0, None));
    app.wait_for(
        "the replayed vehicle drawn",
        Duration::from_secs(10),
        async |a| {
            let d = drawn(a).await;
            *seen.lock().unwrap() = d;
            matches!(d, (t, Some(_)) if t > 0)
        },
    )
    .await;
    let (t, at) = *seen.lock().unwrap();
    assert!(
        (t_alert - 2 * MIN..=t_alert + 5 * MIN).contains(&t),
        "replayed instant {t} is from 2 min before the alert ({t_alert}) on"
    );
    let at = at.unwrap();
    let want = cached_at(&cache, t);
    assert!(
        (at.0 - want.0).abs() < 1e-9 && (at.1 - want.1).abs() < 1e-9,
        "drawn at {at:?} at {t}; the cache says {want:?}"
    );
    assert!(
        at.0 < lat_at(STEPS) - 0.01,
        "the replayed position is not the live one"
    );
    app.screenshot("02-replay").await;

    // Export the range through the save dialog; the file holds the cache's rows.
    let out = dir.path().join("export.csv");
    app.click("export-button").await;
    app.answer_save_dialog(&out).await;
    app.wait_for("the export file", Duration::from_secs(20), async |a| {
        a.text("toast")
            .await
            .is_some_and(|t| t.starts_with("Exported"))
    })
    .await;
    let csv = std::fs::read_to_string(&out).expect("the exported file");
    let row = |ts: &str, lat: &str, lng: &str| -> (i64, f64, f64) {
        (
            ts.parse().unwrap(),
            lat.parse().unwrap(),
            lng.parse().unwrap(),
        )
    };
    let got: Vec<(i64, f64, f64)> = csv
        .lines()
        .skip(1)
        .map(|l| {
            // vehicle,plate,ts,time,lat,lng,…
            let c: Vec<&str> = l.split(',').collect();
            row(c[2], c[4], c[5])
        })
        .collect();
    let want: Vec<(i64, f64, f64)> = sqlite3(
        &cache,
        &format!(
            "SELECT ts || ',' || lat || ',' || lng FROM positions WHERE vehicle = '{VEHICLE}' AND ts BETWEEN {} AND {} ORDER BY ts",
            t_alert - 10 * MIN,
            t_alert + 5 * MIN
        ),
    )
    .lines()
    .map(|l| {
        let c: Vec<&str> = l.split(',').collect();
        row(c[0], c[1], c[2])
    })
    .collect();
    assert!(!want.is_empty());
    assert_eq!(got, want, "the export holds exactly the range's rows");

    // The save dialog listed the cache's folder and a reader (the sqlite3 shell, just above)
    // closed the cache: the engine's writes must still land. With the dialog in the app's
    // process, GTK's type sniffing dropped SQLite's locks, the reader deleted the
    // write-ahead log, and the cache lost its tables under the running engine.
    let fix = format!(
        r#"{{"lat":37.6,"lng":127.1,"speed":0,"heading":0,"ts":{}}}"#,
        now_ms()
    );
    p.send("cars.gps.json", None, Some(b"hist-2"), fix.as_bytes());
    p.flush();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while fleet_testkit::try_sqlite3(
        &cache,
        "SELECT count(*) FROM positions WHERE vehicle = 'hist-2'",
    )
    .is_none_or(|n| n.trim() != "1")
    {
        if std::time::Instant::now() > deadline {
            app.print_log_tail(30);
            panic!("a fix sent after the export never reached the cache");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(fleet_testkit::integrity_check(&cache), "ok");

    // Back to live: the vehicle where it is now.
    app.click("timeline-live").await;
    app.wait_for("live again", Duration::from_secs(10), async |a| {
        a.attr("timeline", "data-state").await.as_deref() == Some("live")
    })
    .await;
    app.js(&format!(
        "window.__fleetdash.setView({}, 127.0, 12); return true;",
        lat_at(STEPS)
    ))
    .await;
    app.wait_for("the live position", Duration::from_secs(10), async |a| {
        matches!(drawn(a).await, (0, Some((lat, _))) if (lat - lat_at(STEPS)).abs() < 1e-9)
    })
    .await;

    // A range with no data says so.
    set_time_input(&app, "timeline-from", now - 48 * 60 * MIN).await;
    set_time_input(&app, "timeline-to", now - 47 * 60 * MIN).await;
    app.wait_for(
        "no data in this range",
        Duration::from_secs(10),
        async |a| a.text("chart-no-data").await.as_deref() == Some("no data in this range"),
    )
    .await;
    app.screenshot("03-no-data").await;
    app.close().await;
}
