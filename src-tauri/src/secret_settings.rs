//! Settings → OS keyring: a new password typed into the form for a secret Kafka property
//! (`sasl.password`, `ssl.key.password`, …) is stored in the OS keyring (Secret Service),
//! and the config file gets `keyring:NAME` in its place, so the file Settings writes never
//! holds a secret.
//!
//! Entry names are stable, one per property: `kafka.<property>` (`kafka.sasl.password`), in
//! the keyring service `fleetdash`. A value that already refers to a secret (`env:NAME`,
//! `keyring:NAME`) is not a secret and is written as typed. A password typed into a Redis
//! URL is taken out of the URL into the entry `redis.password`, and the file gets
//! `password_keyring = "redis.password"` (the URL shows no password afterwards).
//!
//! Nothing is stored before the edited config has validated, and nothing is written when
//! storing fails: with no Secret Service the save fails, saying so and suggesting `env:NAME`
//! — the plaintext is never written to the file as a fallback.

use crate::error::AppError;
use crate::settings::{SECRET_MASK, password_span};
use fleet_core::config::Config;
use fleet_core::config::secrets::{self, SecretError};
use std::ops::Range;

/// Where Settings puts new passwords (the OS keyring; a map in unit tests).
pub trait SecretStore {
    /// Stores `secret` as entry `name`.
    fn store(&self, name: &str, secret: &str) -> Result<(), SecretError>;
}

/// The OS keyring (Secret Service over the session D-Bus).
pub struct OsKeyring;

impl SecretStore for OsKeyring {
    fn store(&self, name: &str, secret: &str) -> Result<(), SecretError> {
        secrets::store(name, secret)
    }
}

/// Whether a property value refers to a secret kept elsewhere rather than being one.
pub fn is_reference(value: &str) -> bool {
    value.starts_with("env:") || value.starts_with("keyring:")
}

/// The keyring entry Settings uses for Kafka property `property`.
pub fn entry_name(property: &str) -> String {
    format!("kafka.{property}")
}

/// The keyring entry Settings uses for the Redis password (`redis.password_keyring`).
pub const REDIS_ENTRY: &str = "redis.password";

/// Where a new secret belongs in the config.
enum Target {
    /// A Kafka property.
    Kafka(String),
    /// The Redis password.
    Redis,
}

/// One new secret waiting to be stored.
struct NewSecret {
    /// The config key it is for, as errors name it.
    key: String,
    target: Target,
    entry: String,
    secret: String,
}

/// The new secrets a form carries, stored only once the edited config has validated.
#[derive(Default)]
pub struct PendingSecrets(Vec<NewSecret>);

impl PendingSecrets {
    /// The value to write for a secret property `property` typed as `value`: the value
    /// itself when it is a reference, else `keyring:<entry>` (the secret is remembered
    /// for [`PendingSecrets::store`]).
    pub fn route(&mut self, property: &str, value: &str) -> String {
        if is_reference(value) {
            return value.to_string();
        }
        let entry = entry_name(property);
        self.0.push(NewSecret {
            key: format!("kafka.properties.\"{property}\""),
            target: Target::Kafka(property.to_string()),
            entry: entry.clone(),
            secret: value.to_string(),
        });
        format!("keyring:{entry}")
    }

    /// Redis URLs as the form sent them: a newly typed password (anything but the mask) is
    /// taken out of the URLs and remembered for the keyring entry [`REDIS_ENTRY`]; the
    /// caller then writes `password_keyring` ([`PendingSecrets::has_redis`]).
    pub fn route_redis(&mut self, urls: Vec<String>) -> Result<Vec<String>, AppError> {
        let mut typed: Option<String> = None;
        let mut out = Vec::with_capacity(urls.len());
        for url in urls {
            let Some(span) = password_span(&url) else {
                out.push(url);
                continue;
            };
            let pw = &url[span.clone()];
            if pw == SECRET_MASK {
                out.push(url);
                continue;
            }
            if typed.as_deref().is_some_and(|t| t != pw) {
                return Err(AppError::Form(
                    "redis.url: the URLs carry different passwords; give one password \
                     (it is used for every node)"
                        .into(),
                ));
            }
            typed = Some(pw.to_string());
            out.push(without_password(&url, span));
        }
        if let Some(secret) = typed {
            self.0.push(NewSecret {
                key: "redis.url".into(),
                target: Target::Redis,
                entry: REDIS_ENTRY.into(),
                secret,
            });
        }
        Ok(out)
    }

