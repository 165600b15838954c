//! Secrets kept in the OS keyring (the freedesktop Secret Service: GNOME Keyring, KWallet,
//! KeePassXC…), referred to from the config as `keyring:NAME`.
//!
//! Why a keyring at all: a password in the config file is readable by anything that can
//! read the file (backups, support bundles, a screen share of an editor); `env:NAME` keeps
//! it out of the file but a desktop launcher has no environment to put it in. The keyring
//! is where a desktop user's other passwords already live, unlocked at login.
//!
//! Entries are items with the attributes `service = fleetdash` and `username = NAME`, so
//! they can also be managed without fleetdash:
//! `secret-tool store --label='fleetdash NAME' service fleetdash username NAME`.
//!
//! Why this module is small and separate: every keyring access goes through [`lookup`] and
//! [`store`], which (1) never hang — a locked keyring makes the Secret Service wait for a
//! password prompt that may never come (headless, no prompter), so each call runs on its
//! own thread and gives up after [`TIMEOUT`]; (2) never return an empty value for a
//! missing entry; (3) never put the secret in an error message.

use std::sync::mpsc;
use std::time::Duration;

/// The keyring service every fleetdash entry is stored under.
pub const SERVICE: &str = "fleetdash";

/// How long a keyring call may take before it is reported as not answering.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// What can go wrong reaching a keyring entry. Never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The Secret Service answered, but holds no such entry.
    #[error(
        "no entry `{name}` in the OS keyring (service `{SERVICE}`); store it with the Settings \
         dialog or `secret-tool store --label='fleetdash {name}' service {SERVICE} username {name}`"
    )]
    NotFound {
        /// The entry's name (the `NAME` of `keyring:NAME`).
        name: String,
    },
    /// No Secret Service could be reached (no D-Bus session, no keyring daemon), or it
    /// refused access (locked).
    #[error("the OS keyring (Secret Service) is not available: {reason}")]
    Unavailable {
        /// The platform's reason.
        reason: String,
    },
    /// The Secret Service did not answer in time (typically a locked keyring waiting for a
    /// password prompt).
    #[error(
        "the OS keyring (Secret Service) did not answer within {} s (is the keyring locked?)",
        TIMEOUT.as_secs()
    )]
    Timeout,
    /// Anything else the keyring reported about this entry (bad name, not UTF-8, several
    /// matching items).
    #[error("OS keyring entry `{name}`: {reason}")]
    Other {
        /// The entry's name.
        name: String,
        /// What the keyring said.
        reason: String,
    },
}

/// Whether `name` is usable as an entry name: non-empty, printable, no surrounding blanks.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.trim() == name && !name.chars().any(char::is_control)
}

/// Reads entry `name` of service [`SERVICE`].
pub fn lookup(name: &str) -> Result<String, SecretError> {
    let owned = name.to_string();
    with_timeout(move || entry(&owned)?.get_password())?.map_err(|e| classify(name, e))
}

/// Stores `secret` as entry `name` of service [`SERVICE`] (replacing what it held).
pub fn store(name: &str, secret: &str) -> Result<(), SecretError> {
    let owned = name.to_string();
    let secret = secret.to_string();
    with_timeout(move || entry(&owned)?.set_password(&secret))?.map_err(|e| classify(name, e))
}

fn entry(name: &str) -> keyring::Result<keyring::Entry> {
    keyring::Entry::new(SERVICE, name)
}

/// Runs a blocking keyring call on its own thread; `Err(Timeout)` if it does not finish
/// within [`TIMEOUT`] (the thread is left to finish or block on its own).
fn with_timeout<T: Send + 'static>(
    f: impl FnOnce() -> keyring::Result<T> + Send + 'static,
) -> Result<keyring::Result<T>, SecretError> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("fleetdash-keyring".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| SecretError::Unavailable {
            reason: format!("cannot start a thread: {e}"),
        })?;
    rx.recv_timeout(TIMEOUT).map_err(|_| SecretError::Timeout)
}

fn classify(name: &str, e: keyring::Error) -> SecretError {
    match e {
        keyring::Error::NoEntry => SecretError::NotFound { name: name.into() },
        keyring::Error::PlatformFailure(e) | keyring::Error::NoStorageAccess(e) => {
            SecretError::Unavailable {
                reason: e.to_string(),
            }
        }
        // `BadEncoding` carries the secret's bytes: never show them.
        keyring::Error::BadEncoding(_) => SecretError::Other {
            name: name.into(),
            reason: "the stored value is not UTF-8".into(),
        },
        other => SecretError::Other {
            name: name.into(),
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(valid_name("kafka.sasl.password"));
        assert!(!valid_name(""));
        assert!(!valid_name(" x"));
        assert!(!valid_name("a\nb"));
    }

    #[test]
    fn a_bad_encoding_never_shows_the_bytes() {
        let e = classify("n", keyring::Error::BadEncoding(b"Hunter2\xff".to_vec()));
        assert!(!e.to_string().contains("Hunter2"), "{e}");
        let e = classify("n", keyring::Error::NoEntry);
        assert!(e.to_string().contains("no entry `n`"), "{e}");
    }
}
