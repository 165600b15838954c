//! `fleetctl chart`: a vehicle's telemetry chart from the cache, drawn by the same plotters
//! module as the app's `vehicle-chart` (SPEC §4); the file's extension picks PNG or SVG.

use super::history::{DEFAULT_SPAN_MS, load};
use super::{load_config, time_range};
use crate::cli::ChartArgs;
use crate::error::CliError;
use fleet_chart::{MAX_SIZE, MIN_SIZE, NO_DATA_TEXT};
use serde_json::{Value, json};
use std::path::Path;

/// Output formats, from the file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Png,
    Svg,
}

fn format_of(path: &Path) -> Result<Format, CliError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("png") => Ok(Format::Png),
        Some("svg") => Ok(Format::Svg),
        _ => Err(CliError::Usage(format!(
            "--out {}: the file name must end in .png or .svg (it picks the format)",
            path.display()
        ))),
    }
}

/// The fields asked for, once each and in order; an empty name is a usage error.
fn fields(asked: &[String]) -> Result<Vec<String>, CliError> {
    let mut out: Vec<String> = Vec::new();
    for f in asked.iter().map(|f| f.trim()) {
        if f.is_empty() {
            return Err(CliError::Usage(
                "--fields: empty field name (expected e.g. speed,fuel,battery)".into(),
            ));
        }
        if !out.iter().any(|o| o == f) {
            out.push(f.to_string());
        }
    }
    Ok(out)
}

pub async fn run(a: ChartArgs) -> Result<Value, CliError> {
    // Everything the user can get wrong is checked before the cache is opened.
    let format = format_of(&a.out)?;
    for (flag, v) in [("width", a.width), ("height", a.height)] {
        if !(MIN_SIZE..=MAX_SIZE).contains(&v) {
            return Err(CliError::Usage(format!(
                "--{flag} {v}: must be within {MIN_SIZE}..={MAX_SIZE} pixels"
            )));
        }
    }
    let fields = fields(&a.fields)?;
    let (from, to) = time_range(a.from.as_deref(), a.to.as_deref(), DEFAULT_SPAN_MS)?;
    let (cfg, _) = load_config(&a.config, false)?;
    let h = load(&cfg, &a.vehicle, from, to).await?;
    let spec = fleet_chart::spec_for_history(&h, &fields, from, to, (a.width, a.height));
    let draw = |e: fleet_chart::ChartError| CliError::Runtime(e.to_string());
    let bytes = match format {
        Format::Png => fleet_chart::render_png(&spec).map_err(draw)?,
        Format::Svg => fleet_chart::render_svg(&spec).map_err(draw)?.into_bytes(),
    };
    std::fs::write(&a.out, &bytes)
        .map_err(|e| CliError::Runtime(format!("cannot write {}: {e}", a.out.display())))?;

    let counts: serde_json::Map<String, Value> = spec
        .series
        .iter()
        .map(|s| (s.name.clone(), json!(s.points.len())))
        .collect();
    let no_data = spec.series.iter().all(|s| s.points.is_empty());
    let drawn: Vec<String> = spec
        .series
        .iter()
        .map(|s| match s.points.len() {
            0 => format!("{} (no samples)", s.name),
            n => format!("{} ({n})", s.name),
        })
        .collect();
    eprintln!(
        "chart: {} {}x{}: {}{}; {} alerts",
        a.out.display(),
        a.width,
        a.height,
        if no_data { NO_DATA_TEXT } else { "" },
        if no_data {
            String::new()
        } else {
            drawn.join(", ")
        },
        spec.alerts.len()
    );
    Ok(json!({
        "out": a.out,
        "format": if format == Format::Png { "png" } else { "svg" },
        "bytes": bytes.len(),
        "series": counts,
        "alerts": spec.alerts.len(),
        "no_data": no_data,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_picks_the_format() {
        assert_eq!(format_of(Path::new("a/b.PNG")).unwrap(), Format::Png);
        assert_eq!(format_of(Path::new("x.svg")).unwrap(), Format::Svg);
        for bad in ["x.jpg", "x", "png", "x.svg.txt"] {
            let e = format_of(Path::new(bad)).unwrap_err();
            assert_eq!(e.code(), 2, "{bad}");
        }
    }

    #[test]
    fn fields_are_deduplicated_and_empty_names_refused() {
        let f = |v: &[&str]| fields(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(f(&["speed", " fuel", "speed"]).unwrap(), ["speed", "fuel"]);
        assert_eq!(f(&["speed", ""]).unwrap_err().code(), 2);
    }
}
