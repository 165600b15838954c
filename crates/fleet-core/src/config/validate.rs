//! Semantic checks serde cannot express. Each failure returns `(dotted key, message)`; the
//! caller adds the file name.

use super::model::{Config, default_fields, optional_fields};

type Invalid = (String, String);

fn bad(key: impl Into<String>, msg: impl Into<String>) -> Invalid {
    (key.into(), msg.into())
}

/// Why a secret reference could not be resolved.
enum Unresolved {
    /// The reference itself is malformed: a config error at once.
    Bad(String),
    /// Well-formed but not available now (variable unset, keyring entry missing or no
    /// keyring): only commands that connect need it ([`Config::require_secrets`]).
    ///
    /// [`Config::require_secrets`]: super::Config::require_secrets
    Later(String),
}

fn env_unset(var: &str) -> String {
    format!("environment variable {var} is not set")
}

/// Resolves a secret reference: `env:NAME` from the environment, `keyring:NAME` from the OS
/// keyring ([`super::secrets`]); `Ok(None)` for a plain value.
fn resolve(value: &str) -> Result<Option<String>, Unresolved> {
    if let Some(var) = value.strip_prefix("env:") {
        return std::env::var(var)
            .map(Some)
            .map_err(|_| Unresolved::Later(env_unset(var)));
    }
    if let Some(name) = value.strip_prefix("keyring:") {
        if !super::secrets::valid_name(name) {
            return Err(Unresolved::Bad(format!(
                "`keyring:{name}`: the entry name must be non-empty, without blanks around it or control characters"
            )));
        }
        return super::secrets::lookup(name)
            .map(Some)
            .map_err(|e| Unresolved::Later(e.to_string()));
    }
    Ok(None)
}

/// A topic may be listed twice when one message carries both a position and a status (SPEC
/// §8): once as `position`, once as `status`, in the same format. Anything else is a typo.
fn check_shared_topic(
    i: usize,
    first: &super::TopicConfig,
    t: &super::TopicConfig,
) -> Result<(), Invalid> {
    use fleet_model::TopicKind::{Position, Status};
    let pair = matches!(
        (first.kind, t.kind),
        (Position, Status) | (Status, Position)
    );
    if !pair {
        return Err(bad(
            format!("kafka.topics[{i}].name"),
            format!(
                "topic `{}` is listed twice; only a `position` and a `status` entry may share a topic",
                t.name
            ),
        ));
    }
    if first.format != t.format {
        return Err(bad(
            format!("kafka.topics[{i}].format"),
            format!("topic `{}` is listed twice with different formats", t.name),
        ));
    }
    Ok(())
}

