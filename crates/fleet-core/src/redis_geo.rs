//! The Redis geo source: reads the configured geo sets (members are vehicle ids), emits
//! positions that changed since the last read, and keeps reconnecting with backoff.
//!
//! Refresh is driven by keyspace notifications when the server has them enabled (`K` or `E`
//! with `z` or `A` in `notify-keyspace-events`), otherwise by polling every `poll_ms`.
//! Reading `ZRANGE key 0 -1 WITHSCORES` and decoding the geohash scores locally costs one
//! round-trip per set, however large the fleet.

use crate::config::RedisConfig;
use crate::geo::decode_geo_score;
use crate::store::now_ms;
use fleet_model::{ConnState, PositionSample, Source};
use futures::StreamExt;
use redis::AsyncCommands;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// What the Redis source reports.
#[derive(Debug, Clone)]
pub enum RedisEvent {
    /// Positions that changed since the last read (`ts` = arrival time).
    Positions(Vec<PositionSample>),
    /// Connection health changed.
    Conn(ConnState),
}

/// Redis source errors (configuration only; runtime errors are retried, not returned).
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// A URL could not be used.
    #[error("redis url `{url}`: {source}")]
    Url {
        /// The URL (password removed).
        url: String,
        /// Why.
        source: redis::RedisError,
    },
}

enum Conn {
    Single(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Conn {
    async fn members(&mut self, key: &str) -> redis::RedisResult<Vec<(String, f64)>> {
        match self {
            Conn::Single(c) => c.zrange_withscores(key, 0, -1).await,
            Conn::Cluster(c) => c.zrange_withscores(key, 0, -1).await,
        }
    }
}

/// Applies `username` / `password_env` from the config to a URL.
fn effective_url(raw: &str, cfg: &RedisConfig) -> String {
    let Ok(mut u) = url::Url::parse(raw) else {
        return raw.to_string();
    };
    if let Some(user) = &cfg.username {
        let _ = u.set_username(user);
    }
    if let Some(pw) = cfg
        .password_env
        .as_ref()
        .and_then(|v| std::env::var(v).ok())
    {
        let _ = u.set_password(Some(&pw));
    }
    u.to_string()
}

/// A URL fit for logs.
pub fn redact(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => raw.to_string(),
    }
}

/// Clients built from config; fails early on malformed URLs.
pub struct RedisSource {
    cfg: RedisConfig,
    single: Option<redis::Client>,
    cluster: Option<redis::cluster::ClusterClient>,
    db: i64,
}

impl RedisSource {
    /// Validates URLs and prepares clients (no connection yet).
    pub fn new(cfg: RedisConfig) -> Result<Self, RedisError> {
        let urls: Vec<String> = cfg
            .url
            .list()
            .iter()
            .map(|u| effective_url(u, &cfg))
            .collect();
        let err = |u: &str| {
            let url = redact(u);
            move |source| RedisError::Url { url, source }
        };
        if urls.len() > 1 {
            let cluster =
                redis::cluster::ClusterClient::new(urls.clone()).map_err(err(&urls[0]))?;
            Ok(Self {
                cfg,
                single: None,
                cluster: Some(cluster),
                db: 0,
            })
        } else {
            let client = redis::Client::open(urls[0].as_str()).map_err(err(&urls[0]))?;
            let db = client.get_connection_info().redis_settings().db();
            Ok(Self {
                cfg,
                single: Some(client),
                cluster: None,
                db,
            })
        }
    }

