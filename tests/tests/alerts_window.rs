//! The alert feed in the real window (issue 4): alerts produced to a real broker appear in
//! the feed and in the window title, the filters narrow the feed, a critical alert notifies
//! the desktop (a real notification daemon on the test's own session bus) and escalates,
//! clicking an alert opens its vehicle on the map, and alerts are acknowledged by keyboard
//! and with a note — checked in the window and in the cache.

use fantoccini::Locator;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fleet_e2e::{App, built_binary, sel};
use fleet_testkit::Producer;
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const ESCALATE_S: u64 = 4;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

/// The ids of the alert items shown, in order.
async fn shown(app: &App) -> Vec<String> {
    let v = app
        .js("return [...document.querySelectorAll('[data-testid=alert-item]')].map(e => e.dataset.alertId)")
        .await;
    serde_json::from_value(v).unwrap_or_default()
}

async fn item_attr(app: &App, id: &str, attr: &str) -> Option<String> {
    let el = app
        .client
        .find(Locator::Css(&format!("[data-alert-id=\"{id}\"]")))
        .await
        .ok()?;
    el.attr(attr).await.ok().flatten()
}

/// The native window title (what the taskbar shows), through Tauri's window API.
async fn window_title(app: &App) -> String {
    app.client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             window.__TAURI__.window.getCurrentWindow().title().then(done, e => done('error: ' + e));",
            vec![],
        )
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

async fn notices(app: &App) -> Vec<Value> {
    let v = app
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             window.__TAURI__.core.invoke('recent_notifications').then(done, e => done([]));",
            vec![],
        )
        .await
        .unwrap_or(Value::Null);
    serde_json::from_value(v).unwrap_or_default()
}

/// The titles of the app's notices of one kind (`raised`, `escalated`).
fn titles(notices: &[Value], kind: &str) -> Vec<String> {
    notices
        .iter()
        .filter(|n| n["kind"] == kind)
        .filter_map(|n| n["title"].as_str().map(str::to_string))
        .collect()
}

/// Waits until every title went out as a `Notify` call on the window's session bus and the
/// notification daemon holds at least that many notifications.
async fn on_the_bus(app: &App, what: &str, titles: &[String]) {
    app.wait_for(
        &format!("{what} on the session bus"),
        Duration::from_secs(5),
        async |a| {
            let sent = a.desktop().notified_summaries();
            titles.iter().all(|t| sent.contains(t))
                && a.desktop().daemon_count() as usize >= titles.len()
        },
    )
    .await;
}

async fn press(app: &App, key: char) {
    let keys = KeyActions::new(format!("kbd-{key}"))
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key });
    app.client.perform_actions(keys).await.expect("key press");
}

