//! `fleetctl ack`: acknowledge an alert as the configured operator. Written to the cache and
//! the outbox at once; published now if Kafka takes it, else queued (still exit 0) and sent
//! by the next `ingest` or app on this cache.

use super::{load_config, open_store};
use crate::cli::AckArgs;
use crate::error::CliError;
use fleet_core::acks::{AckError, AckPublisher};
use fleet_core::store::now_ms;
use fleet_model::Ack;
use serde_json::{Value, json};

pub async fn run(a: AckArgs) -> Result<Value, CliError> {
    let (cfg, path) = load_config(&a.config, true)?;
    if let Some(p) = &path {
        cfg.require_secrets(p)?;
    }
    let store = open_store(&cfg).await?;
    let ack = Ack {
        alert_id: a.alert_id.clone(),
        operator: cfg.operator.effective_name(),
        note: a.note.clone().unwrap_or_default(),
        ts: now_ms(),
    };
    let alert = store.record_local_ack(&ack).await.map_err(|e| match e {
        AckError::NotFound(_) => CliError::Runtime(e.to_string()),
        other => CliError::Runtime(other.to_string()),
    })?;
    let published = match cfg.kafka.as_ref().map(AckPublisher::new).transpose() {
        Ok(Some(Some(p))) => {
            p.flush(&store)
                .await
                .map_err(|e| CliError::Runtime(e.to_string()))?
                > 0
        }
        Ok(_) => false,
        Err(e) => return Err(CliError::Usage(e.to_string())),
    };
    let queued = store.outbox_len().await?;
    store.close().await;
    if published && queued == 0 {
        eprintln!(
            "acknowledged {} as {} and published",
            ack.alert_id, ack.operator
        );
    } else {
        eprintln!(
            "acknowledged {} as {}; queued in the outbox ({queued} waiting) until Kafka is reachable",
            ack.alert_id, ack.operator
        );
    }
    Ok(json!({ "alert": alert, "published": published && queued == 0, "outbox": queued }))
}
