//! `fleetctl fields`: the schema registry (SPEC §8) — every flattened path seen per topic.

use super::{load_config, open_store, parse_time, rfc3339};
use crate::cli::FieldsArgs;
use crate::error::CliError;
use serde_json::{Value, json};

pub async fn run(a: FieldsArgs) -> Result<Value, CliError> {
    let (cfg, _) = load_config(&a.config, false)?;
    let since = a
        .since
        .as_deref()
        .map(|s| parse_time("since", s))
        .transpose()?;
    let store = open_store(&cfg).await?;
    let rows = store.schema_fields(a.topic.as_deref(), since).await?;
    store.close().await;
    if !a.json {
        for r in &rows {
            eprintln!(
                "{:24} {:32} {:8} {:>10}  {} … {}  e.g. {}",
                r.topic,
                r.path,
                r.ty.as_str(),
                r.count,
                rfc3339(r.first_seen),
                rfc3339(r.last_seen),
                r.example
            );
        }
        eprintln!("{} fields", rows.len());
    }
    Ok(Value::Array(
        rows.iter()
            .map(|r| {
                json!({
                    "topic": r.topic,
                    "path": r.path,
                    "type": r.ty.as_str(),
                    "first_seen": r.first_seen,
                    "last_seen": r.last_seen,
                    "count": r.count,
                    "example": r.example,
                })
            })
            .collect(),
    ))
}