async fn select(app: &App, testid: &str, value: &str) {
    let script = format!(
        "const el = document.querySelector('{}'); el.value = {}; el.dispatchEvent(new Event('change', {{bubbles: true}})); return el.value;",
        sel(testid),
        serde_json::to_string(value).unwrap_or_default()
    );
    let set = app.js(&script).await;
    assert_eq!(set.as_str(), Some(value), "{testid} has no option {value}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_feed_filters_notifies_escalates_and_acknowledges() {
    let broker = fleet_e2e::broker(false).await;
    let store = tempfile::tempdir().unwrap();
    let cfg = format!(
        "[kafka]\nbrokers = \"{}\"\nstart = \"earliest\"\n\n[store]\npath = \"{}\"\n\n[operator]\nname = \"olga\"\n\n[alerts]\nenabled = false\nescalate_after_s = {ESCALATE_S}\n",
        broker.bootstrap(),
        store.path().join("cache.sqlite").display()
    );
    let cfg_path = store.path().join("fleetdash.toml");
    std::fs::write(&cfg_path, &cfg).unwrap();
    let app = App::launch("alerts", Some(&cfg)).await;
    app.wait_for("the feed", Duration::from_secs(30), async |a| {
        a.exists("alert-feed").await
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Three upstream alerts (critical, warning, info) on two vehicles with known positions.
    let t = now_ms();
    let p = Producer::new(&broker.bootstrap());
    for (v, lat, lng) in [("veh-crit", 37.51, 127.03), ("veh-warn", 37.49, 127.01)] {
        let pos = format!(r#"{{"lat":{lat},"lng":{lng},"speed":0,"ts":{t}}}"#);
        p.send("cars.gps.json", None, Some(v.as_bytes()), pos.as_bytes());
    }
    let alerts = [
        ("up-crit", "veh-crit", "crash_detected", "critical"),
        ("up-warn", "veh-warn", "door_ajar", "warning"),
        ("up-info", "veh-warn", "tire_pressure", "info"),
    ];
    for (id, v, rule, sev) in alerts {
        let a = format!(
            r#"{{"id":"{id}","vehicle":"{v}","rule":"{rule}","severity":"{sev}","message":"{rule} on {v}","ts":{t}}}"#
        );
        p.send("fleet.alerts.json", None, Some(id.as_bytes()), a.as_bytes());
    }
    drop(p);

    app.wait_for(
        "three alerts in the feed",
        Duration::from_secs(20),
        async |a| shown(a).await.len() == 3,
    )
    .await;
    app.wait_for(
        "the unacknowledged count in the title and the counters bar",
        Duration::from_secs(5),
        async |a| {
            window_title(a).await.ends_with("3 unacknowledged alerts")
                && a.attr("counter-alerts", "data-value").await.as_deref() == Some("3")
        },
    )
    .await;

    // Filters narrow the feed (applied by the cache).
    select(&app, "alert-filter-severity", "critical").await;
    app.wait_for(
        "only the critical alert",
        Duration::from_secs(5),
        async |a| shown(a).await == ["up-crit"],
    )
    .await;
    select(&app, "alert-filter-severity", "").await;
    app.set_input("alert-filter-vehicle", "WARN").await;
    app.wait_for(
        "only veh-warn's alerts",
        Duration::from_secs(5),
        async |a| {
            let mut s = shown(a).await;
            s.sort();
            s == ["up-info", "up-warn"]
        },
    )
    .await;
    app.client
        .find(Locator::Css(&sel("alert-filter-rule")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap(); // focus loads the rule names
    app.wait_for("the rule names", Duration::from_secs(5), async |a| {
        a.js("return document.querySelectorAll('[data-testid=alert-filter-rule] option').length")
            .await
            .as_u64()
            == Some(4)
    })
    .await;
    select(&app, "alert-filter-rule", "tire_pressure").await;
    app.wait_for("only the tire alert", Duration::from_secs(5), async |a| {
        shown(a).await == ["up-info"]
    })
    .await;
    app.screenshot("01-filtered").await;
    app.click("alert-filter-clear").await;
    app.wait_for("the whole feed again", Duration::from_secs(5), async |a| {
        shown(a).await.len() == 3
    })
    .await;

    // Desktop notifications: one each for the critical and the warning alert, none for info.
    app.wait_for("notifications", Duration::from_secs(5), async |a| {
        notices(a).await.len() >= 2
    })
    .await;
    let raised: Vec<Value> = notices(&app)
        .await
        .into_iter()
        .filter(|n| n["kind"] == "raised")
        .collect();
    let ids: Vec<&str> = raised
        .iter()
        .flat_map(|n| n["alert_ids"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    assert!(
        ids.contains(&"up-crit") && ids.contains(&"up-warn") && !ids.contains(&"up-info"),
        "{raised:?}"
    );
    // …and they really reached the desktop: Notify calls on the session bus, accepted by
    // the notification daemon.
    on_the_bus(&app, "the notifications", &titles(&raised, "raised")).await;

    // The unacknowledged critical alert escalates: highlighted and notified again.
    app.wait_for(
        "the critical alert to escalate",
        Duration::from_secs(ESCALATE_S + 10),
        async |a| {
            item_attr(a, "up-crit", "data-escalated").await.as_deref() == Some("true")
                && notices(a)
                    .await
                    .iter()
                    .any(|n| n["kind"] == "escalated" && n["alert_ids"][0] == "up-crit")
        },
    )
    .await;
    assert_eq!(
        item_attr(&app, "up-warn", "data-escalated")
            .await
            .as_deref(),
        Some("false"),
        "warnings do not escalate"
    );
    let escalation = titles(&notices(&app).await, "escalated");
    on_the_bus(&app, "the escalation", &escalation).await;
    app.screenshot("02-escalated").await;

    // Click the critical alert: the map flies to its vehicle and its panel opens.
    app.client
        .find(Locator::Css("[data-alert-id=\"up-crit\"] .msg"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    app.wait_for("veh-crit's panel", Duration::from_secs(10), async |a| {
        a.attr("vehicle-panel", "data-vehicle-id").await.as_deref() == Some("veh-crit")
    })
    .await;
    app.wait_for("the map over veh-crit", Duration::from_secs(10), async |a| {
        let v = a
            .js("const d = window.__fleetdash.dot('veh-crit'); const m = document.querySelector('[data-testid=map]').getBoundingClientRect(); return d && [d[0], d[1], m.width, m.height]")
            .await;
        let Some(v) = v.as_array().filter(|v| v.len() == 4) else {
            return false;
        };
        let f = |i: usize| v[i].as_f64().unwrap_or(-1.0);
        // drawn near the middle of the map (the fly-to has landed)
        (f(0) - f(2) / 2.0).abs() < 40.0 && (f(1) - f(3) / 2.0).abs() < 40.0
    })
    .await;
    assert_eq!(
        item_attr(&app, "up-crit", "class")
            .await
            .map(|c| c.contains("focused")),
        Some(true),
        "the clicked alert has the keyboard focus"
    );
    app.screenshot("03-flown-to-vehicle").await;

    // Acknowledge the critical alert with a note (Enter in its note field) …
    let note = app
        .client
        .find(Locator::Css(
            "[data-alert-id=\"up-crit\"] [data-testid=ack-note]",
        ))
        .await
        .unwrap();
    note.send_keys("towing ordered\u{E007}").await.unwrap();
    app.wait_for("up-crit acknowledged", Duration::from_secs(10), async |a| {
        item_attr(a, "up-crit", "data-state").await.as_deref() == Some("acknowledged")
    })
    .await;
    let text = app
        .client
        .find(Locator::Css("[data-alert-id=\"up-crit\"]"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("olga") && text.contains("towing ordered"),
        "{text}"
    );
    assert_eq!(
        item_attr(&app, "up-crit", "data-escalated")
            .await
            .as_deref(),
        Some("false"),
        "an acknowledged alert is no longer escalated"
    );

    // … and the warning by keyboard: `j`/`k` to it, `a` to acknowledge.
    app.client
        .find(Locator::Css("[data-testid=alert-feed] h3"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap(); // leave the note field
    for _ in 0..3 {
        press(&app, 'k').await; // to the top of the feed
    }
    let mut steps = 0;
    while ui_focused(&app).await.as_deref() != Some("up-warn") && steps < 3 {
        press(&app, 'j').await;
        steps += 1;
    }
    assert_eq!(ui_focused(&app).await.as_deref(), Some("up-warn"));
    press(&app, 'a').await;
    app.wait_for("up-warn acknowledged", Duration::from_secs(10), async |a| {
        item_attr(a, "up-warn", "data-state").await.as_deref() == Some("acknowledged")
    })
    .await;
    app.wait_for(
        "one unacknowledged alert left in the title",
        Duration::from_secs(5),
        async |a| {
            window_title(a).await.ends_with("1 unacknowledged alert")
                && a.attr("counter-alerts", "data-value").await.as_deref() == Some("1")
        },
    )
    .await;
    app.screenshot("04-acknowledged").await;

    // The cache agrees: who, and the note.
    let out = std::process::Command::new(built_binary("fleetctl").unwrap())
        .args(["alerts", "--config"])
        .arg(&cfg_path)
        .args(["--state", "acknowledged", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let acked = v["alerts"].as_array().cloned().unwrap_or_default();
    let by_id = |id: &str| acked.iter().find(|a| a["id"] == id).cloned();
    let crit = by_id("up-crit").expect("up-crit acknowledged in the cache");
    assert_eq!(
        (crit["acked_by"].as_str(), crit["ack_note"].as_str()),
        (Some("olga"), Some("towing ordered"))
    );
    assert_eq!(
        by_id("up-warn").expect("up-warn in the cache")["acked_by"],
        "olga"
    );
    app.close().await;
}

/// The id of the alert the keyboard acts on.
async fn ui_focused(app: &App) -> Option<String> {
    app.js("const e = document.querySelector('[data-testid=alert-item].focused'); return e && e.dataset.alertId")
        .await
        .as_str()
        .map(str::to_string)
}