/// Validates `cfg` and resolves secret references (`env:NAME`, `keyring:NAME`) in Kafka
/// properties and the Redis password.
pub(super) fn validate(cfg: &mut Config) -> Result<(), Invalid> {
    let mut unresolved = Vec::new();
    if let Some(k) = cfg.kafka.as_mut() {
        if k.brokers.trim().is_empty() {
            return Err(bad(
                "kafka.brokers",
                "must name at least one broker (host:port)",
            ));
        }
        if k.batch_max_messages == 0 {
            return Err(bad("kafka.batch_max_messages", "must be at least 1"));
        }
        if k.batch_max_ms == 0 {
            return Err(bad("kafka.batch_max_ms", "must be at least 1"));
        }
        if let Some(g) = &k.group_id
            && g.trim().is_empty()
        {
            return Err(bad("kafka.group_id", "must not be empty"));
        }
        for (name, value) in k.properties.iter_mut() {
            let key = format!("kafka.properties.\"{name}\"");
            match resolve(value) {
                Ok(Some(v)) => *value = v,
                Ok(None) => {}
                Err(Unresolved::Bad(msg)) => return Err(bad(key, msg)),
                Err(Unresolved::Later(msg)) => unresolved.push((key, msg)),
            }
        }
        if k.topics.is_empty() {
            return Err(bad("kafka.topics", "must list at least one topic"));
        }
        let mut seen: std::collections::HashMap<&str, &super::TopicConfig> =
            std::collections::HashMap::new();
        for (i, t) in k.topics.iter().enumerate() {
            if t.name.trim().is_empty() {
                return Err(bad(format!("kafka.topics[{i}].name"), "must not be empty"));
            }
            if let Some(first) = seen.insert(&t.name, t) {
                check_shared_topic(i, first, t)?;
            }
            let known = default_fields(t.kind);
            let optional = optional_fields(t.kind);
            for (field, path) in &t.fields {
                if !known.iter().any(|(f, _)| f == field) && !optional.contains(&field.as_str()) {
                    let names: Vec<_> = known
                        .iter()
                        .map(|(f, _)| *f)
                        .chain(optional.iter().copied())
                        .collect();
                    return Err(bad(
                        format!("kafka.topics[{i}].fields.{field}"),
                        format!(
                            "unknown field for kind `{}`; expected one of {}",
                            t.kind.as_str(),
                            names.join(", ")
                        ),
                    ));
                }
                if path.trim().is_empty() {
                    return Err(bad(
                        format!("kafka.topics[{i}].fields.{field}"),
                        "must be a JSON path like `pos.lat` or `$key`",
                    ));
                }
            }
        }
    }
    if let Some(r) = cfg.redis.as_mut() {
        let urls = r.url.list();
        if urls.is_empty() {
            return Err(bad("redis.url", "must name at least one URL"));
        }
        for (i, u) in urls.iter().enumerate() {
            let key = if urls.len() == 1 {
                "redis.url".to_string()
            } else {
                format!("redis.url[{i}]")
            };
            let parsed = url::Url::parse(u).map_err(|e| bad(key.clone(), format!("`{u}`: {e}")))?;
            if !matches!(parsed.scheme(), "redis" | "rediss") {
                return Err(bad(
                    key,
                    format!("`{u}`: scheme must be redis:// or rediss://"),
                ));
            }
        }
        if r.geo_keys.is_empty() || r.geo_keys.iter().any(|k| k.is_empty()) {
            return Err(bad("redis.geo_keys", "must list non-empty key names"));
        }
        if r.poll_ms == 0 {
            return Err(bad("redis.poll_ms", "must be at least 1"));
        }
        if let Some(var) = &r.password_env
            && std::env::var(var).is_err()
        {
            unresolved.push(("redis.password_env".into(), env_unset(var)));
        }
        if r.password_env.is_some() && r.password_keyring.is_some() {
            return Err(bad(
                "redis.password_keyring",
                "give either password_env or password_keyring, not both",
            ));
        }
        if let Some(name) = r.password_keyring.clone() {
            match resolve(&format!("keyring:{name}")) {
                Ok(pw) => r.keyring_password = pw,
                Err(Unresolved::Bad(msg)) => return Err(bad("redis.password_keyring", msg)),
                Err(Unresolved::Later(msg)) => {
                    unresolved.push(("redis.password_keyring".into(), msg))
                }
            }
        }
    }
    let h = &cfg.history;
    for (key, v) in [
        ("history.min_distance_m", h.min_distance_m),
        ("history.min_interval_s", h.min_interval_s),
        ("history.downsample_interval_s", h.downsample_interval_s),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(bad(key, "must be a number ≥ 0"));
        }
    }
    for (key, v) in [
        ("history.retention_hours", h.retention_hours),
        ("history.downsample_after_hours", h.downsample_after_hours),
        ("fleet.stale_after_s", cfg.fleet.stale_after_s),
        ("fleet.max_future_skew_s", cfg.fleet.max_future_skew_s),
        ("fleet.stuck_after_s", cfg.fleet.stuck_after_s),
    ] {
        if !(v.is_finite() && v > 0.0) {
            return Err(bad(key, "must be a number > 0"));
        }
    }
    // Durations become i64 milliseconds; a year is far beyond any sensible value and keeps
    // every later `* 1000` and `now + d` clear of overflow.
    for (key, v) in [
        ("fleet.stale_after_s", cfg.fleet.stale_after_s),
        ("fleet.max_future_skew_s", cfg.fleet.max_future_skew_s),
        ("fleet.stuck_after_s", cfg.fleet.stuck_after_s),
    ] {
        if v > 31_536_000.0 {
            return Err(bad(key, "must be at most 31536000 (a year)"));
        }
    }
    if cfg.fleet.max_live_vehicles == 0 {
        return Err(bad("fleet.max_live_vehicles", "must be at least 1"));
    }
    if !(1..=1_048_576).contains(&cfg.store.max_size_mb) {
        return Err(bad("store.max_size_mb", "must be between 1 and 1048576"));
    }
    if let Some(n) = &cfg.operator.name
        && n.trim().is_empty()
    {
        return Err(bad("operator.name", "must not be empty"));
    }
    super::alerts::validate(&cfg.alerts)?;
    if let Some(c) = &cfg.connect {
        super::connect::validate(c)?;
    }
    cfg.unresolved_secrets = unresolved;
    Ok(())
}
