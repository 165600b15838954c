//! The Redis geo source: reads the configured geo sets (members are vehicle ids), emits
//! positions that changed since the last read, and keeps reconnecting with backoff.
//!
//! # Refresh
//! Driven by keyspace notifications when the server has them enabled (`K` or `E` with `z` or
//! `A` in `notify-keyspace-events`), otherwise by polling every `poll_ms`. Polls run on the
//! wall-clock grid (just after each multiple of `poll_ms`), so desktops read at the same
//! moments (see *Timestamps*). A notification says that a set changed, not which member, so
//! either way a refresh is a full *scan cycle* of every set.
//!
//! # Scan cycles: bounded replies
//! A cycle walks a set with `ZSCAN key cursor COUNT 1000` from cursor 0 until Redis returns 0:
//! one round trip per ~1,000 members ([`SCAN_COUNT`]; small sets in listpack encoding come
//! whole, at most 128 members), so no reply is bigger than a page of ~40 KB, and other
//! clients' commands run between pages. (`ZRANGE key 0 -1 WITHSCORES` made Redis build and
//! send a 3.5 MB reply for 100,000 members every second, blocking the server meanwhile.)
//! Scores are geohashes decoded locally ([`decode_geo_score`]); only members whose score
//! changed since they were last seen are emitted, in [`RedisEvent::Positions`] batches of one
//! or two pages (sent once [`SCAN_COUNT`] have gathered, and at the end of a refresh), so
//! memory on both sides stays bounded and the engine's work follows what moved.
//!
//! The total read per cycle is still the whole set: a sorted set keeps no change log, and the
//! notification does not name the member, so a complete check is a complete walk. Cutting
//! that would need the loader's help (e.g. a stream of changed ids). To bound the load a
//! busy set can cause with notifications on, a notification-driven cycle starts no sooner
//! than the previous cycle took (at least 100 ms) after it ended: Redis spends at most about
//! half its time on our scans.
//!
//! ZSCAN returns a member present for the whole cycle at least once (possibly twice: the
//! second sighting is unchanged and ignored); one added or re-added mid-cycle may show up only
//! in the next cycle. So a member that a *complete* cycle did not return has been removed
//! (`ZREM`, or the key was deleted) and is forgotten: the per-member state follows the set,
//! not its history. An interrupted cycle (connection lost) forgets nothing.
//!
//! # Bad members
//! Members are read as bytes. A member that is not UTF-8, longer than 256 bytes or with
//! control characters (SPEC §7 `bad_id`), empty (`missing_id`), or whose score is not a
//! geohash (`invalid_coordinates`) is skipped and reported once while it stays in the set
//! (again if it leaves and comes back, or its score changes to another bad one), as
//! [`RedisEvent::Rejected`]: the engine counts and quarantines it like a bad Kafka message
//! (topic `redis:<key>`, partition and offset -1, the member as the raw bytes). Each is logged
//! at warn, at most [`WARN_PER_MINUTE`] lines a minute plus a count of the rest. The other
//! members are read as usual. A key holding another type (`WRONGTYPE`) is skipped with a
//! warning instead of failing the whole source.
//!
//! # Timestamps
//! A geo set carries no time. A sample's `ts_ms` is the start of the scan cycle that first
//! saw its score, **rounded down to a whole second** (to `poll_ms` when that is shorter), not
//! the arrival of the reply. Polls start just after multiples of `poll_ms` on the wall clock,
//! so two desktops with the same `poll_ms` and synchronised clocks read at the same moments
//! and stamp a change with the same time; rule alerts whose ids derive from it (geofence
//! enter/leave, SPEC §6) then get the same id on both. The live state keeps the arrival time
//! separately (`last_seen`, staleness), and across sources the later arrival wins, so the
//! rounding does not make a Redis fix lose to an older Kafka one.
//!
//! Limits: this is agreement, not truth. The change happened some time between the previous
//! cycle and the end of the one that saw it. A change that lands while one desktop's cycle is under way or within the clock
//! skew of a grid line can be seen one cycle apart on two desktops and stamped differently;
//! notification-driven cycles start off the grid (all desktops get the notification at about
//! the same time, so they still mostly agree to the second); desktops with different
//! `poll_ms` agree less often; two changes of one member within the same second get the same
//! stamp (the live state takes the later; rules see the first). The exact fix is a time
//! written by the loader next to each position (e.g. a hash `<key>:ts` member → ms epoch);
//! fleetdash does not read one yet.