    async fn connect(&self) -> redis::RedisResult<Conn> {
        let timeouts = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)));
        if let Some(c) = &self.single {
            Ok(Conn::Single(
                c.get_multiplexed_async_connection_with_config(&timeouts)
                    .await?,
            ))
        } else if let Some(c) = &self.cluster {
            Ok(Conn::Cluster(c.get_async_connection().await?))
        } else {
            unreachable!("RedisSource has a client")
        }
    }

    /// Whether keyspace notifications for sorted sets are on (and readable under our ACL).
    async fn notifications_enabled(&self, conn: &mut Conn) -> bool {
        let Conn::Single(c) = conn else {
            return false; // per-node notifications in a cluster: poll instead
        };
        let r: redis::RedisResult<Vec<String>> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("notify-keyspace-events")
            .query_async(c)
            .await;
        match r {
            Ok(v) => v.get(1).is_some_and(|flags| {
                (flags.contains('K') || flags.contains('E'))
                    && (flags.contains('z') || flags.contains('A'))
            }),
            Err(e) => {
                debug!(error = %e, "cannot read notify-keyspace-events; polling");
                false
            }
        }
    }

    /// Runs until cancelled: connect, read, watch, reconnect.
    pub async fn run(self, tx: mpsc::Sender<RedisEvent>, cancel: CancellationToken) {
        let mut known: HashMap<String, HashMap<String, f64>> = HashMap::new();
        let mut backoff = Duration::from_millis(200);
        let _ = tx.send(RedisEvent::Conn(ConnState::Connecting)).await;
        while !cancel.is_cancelled() {
            let mut conn = match tokio::select! { c = self.connect() => c, _ = cancel.cancelled() => break }
            {
                Ok(c) => c,
                Err(e) => {
                    if backoff == Duration::from_millis(200) {
                        // First failure of a series: say it once, not at every retry.
                        warn!(error = %e, "redis connection failed; retrying with backoff");
                    }
                    let _ = tx
                        .send(RedisEvent::Conn(ConnState::Down {
                            reason: e.to_string(),
                        }))
                        .await;
                    tokio::select! { _ = tokio::time::sleep(backoff) => {}, _ = cancel.cancelled() => break }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            let notify = Arc::new(Notify::new());
            let watcher = if self.notifications_enabled(&mut conn).await {
                info!("redis keyspace notifications on: refreshing on change");
                Some(tokio::spawn(watch(
                    self.single.clone(),
                    self.db,
                    self.cfg.geo_keys.clone(),
                    notify.clone(),
                    cancel.clone(),
                )))
            } else {
                None
            };
            let poll = Duration::from_millis(self.cfg.poll_ms);
            let mut up = false;
            loop {
                let mut changed = Vec::new();
                let mut failure = None;
                for key in &self.cfg.geo_keys {
                    match conn.members(key).await {
                        Ok(members) => diff(
                            key,
                            members,
                            known.entry(key.clone()).or_default(),
                            &mut changed,
                        ),
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
                if let Some(e) = failure {
                    warn!(error = %e, "redis read failed; reconnecting");
                    let _ = tx
                        .send(RedisEvent::Conn(ConnState::Down {
                            reason: e.to_string(),
                        }))
                        .await;
                    break;
                }
                if !up {
                    up = true;
                    backoff = Duration::from_millis(200);
                    let _ = tx.send(RedisEvent::Conn(ConnState::Up)).await;
                }
                if !changed.is_empty() && tx.send(RedisEvent::Positions(changed)).await.is_err() {
                    return;
                }
                // With notifications we still poll, slower, as a safety net for lost events.
                let wait = if watcher.is_some() { poll * 5 } else { poll };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = notify.notified() => {
                        // Debounce bursts (a pipelined GEOADD of thousands of members fires
                        // thousands of events).
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    _ = cancel.cancelled() => break,
                }
            }
            if let Some(w) = watcher {
                w.abort();
            }
        }
        let _ = tx.try_send(RedisEvent::Conn(ConnState::Disabled));
    }
}

/// Compares a fresh read with what was seen before and collects what moved.
fn diff(
    key: &str,
    members: Vec<(String, f64)>,
    known: &mut HashMap<String, f64>,
    out: &mut Vec<PositionSample>,
) {
    let now = now_ms();
    for (member, score) in members {
        if known.get(&member) == Some(&score) {
            continue;
        }
        match decode_geo_score(score) {
            Some((lat, lng)) => out.push(PositionSample {
                vehicle: member.clone(),
                ts_ms: now,
                lat,
                lng,
                speed: None,
                heading: None,
                source: Source::Redis,
            }),
            None => debug!(%key, %member, score, "not a geo score; ignored"),
        }
        known.insert(member, score);
    }
}

/// Subscribes to keyspace events of the geo keys and pokes `notify` on each.
async fn watch(
    client: Option<redis::Client>,
    db: i64,
    keys: Vec<String>,
    notify: Arc<Notify>,
    cancel: CancellationToken,
) {
    let Some(client) = client else { return };
    let mut pubsub = match client.get_async_pubsub().await {
        Ok(p) => p,
        Err(e) => {
            warn!(error = %e, "redis pubsub connection failed; polling only");
            return;
        }
    };
    for k in &keys {
        if let Err(e) = pubsub.subscribe(format!("__keyspace@{db}__:{k}")).await {
            warn!(error = %e, "redis subscribe failed; polling only");
            return;
        }
    }
    let mut messages = pubsub.on_message();
    loop {
        tokio::select! {
            m = messages.next() => match m {
                Some(_) => notify.notify_one(),
                None => return,
            },
            _ = cancel.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_reports_only_changes() {
        let mut known = HashMap::new();
        let mut out = Vec::new();
        diff(
            "k",
            vec![("a".into(), 3_479_099_956_230_698.0)],
            &mut known,
            &mut out,
        );
        assert_eq!(out.len(), 1);
        out.clear();
        diff(
            "k",
            vec![("a".into(), 3_479_099_956_230_698.0)],
            &mut known,
            &mut out,
        );
        assert!(out.is_empty());
        diff(
            "k",
            vec![("a".into(), 3_479_099_956_230_699.0)],
            &mut known,
            &mut out,
        );
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn redacts_password() {
        assert_eq!(redact("redis://u:secret@h:1/0"), "redis://u:***@h:1/0");
    }
}
