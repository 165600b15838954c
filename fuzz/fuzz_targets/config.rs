//! Arbitrary text through config parsing and validation: `Ok` or `Err`, never a panic. An
//! accepted config is then turned into what the engine builds from it (decoders, the history
//! policy), which must not panic either.
#![no_main]

use std::path::Path;

use fleet_core::config::Config;
use fleet_core::decode::Decoder;
use fleet_core::history::HistoryPolicy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(text, Path::new("/fuzz/config.toml")) {
        Ok(cfg) => {
            let _ = HistoryPolicy::new(&cfg.history);
            let skew_ms = (cfg.fleet.max_future_skew_s * 1000.0) as i64;
            if let Some(k) = &cfg.kafka {
                for t in &k.topics {
                    let _ = Decoder::new(t).with_max_future_skew_ms(skew_ms);
                }
            }
            let _ = cfg.require_secrets(Path::new("/fuzz/config.toml"));
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
