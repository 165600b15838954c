//! Secrets in the OS keyring, seen from the window (issue 10): in the real app, under the
//! window's own D-Bus session with a real Secret Service (GNOME Keyring's daemon, started
//! on that bus by [`fleet_testkit::Keyring::start_on`]), a new SASL password typed into
//! Settings is stored in the keyring, the config file gets `keyring:NAME`, and the app logs
//! in to a real SCRAM broker with it. Then the password is searched for in the four places
//! it must never be: the app's logs, IPC payloads (the settings form and the page), the
//! `app_status` answer, and the config file Settings wrote. Each search is shown able to
//! find it: the keyring holds exactly that string, and the page held it while it was typed.

use fleet_e2e::{App, artifacts_dir};
use fleet_testkit::{Broker, Keyring, SaslMechanism, Security};
use std::path::Path;
use std::time::Duration;

const GPS: &str = "cars.gps.json";
const USER: &str = "fleet";
const PASSWORD: &str = "Wind0w-Keyr1ng-Pa55";
/// The entry Settings uses for `sasl.password`.
const ENTRY: &str = "kafka.sasl.password";
const VEHICLES: i64 = 12;

fn config(brokers: &str, store: &Path) -> String {
    format!(
        "[kafka]\nbrokers = \"{brokers}\"\nstart = \"earliest\"\n\n\
         [[kafka.topics]]\nname = \"{GPS}\"\nkind = \"position\"\n\n\
         [kafka.properties]\n\"security.protocol\" = \"SASL_PLAINTEXT\"\n\
         \"sasl.mechanism\" = \"SCRAM-SHA-512\"\n\"sasl.username\" = \"{USER}\"\n\
         \"sasl.password\" = \"env:FLEETDASH_E2E_UNSET_PASSWORD\"\n\n\
         [store]\npath = \"{}\"\n",
        store.display()
    )
}

/// Calls one of the app's commands the way the UI does, and returns its JSON answer.
async fn invoke(app: &App, command: &str) -> String {
    let script = format!(
        "const done = arguments[arguments.length - 1];
         window.__TAURI__.core.invoke('{command}').then(
             (r) => done(JSON.stringify(r)),
             (e) => done('ERROR ' + JSON.stringify(e)));"
    );
    let v = tokio::time::timeout(
        Duration::from_secs(15),
        app.client.execute_async(&script, vec![]),
    )
    .await
    .unwrap_or_else(|_| panic!("invoke {command}: no answer within 15 s"))
    .unwrap_or_else(|e| panic!("invoke {command}: {e}"));
    let s = v.as_str().unwrap_or_default().to_string();
    assert!(!s.starts_with("ERROR"), "{command}: {s}");
    s
}