use crate::config::RedisConfig;
use crate::decode::check_id;
use crate::geo::decode_geo_score;
use crate::store::batch::QUARANTINE_KEEP;
use crate::store::{QuarantineRow, now_ms};
use fleet_model::{ConnState, PositionSample, RejectReason, Source};
use futures::StreamExt;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Members asked for per `ZSCAN` round trip (a hint Redis follows closely for large sets);
/// a [`RedisEvent::Positions`] batch is sent once this many changes have gathered.
pub const SCAN_COUNT: usize = 1000;

/// Longest grid that sample times are rounded down to (ms); see the module doc.
const MAX_TS_GRID_MS: i64 = 1000;

/// Warnings about bad members logged per minute (the rest are counted in the next one).
pub const WARN_PER_MINUTE: u32 = 10;

/// Shortest pause before a notification-driven cycle (debounces bursts: a pipelined GEOADD
/// of thousands of members fires thousands of events).
const DEBOUNCE: Duration = Duration::from_millis(100);

/// What the Redis source reports.
#[derive(Debug, Clone)]
pub enum RedisEvent {
    /// Positions that changed since the last read (`ts` = start of the scan cycle that saw
    /// the change, rounded down: see the module doc).
    Positions(Vec<PositionSample>),
    /// Members that cannot be used (bad id, not a geo score), each reported once while it
    /// stays in its set: to be counted and quarantined.
    Rejected(Vec<QuarantineRow>),
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

/// A connection made from `[redis]` (one server, or a cluster): the source reads through it
/// and the loader (`fleetctl connect`) writes through it, with the same URL, ACL user,
/// password and TLS settings.
pub enum Conn {
    /// A single server.
    Single(redis::aio::MultiplexedConnection),
    /// A Redis Cluster.
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Conn {
    /// Runs `cmds` and waits until Redis acknowledged every one: on a single server as one
    /// pipeline (one round trip), on a cluster one command at a time, each routed by its key
    /// to its slot's node. The first error is returned (the commands are idempotent writes,
    /// so the caller simply runs them all again).
    pub async fn exec(&mut self, cmds: &[redis::Cmd]) -> redis::RedisResult<()> {
        match self {
            Conn::Single(c) => {
                let mut pipe = redis::pipe();
                for cmd in cmds {
                    pipe.add_command(cmd.clone()).ignore();
                }
                pipe.query_async::<()>(c).await
            }
            Conn::Cluster(c) => {
                for cmd in cmds {
                    cmd.query_async::<()>(c).await?;
                }
                Ok(())
            }
        }
    }

    /// One `ZSCAN key cursor COUNT n` round trip: the next cursor and the flat
    /// `[member, score, …]` page, undecoded (members are bytes, not necessarily UTF-8).
    async fn zscan(
        &mut self,
        key: &str,
        cursor: u64,
    ) -> redis::RedisResult<(u64, Vec<redis::Value>)> {
        let mut cmd = redis::cmd("ZSCAN");
        cmd.arg(key).arg(cursor).arg("COUNT").arg(SCAN_COUNT);
        match self {
            Conn::Single(c) => cmd.query_async(c).await,
            // Routed by the key (the command's first argument) to the node owning its slot.
            Conn::Cluster(c) => cmd.query_async(c).await,
        }
    }
}

/// Applies `username` / `password_env` / `password_keyring` from the config to a URL.
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
        .or_else(|| cfg.keyring_password.clone())
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

