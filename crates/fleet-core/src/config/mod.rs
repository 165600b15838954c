//! Configuration: TOML, looked up as SPEC §3 says, validated so that every error names the
//! key and the file. No file at all means "run the embedded demo".

mod alerts;
mod connect;
mod model;
pub mod secrets;
mod thresholds;
mod validate;

pub use alerts::*;
pub use connect::{ConnectConfig, ROUTE_FIELDS, RouteConfig};
pub use model::*;
pub use thresholds::{ThresholdRule, ThresholdValue};

use std::path::{Path, PathBuf};

/// A configuration problem, always with the file and the dotted key it concerns.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {file}: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key is unknown, missing, or has a bad value.
    #[error("config error in {file}: key `{key}`: {message}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Dotted path of the key (`kafka.topics[0].kind`).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// `--config PATH` or `$FLEETDASH_CONFIG` points at nothing.
    #[error("config file {file} does not exist (given by {given_by})")]
    Missing {
        /// The file.
        file: PathBuf,
        /// `--config` or `$FLEETDASH_CONFIG`.
        given_by: &'static str,
    },
}

/// Where the configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A file on disk.
    File(PathBuf),
    /// No file anywhere: the embedded demo.
    Demo,
}

/// The per-user default path, `<config_dir>/fleetdash/config.toml`.
pub fn default_config_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("fleetdash").join("config.toml"))
}

/// SPEC §3 lookup order: `--config PATH`, `$FLEETDASH_CONFIG`, the per-user default path;
/// nothing found → [`ConfigSource::Demo`].
pub fn locate(cli: Option<&Path>) -> Result<ConfigSource, ConfigError> {
    if let Some(p) = cli {
        return if p.exists() {
            Ok(ConfigSource::File(p.to_path_buf()))
        } else {
            Err(ConfigError::Missing {
                file: p.to_path_buf(),
                given_by: "--config",
            })
        };
    }
    if let Some(p) = std::env::var_os("FLEETDASH_CONFIG").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.exists() {
            Ok(ConfigSource::File(p))
        } else {
            Err(ConfigError::Missing {
                file: p,
                given_by: "$FLEETDASH_CONFIG",
            })
        };
    }
    match default_config_path() {
        Some(p) if p.exists() => Ok(ConfigSource::File(p)),
        _ => Ok(ConfigSource::Demo),
    }
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.to_path_buf(),
            source,
        })?;
        Self::parse(&text, file)
    }

    /// Parses and validates config text; `file` is only used in error messages.
    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let invalid = |key: String, message: String| ConfigError::Invalid {
            file: file.to_path_buf(),
            key,
            message,
        };
        let de = toml::Deserializer::parse(text).map_err(|e| {
            invalid(
                "(syntax)".into(),
                e.to_string().lines().next().unwrap_or("").to_string(),
            )
        })?;
        let mut cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let key = if key == "." {
                "(root)".to_string()
            } else {
                key
            };
            // toml's messages carry a multi-line excerpt (`  |`, `3 | start = …`, `  ^^^`);
            // the message is the first line that is none of those.
            let inner = e.into_inner().to_string();
            let excerpt = |t: &str| {
                t.starts_with('|')
                    || t.starts_with('^')
                    || t.split_once('|').is_some_and(|(n, _)| {
                        !n.trim().is_empty() && n.trim().chars().all(|c| c.is_ascii_digit())
                    })
            };
            let msg = inner
                .lines()
                .map(str::trim)
                .find(|t| !t.is_empty() && !t.starts_with("TOML parse error") && !excerpt(t))
                .unwrap_or(&inner)
                .trim()
                .to_string();
            invalid(key, msg)
        })?;
        validate::validate(&mut cfg).map_err(|(key, message)| invalid(key, message))?;
        Ok(cfg)
    }

    /// Fails, naming the key and the file, if a secret the file refers to could not be
    /// resolved (`env:NAME` unset, `keyring:NAME` missing or no keyring reachable). Call
    /// before connecting anywhere.
    pub fn require_secrets(&self, file: &Path) -> Result<(), ConfigError> {
        match self.unresolved_secrets.first() {
            Some((key, message)) => Err(ConfigError::Invalid {
                file: file.to_path_buf(),
                key: key.clone(),
                message: message.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Loads whatever [`locate`] finds; `None` means "run the embedded demo".
    pub fn discover(cli: Option<&Path>) -> Result<Option<(Config, PathBuf)>, ConfigError> {
        match locate(cli)? {
            ConfigSource::File(p) => Ok(Some((Config::load(&p)?, p))),
            ConfigSource::Demo => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests;
