//! The fleetdash window end to end: the built app under Xvfb, driven over WebDriver, against
//! a real broker (tansu) and the machine's Redis fed by `fleetctl sim`.

use fantoccini::Locator;
use fleet_e2e::{App, sel, sim};
use fleet_testkit::{Broker, RedisDb};
use std::time::Duration;

fn config(broker: &Broker, redis: Option<&RedisDb>, store: &std::path::Path) -> String {
    let mut c = format!(
        "[kafka]\nbrokers = \"{}\"\nstart = \"earliest\"\n\n[store]\npath = \"{}\"\n",
        broker.bootstrap(),
        store.display()
    );
    if let Some(r) = redis {
        c += &format!(
            "\n[redis]\nurl = \"{}\"\ngeo_keys = [\"{}\"]\n",
            r.url,
            r.key("cars#gps")
        );
    }
    c
}

async fn dot(app: &App, id: &str) -> Option<(f64, f64, f64, f64)> {
    let v = app
        .js(&format!(
            "return window.__fleetdash && window.__fleetdash.dot('{id}')"
        ))
        .await;
    let a = v.as_array()?;
    Some((
        a[0].as_f64()?,
        a[1].as_f64()?,
        a[2].as_f64()?,
        a[3].as_f64()?,
    ))
}

async fn counter(app: &App, testid: &str) -> u64 {
    app.attr(testid, "data-value")
        .await
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_fleet_counters_markers_search_and_panel() {
    const N: u32 = 150;
    let broker = fleet_e2e::broker(false).await;
    let redis = RedisDb::new();
    let store = tempfile::tempdir().unwrap();
    let cfg = config(&broker, Some(&redis), &store.path().join("cache.sqlite"));
    let _sim = sim(
        &broker.bootstrap(),
        Some((&redis.url, &redis.key("cars#gps"))),
        N,
        300,
    );
    let app = App::launch("live", Some(&cfg)).await;

    // Every simulated vehicle shows up in the counter.
    let took = app
        .wait_for(
            "the vehicle counter to reach the fleet size",
            Duration::from_secs(60),
            async |a| counter(a, "counter-vehicles").await >= u64::from(N),
        )
        .await;
    eprintln!("vehicle counter reached {N} after {took:?}");
    assert_eq!(counter(&app, "counter-vehicles").await, u64::from(N));
    app.wait_for("Kafka up", Duration::from_secs(10), async |a| {
        a.attr("conn-kafka", "data-state").await.as_deref() == Some("up")
    })
    .await;
    app.wait_for("Redis up", Duration::from_secs(10), async |a| {
        a.attr("conn-redis", "data-state").await.as_deref() == Some("up")
    })
    .await;
    for id in [
        "counter-rate",
        "counter-rejected",
        "counter-lag",
        "alert-feed",
        "vehicle-search",
        "map",
    ] {
        assert!(app.exists(id).await, "missing data-testid {id}");
    }
    app.screenshot("01-fleet").await;

    // A chosen vehicle's marker moves: sample the first ids until one changes position.
    let ids: Vec<String> = (1..=20).map(|i| format!("car-{i:05}")).collect();
    let mut before = Vec::new();
    for id in &ids {
        before.push(dot(&app, id).await);
    }
    let mut moved = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        for (id, b) in ids.iter().zip(&before) {
            if let (Some(b), Some(now)) = (b, dot(&app, id).await)
                && ((now.0 - b.0).abs() > 0.5 || (now.1 - b.1).abs() > 0.5)
            {
                moved = Some((id.clone(), *b, now));
                break;
            }
        }
        if moved.is_some() {
            break;
        }
    }
    let (id, b, now) = moved.expect("no marker among car-00001..20 moved within 20 s");
    eprintln!(
        "{id} moved on screen from ({:.1},{:.1}) to ({:.1},{:.1})",
        b.0, b.1, now.0, now.1
    );

    // Search finds a vehicle by id and opens its panel.
    let search = app
        .client
        .find(Locator::Css(&sel("vehicle-search")))
        .await
        .unwrap();
    search.send_keys("car-00042").await.unwrap();
    app.wait_for("a search result", Duration::from_secs(10), async |a| {
        a.exists("search-result").await
    })
    .await;
    search.send_keys("\u{E007}").await.unwrap(); // Enter
    app.wait_for(
        "the vehicle panel for car-00042",
        Duration::from_secs(10),
        async |a| {
            a.attr("vehicle-panel", "data-vehicle-id").await.as_deref() == Some("car-00042")
                && a.text("vehicle-panel-id").await.as_deref() == Some("car-00042")
        },
    )
    .await;
    let panel = app.text("vehicle-panel").await.unwrap_or_default();
    assert!(
        panel.contains("Position") && panel.contains("Speed"),
        "{panel}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    app.screenshot("02-search-panel").await;

    // Acknowledge an open alert with a note: the feed shows it acknowledged.
    app.wait_for("an open alert", Duration::from_secs(60), async |a| {
        a.exists("ack-button").await
    })
    .await;
    // The simulator may resolve the chosen alert while the note is typed (its item then
    // leaves the open list): choose another one and try again.
    let mut alert_id = None;
    for _ in 0..5 {
        match ack_first_open_alert(&app, "driver called").await {
            Ok(id) => {
                alert_id = Some(id);
                break;
            }
            Err(e) => eprintln!("retrying the acknowledgement: {e}"),
        }
    }
    let alert_id = alert_id.expect("an open alert acknowledged with a note");
    // Acknowledged (or already resolved by the simulator meanwhile): no longer open.
    let acked = format!("[data-alert-id=\"{alert_id}\"]:not(.st-open)");
    app.wait_for(
        "the alert to show as acknowledged",
        Duration::from_secs(10),
        async |a| a.client.find(Locator::Css(&acked)).await.is_ok(),
    )
    .await;
    app.screenshot("06-acknowledged").await;
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_indicator_turns_red_when_the_broker_dies_and_green_when_it_returns() {
    let mut broker = fleet_e2e::broker(true).await;
    let store = tempfile::tempdir().unwrap();
    let cfg = config(&broker, None, &store.path().join("cache.sqlite"));
    let _sim = sim(&broker.bootstrap(), None, 20, 300);
    let app = App::launch("conn", Some(&cfg)).await;
    let kafka = async |a: &App| a.attr("conn-kafka", "data-state").await;
    app.wait_for("Kafka up", Duration::from_secs(60), async |a| {
        kafka(a).await.as_deref() == Some("up")
    })
    .await;
    assert_eq!(
        app.attr("conn-redis", "data-state").await.as_deref(),
        Some("disabled")
    );

    let mut broker = tokio::task::spawn_blocking(move || {
        broker.stop();
        broker
    })
    .await
    .unwrap();
    let down = app
        .wait_for("Kafka down", Duration::from_secs(8), async |a| {
            kafka(a).await.as_deref() == Some("down")
        })
        .await;
    eprintln!("indicator red {down:?} after the broker was killed");
    app.screenshot("03-kafka-down").await;
    assert!(down <= Duration::from_secs(6), "took {down:?}");

    let broker = tokio::task::spawn_blocking(move || {
        broker.start();
        broker
    })
    .await
    .unwrap();
    let up = app
        .wait_for("Kafka up again", Duration::from_secs(15), async |a| {
            kafka(a).await.as_deref() == Some("up")
        })
        .await;
    eprintln!("indicator green {up:?} after the broker restarted");
    app.screenshot("04-kafka-up").await;
    assert!(up <= Duration::from_secs(10), "took {up:?}");
    app.close().await;
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_config_the_embedded_demo_fleet_moves() {
    // Enough vehicles that a zoomed-out view is drawn as clusters.
    let app = App::launch_with_env("demo", None, &[("FLEETDASH_DEMO_VEHICLES", "5000")]).await;
    app.wait_for("the demo banner", Duration::from_secs(20), async |a| {
        a.exists("demo-banner").await
    })
    .await;
    let banner = app.text("demo-banner").await.unwrap_or_default();
    assert!(banner.contains("connect your own in Settings"), "{banner}");
    app.wait_for("demo vehicles", Duration::from_secs(60), async |a| {
        counter(a, "counter-vehicles").await >= 100
    })
    .await;
    app.wait_for("Kafka up", Duration::from_secs(20), async |a| {
        a.attr("conn-kafka", "data-state").await.as_deref() == Some("up")
    })
    .await;
    app.wait_for("the whole demo fleet", Duration::from_secs(60), async |a| {
        counter(a, "counter-vehicles").await >= 5000
    })
    .await;
    app.js("window.__fleetdash.setView(37.4979, 127.0276, 11); return true")
        .await;
    // Clusters once more than 4,000 vehicles with a position are in view.
    app.wait_for(
        "clusters when zoomed out",
        Duration::from_secs(40),
        async |a| {
            a.js("return window.__fleetdash.clusters")
                .await
                .as_f64()
                .unwrap_or(0.0)
                > 0.0
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.screenshot("09-demo-clusters").await;
    app.js("window.__fleetdash.setView(37.4979, 127.0276, 14); return true")
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    app.screenshot("10-demo-street").await;
    // Settings opens with a ready-to-edit template.
    app.client
        .find(Locator::Css(&sel("open-settings")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    app.wait_for("the settings form", Duration::from_secs(10), async |a| {
        a.prop("settings-brokers", "value")
            .await
            .is_some_and(|v| !v.is_empty())
    })
    .await;
    app.screenshot("05-settings").await;
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_validate_save_and_reconnect_without_restarting() {
    let broker = fleet_e2e::broker(false).await;
    let _sim = sim(&broker.bootstrap(), None, 30, 300);
    let app = App::launch("settings", None).await;
    // The content security policy is in force: no eval, no scripts from elsewhere.
    let eval = app
        .js("try { eval('1'); return 'allowed'; } catch (e) { return 'blocked'; }")
        .await;
    assert_eq!(eval.as_str(), Some("blocked"), "CSP must forbid eval");
    app.wait_for("the demo banner", Duration::from_secs(20), async |a| {
        a.exists("demo-banner").await
    })
    .await;
    app.click("open-settings").await;
    app.wait_for("the settings form", Duration::from_secs(10), async |a| {
        a.prop("settings-brokers", "value")
            .await
            .is_some_and(|v| !v.is_empty())
    })
    .await;

    // A bad value is refused with the key named, and nothing is saved.
    app.set_input("settings-redis-url", "http://127.0.0.1:6379")
        .await;
    app.click("settings-save").await;
    app.wait_for(
        "a validation error naming redis.url",
        Duration::from_secs(10),
        async |a| {
            a.text("settings-error")
                .await
                .is_some_and(|t| t.contains("redis.url"))
        },
    )
    .await;
    app.screenshot("07-settings-invalid").await;
    let saved = app
        .home()
        .join("config")
        .join("fleetdash")
        .join("config.toml");
    assert!(!saved.exists(), "an invalid config must not be written");

    // A good one is saved and the engine reconnects to the real broker, same window.
    app.set_input("settings-redis-url", "").await;
    app.set_input("settings-brokers", &broker.bootstrap()).await;
    app.set_input("settings-operator", "e2e-operator").await;
    // Per-rule switches and severities (issue 12): harsh braking off, low fuel critical.
    let ticked = app
        .js("const row = r => document.querySelector(`[data-testid=settings-rule][data-rule=${r}]`);
             row('harsh_braking').querySelector('[data-testid=settings-rule-enabled]').click();
             const s = row('low_fuel').querySelector('[data-testid=settings-rule-severity]');
             s.value = 'critical'; s.dispatchEvent(new Event('change'));
             return document.querySelectorAll('[data-testid=settings-rule]').length")
        .await;
    assert_eq!(
        ticked.as_u64(),
        Some(6),
        "the six built-in rules are listed"
    );
    app.click("settings-save").await;
    app.wait_for("the dialog to close", Duration::from_secs(20), async |a| {
        !a.exists("settings").await
    })
    .await;
    let text = std::fs::read_to_string(&saved).expect("config saved");
    assert!(
        text.contains(&broker.bootstrap()) && text.contains("e2e-operator"),
        "{text}"
    );
    let table = |name: &str| {
        text.split(&format!("[alerts.{name}]"))
            .nth(1)
            .map(|rest| rest.split("\n[").next().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    assert!(table("harsh_braking").contains("enabled = false"), "{text}");
    assert!(
        table("low_fuel").contains("severity = \"critical\""),
        "{text}"
    );
    assert!(table("low_fuel").contains("below = 10"), "{text}");
    app.wait_for(
        "the demo banner to go",
        Duration::from_secs(10),
        async |a| !a.exists("demo-banner").await,
    )
    .await;
    app.wait_for(
        "Kafka up on the real broker",
        Duration::from_secs(30),
        async |a| a.attr("conn-kafka", "data-state").await.as_deref() == Some("up"),
    )
    .await;
    app.wait_for("the real fleet", Duration::from_secs(60), async |a| {
        counter(a, "counter-vehicles").await == 30
    })
    .await;
    assert_eq!(
        app.attr("conn-redis", "data-state").await.as_deref(),
        Some("disabled")
    );
    app.screenshot("08-settings-reconnected").await;
    app.close().await;
}

/// Types `note` into the first open alert's note field and presses its Acknowledge button;
/// returns the alert's id, or the WebDriver error if the item went away meanwhile.
async fn ack_first_open_alert(app: &App, note: &str) -> Result<String, String> {
    let item = app
        .client
        .find(Locator::Css(
            "[data-testid=alert-item]:has([data-testid=ack-button])",
        ))
        .await
        .map_err(|e| e.to_string())?;
    let id = item
        .attr("data-alert-id")
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no data-alert-id")?;
    let field = item
        .find(Locator::Css(&sel("ack-note")))
        .await
        .map_err(|e| e.to_string())?;
    field.send_keys(note).await.map_err(|e| e.to_string())?;
    item.find(Locator::Css(&sel("ack-button")))
        .await
        .map_err(|e| e.to_string())?
        .click()
        .await
        .map_err(|e| e.to_string())?;
    Ok(id)
}
