//! Settings: the app's own display settings (a small JSON file beside the config; the tile
//! URL is not engine configuration, so it stays out of fleet-core's `Config`), and the
//! settings form ↔ config file round trip.
//!
//! Saving *edits* the user's file with `toml_edit`: only the keys the form changed are
//! rewritten, so comments, formatting and everything the form does not show (`[history]`,
//! `[store]`, `[alerts]`, …) stay byte for byte. A file that is not valid TOML is never
//! overwritten (the error names the file and the parse error); the result is validated with
//! fleet-core's own parser before anything is written, and written atomically with mode 0600.
//!
//! Secrets never reach the webview: a Redis URL's password and secret-looking Kafka
//! properties (`sasl.password`, `ssl.key.password`, …) are sent as [`SECRET_MASK`]; saving
//! the mask back keeps the secret stored in the file. A *new* password typed for a secret
//! property goes to the OS keyring and the file gets `keyring:NAME` ([`secret_settings`]);
//! `env:NAME` and `keyring:NAME` references are shown as they are (they are not secrets).

use crate::error::AppError;
use crate::host::Mode;
use crate::secret_settings::{self, OsKeyring, PendingSecrets, SecretStore};
use fleet_core::config::{
    Config, OperatorConfig, TopicConfig, default_config_path, default_fields, default_topics,
};
use fleetdash_ipc::{SettingsForm, TopicForm, parse_pairs, split_list};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml_edit::{ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

/// The default raster layer: OpenStreetMap's standard tiles (drawn darkened); unreachable
/// tiles simply leave the bundled basemap visible.
pub const DEFAULT_TILE_URL: &str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";

/// What the form shows instead of a stored secret; saving it back keeps the secret.
pub const SECRET_MASK: &str = "set";

/// Placeholders Leaflet fills in a tile URL template that fleetdash accepts.
const TILE_PLACEHOLDERS: [&str; 5] = ["s", "z", "x", "y", "r"];

/// The app's own settings (`<config_dir>/fleetdash/app-settings.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AppSettings {
    /// Raster tile URL template; empty = bundled basemap only.
    pub tile_url: String,
}

impl Default for AppSettings {
    fn default() -> Self {
        AppSettings {
            tile_url: DEFAULT_TILE_URL.into(),
        }
    }
}

fn app_settings_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("fleetdash").join("app-settings.json"))
}

impl AppSettings {
    /// Loads the file; `FLEETDASH_TILE_URL` overrides it (tests and kiosks run offline). A
    /// tile URL that does not pass [`check_tile_url`] (edited by hand) is dropped: the map
    /// shows the bundled basemap only.
    pub fn load() -> AppSettings {
        let mut s: AppSettings = app_settings_path()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        if let Ok(url) = std::env::var("FLEETDASH_TILE_URL") {
            s.tile_url = url;
        }
        if let Err(e) = check_tile_url(&s.tile_url) {
            tracing::warn!(error = %e, "ignoring the configured map tiles");
            s.tile_url.clear();
        }
        s
    }

    /// Writes the file.
    pub fn save(&self) -> Result<(), AppError> {
        let Some(path) = app_settings_path() else {
            return Ok(());
        };
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        write_file(&path, &text)
    }
}

/// Writes `text` to `path` atomically and privately: a temporary file in the same
/// directory (mode 0600), fsync, rename over `path`, fsync of the directory. A reader (or a
/// crash) sees the old file or the new one, never a torn one. A symlinked config is
/// followed, so the link stays and its target is replaced.
fn write_file(path: &Path, text: &str) -> Result<(), AppError> {
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let io = |source| AppError::Io {
        path: target.display().to_string(),
        source,
    };
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&dir).map_err(io)?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config".into());
    let (tmp, mut file) = create_temp(&dir, &name).map_err(io)?;
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, &target));
    drop(file);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    // The rename itself is durable once the directory is synced (best effort: not every
    // filesystem lets a directory be opened for that).
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A new, exclusive temporary file beside the target, readable by the owner only.
fn create_temp(dir: &Path, name: &str) -> std::io::Result<(PathBuf, std::fs::File)> {
    let mut last = None;
    for attempt in 0..16u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let tmp = dir.join(format!(
            ".{name}.{}.{nanos:x}{attempt}.tmp",
            std::process::id()
        ));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        match opts.open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no temporary file name left")))
}

/// Where Settings saves: the file in use, else the per-user default path.
pub fn save_path(mode: Option<&Mode>) -> Option<PathBuf> {
    match mode {
        Some(Mode::File(p, _)) => Some(p.clone()),
        _ => default_config_path(),
    }
}

