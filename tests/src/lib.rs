//! Harness for the window tests: a private X server (Xvfb), WebKitWebDriver on a free port,
//! and the built `fleetdash` binary launched by the driver in its own home directory, so
//! plain `cargo nextest run` works with nothing started beforehand.
//!
//! The binaries are the ones `./dev test` builds before running the tests (`fleetdash`,
//! `fleetctl` in the same target dir as this test executable).

mod desktop;
mod display;

pub use desktop::Desktop;
pub use display::Xvfb;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Harness errors (the tests turn them into panics with context).
#[derive(Debug, thiserror::Error)]
pub enum E2eError {
    /// A binary or tool is missing.
    #[error("{0}")]
    Missing(String),
    /// Launching a process.
    #[error("cannot start {what}: {source}")]
    Spawn {
        /// What.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// WebDriver.
    #[error("webdriver: {0}")]
    WebDriver(String),
}

/// `target/<profile>/<name>`, next to the running test executable's `deps/` dir.
/// `FLEETDASH_E2E_BIN_DIR` overrides the directory (e.g. `target/release` for the benchmark).
pub fn built_binary(name: &str) -> Result<PathBuf, E2eError> {
    if let Some(dir) = std::env::var_os("FLEETDASH_E2E_BIN_DIR") {
        return Ok(PathBuf::from(dir).join(name));
    }
    let exe = std::env::current_exe().map_err(|e| E2eError::Missing(e.to_string()))?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| E2eError::Missing("no target dir".into()))?;
    let bin = dir.join(name);
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(E2eError::Missing(format!(
            "{} is not built: run `./dev test` (it builds the UI, `fleetdash` and `fleetctl` first)",
            bin.display()
        )))
    }
}

/// Where screenshots go: `$CARGO_TARGET_DIR/e2e-artifacts` (or next to the binaries).
pub fn artifacts_dir() -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            built_binary("fleetdash")
                .ok()
                .and_then(|b| b.parent()?.parent().map(Path::to_path_buf))
        })
        .unwrap_or_else(std::env::temp_dir)
        .join("e2e-artifacts");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// A child process killed on drop.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `cmd`; the error names `what` (and where to get it).
fn spawn(cmd: &mut Command, what: &str) -> Result<Child, E2eError> {
    cmd.spawn().map_err(|source| E2eError::Spawn {
        what: what.into(),
        source,
    })
}

/// Spawns `cmd` with its stdout piped and waits for the first line it prints, which says
/// where the started server can be reached (Xvfb's display number, dbus-daemon's address).
fn spawn_announcing(cmd: &mut Command, what: &str) -> Result<(Guard, String), E2eError> {
    let mut child = spawn(cmd.stdout(Stdio::piped()), what)?;
    let out = child
        .stdout
        .take()
        .ok_or_else(|| E2eError::Missing(format!("{what}: no stdout")))?;
    let guard = Guard(child);
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .map_err(|source| E2eError::Spawn {
            what: what.into(),
            source,
        })?;
    let line = line.trim().to_string();
    if line.is_empty() {
        return Err(E2eError::Missing(format!(
            "{what} exited without saying where it listens"
        )));
    }
    Ok((guard, line))
}

/// Runs `fleetctl sim` against `brokers` (and Redis) until dropped.
pub fn sim(brokers: &str, redis: Option<(&str, &str)>, vehicles: u32, duration_s: u32) -> Guard {
    let mut c = Command::new(built_binary("fleetctl").unwrap_or_else(|e| panic!("{e}")));
    c.args([
        "sim",
        "--brokers",
        brokers,
        "--vehicles",
        &vehicles.to_string(),
        "--rate",
        "1",
    ])
    .args(["--duration", &duration_s.to_string(), "--seed", "3"]);
    if let Some((url, key)) = redis {
        c.args(["--redis", url, "--geo-key", key]);
    }
    let child = c
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning fleetctl sim");
    Guard(child)
}

/// The running app in a WebDriver session.
pub struct App {
    /// The WebDriver session.
    pub client: Client,
    name: String,
    _driver: Guard,
    desktop: Desktop,
    _xvfb: Xvfb,
    home: tempfile::TempDir,
}

impl App {
    /// Starts Xvfb, WebKitWebDriver and the app with `config` as its config file (`None`:
    /// no config anywhere, i.e. the embedded demo). `name` prefixes screenshots.
    pub async fn launch(name: &str, config: Option<&str>) -> App {
        Self::launch_with_env(name, config, &[]).await
    }

