//! From a vehicle's stored history to the chart of the fields asked for: the same choice of
//! samples, units and marks for the app's panel and `fleetctl chart`.

use crate::{AlertMark, ChartSpec, Series};
use fleet_model::VehicleHistory;

/// What the chart shows when no field is picked (SPEC §4 `fleetctl chart`).
pub const DEFAULT_FIELDS: [&str; 3] = ["speed", "fuel", "battery"];

/// The unit of a known status field (SPEC §1: speed in km/h, fuel and battery in %); empty
/// for any other field, which then gets a panel of its own.
pub fn unit_of(field: &str) -> &'static str {
    match field {
        "speed" => "km/h",
        "fuel" | "battery" => "%",
        _ => "",
    }
}

/// The chart of `fields` over `[from_ms, to_ms]`: one series per field from the status
/// samples' flattened fields (numbers and numeric strings), with `speed` taken from the
/// positions when they carry it more often than the status samples; every alert of the range is marked. Fields
/// with no sample stay in the spec (their colour is kept) and are simply not drawn.
pub fn spec_for_history(
    h: &VehicleHistory,
    fields: &[String],
    from_ms: i64,
    to_ms: i64,
    (width, height): (u32, u32),
) -> ChartSpec {
    let in_range = |t: i64| (from_ms..=to_ms).contains(&t);
    let series = fields
        .iter()
        .map(|field| {
            let mut points: Vec<(i64, f64)> = h
                .status
                .iter()
                .filter(|s| in_range(s.ts_ms))
                .filter_map(|s| s.number(field).map(|v| (s.ts_ms, v)))
                .collect();
            if field == "speed" {
                // Status samples are kept on steps of 5 km/h; positions usually carry speed
                // more densely. The denser of the two draws the line.
                let from_positions: Vec<(i64, f64)> = h
                    .positions
                    .iter()
                    .filter(|p| in_range(p.ts_ms))
                    .filter_map(|p| p.speed.filter(|v| v.is_finite()).map(|v| (p.ts_ms, v)))
                    .collect();
                if from_positions.len() > points.len() {
                    points = from_positions;
                }
            }
            Series {
                name: field.clone(),
                unit: unit_of(field).to_string(),
                points,
            }
        })
        .collect();
    let alerts = h
        .alerts
        .iter()
        .filter(|a| in_range(a.ts_ms))
        .map(|a| AlertMark {
            ts_ms: a.ts_ms,
            rule: a.rule.clone(),
            severity: a.severity,
        })
        .collect();
    ChartSpec {
        title: format!("{} · {} – {} UTC", h.vehicle, when(from_ms), when(to_ms)),
        from_ms,
        to_ms,
        series,
        alerts,
        cursor_ms: None,
        width,
        height,
        utc_offset_s: 0,
    }
}

fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| ms.to_string())
}
