//! `fleetctl export`: history out of the cache.

use super::{load_config, open_store, parse_time};
use crate::cli::{ExportArgs, Format};
use crate::error::CliError;
use fleet_core::store::{ExportFilter, ExportFormat};
use serde_json::{Value, json};

pub async fn run(a: ExportArgs) -> Result<Value, CliError> {
    let (cfg, _) = load_config(&a.config, false)?;
    let filter = ExportFilter {
        vehicle: a.vehicle.clone(),
        from_ms: a
            .from
            .as_deref()
            .map(|s| parse_time("from", s))
            .transpose()?,
        to_ms: a.to.as_deref().map(|s| parse_time("to", s)).transpose()?,
    };
    let format = match a.format {
        Format::Csv => ExportFormat::Csv,
        Format::Geojson => ExportFormat::GeoJson,
    };
    let store = open_store(&cfg).await?;
    let n = match &a.output {
        Some(path) => {
            let f = std::fs::File::create(path)
                .map_err(|e| CliError::Runtime(format!("cannot create {}: {e}", path.display())))?;
            let mut w = std::io::BufWriter::new(f);
            let n = store.export(&filter, format, &mut w).await?;
            std::io::Write::flush(&mut w).map_err(|e| CliError::Runtime(e.to_string()))?;
            n
        }
        None => {
            let stdout = std::io::stdout();
            let mut lock = std::io::BufWriter::new(stdout.lock());
            let n = store.export(&filter, format, &mut lock).await?;
            std::io::Write::flush(&mut lock).map_err(|e| CliError::Runtime(e.to_string()))?;
            n
        }
    };
    store.close().await;
    eprintln!("export: {n} samples");
    Ok(json!({ "samples": n }))
}
