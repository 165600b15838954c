//! `ts` values: the input as JSON when it parses (any JSON value), and as a JSON string.
//! Never panics; an accepted number is a plausible ms-epoch.
#![no_main]

use fleet_core::decode::{DEFAULT_MAX_FUTURE_SKEW_MS, check_ts, ts::parse_ts};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const NOW_MS: i64 = 1_700_000_000_000;

fn run(v: &Value) {
    if let Ok(ms) = parse_ts(v) {
        if v.is_number() {
            assert!((0..=100_000_000_000_000).contains(&ms), "{v} → {ms}");
        }
        // What the decoder does next with it.
        let _ = check_ts(ms, NOW_MS, DEFAULT_MAX_FUTURE_SKEW_MS);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        run(&v);
    }
    run(&Value::String(String::from_utf8_lossy(data).into_owned()));
});
