//! The vehicle telemetry chart (issue 11): one plotters module for the app's `vehicle-chart`
//! and `fleetctl chart`, so both draw the same picture from the same [`ChartSpec`].
//!
//! Layout: a time axis over exactly `[from, to]` (HH:MM labels, with the range's two ends
//! always labelled), and **one panel per unit** stacked over it. Series that share a unit
//! (fuel and battery, both %) share a panel and its y axis; a series without a unit gets a
//! panel of its own. That keeps every value readable in its own scale (a second y axis only
//! stretches to two units, and normalising per series hides the values). Each series has its
//! own colour ([`series_colour`]) and a legend entry; alerts are vertical lines across every
//! panel in their severity's colour ([`severity_colour`]) with the rule written at the top;
//! the replay cursor is a thicker line in [`CURSOR_COLOUR`]. With no samples at all the
//! chart says [`NO_DATA_TEXT`].
//!
//! SVG works on every target (the wasm UI included); PNG is native only and renders its
//! text with a font compiled in (see `Cargo.toml`), never through fontconfig.

mod axis;
mod draw;
mod from_history;
#[cfg(not(target_arch = "wasm32"))]
mod raster;
mod series;
#[cfg(test)]
mod tests;

pub use from_history::{DEFAULT_FIELDS, spec_for_history, unit_of};
#[cfg(not(target_arch = "wasm32"))]
pub use raster::render_png;

use fleet_model::Severity;
use serde::{Deserialize, Serialize};

/// What the chart says when the range holds no sample.
pub const NO_DATA_TEXT: &str = "no data in this range";
/// The replay cursor's colour (RGB): near-black, apart from every series and severity.
pub const CURSOR_COLOUR: (u8, u8, u8) = (40, 40, 40);
/// Smallest and largest accepted width or height (pixels).
pub const MIN_SIZE: u32 = 160;
/// See [`MIN_SIZE`]; a 4096² PNG is already 50 MB of pixels while drawing.
pub const MAX_SIZE: u32 = 4096;

/// Everything one chart shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartSpec {
    /// Title line (vehicle and range).
    pub title: String,
    /// Start of the time axis (ms epoch).
    pub from_ms: i64,
    /// End of the time axis (ms epoch).
    pub to_ms: i64,
    /// The series, drawn in this order (colours follow it).
    pub series: Vec<Series>,
    /// Alerts to mark on the time axis.
    #[serde(default)]
    pub alerts: Vec<AlertMark>,
    /// The replay cursor, when replaying.
    #[serde(default)]
    pub cursor_ms: Option<i64>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Time labels are shown at this offset from UTC (seconds; 0 = UTC).
    #[serde(default)]
    pub utc_offset_s: i32,
}

/// One measured quantity over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Field name (`speed`, `engine.rpm`).
    pub name: String,
    /// Unit (`km/h`, `%`), empty when unknown.
    pub unit: String,
    /// (time ms, value) samples; any order, non-finite values are skipped.
    pub points: Vec<(i64, f64)>,
}

/// An alert drawn on the time axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertMark {
    /// When it was raised (ms epoch).
    pub ts_ms: i64,
    /// Rule name, written beside the mark.
    pub rule: String,
    /// Colours the mark.
    pub severity: Severity,
}

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// Width or height outside [`MIN_SIZE`]..=[`MAX_SIZE`].
    #[error("chart size {width}x{height} is outside {MIN_SIZE}..={MAX_SIZE} pixels")]
    Size {
        /// Asked width.
        width: u32,
        /// Asked height.
        height: u32,
    },
    /// The range ends before it starts.
    #[error("chart range starts ({from_ms}) after it ends ({to_ms})")]
    Range {
        /// Start.
        from_ms: i64,
        /// End.
        to_ms: i64,
    },
    /// plotters failed (a font it could not load, a backend error).
    #[error("drawing the chart failed: {0}")]
    Draw(String),
    /// The PNG could not be encoded.
    #[error("encoding the PNG failed: {0}")]
    Encode(String),
}

/// The colour of the `i`-th series (RGB); a palette of eight that repeats.
pub fn series_colour(i: usize) -> (u8, u8, u8) {
    const PALETTE: [(u8, u8, u8); 8] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (188, 189, 34),
        (23, 190, 207),
    ];
    PALETTE[i % PALETTE.len()]
}

/// An alert mark's colour (RGB) by severity.
pub fn severity_colour(s: Severity) -> (u8, u8, u8) {
    match s {
        Severity::Info => (37, 99, 235),
        Severity::Warning => (217, 119, 6),
        Severity::Critical => (220, 38, 38),
    }
}

/// The chart as an SVG document.
pub fn render_svg(spec: &ChartSpec) -> Result<String, ChartError> {
    use plotters::prelude::*;
    spec.check()?;
    #[cfg(not(target_arch = "wasm32"))]
    raster::ensure_font()?;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (spec.width, spec.height)).into_drawing_area();
        draw::chart(&root, spec)?;
        root.present().map_err(draw::failed)?;
    }
    Ok(out)
}

impl ChartSpec {
    fn check(&self) -> Result<(), ChartError> {
        let ok = |v: u32| (MIN_SIZE..=MAX_SIZE).contains(&v);
        if !ok(self.width) || !ok(self.height) {
            return Err(ChartError::Size {
                width: self.width,
                height: self.height,
            });
        }
        if self.from_ms > self.to_ms {
            return Err(ChartError::Range {
                from_ms: self.from_ms,
                to_ms: self.to_ms,
            });
        }
        Ok(())
    }
}