    /// Whether a new Redis password is waiting for the keyring.
    pub fn has_redis(&self) -> bool {
        self.0.iter().any(|s| matches!(s.target, Target::Redis))
    }

    /// Whether the form carried no new secret.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Stores every new secret in `store`; the first failure names the key, says why and
    /// what to do instead.
    pub fn store(&self, store: &dyn SecretStore) -> Result<(), AppError> {
        for s in &self.0 {
            store
                .store(&s.entry, &s.secret)
                .map_err(|source| AppError::Keyring {
                    key: s.key.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Puts the new secrets into `cfg` (parsed before they were stored, so their
    /// `keyring:` references may not have resolved), so the engine uses them at once.
    pub fn fill(&self, cfg: &mut Config) {
        for s in &self.0 {
            let unresolved = match &s.target {
                Target::Kafka(property) => {
                    if let Some(k) = cfg.kafka.as_mut() {
                        k.properties.insert(property.clone(), s.secret.clone());
                    }
                    format!("kafka.properties.\"{property}\"")
                }
                Target::Redis => {
                    if let Some(r) = cfg.redis.as_mut() {
                        r.keyring_password = Some(s.secret.clone());
                    }
                    "redis.password_keyring".to_string()
                }
            };
            cfg.unresolved_secrets.retain(|(k, _)| *k != unresolved);
        }
    }
}

/// `url` without its password (`redis://user:pw@h` → `redis://user@h`, `redis://:pw@h` →
/// `redis://h`).
fn without_password(url: &str, span: Range<usize>) -> String {
    let user_start = url.find("://").map_or(0, |i| i + 3);
    let colon = span.start - 1;
    if colon == user_start {
        // No user name: drop the whole `:pw@`.
        format!("{}{}", &url[..colon], &url[span.end + 1..])
    } else {
        format!("{}{}", &url[..colon], &url[span.end..])
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::settings::{AppSettings, apply_with, form_of, write_config};
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    /// A keyring in memory.
    #[derive(Default)]
    pub(crate) struct MemoryStore(pub RefCell<BTreeMap<String, String>>);

    impl SecretStore for MemoryStore {
        fn store(&self, name: &str, secret: &str) -> Result<(), SecretError> {
            self.0.borrow_mut().insert(name.into(), secret.into());
            Ok(())
        }
    }

    /// No Secret Service on this desktop.
    struct NoKeyring;

    impl SecretStore for NoKeyring {
        fn store(&self, _: &str, _: &str) -> Result<(), SecretError> {
            Err(SecretError::Unavailable {
                reason: "org.freedesktop.DBus.Error.ServiceUnknown".into(),
            })
        }
    }

    fn form_with(props: &str) -> fleetdash_ipc::SettingsForm {
        let mut form = form_of(None, &AppSettings::default());
        form.redis_url.clear();
        form.properties = props.into();
        form
    }

    #[test]
    fn a_new_password_goes_to_the_keyring_and_the_file_gets_a_reference() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let store = MemoryStore::default();
        let form = form_with(
            "security.protocol=SASL_SSL\nsasl.username=fleet\nsasl.password=Typed-Pa55\n\
             ssl.key.password=env:KEY_PASS\nssl.keystore.password=keyring:shared.ks",
        );
        let (text, cfg) = apply_with(&form, &path, &store).unwrap();
        assert!(!text.contains("Typed-Pa55"), "{text}");
        assert!(
            text.contains("\"sasl.password\" = \"keyring:kafka.sasl.password\""),
            "{text}"
        );
        // References are not secrets: written as typed, nothing stored for them.
        assert!(text.contains("\"ssl.key.password\" = \"env:KEY_PASS\""));
        assert!(text.contains("\"ssl.keystore.password\" = \"keyring:shared.ks\""));
        assert_eq!(
            *store.0.borrow(),
            BTreeMap::from([("kafka.sasl.password".into(), "Typed-Pa55".into())])
        );
        // The engine gets the password at once.
        let props = cfg.kafka.as_ref().unwrap().properties.clone();
        assert_eq!(props["sasl.password"], "Typed-Pa55");
        assert!(
            !cfg.unresolved_secrets
                .iter()
                .any(|(k, _)| k.contains("sasl.password")),
            "{:?}",
            cfg.unresolved_secrets
        );

        // Saved and shown again: the reference is visible, the secret is not.
        write_config(&path, &text).unwrap();
        let mode = crate::host::Mode::File(path.clone(), Box::new(cfg));
        let shown = form_of(Some(&mode), &AppSettings::default());
        assert!(
            shown
                .properties
                .contains("sasl.password=keyring:kafka.sasl.password"),
            "{}",
            shown.properties
        );
        // Saving it back unchanged stores nothing new.
        let again = MemoryStore::default();
        let (text2, _) = apply_with(&shown, &path, &again).unwrap();
        assert_eq!(text2, text);
        assert!(again.0.borrow().is_empty());
    }

    #[test]
    fn without_a_keyring_nothing_is_saved_and_env_is_suggested() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let form = form_with("sasl.username=fleet\nsasl.password=Typed-Pa55");
        let err = apply_with(&form, &path, &NoKeyring).unwrap_err();
        assert_eq!(err.code(), "keyring");
        let msg = err.to_string();
        assert!(
            msg.contains("kafka.properties.\"sasl.password\"")
                && msg.contains("OS keyring (Secret Service) is not available")
                && msg.contains("env:NAME"),
            "{msg}"
        );
        assert!(!msg.contains("Typed-Pa55"), "{msg}");
        assert!(!path.exists(), "nothing written");
    }

    #[test]
    fn a_password_typed_into_a_redis_url_goes_to_the_keyring() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[redis]\nurl = \"redis://h:1\"\npassword_env = \"OLD\"\n",
        )
        .unwrap();
        let store = MemoryStore::default();
        let mut form = form_with("");
        form.brokers.clear();
        form.redis_url = "rediss://ops:R3dis-Pa55@a:1, rediss://ops:R3dis-Pa55@b:1/0".into();
        let (text, cfg) = apply_with(&form, &path, &store).unwrap();
        assert!(!text.contains("R3dis-Pa55"), "{text}");
        assert!(
            text.contains("password_keyring = \"redis.password\""),
            "{text}"
        );
        assert!(!text.contains("password_env"), "{text}");
        assert!(
            text.contains("\"rediss://ops@a:1\", \"rediss://ops@b:1/0\""),
            "{text}"
        );
        assert_eq!(store.0.borrow()["redis.password"], "R3dis-Pa55");
        let r = cfg.redis.unwrap();
        assert_eq!(r.keyring_password.as_deref(), Some("R3dis-Pa55"));
        assert!(
            cfg.unresolved_secrets.is_empty(),
            "{:?}",
            cfg.unresolved_secrets
        );

        // Without a user name the whole `:pw@` goes; two different passwords are refused.
        form.redis_url = "redis://:Pw@h:1".into();
        let (text, _) = apply_with(&form, &path, &store).unwrap();
        assert!(text.contains("url = \"redis://h:1\""), "{text}");
        form.redis_url = "redis://:a@h:1, redis://:b@h:2".into();
        let err = apply_with(&form, &path, &store).unwrap_err().to_string();
        assert!(err.contains("redis.url"), "{err}");
        // No keyring: refused, naming redis.url, nothing written.
        let before = std::fs::read_to_string(&path).unwrap();
        form.redis_url = "redis://:Pw@h:1".into();
        let err = apply_with(&form, &path, &NoKeyring)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("redis.url") && err.contains("env:NAME"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    }

    #[test]
    fn an_invalid_form_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let store = MemoryStore::default();
        let mut form = form_with("sasl.password=Typed-Pa55");
        form.topics[0].kind = "teleport".into();
        assert!(apply_with(&form, &path, &store).is_err());
        assert!(store.0.borrow().is_empty());
    }
}
