//! Timestamps: ms-epoch numbers or RFC 3339 strings (SPEC §1).

use serde_json::Value;

/// Values below this are taken as seconds, not milliseconds: 1e11 ms is 1973, 1e11 s is year
/// 5138, so no real timestamp is ambiguous, and devices that send seconds still work.
const SECONDS_CUTOFF: f64 = 1e11;

/// Parses a `ts` field. `Err(())` means present but unusable (the message is rejected).
#[allow(clippy::result_unit_err)]
pub fn parse_ts(v: &Value) -> Result<i64, ()> {
    match v {
        Value::Number(n) => from_number(n.as_f64().ok_or(())?),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(x) = s.parse::<f64>() {
                return from_number(x);
            }
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|d| d.timestamp_millis())
                .map_err(|_| ())
        }
        _ => Err(()),
    }
}

fn from_number(x: f64) -> Result<i64, ()> {
    if !x.is_finite() || !(0.0..=1e14).contains(&x) {
        return Err(());
    }
    let ms = if x < SECONDS_CUTOFF { x * 1000.0 } else { x };
    Ok(ms.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats() {
        assert_eq!(
            parse_ts(&json!(1_700_000_000_123_i64)),
            Ok(1_700_000_000_123)
        );
        assert_eq!(parse_ts(&json!(1_700_000_000)), Ok(1_700_000_000_000));
        assert_eq!(
            parse_ts(&json!("2023-11-14T22:13:20Z")),
            Ok(1_700_000_000_000)
        );
        assert_eq!(
            parse_ts(&json!("2023-11-15T07:13:20.5+09:00")),
            Ok(1_700_000_000_500)
        );
        assert_eq!(parse_ts(&json!("1700000000123")), Ok(1_700_000_000_123));
        assert!(parse_ts(&json!("yesterday")).is_err());
        assert!(parse_ts(&json!(-5)).is_err());
        assert!(parse_ts(&json!(true)).is_err());
    }
}
