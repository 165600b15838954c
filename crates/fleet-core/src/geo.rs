//! Small geodesy helpers: great-circle distance and Redis geo-score decoding.

/// Mean Earth radius used by Redis too (m).
pub const EARTH_RADIUS_M: f64 = 6_372_797.560_856;

/// Haversine distance in metres.
pub fn distance_m(lat1: f64, lng1: f64, lat2: f64, lng2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lng2 - lng1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

const GEO_LAT_MIN: f64 = -85.051_128_78;
const GEO_LAT_MAX: f64 = 85.051_128_78;
const GEO_STEP: u32 = 26;

/// Decodes a Redis geo-set score (a 52-bit interleaved geohash) to (lat, lng) — the centre
/// of the cell, like `GEOPOS`. Reading scores with `ZSCAN` (a page of members with their
/// scores per round trip) is far cheaper than `GEOPOS` per member. `None` for scores outside
/// the 52-bit geohash range (and NaN): not written by `GEOADD`.
pub fn decode_geo_score(score: f64) -> Option<(f64, f64)> {
    if !(0.0..=4_503_599_627_370_496.0).contains(&score) {
        return None;
    }
    let bits = score as u64;
    let (mut ilat, mut ilng) = (0u64, 0u64);
    for i in 0..GEO_STEP {
        // Redis interleaves with longitude in the odd bits and latitude in the even bits.
        ilat |= ((bits >> (2 * i)) & 1) << i;
        ilng |= ((bits >> (2 * i + 1)) & 1) << i;
    }
    let scale = f64::from(1u32 << GEO_STEP);
    let lat_step = (GEO_LAT_MAX - GEO_LAT_MIN) / scale;
    let lng_step = 360.0 / scale;
    let lat = GEO_LAT_MIN + (ilat as f64 + 0.5) * lat_step;
    let lng = -180.0 + (ilng as f64 + 0.5) * lng_step;
    Some((
        lat.clamp(GEO_LAT_MIN, GEO_LAT_MAX),
        lng.clamp(-180.0, 180.0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_known() {
        // Seoul City Hall → Gangnam station ≈ 8.9 km
        let d = distance_m(37.5663, 126.9779, 37.4979, 127.0276);
        assert!((8_500.0..9_300.0).contains(&d), "{d}");
        assert_eq!(distance_m(1.0, 2.0, 1.0, 2.0), 0.0);
    }

    #[test]
    fn decodes_redis_score() {
        // GEOADD k 13.361389 38.115556 "Palermo" → score 3479099956230698 (Redis docs).
        let (lat, lng) = decode_geo_score(3_479_099_956_230_698.0).unwrap();
        assert!(
            (lat - 38.115556).abs() < 1e-4 && (lng - 13.361389).abs() < 1e-4,
            "{lat} {lng}"
        );
        assert!(decode_geo_score(-1.0).is_none());
        assert!(decode_geo_score(f64::NAN).is_none());
        assert!(decode_geo_score(f64::INFINITY).is_none());
        assert!(decode_geo_score(4_503_599_627_370_497.0).is_none());
    }
}
