//! Redis geo scores: arbitrary f64 bit patterns and arbitrary integers. Never panics; a
//! decoded position lies in the geohash's range, and every 52-bit score decodes to the
//! centre of its own cell (re-encoding it gives the score back, as Redis' GEOADD would).
#![no_main]

use fleet_core::geo::decode_geo_score;
use libfuzzer_sys::fuzz_target;

const LAT_MIN: f64 = -85.051_128_78;
const LAT_MAX: f64 = 85.051_128_78;
const STEP: u32 = 26;

/// Redis' geohashEncode + interleave64 (latitude in the even bits).
fn encode(lat: f64, lng: f64) -> u64 {
    let scale = f64::from(1u32 << STEP);
    let ilat = ((lat - LAT_MIN) / (LAT_MAX - LAT_MIN) * scale) as u64;
    let ilng = ((lng + 180.0) / 360.0 * scale) as u64;
    let mut bits = 0u64;
    for i in 0..STEP {
        bits |= ((ilat >> i) & 1) << (2 * i);
        bits |= ((ilng >> i) & 1) << (2 * i + 1);
    }
    bits
}

fn in_range(lat: f64, lng: f64) -> bool {
    (LAT_MIN..=LAT_MAX).contains(&lat) && (-180.0..=180.0).contains(&lng)
}

fuzz_target!(|data: &[u8]| {
    let mut raw = [0u8; 8];
    let n = data.len().min(8);
    raw[..n].copy_from_slice(&data[..n]);
    let bits = u64::from_le_bytes(raw);

    for score in [f64::from_bits(bits), bits as f64] {
        if let Some((lat, lng)) = decode_geo_score(score) {
            assert!(in_range(lat, lng), "{score} → {lat}, {lng}");
        }
    }
    let cell = bits & ((1u64 << 52) - 1);
    let (lat, lng) = decode_geo_score(cell as f64).expect("every 52-bit score decodes");
    assert!(in_range(lat, lng), "{cell} → {lat}, {lng}");
    assert_eq!(encode(lat, lng), cell, "{cell} → {lat}, {lng}");
});
