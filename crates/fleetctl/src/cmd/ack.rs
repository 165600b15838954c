//! `fleetctl ack`: acknowledge an alert as the configured operator. Written to the cache and
//! the outbox at once; published now if Kafka takes it, else queued (still exit 0) and sent
//! by the next `ingest` or app on this cache. A note longer than 4 KiB is cut (with a warning);
//! an ack the broker refuses for good is set aside as a dead letter (see `fleet_core::acks`).

use super::{load_config, open_store};
use crate::cli::AckArgs;
use crate::error::CliError;
use fleet_core::acks::{AckError, AckPublisher};
use fleet_core::store::now_ms;
use fleet_model::Ack;
use fleet_model::ui::{ACK_NOTE_MAX_BYTES, cap_ack_note};
use serde_json::{Value, json};

pub async fn run(a: AckArgs) -> Result<Value, CliError> {
    let (cfg, path) = load_config(&a.config, true)?;
    if let Some(p) = &path {
        cfg.require_secrets(p)?;
    }
    let note = a.note.as_deref().unwrap_or_default();
    let capped = cap_ack_note(note);
    if capped.len() < note.len() {
        eprintln!(
            "warning: the note has {} bytes; cut to {} (notes are limited to {ACK_NOTE_MAX_BYTES} bytes)",
            note.len(),
            capped.len()
        );
    }
    let store = open_store(&cfg).await?;
    let ack = Ack {
        alert_id: a.alert_id.clone(),
        operator: cfg.operator.effective_name(),
        note: capped.to_string(),
        ts: now_ms(),
    };
    let alert = store.record_local_ack(&ack).await.map_err(|e| match e {
        AckError::NotFound(_) => CliError::Runtime(e.to_string()),
        other => CliError::Runtime(other.to_string()),
    })?;
    let flushed = match cfg.kafka.as_ref().map(AckPublisher::new).transpose() {
        Ok(Some(Some(p))) => p
            .flush(&store)
            .await
            .map_err(|e| CliError::Runtime(e.to_string()))?,
        Ok(_) => Default::default(),
        Err(e) => return Err(CliError::Usage(e.to_string())),
    };
    let queued = store.outbox_len().await?;
    store.close().await;
    // This very ack refused for good: it will never be published.
    let refused = flushed
        .dead
        .iter()
        .find(|d| d.alert_id == ack.alert_id && d.ack_ts == Some(ack.ts))
        .map(|d| d.error.clone());
    let published = flushed.sent > 0 && queued == 0 && refused.is_none();
    for d in &flushed.dead {
        eprintln!(
            "warning: the ack of {} was refused by Kafka and will not be published: {}",
            d.alert_id, d.error
        );
    }
    if published {
        eprintln!(
            "acknowledged {} as {} and published",
            ack.alert_id, ack.operator
        );
    } else if refused.is_some() {
        eprintln!(
            "acknowledged {} as {} in this cache only; other desktops will not see it",
            ack.alert_id, ack.operator
        );
    } else {
        eprintln!(
            "acknowledged {} as {}; queued in the outbox ({queued} waiting) until Kafka is reachable",
            ack.alert_id, ack.operator
        );
    }
    Ok(json!({
        "alert": alert,
        "published": published,
        "outbox": queued,
        "dead_lettered": flushed.dead.len(),
        "refused": refused,
    }))
}