    /// [`App::launch`] with extra environment variables for the app.
    pub async fn launch_with_env(name: &str, config: Option<&str>, env: &[(&str, &str)]) -> App {
        let app = built_binary("fleetdash").unwrap_or_else(|e| panic!("{e}"));
        let xvfb = Xvfb::start().unwrap_or_else(|e| panic!("{e}"));
        let home = tempfile::Builder::new()
            .prefix("fleetdash-e2e-home-")
            .tempdir()
            .expect("temp home");
        let desktop = Desktop::start(xvfb.display(), home.path()).unwrap_or_else(|e| panic!("{e}"));
        let cfg_path = home.path().join("fleetdash.toml");
        if let Some(c) = config {
            std::fs::write(&cfg_path, c).expect("writing the config");
        }
        let port = fleet_testkit::free_port();
        let mut cmd = Command::new("WebKitWebDriver");
        cmd.arg(format!("--port={port}"))
            .env("DISPLAY", xvfb.display())
            .env("DBUS_SESSION_BUS_ADDRESS", desktop.bus_address())
            .env("TAURI_WEBVIEW_AUTOMATION", "true")
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_CACHE_HOME", home.path().join("cache"))
            .env("XDG_RUNTIME_DIR", home.path())
            .env("FLEETDASH_TILE_URL", "")
            .env_remove("WAYLAND_DISPLAY")
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(artifacts_dir().join(format!("{name}-app.log")))
                    .expect("log file"),
            ));
        cmd.envs(env.iter().copied());
        if config.is_some() {
            cmd.env("FLEETDASH_CONFIG", &cfg_path);
        } else {
            cmd.env_remove("FLEETDASH_CONFIG");
        }
        let driver = Guard(cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot start WebKitWebDriver (apt: webkit2gtk-driver): {e}")
        }));
        let url = format!("http://127.0.0.1:{port}");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "webkitgtk:browserOptions".into(),
            json!({ "binary": app, "args": [] }),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            match ClientBuilder::native()
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => panic!("WebDriver session on {url}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        };
        let app = App {
            client,
            name: name.into(),
            _driver: driver,
            desktop,
            _xvfb: xvfb,
            home,
        };
        app.wait_for("the map", Duration::from_secs(30), async |a| {
            a.exists("map").await
        })
        .await;
        app
    }

    /// The WebKitWebDriver process (the app is its child).
    pub fn driver_pid(&self) -> u32 {
        self._driver.0.id()
    }

    /// The window's desktop session (its bus and notification daemon).
    pub fn desktop(&self) -> &Desktop {
        &self.desktop
    }

    /// Launches the app binary a second time in this app's session (display, D-Bus, home,
    /// config) and waits up to `timeout` for it to exit; `None` if it was still running.
    pub fn launch_again(&self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let app = built_binary("fleetdash").unwrap_or_else(|e| panic!("{e}"));
        let home = self.home.path();
        let mut cmd = Command::new(app);
        cmd.env("DISPLAY", self._xvfb.display())
            .env("DBUS_SESSION_BUS_ADDRESS", self.desktop.bus_address())
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CACHE_HOME", home.join("cache"))
            .env("XDG_RUNTIME_DIR", home)
            .env("FLEETDASH_TILE_URL", "")
            .env_remove("WAYLAND_DISPLAY")
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(artifacts_dir().join(format!("{}-second.log", self.name)))
                    .expect("log file"),
            ));
        let cfg = home.join("fleetdash.toml");
        if cfg.exists() {
            cmd.env("FLEETDASH_CONFIG", cfg);
        } else {
            cmd.env_remove("FLEETDASH_CONFIG");
        }
        let mut child = Guard(cmd.spawn().expect("second launch"));
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(st) = child.0.try_wait().expect("second launch status") {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// The X display the window is on.
    pub fn display(&self) -> &str {
        self._xvfb.display()
    }

    /// Answers the system's save dialog the way a user does: waits for it, types `path`
    /// into its name field (GTK takes a full path there) and presses Enter. Uses xdotool on
    /// the window's display (apt: xdotool).
    pub async fn answer_save_dialog(&self, path: &Path) {
        let display = self.display().to_string();
        let path = path.display().to_string();
        tokio::task::spawn_blocking(move || {
            let xdo = |args: &[&str]| {
                Command::new("xdotool")
                    .args(args)
                    .env("DISPLAY", &display)
                    .output()
                    .unwrap_or_else(|e| panic!("xdotool (apt: xdotool): {e}"))
            };
            // The dialog is a new top-level window titled as the app sets it ("Export").
            let deadline = Instant::now() + Duration::from_secs(20);
            let win = loop {
                let out = xdo(&["search", "--onlyvisible", "--name", "^Export$"]);
                let found = String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .next()
                    .map(str::to_string);
                if let Some(w) = found {
                    break w;
                }
                assert!(
                    Instant::now() < deadline,
                    "no save dialog appeared within 20 s"
                );
                std::thread::sleep(Duration::from_millis(200));
            };
            std::thread::sleep(Duration::from_millis(500));
            // No window manager under Xvfb: focus it directly, then type through XTEST
            // (synthetic events sent to a window are ignored by GTK).
            xdo(&["windowfocus", "--sync", &win]);
            // Select the suggested name and type the full path over it.
            xdo(&["key", "ctrl+a"]);
            xdo(&["type", "--delay", "15", &path]);
            // Long enough for the dialog to follow the typed folder and list it (it opens
            // each file there to sniff its type), as a user's dialog would.
            std::thread::sleep(Duration::from_millis(1500));
            xdo(&["key", "Return"]);
        })
        .await
        .expect("answering the save dialog");
    }

    /// The app's private home directory (XDG dirs live under it).
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Whether an element with this `data-testid` exists.
    pub async fn exists(&self, testid: &str) -> bool {
        self.client.find(Locator::Css(&sel(testid))).await.is_ok()
    }

    /// An attribute of the first element with this `data-testid`.
    pub async fn attr(&self, testid: &str, attr: &str) -> Option<String> {
        let el = self.client.find(Locator::Css(&sel(testid))).await.ok()?;
        el.attr(attr).await.ok().flatten()
    }

    /// A DOM property (e.g. an input's `value`) of the first element with this `data-testid`.
    pub async fn prop(&self, testid: &str, prop: &str) -> Option<String> {
        let el = self.client.find(Locator::Css(&sel(testid))).await.ok()?;
        el.prop(prop).await.ok().flatten()
    }

    /// Sets an input's value the way typing does (an `input` event the UI listens to).
    pub async fn set_input(&self, testid: &str, value: &str) {
        let script = format!(
            "const el = document.querySelector('{}'); el.value = {}; el.dispatchEvent(new Event('input', {{bubbles: true}})); return true;",
            sel(testid),
            serde_json::to_string(value).unwrap_or_default()
        );
        self.client
            .execute(&script, vec![])
            .await
            .expect("setting an input");
    }

    /// Clicks the first element with this `data-testid`.
    pub async fn click(&self, testid: &str) {
        self.client
            .find(Locator::Css(&sel(testid)))
            .await
            .unwrap_or_else(|e| panic!("{testid}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {testid}: {e}"));
    }

    /// The text of the first element with this `data-testid`.
    pub async fn text(&self, testid: &str) -> Option<String> {
        let el = self.client.find(Locator::Css(&sel(testid))).await.ok()?;
        el.text().await.ok()
    }

    /// Runs JavaScript in the page.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or(Value::Null)
    }

    /// Polls `check` until it returns true; panics naming `what` (with a screenshot) after
    /// `timeout`. Returns how long it took.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        check: impl AsyncFn(&App) -> bool,
    ) -> Duration {
        let start = Instant::now();
        loop {
            if check(self).await {
                return start.elapsed();
            }
            if start.elapsed() > timeout {
                let shot = self
                    .screenshot(&format!("timeout-{}", what.replace(' ', "-")))
                    .await;
                let toast = self.text("toast").await.unwrap_or_default();
                eprintln!("toast at the timeout: {toast:?}");
                self.print_log_tail(60);
                panic!(
                    "timed out after {timeout:?} waiting for {what} (screenshot: {})",
                    shot.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Prints the last `lines` lines of the app's log (its stderr) so a failure in CI shows
    /// what the app was doing, not only a screenshot that is gone with the machine.
    pub fn print_log_tail(&self, lines: usize) {
        let path = artifacts_dir().join(format!("{}-app.log", self.name));
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        eprintln!("--- last {lines} lines of {} ---", path.display());
        for l in &all[all.len().saturating_sub(lines)..] {
            eprintln!("{l}");
        }
        eprintln!("--- end of the app log ---");
    }

    /// Saves a PNG of the window to the artifacts dir and returns its path.
    pub async fn screenshot(&self, label: &str) -> PathBuf {
        let path = artifacts_dir().join(format!("{}-{label}.png", self.name));
        match self.client.screenshot().await {
            Ok(png) => {
                let _ = std::fs::write(&path, png);
            }
            Err(e) => eprintln!("screenshot {label} failed: {e}"),
        }
        path
    }

    /// Ends the session (the driver closes the app).
    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// The SPEC §1 topics every window test creates.
pub const TOPICS: [&str; 5] = [
    "cars.gps.json",
    "cars.status.json",
    "cars.info.json",
    "fleet.alerts.json",
    "fleet.alert-acks.json",
];

/// A tansu broker with the SPEC topics (3 partitions each), started off the async runtime
/// (starting one blocks). `durable` picks SQLite storage, which survives `stop`/`start`.
pub async fn broker(durable: bool) -> fleet_testkit::Broker {
    tokio::task::spawn_blocking(move || {
        let b = if durable {
            fleet_testkit::Broker::start_sqlite()
        } else {
            fleet_testkit::Broker::start_memory()
        };
        for t in TOPICS {
            b.create_topic(t, 3);
        }
        b
    })
    .await
    .expect("broker start thread")
}

/// CSS selector of a test hook.
pub fn sel(testid: &str) -> String {
    format!("[data-testid=\"{testid}\"]")
}
