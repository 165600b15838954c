//! The seed pipeline in the window (SPEC §8, issue 12): a firmware change that adds nested
//! fields shows as `drift-notice` above the feed, and the Lag counter opens `lag-panel` with
//! the broker's own watermarks per partition.

use fleet_e2e::App;
use std::time::Duration;

const STATUS: &str = "cars.status.json";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Status messages of 20 cars at `ts`: firmware 1, or firmware 2 with tyre pressures.
fn status(ts: i64, firmware2: bool) -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
    (0..20)
        .map(|i| {
            let extra = if firmware2 {
                r#","tpms":{"fl_psi":31.5}"#
            } else {
                ""
            };
            (
                Some(format!("car-{i:03}").into_bytes()),
                format!(r#"{{"ts":{ts},"speed":{i},"fuel":50{extra}}}"#).into_bytes(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_drift_notice_and_the_lag_panel_are_shown() {
    let broker = fleet_e2e::broker(false).await;
    let bootstrap = broker.bootstrap();
    let base = now_ms() - 3_600_000;
    let broker = tokio::task::spawn_blocking(move || {
        // (The window tests' broker has the five SPEC topics already, 3 partitions each.)
        let p = broker.producer();
        p.send_many(STATUS, status(base, false));
        p.send_many(STATUS, status(base + 15 * 60_000, true));
        broker
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        "[kafka]\nbrokers = \"{bootstrap}\"\nstart = \"earliest\"\n\n[[kafka.topics]]\nname = \"{STATUS}\"\nkind = \"status\"\n\n[store]\npath = \"{}\"\n",
        dir.path().join("cache.sqlite").display()
    );
    let app = App::launch("pipeline", Some(&cfg)).await;
    app.wait_for("the drift notice", Duration::from_secs(60), async |a| {
        a.text("drift-notice")
            .await
            .is_some_and(|t| t.contains("tpms.fl_psi"))
    })
    .await;
    app.screenshot("01-drift-notice").await;

    app.click("counter-lag").await;
    let marks = {
        let b = bootstrap.clone();
        tokio::task::spawn_blocking(move || fleet_testkit::watermarks(&b, STATUS))
            .await
            .unwrap()
    };
    app.wait_for("the lag panel's rows", Duration::from_secs(30), async |a| {
        let rows = a
            .js(r#"return [...document.querySelectorAll('[data-testid="lag-row"]')].map(r => [r.dataset.partition, r.dataset.high, r.dataset.lag, r.dataset.committed].map(Number));"#)
            .await;
        let Some(rows) = rows.as_array() else { return false };
        rows.len() == marks.len()
            && rows.iter().all(|r| {
                let p = r[0].as_i64().unwrap_or(-1) as i32;
                let hi = marks.get(&p).map_or(-2, |m| m.1);
                r[1].as_i64() == Some(hi) && r[2].as_i64() == Some(0) && r[3].as_i64() == Some(hi)
            })
    })
    .await;
    app.screenshot("02-lag-panel").await;
    app.close().await;
    drop(broker);
}