/// Whether a Kafka property holds a secret (its value is never sent to the window).
pub fn is_secret_property(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("password")
        || k.contains("secret")
        || k.contains("jaas")
        || k == "ssl.key.pem"
        || k == "sasl.oauthbearer.config"
}

/// The byte range of a URL's password (`scheme://user:PASSWORD@host`), when it has one.
pub(crate) fn password_span(url: &str) -> Option<Range<usize>> {
    let start = url.find("://")? + 3;
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    let at = start + url[start..end].rfind('@')?;
    let colon = start + url[start..at].find(':')?;
    (colon + 1 < at).then_some(colon + 1..at)
}

fn url_password(url: &str) -> Option<&str> {
    password_span(url).map(|r| &url[r])
}

fn with_password(url: &str, password: &str) -> String {
    match password_span(url) {
        Some(r) => format!("{}{password}{}", &url[..r.start], &url[r.end..]),
        None => url.to_string(),
    }
}

/// The URL as the window may see it: a password becomes [`SECRET_MASK`].
pub fn mask_url(url: &str) -> String {
    with_password(url, SECRET_MASK)
}

/// Kafka properties for the form, one `key=value` per line: secrets masked unless they
/// only refer to one (`env:NAME`, `keyring:NAME`).
fn properties_text(props: &[(String, String)]) -> String {
    props
        .iter()
        .map(|(k, v)| {
            let shown = if is_secret_property(k) && !secret_settings::is_reference(v) {
                SECRET_MASK
            } else {
                v.as_str()
            };
            format!("{k}={shown}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses the form's Kafka properties (`key=value` lines; blank and `#` lines skipped).
fn parse_properties(text: &str) -> Result<Vec<(String, String)>, AppError> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| {
                AppError::Form(format!(
                    "kafka.properties line {}: `{line}` is not key=value",
                    i + 1
                ))
            })?;
        if !seen.insert(k.to_string()) {
            return Err(AppError::Form(format!(
                "kafka.properties: `{k}` is given twice"
            )));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// How the form shows the topics: the kind's default mapping overridden by the file's, so
/// the form shows the mapping actually in effect.
fn topic_forms(topics: &[TopicConfig]) -> Vec<TopicForm> {
    topics
        .iter()
        .map(|t| TopicForm {
            name: t.name.clone(),
            kind: t.kind.as_str().to_string(),
            fields: effective_fields(t)
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect()
}

fn effective_fields(t: &TopicConfig) -> BTreeMap<String, String> {
    default_fields(t.kind)
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .chain(t.fields.clone())
        .collect()
}

/// One topic as the file should hold it: (name, kind, field mapping).
type TopicSpec = (String, String, BTreeMap<String, String>);

fn form_topics(form: &SettingsForm) -> Result<Vec<TopicSpec>, AppError> {
    form.topics
        .iter()
        .enumerate()
        .filter(|(_, t)| !t.name.trim().is_empty())
        .map(|(i, t)| {
            let fields = parse_pairs(&t.fields)
                .map_err(|e| AppError::Form(format!("topic #{} fields: {e}", i + 1)))?;
            Ok((
                t.name.trim().to_string(),
                t.kind.trim().to_string(),
                fields.into_iter().collect(),
            ))
        })
        .collect()
}

fn spec_of(t: &TopicConfig) -> TopicSpec {
    (
        t.name.clone(),
        t.kind.as_str().to_string(),
        effective_fields(t),
    )
}

/// The form as the config fills it (a ready-to-edit local template in the demo). The
/// Kafka properties and Redis URLs come from the file as written (not with `env:`
/// references resolved), with secrets masked.
pub fn form_of(mode: Option<&Mode>, app: &AppSettings) -> SettingsForm {
    let (cfg, doc) = match mode {
        Some(Mode::File(path, c)) => (
            (**c).clone(),
            std::fs::read_to_string(path)
                .ok()
                .and_then(|t| t.parse::<DocumentMut>().ok()),
        ),
        _ => (Config::default(), None),
    };
    let kafka = cfg.kafka.as_ref();
    let topics = kafka
        .map(|k| k.topics.clone())
        .unwrap_or_else(default_topics);
    let demo = !matches!(mode, Some(Mode::File(..)));
    let properties = match &doc {
        Some(doc) => properties_text(&raw_properties(doc)),
        // The file changed under us: the parsed config has `env:` values resolved, so
        // every value is masked (saving the mask back keeps what the file holds).
        None => kafka
            .map(|k| {
                k.properties
                    .keys()
                    .map(|k| format!("{k}={SECRET_MASK}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default(),
    };
    SettingsForm {
        brokers: match kafka {
            Some(k) => k.brokers.clone(),
            None if demo => "127.0.0.1:9092".into(),
            None => String::new(),
        },
        topics: topic_forms(&topics),
        properties,
        redis_url: match &cfg.redis {
            Some(r) => r
                .url
                .list()
                .iter()
                .map(|u| mask_url(u))
                .collect::<Vec<_>>()
                .join(", "),
            None if demo => "redis://127.0.0.1:6379".into(),
            None => String::new(),
        },
        geo_keys: cfg
            .redis
            .as_ref()
            .map(|r| r.geo_keys.join(", "))
            .unwrap_or_else(|| "cars#gps".into()),
        operator: cfg.operator.effective_name(),
        tile_url: app.tile_url.clone(),
        rules: crate::rule_settings::rule_forms(&cfg.alerts),
    }
}

fn raw_properties(doc: &DocumentMut) -> Vec<(String, String)> {
    doc.get("kafka")
        .and_then(|k| k.get("properties"))
        .and_then(Item::as_table_like)
        .map(|t| {
            t.iter()
                .map(|(k, v)| {
                    let v = v
                        .as_str()
                        .map_or_else(|| v.to_string().trim().to_string(), String::from);
                    (k.to_string(), v)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn raw_strings(item: Option<&Item>) -> Option<Vec<String>> {
    let item = item?;
    if let Some(s) = item.as_str() {
        return Some(vec![s.to_string()]);
    }
    item.as_array().map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect()
    })
}

/// Reads the file to edit: `None` when there is none yet.
fn read_existing(path: &Path) -> Result<Option<String>, AppError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(AppError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

fn parse_document(text: &str, path: &Path) -> Result<DocumentMut, AppError> {
    text.parse::<DocumentMut>().map_err(|e| {
        let at = e.span().map_or(0, |s| s.start).min(text.len());
        let line = text[..at].matches('\n').count() + 1;
        AppError::Unparsable {
            path: path.display().to_string(),
            message: format!("line {line}: {}", e.message().trim()),
        }
    })
}

/// Applies the form to the file's TOML (or an empty document), validates, and returns the
/// text and the parsed config. Nothing is written here; nothing should be written when
/// this fails. A file that does not parse is an error: the form never replaces it.
/// New passwords for secret properties go to the OS keyring (see [`secret_settings`]).
pub fn apply(form: &SettingsForm, path: &Path) -> Result<(String, Config), AppError> {
    apply_with(form, path, &OsKeyring)
}

/// [`apply`] with new passwords stored in `keyring`, only once the edited file validated.
pub fn apply_with(
    form: &SettingsForm,
    path: &Path,
    keyring: &dyn SecretStore,
) -> Result<(String, Config), AppError> {
    check_tile_url(&form.tile_url).map_err(|e| AppError::Form(format!("tile_url: {e}")))?;
    let old_text = read_existing(path)?;
    let mut doc = match &old_text {
        Some(t) => parse_document(t, path)?,
        None => DocumentMut::new(),
    };
    let old_cfg = old_text
        .as_deref()
        .and_then(|t| Config::parse(t, path).ok());
    let mut secrets = PendingSecrets::default();
    edit_kafka(&mut doc, form, old_cfg.as_ref(), &mut secrets)?;
    edit_redis(&mut doc, form, &mut secrets)?;
    edit_operator(&mut doc, form);
    let old_alerts = old_cfg
        .as_ref()
        .map(|c| c.alerts.clone())
        .unwrap_or_default();
    crate::rule_settings::edit_rules(&mut doc, &form.rules, &old_alerts)?;
    let text = doc.to_string();
    let mut cfg = Config::parse(&text, path)?;
    if !secrets.is_empty() {
        secrets.store(keyring)?;
        secrets.fill(&mut cfg);
    }
    Ok((text, cfg))
}

fn edit_kafka(
    doc: &mut DocumentMut,
    form: &SettingsForm,
    old: Option<&Config>,
    secrets: &mut PendingSecrets,
) -> Result<(), AppError> {
    let brokers = form.brokers.trim();
    let topics = form_topics(form)?;
    let props = parse_properties(&form.properties)?;
    if brokers.is_empty() {
        doc.remove("kafka");
        return Ok(());
    }
    let kafka = child(doc.as_item_mut(), "kafka");
    set_str(kafka, "brokers", brokers);

    let old_topics: Option<Vec<TopicSpec>> = old
        .and_then(|c| c.kafka.as_ref())
        .map(|k| k.topics.iter().map(spec_of).collect());
    if old_topics.as_ref() != Some(&topics) {
        write_topics(kafka, &topics, old_topics.as_deref().unwrap_or_default());
    }

    if props.is_empty() && kafka.get("properties").is_none() {
        return Ok(());
    }
    let table = child(kafka, "properties");
    let Some(t) = table.as_table_like_mut() else {
        return Ok(());
    };
    let wanted: HashSet<&str> = props.iter().map(|(k, _)| k.as_str()).collect();
    let stale: Vec<String> = t
        .iter()
        .map(|(k, _)| k.to_string())
        .filter(|k| !wanted.contains(k.as_str()))
        .collect();
    for k in stale {
        t.remove(&k);
    }
    for (k, v) in &props {
        let stored = t.get(k);
        if v == SECRET_MASK {
            if stored.is_some() {
                continue; // the mask stands for what the file holds
            }
            if is_secret_property(k) {
                return Err(AppError::Form(format!(
                    "kafka.properties.\"{k}\": `{SECRET_MASK}` stands for the stored secret, \
                     but none is stored: type the value"
                )));
            }
        }
        if stored.and_then(Item::as_str) == Some(v.as_str()) {
            continue;
        }
        // A new secret goes to the OS keyring; the file gets `keyring:NAME`.
        let v = if is_secret_property(k) {
            secrets.route(k, v)
        } else {
            v.clone()
        };
        set_value(t, k, Value::from(v.as_str()));
    }
    Ok(())
}

/// Rewrites `kafka.topics`, keeping a topic's table as it is (comments included) when
/// the form left that topic unchanged.
fn write_topics(kafka: &mut Item, topics: &[TopicSpec], old: &[TopicSpec]) {
    let new_table = |(name, kind, fields): &TopicSpec| {
        let mut t = Table::new();
        t.insert("name", toml_edit::value(name.as_str()));
        t.insert("kind", toml_edit::value(kind.as_str()));
        let mut f = InlineTable::new();
        for (k, v) in fields {
            f.insert(k.as_str(), Value::from(v.as_str()));
        }
        t.insert("fields", toml_edit::value(f));
        t
    };
    let inline = kafka.is_inline_table();
    let Some(k) = kafka.as_table_like_mut() else {
        return;
    };
    if inline {
        let array: toml_edit::Array = topics
            .iter()
            .map(|t| Value::InlineTable(new_table(t).into_inline_table()))
            .collect();
        set_value(k, "topics", Value::Array(array));
        return;
    }
    let previous = k.get("topics").and_then(Item::as_array_of_tables).cloned();
    let mut aot = ArrayOfTables::new();
    for (i, t) in topics.iter().enumerate() {
        match previous.as_ref().and_then(|p| p.get(i)) {
            Some(kept) if old.get(i) == Some(t) => aot.push(kept.clone()),
            // The form does not show `format` (SPEC §8 DMS): an edited topic keeps it.
            Some(kept) => {
                let mut fresh = new_table(t);
                if let Some(f) = kept.get("format") {
                    fresh.insert("format", f.clone());
                }
                aot.push(fresh);
            }
            None => aot.push(new_table(t)),
        }
    }
    match k.get_mut("topics") {
        Some(item) => *item = Item::ArrayOfTables(aot),
        None => {
            k.insert("topics", Item::ArrayOfTables(aot));
        }
    }
}

fn edit_redis(
    doc: &mut DocumentMut,
    form: &SettingsForm,
    secrets: &mut PendingSecrets,
) -> Result<(), AppError> {
    let urls = split_list(&form.redis_url);
    if urls.is_empty() {
        doc.remove("redis");
        return Ok(());
    }
    let old_urls = raw_strings(doc.get("redis").and_then(|r| r.get("url"))).unwrap_or_default();
    // A newly typed password leaves the URL for the OS keyring.
    let urls = secrets.route_redis(urls)?;
    let urls = restore_passwords(urls, &old_urls)?;
    let keys = split_list(&form.geo_keys);
    let redis = child(doc.as_item_mut(), "redis");
    let Some(r) = redis.as_table_like_mut() else {
        return Ok(());
    };
    if urls != old_urls {
        let url = if urls.len() == 1 {
            Value::from(urls[0].as_str())
        } else {
            Value::Array(urls.iter().map(String::as_str).collect())
        };
        set_value(r, "url", url);
    }
    if raw_strings(r.get("geo_keys")).as_ref() != Some(&keys) {
        set_value(
            r,
            "geo_keys",
            Value::Array(keys.iter().map(String::as_str).collect()),
        );
    }
    if secrets.has_redis() {
        set_value(
            r,
            "password_keyring",
            Value::from(secret_settings::REDIS_ENTRY),
        );
        r.remove("password_env");
    }
    Ok(())
}

/// Puts the stored password back where the form sent the mask: the URL at the same place
/// in the list, else the first stored URL that has one.
fn restore_passwords(urls: Vec<String>, old: &[String]) -> Result<Vec<String>, AppError> {
    urls.into_iter()
        .enumerate()
        .map(|(i, url)| {
            if url_password(&url) != Some(SECRET_MASK) {
                return Ok(url);
            }
            let stored = old
                .get(i)
                .and_then(|u| url_password(u))
                .or_else(|| old.iter().find_map(|u| url_password(u)));
            match stored {
                Some(p) => Ok(with_password(&url, p)),
                None => Err(AppError::Form(format!(
                    "redis.url: `{SECRET_MASK}` stands for the stored password, but none is \
                     stored: type the password"
                ))),
            }
        })
        .collect()
}

fn edit_operator(doc: &mut DocumentMut, form: &SettingsForm) {
    let op = form.operator.trim();
    let stored = doc
        .get("operator")
        .and_then(|o| o.get("name"))
        .and_then(Item::as_str)
        .map(String::from);
    if op.is_empty() {
        if let Some(t) = doc.get_mut("operator").and_then(Item::as_table_like_mut) {
            t.remove("name");
        }
        return;
    }
    // The form shows the OS user name when the file names nobody: keep it unnamed.
    if stored.is_none() && op == OperatorConfig::default().effective_name() {
        return;
    }
    let operator = child(doc.as_item_mut(), "operator");
    set_str(operator, "name", op);
}

/// The table `key` under `parent`, created (as a `[table]`, or inline inside an inline
/// table) when missing or not a table.
pub(crate) fn child<'a>(parent: &'a mut Item, key: &str) -> &'a mut Item {
    let inline = parent.is_inline_table();
    let fresh = || {
        if inline {
            Item::Value(Value::InlineTable(InlineTable::new()))
        } else {
            Item::Table(Table::new())
        }
    };
    if !parent.is_table_like() {
        *parent = fresh();
    }
    let t = parent.as_table_like_mut().expect("made a table just above");
    let item = t.entry(key).or_insert_with(fresh);
    if !item.is_table_like() {
        *item = fresh();
    }
    item
}

/// Sets a string, leaving the file untouched when it already holds that value.
fn set_str(table: &mut Item, key: &str, v: &str) {
    let Some(t) = table.as_table_like_mut() else {
        return;
    };
    if t.get(key).and_then(Item::as_str) != Some(v) {
        set_value(t, key, Value::from(v));
    }
}

/// Replaces a value in place: the key, its comments and the value's trailing comment stay.
pub(crate) fn set_value(t: &mut dyn toml_edit::TableLike, key: &str, v: Value) {
    match t.get_mut(key) {
        Some(Item::Value(old)) => {
            let decor = old.decor().clone();
            *old = v;
            *old.decor_mut() = decor;
        }
        Some(other) => *other = Item::Value(v),
        None => {
            t.insert(key, Item::Value(v));
        }
    }
}

/// Writes the validated config text (atomically, mode 0600).
pub fn write_config(path: &Path, text: &str) -> Result<(), AppError> {
    write_file(path, text)
}

/// Checks a raster tile URL template: empty (no tiles), or `https://` with a plain host
/// name (`{s}` allowed in its first label), no credentials, `{z}`, `{x}` and `{y}`, and no
/// placeholder but `{s} {z} {x} {y} {r}`. The message says what is wrong (the caller names
/// the key).
pub fn check_tile_url(url: &str) -> Result<(), String> {
    tile_source(url).map(|_| ())
}

/// The CSP source the tile URL needs (`https://*.tile.example.org`), `None` for no tiles.
fn tile_source(url: &str) -> Result<Option<String>, String> {
    let url = url.trim();
    if url.is_empty() {
        return Ok(None);
    }
    let Some(rest) = url.strip_prefix("https://") else {
        return Err(format!("`{url}` must start with https://"));
    };
    if let Some(c) = url
        .chars()
        .find(|c| !c.is_ascii_graphic() || "\"'<>\\^`|".contains(*c))
    {
        return Err(format!("`{url}` contains the character {c:?}"));
    }
    let mut seen = HashSet::new();
    let mut tail = url;
    while let Some(open) = tail.find(['{', '}']) {
        if tail[open..].starts_with('}') {
            return Err(format!("`{url}` has an unmatched `}}`"));
        }
        let Some(len) = tail[open..].find('}') else {
            return Err(format!("`{url}` has an unmatched `{{`"));
        };
        let name = &tail[open + 1..open + len];
        if !TILE_PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "`{url}` has the placeholder {{{name}}}; only {{s}} {{z}} {{x}} {{y}} {{r}} are allowed"
            ));
        }
        seen.insert(name);
        tail = &tail[open + len + 1..];
    }
    if let Some(missing) = ["z", "x", "y"].iter().find(|p| !seen.contains(*p)) {
        return Err(format!("`{url}` lacks the placeholder {{{missing}}}"));
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if !rest[authority_end..].starts_with('/') {
        return Err(format!("`{url}` has no path after the host"));
    }
    let authority = &rest[..authority_end];
    if authority.contains('@') {
        return Err(format!("`{url}` must not carry credentials"));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    if let Some(p) = port
        && !p.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return Err(format!("`{url}` has a bad port `{p}`"));
    }
    let host = host.to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    let plain = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let (wild, named) = match labels.split_first() {
        Some((first, rest)) if first.contains('{') => {
            let bare = first.replace("{s}", "");
            if first.contains("{s}") && (bare.is_empty() || plain(&bare)) {
                (true, rest)
            } else {
                return Err(format!(
                    "`{url}`: only {{s}} may appear in the host, in its first label"
                ));
            }
        }
        _ => (false, &labels[..]),
    };
    if named.is_empty() || !named.iter().all(|l| plain(l)) || (wild && named.len() < 2) {
        return Err(format!("`{url}` does not name a host (`{host}`)"));
    }
    let mut source = String::from("https://");
    if wild {
        source.push_str("*.");
    }
    source.push_str(&named.join("."));
    if let Some(p) = port {
        source.push(':');
        source.push_str(p);
    }
    Ok(Some(source))
}

/// The CSP `img-src` for the configured tiles: the app itself, inline images, and the tile
/// host only (no other remote image can load).
pub fn img_src(tile_url: &str) -> String {
    let mut s = String::from("'self' data: blob:");
    if let Ok(Some(host)) = tile_source(tile_url) {
        s.push(' ');
        s.push_str(&host);
    }
    s
}

/// `csp` with its `img-src` directive replaced by `img_src`.
pub fn with_img_src(csp: &str, img_src: &str) -> String {
    let mut directives: Vec<&str> = csp
        .split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty() && d.split_whitespace().next() != Some("img-src"))
        .collect();
    let img = format!("img-src {img_src}");
    directives.push(&img);
    directives.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config file saved from `form`.
    fn saved(form: &SettingsForm) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let (text, _) = apply(form, &path).unwrap();
        write_config(&path, &text).unwrap();
        (dir, path)
    }

    #[test]
    fn form_round_trips_and_keeps_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[history]\nretention_hours = 12\n").unwrap();
        let mut form = form_of(None, &AppSettings::default());
        form.brokers = "10.0.0.1:9092".into();
        form.operator = "alice".into();
        let (text, cfg) = apply(&form, &path).unwrap();
        assert!(text.contains("retention_hours = 12"), "{text}");
        assert_eq!(cfg.kafka.unwrap().brokers, "10.0.0.1:9092");
        assert_eq!(cfg.operator.name.as_deref(), Some("alice"));
        assert_eq!(cfg.redis.unwrap().geo_keys, vec!["cars#gps"]);
    }

    #[test]
    fn bad_values_are_rejected_with_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let mut form = form_of(None, &AppSettings::default());
        form.topics[0].kind = "teleport".into();
        let err = apply(&form, &path).unwrap_err().to_string();
        assert!(err.contains("kafka.topics[0].kind"), "{err}");
        form.topics[0].kind = "position".into();
        form.topics[0].fields = "lat".into();
        assert!(
            apply(&form, &path)
                .unwrap_err()
                .to_string()
                .contains("topic #1")
        );
        assert!(!path.exists(), "nothing written on failure");
    }

    #[test]
    fn an_unparsable_file_is_left_untouched_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let broken = "[kafka]\nbrokers = \"10.0.0.1:9092\"\n[kafka.properties]\n\
                      \"sasl.password\" = \"hunter2\n[store]\npath = \"/srv/cache.sqlite\"\n";
        std::fs::write(&path, broken).unwrap();
        let mut form = form_of(None, &AppSettings::default());
        form.brokers = "10.0.0.2:9092".into();
        let err = apply(&form, &path).unwrap_err();
        assert_eq!(err.code(), "config_unparsable");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("line 4"), "{msg}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);
        let ipc: fleet_model::IpcError = err.into();
        assert_eq!(ipc.code, "config_unparsable");
    }

    #[test]
    fn comments_and_sections_the_form_does_not_know_survive_a_save() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let original = "\
# fleetdash at the depot — ask ops before changing
[kafka]
brokers = \"10.0.0.1:9092\"   # primary cluster
start = \"earliest\"

[kafka.properties]
# SASL for the prod cluster
\"security.protocol\" = \"SASL_SSL\"
\"sasl.mechanism\" = \"PLAIN\"
\"sasl.username\" = \"fleet\"
\"sasl.password\" = \"hunter2\"

[store]
path = \"/srv/fleetdash/cache.sqlite\"  # big disk

[history]
retention_hours = 48.0

[alerts.overspeed]
enabled = false
";
        std::fs::write(&path, original).unwrap();
        let cfg = Config::load(&path).unwrap();
        let mode = Mode::File(path.clone(), Box::new(cfg));
        let mut form = form_of(Some(&mode), &AppSettings::default());
        form.brokers = "10.0.0.9:9092".into();
        form.operator = "bob".into();
        let (text, cfg) = apply(&form, &path).unwrap();
        write_config(&path, &text).unwrap();
        let saved = std::fs::read_to_string(&path).unwrap();
        let want = original.replace("10.0.0.1:9092", "10.0.0.9:9092");
        // Everything but the two edited values is byte for byte what it was.
        assert!(saved.starts_with(&want), "{saved}");
        assert!(
            saved.contains("brokers = \"10.0.0.9:9092\"   # primary cluster"),
            "{saved}"
        );
        assert!(saved.contains("[operator]\nname = \"bob\""), "{saved}");
        let k = cfg.kafka.unwrap();
        assert_eq!(k.properties["sasl.password"], "hunter2");
        assert_eq!(
            cfg.store.path.as_deref(),
            Some(Path::new("/srv/fleetdash/cache.sqlite"))
        );
        assert!(!cfg.alerts.overspeed.enabled);

        // Saving again with nothing changed writes the same bytes.
        let cfg = Config::load(&path).unwrap();
        let mode = Mode::File(path.clone(), Box::new(cfg));
        let form = form_of(Some(&mode), &AppSettings::default());
        let (again, _) = apply(&form, &path).unwrap();
        assert_eq!(again, saved);
    }

    #[cfg(unix)]
    #[test]
    fn the_config_is_written_atomically_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleetdash").join("config.toml");
        write_config(&path, "[operator]\nname = \"a\"\n").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        // An existing world-readable file becomes private too.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_config(&path, "[operator]\nname = \"b\"\n").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "[operator]\nname = \"b\"\n"
        );
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("config.toml")]);
    }

    #[test]
    fn secrets_never_reach_the_form_and_the_mask_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let original = "\
[kafka]
brokers = \"10.0.0.1:9092\"
[kafka.properties]
\"security.protocol\" = \"SASL_SSL\"
\"sasl.username\" = \"fleet\"
\"sasl.password\" = \"kafka-Pa55\"
\"ssl.key.password\" = \"key-Pa55\"
\"sasl.oauthbearer.client.secret\" = \"oauth-Pa55\"
\"ssl.keystore.password\" = \"env:KEYSTORE_PASS\"
[redis]
url = \"rediss://ops:redis-Pa55@redis.example:6380/2\"
";
        std::fs::write(&path, original).unwrap();
        let cfg = Config::load(&path).unwrap();
        let mode = Mode::File(path.clone(), Box::new(cfg));
        let form = form_of(Some(&mode), &AppSettings::default());
        let sent = serde_json::to_string(&form).unwrap();
        for secret in ["kafka-Pa55", "key-Pa55", "oauth-Pa55", "redis-Pa55", "Pa55"] {
            assert!(
                !sent.contains(secret),
                "{secret} sent to the window: {sent}"
            );
        }
        assert_eq!(form.redis_url, "rediss://ops:set@redis.example:6380/2");
        assert!(form.properties.contains("sasl.password=set"), "{sent}");
        assert!(form.properties.contains("sasl.username=fleet"), "{sent}");
        // An environment reference is not a secret: it stays visible.
        assert!(
            form.properties
                .contains("ssl.keystore.password=env:KEYSTORE_PASS"),
            "{sent}"
        );

        // Saved back as shown (and after moving Redis), every secret is still there.
        let mut form = form;
        form.redis_url = "rediss://ops:set@redis2.example:6380/2".into();
        let (text, cfg) = apply(&form, &path).unwrap();
        assert!(
            text.contains("\"sasl.password\" = \"kafka-Pa55\""),
            "{text}"
        );
        assert!(
            text.contains("\"ssl.key.password\" = \"key-Pa55\""),
            "{text}"
        );
        assert!(text.contains("oauth-Pa55"), "{text}");
        assert!(text.contains("rediss://ops:redis-Pa55@redis2.example:6380/2"));
        assert_eq!(cfg.kafka.unwrap().properties.len(), 6);

        // A new password replaces the old one, in the OS keyring; a removed property is
        // gone.
        let mut form2 = form.clone();
        form2.properties = "sasl.password=new-secret\nsecurity.protocol=SASL_SSL".into();
        let keyring = crate::secret_settings::tests::MemoryStore::default();
        let (text, _) = apply_with(&form2, &path, &keyring).unwrap();
        assert!(
            text.contains("\"sasl.password\" = \"keyring:kafka.sasl.password\""),
            "{text}"
        );
        assert!(!text.contains("new-secret"), "{text}");
        assert_eq!(keyring.0.borrow()["kafka.sasl.password"], "new-secret");
        assert!(!text.contains("sasl.username"), "{text}");

        // The mask where nothing is stored is refused, naming the key.
        let (_dir2, path2) = saved(&form_of(None, &AppSettings::default()));
        let mut form3 = form_of(None, &AppSettings::default());
        form3.properties = "sasl.password=set".into();
        let err = apply(&form3, &path2).unwrap_err().to_string();
        assert!(err.contains("kafka.properties.\"sasl.password\""), "{err}");
        form3.properties.clear();
        form3.redis_url = "redis://:set@127.0.0.1:6379".into();
        let err = apply(&form3, &path2).unwrap_err().to_string();
        assert!(err.contains("redis.url"), "{err}");
    }

    #[test]
    fn url_passwords_are_found_and_masked() {
        assert_eq!(
            mask_url("redis://:pw@127.0.0.1:6379/0"),
            "redis://:set@127.0.0.1:6379/0"
        );
        assert_eq!(mask_url("redis://u:p@ss@h:1"), "redis://u:set@h:1");
        assert_eq!(mask_url("redis://user@h:1"), "redis://user@h:1");
        assert_eq!(mask_url("redis://h:1/0?x=a@b"), "redis://h:1/0?x=a@b");
        assert_eq!(mask_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert!(is_secret_property("ssl.key.password"));
        assert!(is_secret_property("sasl.oauthbearer.client.secret"));
        assert!(!is_secret_property("sasl.username"));
    }

    #[test]
    fn bad_tile_urls_are_refused_naming_the_key() {
        for bad in [
            "http://tile.openstreetmap.org/{z}/{x}/{y}.png",
            "javascript:alert(1)//{z}/{x}/{y}",
            "https://tile.openstreetmap.org/{z}/{x}/{y}.png?k={apikey}",
            "https://tile.openstreetmap.org/{z}/{x}/{-y}.png",
            "https://tile.openstreetmap.org/{z}/{x}.png",
            "https://u:p@tile.example.org/{z}/{x}/{y}.png",
            "https://{z}.example.org/{z}/{x}/{y}.png",
            "https://tile.example.org\"; script-src *; x=/{z}/{x}/{y}",
            "https://tile .example.org/{z}/{x}/{y}.png",
            "https://*.example.org/{z}/{x}/{y}.png",
            "https://{s}.org/{z}/{x}/{y}.png",
            "https://tile.example.org:99999/{z}/{x}/{y}.png",
            "https://tile.example.org/{z}/{x}/{y}.png}",
        ] {
            assert!(check_tile_url(bad).is_err(), "{bad} accepted");
            let mut form = form_of(None, &AppSettings::default());
            form.tile_url = bad.into();
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("config.toml");
            let err = apply(&form, &path).unwrap_err().to_string();
            assert!(err.starts_with("tile_url: "), "{err}");
            assert!(!path.exists());
        }
        for good in [
            "",
            DEFAULT_TILE_URL,
            "https://{s}.tile.openstreetmap.org/{z}/{x}/{y}{r}.png",
            "https://tiles.example.org:8443/osm/{z}/{x}/{y}.png?key=abc",
        ] {
            assert_eq!(check_tile_url(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn the_csp_lets_images_come_from_the_tile_host_only() {
        assert_eq!(img_src(""), "'self' data: blob:");
        assert_eq!(
            img_src(DEFAULT_TILE_URL),
            "'self' data: blob: https://tile.openstreetmap.org"
        );
        assert_eq!(
            img_src("https://{s}.Tile.example.org:8443/{z}/{x}/{y}.png"),
            "'self' data: blob: https://*.tile.example.org:8443"
        );
        assert_eq!(
            img_src("http://evil.example/{z}/{x}/{y}"),
            "'self' data: blob:"
        );
        let base = "default-src 'self'; img-src 'self' data: blob:; object-src 'none'";
        assert_eq!(
            with_img_src(base, &img_src(DEFAULT_TILE_URL)),
            "default-src 'self'; object-src 'none'; \
             img-src 'self' data: blob: https://tile.openstreetmap.org"
        );
    }
}
