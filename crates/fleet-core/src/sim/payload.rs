//! JSON payloads.
//!
//! Positions and statuses are most of the traffic (a benchmark prefill is a million of them),
//! so they are written with `write!` into a pre-sized buffer instead of going through a
//! `serde_json::Value`: every field is a number or a fixed word, so no escaping is needed and
//! the output is byte-for-byte deterministic. Rare messages (info, alerts) carry free text
//! and use serde_json for correct escaping.

use std::io::Write;

/// Rounds to one decimal for display fields (speed, heading, percentages).
fn d1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// `{"lat":..,"lng":..,"ts":..,"speed":..,"heading":..}` with 6-decimal coordinates (~0.1 m).
pub(crate) fn position(lat: f64, lng: f64, ts_ms: i64, speed_kmh: f64, heading: f64) -> Vec<u8> {
    let mut buf = Vec::with_capacity(96);
    // Rounding 359.96 would print 360.0, outside the documented [0, 360) range.
    let heading = d1(heading) % 360.0;
    let _ = write!(
        buf,
        r#"{{"lat":{lat:.6},"lng":{lng:.6},"ts":{ts_ms},"speed":{:.1},"heading":{heading:.1}}}"#,
        d1(speed_kmh).max(0.0),
    );
    buf
}

/// The state a status message reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Status {
    pub engine: bool,
    pub doors_open: bool,
    pub headlights: bool,
    pub speed_kmh: f64,
    pub fuel: f64,
    pub battery: f64,
    pub rpm: u32,
    pub temp_c: f64,
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// The status message. `engine_detail` is nested on purpose: it exercises the decoder's
/// flattening to `engine_detail.rpm`.
pub(crate) fn status(ts_ms: i64, s: &Status) -> Vec<u8> {
    let mut buf = Vec::with_capacity(192);
    let _ = write!(
        buf,
        r#"{{"ts":{ts_ms},"engine":"{}","doors":"{}","headlights":"{}","speed":{:.1},"fuel":{:.1},"battery":{:.1},"engine_detail":{{"rpm":{},"temp_c":{:.1}}}}}"#,
        on_off(s.engine),
        if s.doors_open { "open" } else { "closed" },
        on_off(s.headlights),
        d1(s.speed_kmh).max(0.0),
        d1(s.fuel),
        d1(s.battery),
        s.rpm,
        d1(s.temp_c),
    );
    buf
}

/// An upstream alert as published on `fleet.alerts.json`.
pub(crate) fn alert(
    id: &str,
    vehicle: &str,
    rule: &str,
    severity: &str,
    message: &str,
    ts_ms: i64,
) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": id,
        "vehicle": vehicle,
        "rule": rule,
        "severity": severity,
        "message": message,
        "ts": ts_ms,
    }))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn position_is_json_with_six_decimals() {
        let p = position(37.49790012, -127.0276, 1_700_000_000_000, 42.26, 359.97);
        let text = String::from_utf8(p).unwrap();
        assert_eq!(
            text,
            r#"{"lat":37.497900,"lng":-127.027600,"ts":1700000000000,"speed":42.3,"heading":0.0}"#
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["ts"], 1_700_000_000_000i64);
    }

    #[test]
    fn status_nests_engine_detail() {
        let s = Status {
            engine: false,
            doors_open: false,
            headlights: true,
            speed_kmh: 0.0,
            fuel: 12.34,
            battery: 9.96,
            rpm: 0,
            temp_c: 21.0,
        };
        let v: Value = serde_json::from_slice(&status(5, &s)).unwrap();
        assert_eq!(v["engine"], "off");
        assert_eq!(v["doors"], "closed");
        assert_eq!(v["headlights"], "on");
        assert_eq!(v["battery"], 10.0);
        assert_eq!(v["engine_detail"]["rpm"], 0);
    }

    #[test]
    fn alert_escapes_text() {
        let v: Value = serde_json::from_slice(&alert(
            "up-1",
            "car-00001",
            "tamper",
            "warning",
            "a \"b\"",
            9,
        ))
        .unwrap();
        assert_eq!(v["message"], "a \"b\"");
        assert_eq!(v["severity"], "warning");
    }
}
