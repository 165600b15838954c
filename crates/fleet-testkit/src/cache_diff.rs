//! Compares two fleetdash caches table by table through the `sqlite3` CLI: what a fault test
//! needs to say "the crashed-and-restarted cache holds exactly what an uninterrupted run
//! holds". Only columns that are a function of the messages are compared (wall-clock
//! columns such as `received_ms` or `first_seen` differ between any two runs).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// (what, query): each query lists rows in a total order, so equal sets give equal text.
pub const COMPARED: [(&str, &str); 9] = [
    (
        "positions",
        "SELECT ktopic, kpartition, koffset, vehicle, ts, lat, lng, speed, heading, source \
         FROM positions ORDER BY ktopic, kpartition, koffset, vehicle, ts",
    ),
    (
        "status samples",
        "SELECT ktopic, kpartition, koffset, vehicle, ts, engine_on, doors_open, headlights_on, \
         speed, fuel, battery, fields_json FROM status_samples ORDER BY ktopic, kpartition, koffset",
    ),
    (
        "alerts",
        "SELECT id, vehicle, rule, severity, message, ts, state, origin, acked_by, acked_ms, \
         ack_note, resolved_ms FROM alerts ORDER BY id",
    ),
    (
        "acks",
        "SELECT alert_id, operator, note, ts FROM acks ORDER BY alert_id",
    ),
    (
        "quarantine",
        "SELECT topic, kpartition, koffset, reason, detail, hex(msg_key), hex(raw), raw_len \
         FROM quarantine ORDER BY topic, kpartition, koffset",
    ),
    (
        "vehicles",
        "SELECT id, plate, model, driver, grp, last_ts, last_lat, last_lng, last_speed, \
         last_source FROM vehicles ORDER BY id",
    ),
    (
        "rule state",
        "SELECT vehicle, state_json FROM rule_state ORDER BY vehicle",
    ),
    (
        "offsets",
        "SELECT topic, kpartition, next_offset FROM offsets ORDER BY topic, kpartition",
    ),
    (
        "topic counters",
        "SELECT topic, messages, rejected FROM topic_counters ORDER BY topic",
    ),
];

/// Runs `sql` on `cache` with the `sqlite3` CLI and returns its output (`|`-separated rows).
/// Panics when the CLI is missing or fails: a fault test cannot judge without it.
pub fn sqlite3(cache: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3")
        .arg(cache)
        .arg(sql)
        .output()
        .unwrap_or_else(|e| panic!("sqlite3 CLI needed (apt-get install sqlite3): {e}"));
    assert!(
        out.status.success(),
        "sqlite3 {} {sql:?}: {}",
        cache.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Like [`sqlite3`], `None` instead of a panic: for polling a cache that an engine is still
/// creating (no file, or no tables yet).
pub fn try_sqlite3(cache: &Path, sql: &str) -> Option<String> {
    if !cache.exists() {
        return None;
    }
    let out = Command::new("sqlite3").arg(cache).arg(sql).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `sqlite3` of a single integer.
pub fn sqlite3_i64(cache: &Path, sql: &str) -> i64 {
    let s = sqlite3(cache, sql);
    s.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{sql:?} on {}: {e}: {s:?}", cache.display()))
}

/// `PRAGMA integrity_check`'s answer (`ok` when nothing is corrupt).
pub fn integrity_check(cache: &Path) -> String {
    sqlite3(cache, "PRAGMA integrity_check").trim().to_string()
}

/// One compared table.
#[derive(Debug, Clone)]
pub struct TableDiff {
    /// Which table.
    pub what: &'static str,
    /// Rows in the first cache / the second.
    pub rows: (usize, usize),
    /// Rows only in the first / only in the second (the first few of each).
    pub only: (Vec<String>, Vec<String>),
    /// Whether the two listings are identical.
    pub same: bool,
}

/// Compares [`COMPARED`] between two caches. The listing is by rows, so a missing message, a
/// duplicate or a different alert all show up.
pub fn compare_caches(a: &Path, b: &Path) -> Vec<TableDiff> {
    COMPARED
        .iter()
        .map(|(what, sql)| {
            let (x, y) = (sqlite3(a, sql), sqlite3(b, sql));
            let same = x == y;
            let (xs, ys): (Vec<&str>, Vec<&str>) = (x.lines().collect(), y.lines().collect());
            let only = if same {
                (Vec::new(), Vec::new())
            } else {
                let (sx, sy): (BTreeSet<&str>, BTreeSet<&str>) =
                    (xs.iter().copied().collect(), ys.iter().copied().collect());
                let first = |s: &BTreeSet<&str>, t: &BTreeSet<&str>| {
                    s.difference(t).take(8).map(|r| (*r).to_string()).collect()
                };
                (first(&sx, &sy), first(&sy, &sx))
            };
            TableDiff {
                what,
                rows: (xs.len(), ys.len()),
                only,
                same,
            }
        })
        .collect()
}

/// A readable account of a comparison, one line per table, with differing rows.
pub fn describe(diffs: &[TableDiff]) -> String {
    let mut s = String::new();
    for d in diffs {
        s.push_str(&format!(
            "  {:<15} {:>9} vs {:>9} rows: {}\n",
            d.what,
            d.rows.0,
            d.rows.1,
            if d.same { "identical" } else { "DIFFERENT" }
        ));
        for r in &d.only.0 {
            s.push_str(&format!("      only in the first:  {r}\n"));
        }
        for r in &d.only.1 {
            s.push_str(&format!("      only in the second: {r}\n"));
        }
    }
    s
}