    /// Connects (2 s connect timeout, 5 s per reply).
    #[tracing::instrument(level = "debug", err, skip_all)]
    pub async fn connect(&self) -> redis::RedisResult<Conn> {
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

    /// Connects exactly as the source does and reports each geo key's type and size, for
    /// `fleetctl check`: (key, `TYPE`, `ZCARD`).
    pub async fn probe(&self) -> redis::RedisResult<Vec<(String, String, i64)>> {
        let mut conn = self.connect().await?;
        let mut out = Vec::new();
        for key in &self.cfg.geo_keys {
            let mut ty = redis::cmd("TYPE");
            ty.arg(key);
            let mut card = redis::cmd("ZCARD");
            card.arg(key);
            let (t, n): (String, i64) = match &mut conn {
                Conn::Single(c) => (
                    ty.query_async(c).await?,
                    card.query_async(c).await.unwrap_or(0),
                ),
                Conn::Cluster(c) => (
                    ty.query_async(c).await?,
                    card.query_async(c).await.unwrap_or(0),
                ),
            };
            out.push((key.clone(), t, n));
        }
        Ok(out)
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
        // Per-set state survives reconnects: a restart of Redis is not a change of every member.
        let mut sets: HashMap<String, KeyState> = HashMap::new();
        let mut sink = Sink::new(tx.clone());
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
            let poll = Duration::from_millis(self.cfg.poll_ms.max(1));
            // With notifications we still poll, slower, as a safety net for lost events.
            let period = if watcher.is_some() {
                poll.saturating_mul(5)
            } else {
                poll
            };
            let grid = ts_grid_ms(self.cfg.poll_ms);
            let mut up = false;
            loop {
                let started = Instant::now();
                let stamp = floor_to(now_ms(), grid);
                let mut failure = None;
                for key in &self.cfg.geo_keys {
                    let st = sets.entry(key.clone()).or_default();
                    match scan_key(&mut conn, key, st, stamp, &mut sink).await {
                        Ok(c) => debug!(
                            %key,
                            pages = c.pages,
                            largest_page = c.largest_page,
                            members = c.members,
                            forgotten = c.forgotten,
                            "redis scan cycle"
                        ),
                        Err(ScanError::Closed) => return,
                        Err(ScanError::Redis(e)) if e.code() == Some("WRONGTYPE") => {
                            st.wrong_type(key, &e);
                        }
                        Err(ScanError::Redis(e)) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
                // Changes found before a failure are already remembered: send them anyway.
                if !sink.flush().await {
                    return;
                }
                sink.warn.roll();
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
                let took = started.elapsed();
                tokio::select! {
                    _ = tokio::time::sleep(until_next_multiple(now_ms(), period)) => {}
                    _ = notify.notified() => {
                        // Debounce bursts, and leave Redis at least as long as a cycle takes.
                        tokio::select! {
                            _ = tokio::time::sleep(took.max(DEBOUNCE)) => {}
                            _ = cancel.cancelled() => break,
                        }
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

/// Why a scan cycle stopped early.
#[derive(Debug)]
enum ScanError {
    /// Redis failed (connection, or the server refused the command).
    Redis(redis::RedisError),
    /// The engine is gone.
    Closed,
}

/// Round trips of one complete scan cycle of one set (for logs and tests).
#[derive(Debug, Default, Clone, Copy)]
struct CycleStats {
    /// `ZSCAN` round trips.
    pages: usize,
    /// Most members in one reply.
    largest_page: usize,
    /// Members returned (duplicates included).
    members: usize,
    /// Members forgotten because the cycle did not return them.
    forgotten: usize,
}

/// Walks one set with `ZSCAN` from cursor 0 back to 0, collecting changes into `sink` and
/// sending them whenever a batch is full. `stamp_ms` is the samples' time.
async fn scan_key(
    conn: &mut Conn,
    key: &str,
    st: &mut KeyState,
    stamp_ms: i64,
    sink: &mut Sink,
) -> Result<CycleStats, ScanError> {
    st.cycle += 1;
    let mut stats = CycleStats::default();
    let mut cursor = 0u64;
    loop {
        let (next, page) = conn.zscan(key, cursor).await.map_err(ScanError::Redis)?;
        let n = page.len() / 2;
        stats.pages += 1;
        stats.members += n;
        stats.largest_page = stats.largest_page.max(n);
        st.page(key, page, stamp_ms, sink);
        if sink.positions.len() >= SCAN_COUNT && !sink.flush().await {
            return Err(ScanError::Closed);
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    stats.forgotten = st.finish_cycle();
    Ok(stats)
}

/// When a member was last seen, and with which score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    /// The score's bits (NaN when it was not a number).
    score: u64,
    /// The cycle that last returned it.
    cycle: u64,
}

/// What the source remembers of one geo set between cycles.
#[derive(Debug, Default)]
struct KeyState {
    /// Good members (valid ids): last score and the cycle that last saw them.
    known: HashMap<String, Seen>,
    /// Rejected members by a hash of their bytes (which may be long), with the cycle that
    /// last saw them: reported once while they stay.
    rejected: HashMap<u64, u64>,
    /// The current (or last) cycle.
    cycle: u64,
    /// Whether the key's `WRONGTYPE` was logged (until it is readable again).
    wrong_type: bool,
}

impl KeyState {
    /// Takes one `ZSCAN` page (`[member, score, …]`).
    fn page(&mut self, key: &str, page: Vec<redis::Value>, stamp_ms: i64, sink: &mut Sink) {
        let now = now_ms();
        let mut items = page.into_iter();
        while let (Some(member), Some(score)) = (items.next(), items.next()) {
            let Some(member) = value_bytes(member) else {
                debug!(%key, "ZSCAN returned a member that is not a string; ignored");
                continue;
            };
            let score = value_f64(&score).unwrap_or(f64::NAN);
            self.member(key, member, score, stamp_ms, now, sink);
        }
    }

    fn member(
        &mut self,
        key: &str,
        member: Vec<u8>,
        score: f64,
        stamp_ms: i64,
        now: i64,
        sink: &mut Sink,
    ) {
        let id = match String::from_utf8(member) {
            Ok(id) => id,
            Err(e) => {
                let detail = format!("member is not UTF-8 (score {score})");
                return self.reject(key, e.into_bytes(), RejectReason::BadId, detail, now, sink);
            }
        };
        if id.is_empty() {
            let detail = format!("empty member (score {score})");
            return self.reject(key, Vec::new(), RejectReason::MissingId, detail, now, sink);
        }
        if let Err(r) = check_id(&id) {
            return self.reject(key, id.into_bytes(), r.reason, r.detail, now, sink);
        }
        let seen = Seen {
            score: score.to_bits(),
            cycle: self.cycle,
        };
        match self.known.get_mut(id.as_str()) {
            Some(s) => {
                let same = s.score == seen.score;
                *s = seen;
                if same {
                    return;
                }
            }
            None => {
                self.known.insert(id.clone(), seen);
            }
        }
        match decode_geo_score(score) {
            Some((lat, lng)) => sink.positions.push(PositionSample {
                vehicle: id,
                ts_ms: stamp_ms,
                lat,
                lng,
                speed: None,
                heading: None,
                source: Source::Redis,
            }),
            // Remembered with its score above: reported again only if it changes.
            None => sink.reject(
                key,
                id.into_bytes(),
                RejectReason::InvalidCoordinates,
                format!("score {score} is not a geo score"),
                now,
            ),
        }
    }

    /// A member with an unusable id: reported the first time a cycle sees it.
    fn reject(
        &mut self,
        key: &str,
        member: Vec<u8>,
        reason: RejectReason,
        detail: String,
        now: i64,
        sink: &mut Sink,
    ) {
        let mut h = DefaultHasher::new();
        h.write(&member);
        if self.rejected.insert(h.finish(), self.cycle).is_none() {
            sink.reject(key, member, reason, detail, now);
        }
    }

    /// Ends a complete cycle: forgets what it did not return. Returns how many.
    fn finish_cycle(&mut self) -> usize {
        let before = self.known.len() + self.rejected.len();
        let cycle = self.cycle;
        self.known.retain(|_, s| s.cycle == cycle);
        self.rejected.retain(|_, c| *c == cycle);
        // A set that shrank gives its memory back.
        if self.known.capacity() > 4 * self.known.len().max(256) {
            self.known.shrink_to_fit();
        }
        if self.rejected.capacity() > 4 * self.rejected.len().max(256) {
            self.rejected.shrink_to_fit();
        }
        self.wrong_type = false;
        before - (self.known.len() + self.rejected.len())
    }

    /// The key holds something else than a sorted set: nothing of it is a member any more.
    fn wrong_type(&mut self, key: &str, e: &redis::RedisError) {
        if !self.wrong_type {
            warn!(%key, error = %e, "redis key is not a geo set; skipped");
            self.wrong_type = true;
        }
        self.known.clear();
        self.rejected.clear();
    }
}

/// A member's bytes, whatever string type the protocol used.
fn value_bytes(v: redis::Value) -> Option<Vec<u8>> {
    match v {
        redis::Value::BulkString(b) => Some(b),
        redis::Value::SimpleString(s) => Some(s.into_bytes()),
        redis::Value::VerbatimString { text, .. } => Some(text.into_bytes()),
        _ => None,
    }
}

/// A score (a bulk string in RESP2, a double in RESP3).
fn value_f64(v: &redis::Value) -> Option<f64> {
    match v {
        redis::Value::BulkString(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        redis::Value::SimpleString(s) => s.trim().parse().ok(),
        redis::Value::Double(d) => Some(*d),
        redis::Value::Int(i) => Some(*i as f64),
        _ => None,
    }
}

/// Changes waiting to be sent, and the warning budget.
struct Sink {
    tx: mpsc::Sender<RedisEvent>,
    positions: Vec<PositionSample>,
    rejected: Vec<QuarantineRow>,
    warn: WarnLimit,
}

impl Sink {
    fn new(tx: mpsc::Sender<RedisEvent>) -> Self {
        Self {
            tx,
            positions: Vec::new(),
            rejected: Vec::new(),
            warn: WarnLimit::default(),
        }
    }

    /// Sends what is pending; false when the engine is gone.
    async fn flush(&mut self) -> bool {
        if !self.positions.is_empty() {
            let ps = std::mem::take(&mut self.positions);
            if self.tx.send(RedisEvent::Positions(ps)).await.is_err() {
                return false;
            }
        }
        if !self.rejected.is_empty() {
            let rs = std::mem::take(&mut self.rejected);
            if self.tx.send(RedisEvent::Rejected(rs)).await.is_err() {
                return false;
            }
        }
        true
    }

    fn reject(
        &mut self,
        key: &str,
        mut member: Vec<u8>,
        reason: RejectReason,
        detail: String,
        now: i64,
    ) {
        if self.warn.allow() {
            warn!(
                %key,
                member = %printable(&member),
                reason = reason.as_str(),
                %detail,
                "redis geo member skipped"
            );
        }
        let raw_len = member.len();
        member.truncate(QUARANTINE_KEEP);
        self.rejected.push(QuarantineRow {
            topic: format!("redis:{key}"),
            partition: -1,
            offset: -1,
            reason,
            detail,
            key: None,
            raw: Some(member),
            raw_len,
            received_ms: now,
        });
    }
}

/// At most [`WARN_PER_MINUTE`] warnings a minute; the rest are counted and summed up once.
#[derive(Debug, Default)]
struct WarnLimit {
    window: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

impl WarnLimit {
    /// Whether one more warning may be logged now.
    fn allow(&mut self) -> bool {
        self.roll();
        if self.window.is_none() {
            self.window = Some(Instant::now());
        }
        if self.logged < WARN_PER_MINUTE {
            self.logged += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }

    /// Closes a window that is over, saying how many warnings it held back.
    fn roll(&mut self) {
        if self
            .window
            .is_some_and(|w| w.elapsed() >= Duration::from_secs(60))
        {
            if self.suppressed > 0 {
                warn!(
                    count = self.suppressed,
                    "more redis geo members skipped (not logged one by one)"
                );
            }
            *self = Self::default();
        }
    }
}

/// A member for a log line: lossy, escaped, at most 64 bytes of it.
fn printable(member: &[u8]) -> String {
    let cut = member.len().min(64);
    let mut s = String::from_utf8_lossy(&member[..cut])
        .escape_debug()
        .to_string();
    if cut < member.len() {
        s.push_str(&format!("… ({} bytes)", member.len()));
    }
    s
}

/// The grid sample times are rounded down to: `poll_ms`, at most a second.
fn ts_grid_ms(poll_ms: u64) -> i64 {
    i64::try_from(poll_ms)
        .unwrap_or(i64::MAX)
        .clamp(1, MAX_TS_GRID_MS)
}

/// `t` rounded down to a multiple of `grid`.
fn floor_to(t: i64, grid: i64) -> i64 {
    t - t.rem_euclid(grid.max(1))
}

/// How long until the wall clock (`now_ms`) next reaches a multiple of `period`.
fn until_next_multiple(now_ms: i64, period: Duration) -> Duration {
    let p = i64::try_from(period.as_millis()).unwrap_or(i64::MAX).max(1);
    Duration::from_millis((p - now_ms.rem_euclid(p)) as u64)
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
    use fleet_testkit::RedisDb;
    use redis::Value;

    /// GEOADD k 13.361389 38.115556 "Palermo" → this score (Redis docs).
    const PALERMO: f64 = 3_479_099_956_230_698.0;

    fn sink() -> (Sink, mpsc::Receiver<RedisEvent>) {
        let (tx, rx) = mpsc::channel(1024);
        (Sink::new(tx), rx)
    }

    fn page(members: &[(&[u8], f64)]) -> Vec<Value> {
        members
            .iter()
            .flat_map(|(m, s)| {
                [
                    Value::BulkString(m.to_vec()),
                    Value::BulkString(s.to_string().into_bytes()),
                ]
            })
            .collect()
    }

    /// One cycle over `members` given as a single page.
    fn cycle(st: &mut KeyState, sink: &mut Sink, members: &[(&[u8], f64)]) -> usize {
        st.cycle += 1;
        st.page("k", page(members), 1_000, sink);
        st.finish_cycle()
    }

    #[test]
    fn reports_only_changes() {
        let (mut sink, _rx) = sink();
        let mut st = KeyState::default();
        cycle(&mut st, &mut sink, &[(b"a", PALERMO)]);
        assert_eq!(sink.positions.len(), 1);
        assert_eq!(sink.positions[0].ts_ms, 1_000);
        sink.positions.clear();
        cycle(&mut st, &mut sink, &[(b"a", PALERMO)]);
        assert!(sink.positions.is_empty());
        cycle(&mut st, &mut sink, &[(b"a", PALERMO + 1.0)]);
        assert_eq!(sink.positions.len(), 1);
        // RESP3 doubles read the same.
        sink.positions.clear();
        st.cycle += 1;
        st.page(
            "k",
            vec![
                Value::BulkString(b"a".to_vec()),
                Value::Double(PALERMO + 1.0),
            ],
            2_000,
            &mut sink,
        );
        assert!(sink.positions.is_empty());
    }

    #[test]
    fn bad_members_are_rejected_once_and_the_rest_read() {
        let (mut sink, _rx) = sink();
        let mut st = KeyState::default();
        let long = vec![b'x'; 300];
        let members: Vec<(&[u8], f64)> = vec![
            (b"good", PALERMO),
            (b"\xff\xfe-not-utf8", PALERMO),
            (&long, PALERMO),
            (b"car\n7", PALERMO),
            (b"", PALERMO),
            (b"not-geo", -5.0),
            (b"also-good", PALERMO),
        ];
        cycle(&mut st, &mut sink, &members);
        assert_eq!(sink.positions.len(), 2);
        let reasons: Vec<&str> = sink.rejected.iter().map(|q| q.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "bad_id",
                "bad_id",
                "bad_id",
                "missing_id",
                "invalid_coordinates"
            ]
        );
        assert_eq!(
            sink.rejected[0].raw.as_deref(),
            Some(&b"\xff\xfe-not-utf8"[..])
        );
        assert_eq!(sink.rejected[0].topic, "redis:k");
        // Seen again: not reported again.
        sink.positions.clear();
        sink.rejected.clear();
        cycle(&mut st, &mut sink, &members);
        assert!(sink.positions.is_empty() && sink.rejected.is_empty());
        // Gone for a whole cycle, then back: reported again.
        assert_eq!(cycle(&mut st, &mut sink, &members[..1]), 6);
        cycle(&mut st, &mut sink, &members);
        assert_eq!(sink.rejected.len(), 5);
    }

    #[test]
    fn warnings_are_rate_limited() {
        let mut w = WarnLimit::default();
        let allowed = (0..100).filter(|_| w.allow()).count();
        assert_eq!(allowed, WARN_PER_MINUTE as usize);
        assert_eq!(w.suppressed, 100 - u64::from(WARN_PER_MINUTE));
        assert_eq!(printable(b"a\n\xff"), "a\\n\u{fffd}");
        assert!(printable(&[b'x'; 300]).ends_with("… (300 bytes)"));
    }

    #[test]
    fn sample_times_sit_on_the_poll_grid() {
        assert_eq!(ts_grid_ms(200), 200);
        assert_eq!(ts_grid_ms(60_000), 1_000);
        assert_eq!(ts_grid_ms(0), 1);
        assert_eq!(ts_grid_ms(u64::MAX), 1_000);
        assert_eq!(floor_to(1_700_000_000_999, 1_000), 1_700_000_000_000);
        assert_eq!(floor_to(1_700_000_000_399, 200), 1_700_000_000_200);
        // Two desktops polling the same change at different moments of one interval agree.
        assert_eq!(floor_to(12_010, 1_000), floor_to(12_990, 1_000));
        assert_eq!(
            until_next_multiple(12_300, Duration::from_millis(1_000)),
            Duration::from_millis(700)
        );
        assert_eq!(
            until_next_multiple(12_000, Duration::from_millis(1_000)),
            Duration::from_millis(1_000)
        );
        assert_eq!(
            until_next_multiple(5, Duration::MAX),
            Duration::from_millis(i64::MAX as u64 - 5)
        );
    }

    #[test]
    fn redacts_password() {
        assert_eq!(redact("redis://u:secret@h:1/0"), "redis://u:***@h:1/0");
    }

    fn source(db: &RedisDb, key: &str) -> RedisSource {
        let cfg: RedisConfig =
            toml::from_str(&format!("url = \"{}\"\ngeo_keys = [\"{key}\"]", db.url)).unwrap();
        RedisSource::new(cfg).unwrap()
    }

    fn geoadd(db: &RedisDb, key: &str, members: impl IntoIterator<Item = (String, f64, f64)>) {
        let mut conn = db.connection().unwrap();
        let mut cmd = redis::cmd("GEOADD");
        cmd.arg(key);
        for (m, lat, lng) in members {
            cmd.arg(lng).arg(lat).arg(m);
        }
        let _: i64 = cmd.query(&mut conn).unwrap();
    }

    /// Against the real Redis: members removed with ZREM (good and bad) are forgotten after
    /// the first complete cycle that did not return them; the others are not re-emitted.
    #[tokio::test(flavor = "multi_thread")]
    async fn redis_zrem_member_is_forgotten() {
        let db = RedisDb::new();
        let key = db.key("cars#gps");
        geoadd(
            &db,
            &key,
            (0..3).map(|i| (format!("car-{i}"), 37.5, 127.0 + f64::from(i) * 1e-3)),
        );
        let mut sync = db.connection().unwrap();
        let _: i64 = redis::cmd("ZADD")
            .arg(&key)
            .arg(PALERMO)
            .arg(&b"\xc3\x28bad"[..])
            .query(&mut sync)
            .unwrap();
        let src = source(&db, &key);
        let mut conn = src.connect().await.unwrap();
        let (mut sink, _rx) = sink();
        let mut st = KeyState::default();

        scan_key(&mut conn, &key, &mut st, 1_000, &mut sink)
            .await
            .unwrap();
        assert_eq!(sink.positions.len(), 3);
        assert_eq!(sink.rejected.len(), 1);
        assert_eq!((st.known.len(), st.rejected.len()), (3, 1));

        let _: i64 = redis::cmd("ZREM")
            .arg(&key)
            .arg("car-1")
            .arg(&b"\xc3\x28bad"[..])
            .query(&mut sync)
            .unwrap();
        sink.positions.clear();
        sink.rejected.clear();
        let c = scan_key(&mut conn, &key, &mut st, 2_000, &mut sink)
            .await
            .unwrap();
        assert_eq!(c.forgotten, 2);
        assert!(sink.positions.is_empty() && sink.rejected.is_empty());
        assert_eq!(st.rejected.len(), 0);
        let mut left: Vec<&String> = st.known.keys().collect();
        left.sort();
        assert_eq!(left, ["car-0", "car-2"]);

        // Deleting the key forgets everything.
        let _: i64 = redis::cmd("DEL").arg(&key).query(&mut sync).unwrap();
        scan_key(&mut conn, &key, &mut st, 3_000, &mut sink)
            .await
            .unwrap();
        assert!(st.known.is_empty());
    }

    /// Against the real Redis: a 20,000-member set is read in pages of about SCAN_COUNT,
    /// never in one reply, and every member arrives once, in batches of at most SCAN_COUNT.
    #[tokio::test(flavor = "multi_thread")]
    async fn redis_large_set_is_read_in_bounded_pages() {
        let db = RedisDb::new();
        let key = db.key("cars#gps");
        for chunk in 0..4 {
            geoadd(
                &db,
                &key,
                (0..5_000).map(|i| {
                    let n = chunk * 5_000 + i;
                    (
                        format!("car-{n}"),
                        37.0 + f64::from(n) * 1e-5,
                        127.0 + f64::from(n) * 1e-5,
                    )
                }),
            );
        }
        let src = source(&db, &key);
        let mut conn = src.connect().await.unwrap();
        let (tx, mut rx) = mpsc::channel(1024);
        let mut sink = Sink::new(tx);
        let mut st = KeyState::default();
        let c = scan_key(&mut conn, &key, &mut st, 1_000, &mut sink)
            .await
            .unwrap();
        assert!(sink.flush().await);
        drop(sink);
        assert!(c.pages >= 15, "{c:?}");
        assert!(c.largest_page <= 2 * SCAN_COUNT, "{c:?}");
        assert_eq!(st.known.len(), 20_000);
        let mut seen = std::collections::HashSet::new();
        while let Some(e) = rx.recv().await {
            let RedisEvent::Positions(ps) = e else {
                panic!("unexpected {e:?}")
            };
            assert!(ps.len() <= 2 * SCAN_COUNT, "{}", ps.len());
            seen.extend(ps.into_iter().map(|p| p.vehicle));
        }
        assert_eq!(seen.len(), 20_000);
    }
}
