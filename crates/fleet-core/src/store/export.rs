//! History out of the cache as CSV or GeoJSON (`fleetctl export`, the app's export button).
//!
//! Rows are streamed from SQLite and written as they come: a 72-hour export of a whole fleet
//! is millions of rows, and holding them all (as the first version did) cost gigabytes. GeoJSON
//! holds one vehicle's track at a time, since a feature's coordinates are one array.

use super::read::position_row;
use super::{Store, StoreError};
use fleet_model::PositionSample;
use futures::TryStreamExt;
use sqlx::Row;
use std::borrow::Cow;
use std::io::Write;

/// History export filter.
#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    /// One vehicle only.
    pub vehicle: Option<String>,
    /// From (ms, inclusive).
    pub from_ms: Option<i64>,
    /// To (ms, inclusive).
    pub to_ms: Option<i64>,
}

/// Export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// `vehicle,plate,ts,time,lat,lng,speed,heading,source`
    Csv,
    /// A FeatureCollection with one LineString per vehicle (plate and timestamps in
    /// properties).
    GeoJson,
}

impl Store {
    /// Writes history as CSV or GeoJSON to `out`, ordered by vehicle then time; returns the
    /// number of samples written. Generic over the writer (not `dyn Write`) so the future
    /// is `Send` whenever the writer is: the app runs it on its async runtime.
    #[tracing::instrument(level = "debug", err, skip(self, out))]
    pub async fn export<W: Write>(
        &self,
        f: &ExportFilter,
        format: ExportFormat,
        out: &mut W,
    ) -> Result<u64, StoreError> {
        let mut rows = sqlx::query(
            "SELECT p.vehicle, v.plate, p.ts, p.lat, p.lng, p.speed, p.heading, p.source
             FROM positions p LEFT JOIN vehicles v ON v.id = p.vehicle
             WHERE (?1 IS NULL OR p.vehicle = ?1) AND (?2 IS NULL OR p.ts >= ?2) AND (?3 IS NULL OR p.ts <= ?3)
             ORDER BY p.vehicle, p.ts",
        )
        .bind(&f.vehicle)
        .bind(f.from_ms)
        .bind(f.to_ms)
        .fetch(self.pool());
        let io = |e: std::io::Error| self.err(sqlx::Error::Io(e));
        let mut sink = match format {
            ExportFormat::Csv => Sink::Csv,
            ExportFormat::GeoJson => Sink::GeoJson {
                track: Vec::new(),
                plate: None,
                features: 0,
            },
        };
        sink.begin(out).map_err(io)?;
        let mut n = 0u64;
        while let Some(row) = rows.try_next().await.map_err(|e| self.err(e))? {
            let plate: Option<String> = row.get("plate");
            sink.sample(out, position_row(&row), plate).map_err(io)?;
            n += 1;
        }
        sink.end(out).map_err(io)?;
        Ok(n)
    }
}

/// Where streamed samples go.
enum Sink {
    Csv,
    /// The current vehicle's samples and how many features were written before it.
    GeoJson {
        track: Vec<PositionSample>,
        plate: Option<String>,
        features: u64,
    },
}

impl Sink {
    fn begin(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        match self {
            Sink::Csv => writeln!(out, "vehicle,plate,ts,time,lat,lng,speed,heading,source"),
            Sink::GeoJson { .. } => write!(out, r#"{{"type":"FeatureCollection","features":["#),
        }
    }

    fn sample(
        &mut self,
        out: &mut dyn Write,
        p: PositionSample,
        plate: Option<String>,
    ) -> std::io::Result<()> {
        match self {
            Sink::Csv => csv_row(out, &p, plate.as_deref()),
            Sink::GeoJson {
                track,
                plate: track_plate,
                features,
            } => {
                if track.first().is_some_and(|q| q.vehicle != p.vehicle) {
                    feature(out, track, track_plate.as_deref(), *features)?;
                    *features += 1;
                    track.clear();
                }
                *track_plate = plate;
                track.push(p);
                Ok(())
            }
        }
    }

    fn end(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        match self {
            Sink::Csv => Ok(()),
            Sink::GeoJson {
                track,
                plate,
                features,
            } => {
                if !track.is_empty() {
                    feature(out, track, plate.as_deref(), *features)?;
                }
                writeln!(out, "]}}")
            }
        }
    }
}

fn csv_row(out: &mut dyn Write, p: &PositionSample, plate: Option<&str>) -> std::io::Result<()> {
    let time = chrono::DateTime::from_timestamp_millis(p.ts_ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
    let opt = |x: Option<f64>| x.map(|v| v.to_string()).unwrap_or_default();
    writeln!(
        out,
        "{},{},{},{},{},{},{},{},{}",
        csv_text(&p.vehicle),
        csv_text(plate.unwrap_or_default()),
        p.ts_ms,
        time,
        p.lat,
        p.lng,
        opt(p.speed),
        opt(p.heading),
        csv_text(p.source.as_str())
    )
}

/// One vehicle's track as a Feature (a Point when it has a single sample).
fn feature(
    out: &mut dyn Write,
    track: &[PositionSample],
    plate: Option<&str>,
    index: u64,
) -> std::io::Result<()> {
    let coords: Vec<_> = track
        .iter()
        .map(|p| serde_json::json!([p.lng, p.lat]))
        .collect();
    let geometry = match coords.as_slice() {
        [one] => serde_json::json!({"type": "Point", "coordinates": one}),
        _ => serde_json::json!({"type": "LineString", "coordinates": coords}),
    };
    let f = serde_json::json!({
        "type": "Feature",
        "geometry": geometry,
        "properties": {
            "vehicle": track.first().map(|p| p.vehicle.as_str()),
            "plate": plate,
            "times": track.iter().map(|p| p.ts_ms).collect::<Vec<_>>(),
            "speeds": track.iter().map(|p| p.speed).collect::<Vec<_>>(),
        },
    });
    if index > 0 {
        out.write_all(b",")?;
    }
    serde_json::to_writer(&mut *out, &f).map_err(std::io::Error::from)
}

/// A CSV text cell. A cell starting with `=`, `+`, `-`, `@`, tab or CR is a formula to a
/// spreadsheet (`=HYPERLINK(…)` runs when the file is opened), so it gets a leading `'` and
/// quotes, as OWASP's CSV-injection advice says; then RFC 4180 quoting where needed. Only for
/// text columns: numbers (a negative longitude) are written as they are.
pub fn csv_text(s: &str) -> Cow<'_, str> {
    let formula = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if formula || s.contains([',', '"', '\n', '\r']) {
        let body = s.replace('"', "\"\"");
        Cow::Owned(if formula {
            format!("\"'{body}\"")
        } else {
            format!("\"{body}\"")
        })
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::csv_text;

    #[test]
    fn text_cells_that_look_like_formulas_are_defused() {
        for (cell, want) in [
            ("car-1", "car-1"),
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"",
            ),
            ("-car", "\"'-car\""),
            ("+1", "\"'+1\""),
            ("@SUM(A1)", "\"'@SUM(A1)\""),
            ("\tx", "\"'\tx\""),
            ("a,b", "\"a,b\""),
            ("", ""),
        ] {
            assert_eq!(csv_text(cell), want, "cell {cell:?}");
        }
    }
}