/// Everything the page holds: its markup and every form field's current value.
async fn page_text(app: &App) -> String {
    app.js(
        "return document.documentElement.outerHTML + '\\n' +
            Array.from(document.querySelectorAll('input, textarea')).map((e) => e.value).join('\\n');",
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_string()
}

async fn open_settings(app: &App) {
    app.click("open-settings").await;
    app.wait_for("the settings form", Duration::from_secs(10), async |a| {
        a.prop("settings-kafka-properties", "value")
            .await
            .is_some_and(|v| v.contains("sasl.password="))
    })
    .await;
}

// Open (issue 10): with a Secret Service on the window's bus, the first WebDriver read after
// the Settings dialog opens (`prop` of `settings-kafka-properties`) never returns — the click
// that opens it does, and the shell, the web process and WebKitWebDriver are all idle in
// their main loops (gdb). Without a Secret Service the same steps pass in other window
// tests. So it does not run in CI. The keyring itself is tested end to end in
// `crates/fleetctl/tests/keyring_e2e.rs` and the Settings → keyring path in
// `src-tauri/src/secret_settings.rs`'s tests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "open: stalls in the window; see the comment above"]
async fn settings_store_a_new_password_in_the_keyring_and_it_is_nowhere_else() {
    let broker = tokio::task::spawn_blocking(|| {
        let b =
            Broker::start_secure(Security::new().sasl(SaslMechanism::ScramSha512, USER, PASSWORD));
        b.create_topic(GPS, 1);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        b.producer().send_many(
            GPS,
            (0..VEHICLES * 5).map(|i| {
                (
                    Some(format!("car-{:02}", i % VEHICLES).into_bytes()),
                    format!(r#"{{"lat":37.5,"lng":127.03,"ts":{}}}"#, now - 60_000 + i)
                        .into_bytes(),
                )
            }),
        );
        b
    })
    .await
    .unwrap();
    let store = tempfile::tempdir().unwrap();
    let cfg = config(&broker.bootstrap(), &store.path().join("cache.sqlite"));
    let app = App::launch("keyring", Some(&cfg)).await;
    let bus = app.desktop().bus_address().to_string();
    let keyring = tokio::task::spawn_blocking(move || Keyring::start_on(&bus))
        .await
        .unwrap();

    // The password's environment variable is not set: the app says so instead of sending
    // `env:…` to the broker as the password.
    app.wait_for(
        "the unset variable named in app_status",
        Duration::from_secs(20),
        async |a| {
            invoke(a, "app_status")
                .await
                .contains("FLEETDASH_E2E_UNSET_PASSWORD is not set")
        },
    )
    .await;

    // An `env:` reference is not a secret: shown as it is. Type the new password over it.
    open_settings(&app).await;
    let props = app
        .prop("settings-kafka-properties", "value")
        .await
        .unwrap_or_default();
    assert!(
        props.contains("sasl.password=env:FLEETDASH_E2E_UNSET_PASSWORD"),
        "{props}"
    );
    let typed = props.replace("env:FLEETDASH_E2E_UNSET_PASSWORD", PASSWORD);
    app.set_input("settings-kafka-properties", &typed).await;
    // The page search finds the password while it is in the form.
    assert!(page_text(&app).await.contains(PASSWORD));
    app.screenshot("01-password-typed").await;
    app.click("settings-save").await;
    app.wait_for("the dialog to close", Duration::from_secs(20), async |a| {
        if let Some(e) = a.text("settings-error").await {
            panic!("saving failed: {e}");
        }
        !a.exists("settings").await
    })
    .await;

    // The keyring holds exactly the password (so the searches below look for the right
    // string), and the app really logs in with it.
    let k = tokio::task::spawn_blocking(move || {
        let v = keyring.lookup(ENTRY);
        (keyring, v)
    })
    .await
    .unwrap();
    let keyring = k.0;
    assert_eq!(k.1.as_deref(), Some(PASSWORD), "the keyring entry {ENTRY}");
    app.wait_for(
        "Kafka up with the keyring's password",
        Duration::from_secs(30),
        async |a| a.attr("conn-kafka", "data-state").await.as_deref() == Some("up"),
    )
    .await;
    app.wait_for("the fleet", Duration::from_secs(60), async |a| {
        a.attr("counter-vehicles", "data-value")
            .await
            .and_then(|v| v.parse::<i64>().ok())
            == Some(VEHICLES)
    })
    .await;
    app.screenshot("02-connected").await;

    // 1. The config file Settings wrote: the reference, not the password.
    let file = std::fs::read_to_string(app.home().join("fleetdash.toml")).unwrap();
    assert!(
        file.contains(&format!("\"sasl.password\" = \"keyring:{ENTRY}\"")),
        "{file}"
    );
    assert!(
        !file.contains(PASSWORD),
        "the config file holds the password:\n{file}"
    );

    // 2. IPC payloads: the settings form (as sent to the window) and the page.
    let form = invoke(&app, "load_settings").await;
    assert!(
        form.contains(&format!("sasl.password=keyring:{ENTRY}")),
        "{form}"
    );
    assert!(
        !form.contains(PASSWORD),
        "load_settings sent the password: {form}"
    );
    open_settings(&app).await;
    let page = page_text(&app).await;
    assert!(
        page.contains(&format!("keyring:{ENTRY}")),
        "the form is not on the page"
    );
    assert!(!page.contains(PASSWORD), "the page holds the password");
    app.screenshot("03-settings-reopened").await;

    // 3. app_status.
    let status = invoke(&app, "app_status").await;
    assert!(status.contains("fleetdash.toml"), "{status}");
    assert!(
        !status.contains(PASSWORD),
        "app_status has the password: {status}"
    );

    // 4. The logs: the daily files under the data dir, and the app's stderr.
    let mut logs = vec![artifacts_dir().join("keyring-app.log")];
    let dir = app.home().join("data").join("fleetdash").join("logs");
    logs.extend(std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()));
    let mut all = String::new();
    for log in &logs {
        let text = String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).into_owned();
        assert!(
            !text.contains(PASSWORD),
            "{} holds the password",
            log.display()
        );
        all.push_str(&text);
    }
    assert!(
        all.contains("starting the engine"),
        "the logs searched are not the app's: {logs:?}"
    );
    drop(keyring);
    app.close().await;
}
