//! Requests and replies between the window and the desktop shell that are about the app
//! itself (what it is connected to, its settings) rather than the fleet: fleet-model's
//! `ui` module carries the fleet half (frames, details, search). Both the wasm UI and
//! src-tauri depend on this crate, so the two sides cannot drift apart.

use serde::{Deserialize, Serialize};

/// What the app is running against, shown in the header and the banner.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppStatus {
    /// Running the embedded demo (no config file found).
    pub demo: bool,
    /// The config file in use, when not the demo.
    pub config_path: Option<String>,
    /// Where Settings will save (the file in use, or the per-user default path).
    pub save_path: Option<String>,
    /// Why the engine is not running, when it is not (bad config, cache unavailable, …).
    pub error: Option<String>,
    /// Who acknowledges alerts from this desktop.
    pub operator: String,
    /// Raster tile URL template (`{z}/{x}/{y}`) layered over the bundled basemap; empty = none.
    pub tile_url: String,
    /// App version.
    pub version: String,
    /// Unacknowledged critical alerts escalate (are highlighted) after this many seconds.
    pub escalate_after_s: f64,
}

/// One `[[kafka.topics]]` entry as the settings form edits it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TopicForm {
    /// Topic name.
    pub name: String,
    /// `position` | `status` | `info` | `alert` | `ack`.
    pub kind: String,
    /// Field mapping as `field=path` pairs separated by commas (`id=$key, lat=pos.lat`).
    pub fields: String,
}

/// The settings view: the parts of the config file an operator edits by hand, plus the
/// app's own display settings. Saving validates with fleet-core's config parser.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SettingsForm {
    /// Kafka bootstrap servers (comma separated); empty = no Kafka.
    pub brokers: String,
    /// Topics and their field mapping.
    pub topics: Vec<TopicForm>,
    /// `[kafka.properties]`, one `key=value` per line. Secret values (passwords, keys)
    /// arrive as `set`; sending `set` back keeps the stored secret.
    #[serde(default)]
    pub properties: String,
    /// Redis URL(s), comma separated; empty = no Redis. A stored password arrives as
    /// `set` (`redis://user:set@host:6379`); sending `set` back keeps it.
    pub redis_url: String,
    /// Geo set keys, comma separated.
    pub geo_keys: String,
    /// Operator name for acknowledgements.
    pub operator: String,
    /// Raster tile URL template; empty = bundled basemap only.
    pub tile_url: String,
    /// fleetdash's built-in rules: on/off and severity each (issue 12).
    #[serde(default)]
    pub rules: Vec<RuleForm>,
}

/// One built-in alert rule in the settings view.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleForm {
    /// `headlights_on`, `low_battery`, `low_fuel`, `overspeed`, `harsh_braking`, `stale`.
    pub name: String,
    /// Raises alerts.
    pub enabled: bool,
    /// `info` | `warning` | `critical`.
    pub severity: String,
}

/// Parses `a=b, c=d` into pairs, trimming blanks; `None` names the first malformed entry.
pub fn parse_pairs(s: &str) -> Result<Vec<(String, String)>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty() => {
                Ok((k.trim().to_string(), v.trim().to_string()))
            }
            _ => Err(format!("`{p}` is not field=path")),
        })
        .collect()
}

/// Splits a comma-separated list, trimming blanks.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_and_lists() {
        assert_eq!(
            parse_pairs(" id=$key, lat = pos.lat ,").unwrap(),
            vec![
                ("id".into(), "$key".into()),
                ("lat".into(), "pos.lat".into())
            ]
        );
        assert!(parse_pairs("id").unwrap_err().contains("`id`"));
        assert_eq!(split_list("a, b,,c "), vec!["a", "b", "c"]);
    }
}
