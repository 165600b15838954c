//! Settings: the app's own display settings (a small JSON file beside the config; the tile
//! URL is not engine configuration, so it stays out of fleet-core's `Config`), and the
//! settings form ↔ config file round trip. Saving edits the existing TOML table, so keys the
//! form does not show (`[history]`, `[kafka.properties]`, …) survive, then validates the
//! result with fleet-core's own parser before anything is written.

use crate::error::AppError;
use crate::host::Mode;
use fleet_core::config::{Config, default_config_path, default_fields, default_topics};
use fleetdash_ipc::{SettingsForm, TopicForm, parse_pairs, split_list};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use toml::{Table, Value};

/// The default raster layer: OpenStreetMap's standard tiles (drawn darkened); unreachable
/// tiles simply leave the bundled basemap visible.
pub const DEFAULT_TILE_URL: &str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";

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
    /// Loads the file; `FLEETDASH_TILE_URL` overrides it (tests and kiosks run offline).
    pub fn load() -> AppSettings {
        let mut s: AppSettings = app_settings_path()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        if let Ok(url) = std::env::var("FLEETDASH_TILE_URL") {
            s.tile_url = url;
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

fn write_file(path: &Path, text: &str) -> Result<(), AppError> {
    let io = |source| AppError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    std::fs::write(path, text).map_err(io)
}

/// Where Settings saves: the file in use, else the per-user default path.
pub fn save_path(mode: Option<&Mode>) -> Option<PathBuf> {
    match mode {
        Some(Mode::File(p, _)) => Some(p.clone()),
        _ => default_config_path(),
    }
}

/// The form as the current config fills it (a ready-to-edit local template in the demo).
pub fn form_of(mode: Option<&Mode>, app: &AppSettings) -> SettingsForm {
    let cfg = match mode {
        Some(Mode::File(_, c)) => (**c).clone(),
        _ => Config::default(),
    };
    let kafka = cfg.kafka.as_ref();
    let topics = kafka
        .map(|k| k.topics.clone())
        .unwrap_or_else(default_topics);
    let demo = !matches!(mode, Some(Mode::File(..)));
    SettingsForm {
        brokers: match kafka {
            Some(k) => k.brokers.clone(),
            None if demo => "127.0.0.1:9092".into(),
            None => String::new(),
        },
        topics: topics
            .iter()
            .map(|t| TopicForm {
                name: t.name.clone(),
                kind: t.kind.as_str().to_string(),
                // The kind's defaults first, overridden by the file: the form shows the
                // mapping actually in effect.
                fields: default_fields(t.kind)
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                    .chain(t.fields.clone())
                    .collect::<std::collections::BTreeMap<_, _>>()
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
            .collect(),
        redis_url: match &cfg.redis {
            Some(r) => r.url.list().join(", "),
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
    }
}

/// Applies the form to the file's TOML (or an empty one), validates, and returns the text
/// and the parsed config. Nothing is written when validation fails.
pub fn apply(form: &SettingsForm, path: &Path) -> Result<(String, Config), AppError> {
    let mut root: Table = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.parse::<Table>().ok())
        .unwrap_or_default();
    let brokers = form.brokers.trim();
    if brokers.is_empty() {
        root.remove("kafka");
    } else {
        let kafka = table(&mut root, "kafka");
        kafka.insert("brokers".into(), brokers.into());
        let mut topics = Vec::new();
        for (i, t) in form.topics.iter().enumerate() {
            if t.name.trim().is_empty() {
                continue;
            }
            let mut fields = Table::new();
            for (k, v) in parse_pairs(&t.fields)
                .map_err(|e| AppError::Form(format!("topic #{} fields: {e}", i + 1)))?
            {
                fields.insert(k, v.into());
            }
            let mut tt = Table::new();
            tt.insert("name".into(), t.name.trim().into());
            tt.insert("kind".into(), t.kind.trim().into());
            tt.insert("fields".into(), Value::Table(fields));
            topics.push(Value::Table(tt));
        }
        kafka.insert("topics".into(), Value::Array(topics));
    }
    let urls = split_list(&form.redis_url);
    if urls.is_empty() {
        root.remove("redis");
    } else {
        let redis = table(&mut root, "redis");
        let url = if urls.len() == 1 {
            Value::from(urls[0].clone())
        } else {
            Value::Array(urls.into_iter().map(Value::from).collect())
        };
        redis.insert("url".into(), url);
        let keys = split_list(&form.geo_keys);
        redis.insert(
            "geo_keys".into(),
            Value::Array(keys.into_iter().map(Value::from).collect()),
        );
    }
    let op = form.operator.trim();
    if op.is_empty() {
        table(&mut root, "operator").remove("name");
    } else {
        table(&mut root, "operator").insert("name".into(), op.into());
    }
    let text = toml::to_string_pretty(&root).map_err(|e| AppError::Form(e.to_string()))?;
    let cfg = Config::parse(&text, path)?;
    Ok((text, cfg))
}

/// Writes the validated config text.
pub fn write_config(path: &Path, text: &str) -> Result<(), AppError> {
    write_file(path, text)
}

fn table<'a>(root: &'a mut Table, key: &str) -> &'a mut Table {
    let v = root
        .entry(key.to_string())
        .or_insert_with(|| Value::Table(Table::new()));
    if !v.is_table() {
        *v = Value::Table(Table::new());
    }
    match v {
        Value::Table(t) => t,
        _ => unreachable!("just made it a table"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
