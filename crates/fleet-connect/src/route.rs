//! Routes: which topic goes to which geo set, and how a message becomes a fix.
//!
//! Each route decodes with the desktop app's own position decoder (`fleet_core::decode`), so
//! the loader rejects exactly what the app would quarantine (bad ids, coordinates, times),
//! with the same reason codes. One more check is the loader's own: Redis stores only
//! latitudes within ±85.05112878° (the Web-Mercator square); a single fix beyond that would
//! make Redis refuse the whole multi-member `GEOADD` it travels in, so it is rejected here.

use fleet_core::config::{ConnectConfig, TopicConfig};
use fleet_core::decode::{Decoded, Decoder, RawMessage, Rejection};
use fleet_model::{RejectReason, TopicKind};

/// Largest latitude Redis's geo commands accept.
pub const REDIS_MAX_LAT: f64 = 85.051_128_78;

/// One vehicle's position, ready for `GEOADD`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fix {
    /// The geo set member: the vehicle id.
    pub id: String,
    /// Latitude (°).
    pub lat: f64,
    /// Longitude (°).
    pub lng: f64,
}

struct Route {
    topic: String,
    geo_key: String,
    decoder: Decoder,
}

/// The compiled `[[connect.routes]]`, addressed by index (a batch keys by it, not by name).
pub struct Routes(Vec<Route>);

impl Routes {
    /// Compiles the routes; `max_future_skew_ms` is `fleet.max_future_skew_s` (SPEC §7).
    pub fn new(cfg: &ConnectConfig, max_future_skew_ms: i64) -> Self {
        Self(
            cfg.routes
                .iter()
                .map(|r| Route {
                    topic: r.topic.clone(),
                    geo_key: r.geo_key.clone(),
                    decoder: Decoder::new(&TopicConfig {
                        name: r.topic.clone(),
                        kind: TopicKind::Position,
                        fields: r.fields.clone(),
                        format: Default::default(),
                    })
                    .with_max_future_skew_ms(max_future_skew_ms),
                })
                .collect(),
        )
    }

    /// The topics to subscribe to.
    pub fn topics(&self) -> Vec<&str> {
        self.0.iter().map(|r| r.topic.as_str()).collect()
    }

    /// The route of `topic`.
    pub fn index(&self, topic: &str) -> Option<usize> {
        self.0.iter().position(|r| r.topic == topic)
    }

    /// Route `i`'s topic.
    pub fn topic(&self, i: usize) -> &str {
        &self.0[i].topic
    }

    /// Route `i`'s geo set.
    pub fn geo_key(&self, i: usize) -> &str {
        &self.0[i].geo_key
    }

    /// Decodes a message of route `i` into a fix, or says why it cannot be loaded.
    pub fn decode(&self, i: usize, msg: RawMessage, now_ms: i64) -> Result<Fix, Rejection> {
        match self.0[i].decoder.decode(msg, now_ms)? {
            Decoded::Position(p) if p.lat.abs() > REDIS_MAX_LAT => Err(Rejection {
                reason: RejectReason::LatOutOfRange,
                detail: format!(
                    "lat {} is outside the ±{REDIS_MAX_LAT} Redis can store",
                    p.lat
                ),
            }),
            Decoded::Position(p) => Ok(Fix {
                id: p.vehicle,
                lat: p.lat,
                lng: p.lng,
            }),
            // A position decoder yields positions or rejections; anything else is a bug we
            // would rather count than crash on.
            other => Err(Rejection {
                reason: RejectReason::InvalidField,
                detail: format!("not a position: {other:?}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_core::config::RouteConfig;

    fn routes(fields: &[(&str, &str)]) -> Routes {
        Routes::new(
            &ConnectConfig {
                group_id: "g".into(),
                instance_id: None,
                start: Default::default(),
                routes: vec![RouteConfig {
                    topic: "cars.gps.json".into(),
                    geo_key: "cars#gps".into(),
                    fields: fields
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                }],
                batch_max_messages: 10,
                batch_max_ms: 10,
            },
            300_000,
        )
    }

    fn msg<'a>(key: &'a [u8], payload: &'a [u8]) -> RawMessage<'a> {
        RawMessage {
            key: Some(key),
            payload: Some(payload),
            kafka_ts_ms: Some(1_800_000_000_000),
        }
    }

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn a_seed_message_becomes_a_fix_keyed_by_the_message_key() {
        let r = routes(&[]);
        let fix = r
            .decode(0, msg(b"car-1", br#"{"lat":37.51,"lng":127.03}"#), NOW)
            .unwrap();
        assert_eq!(
            fix,
            Fix {
                id: "car-1".into(),
                lat: 37.51,
                lng: 127.03
            }
        );
    }

    #[test]
    fn mapped_nested_fields_and_an_id_field_are_followed() {
        let r = routes(&[("id", "device.car"), ("lat", "pos.y"), ("lng", "pos.x")]);
        let fix = r
            .decode(
                0,
                msg(
                    b"ignored",
                    br#"{"device":{"car":"c9"},"pos":{"x":2.35,"y":48.85}}"#,
                ),
                NOW,
            )
            .unwrap();
        assert_eq!((fix.id.as_str(), fix.lat, fix.lng), ("c9", 48.85, 2.35));
    }

    /// Redis refuses a whole GEOADD over one polar fix: it must be rejected on its own.
    #[test]
    fn a_latitude_redis_cannot_store_is_rejected_with_a_reason() {
        let r = routes(&[]);
        let e = r
            .decode(0, msg(b"car-1", br#"{"lat":86.0,"lng":10}"#), NOW)
            .unwrap_err();
        assert_eq!(e.reason, RejectReason::LatOutOfRange);
        assert!(e.detail.contains("85.05"), "{}", e.detail);
    }

    #[test]
    fn bad_messages_get_the_apps_reasons() {
        let r = routes(&[]);
        let reason = |p: &[u8]| r.decode(0, msg(b"car-1", p), NOW).unwrap_err().reason;
        assert_eq!(reason(b"{not json"), RejectReason::NotJson);
        assert_eq!(reason(br#"{"lat":37.5}"#), RejectReason::MissingCoordinates);
        assert_eq!(
            reason(br#"{"lat":37.5,"lng":181}"#),
            RejectReason::LngOutOfRange
        );
        assert_eq!(
            reason(br#"{"lat":37.5,"lng":127,"ts":95617584000000}"#),
            RejectReason::BadTs
        );
        let no_key = RawMessage {
            key: None,
            payload: Some(br#"{"lat":1,"lng":2}"#),
            kafka_ts_ms: None,
        };
        assert_eq!(
            r.decode(0, no_key, NOW).unwrap_err().reason,
            RejectReason::MissingId
        );
    }
}
