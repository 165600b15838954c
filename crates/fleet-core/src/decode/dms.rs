//! The AWS DMS change envelope (SPEC §8): `{"data": {…}, "metadata": {"operation": …}}`.
//!
//! SOCAR's car and device tables reach Kafka this way: a full `load` when the task starts,
//! then `insert` / `update` / `delete` per row change. The record's columns are in `data`;
//! `metadata` says what happened to the row. DMS also sends `control` records (table created,
//! truncated, …) that carry no row: they are not errors and change nothing.

use super::json::as_text;
use super::{Decoded, Decoder, DeviceMapping, Rejection, check_id, reject, short};
use fleet_model::{RejectReason, TopicKind};
use serde_json::{Map, Value};

/// What a DMS record does to its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmsOp {
    /// `load`, `insert` or `update` (or no operation given): the row as it now is.
    Upsert,
    /// `delete`: the row is gone; `data` still carries its key columns.
    Delete,
    /// A `control` record (DDL, truncation): no row.
    Control,
}

/// Takes the envelope apart: the row (`data`) and what happened to it.
pub fn unwrap(envelope: &Map<String, Value>) -> Result<(&Map<String, Value>, DmsOp), Rejection> {
    let meta = envelope.get("metadata").and_then(Value::as_object);
    let record_type = meta
        .and_then(|m| m.get("record-type"))
        .and_then(Value::as_str);
    if record_type.is_some_and(|t| t.eq_ignore_ascii_case("control")) {
        return Ok((empty(), DmsOp::Control));
    }
    let op = match meta.and_then(|m| m.get("operation")) {
        None | Some(Value::Null) => DmsOp::Upsert,
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "load" | "insert" | "update" => DmsOp::Upsert,
            "delete" => DmsOp::Delete,
            // DMS's own control operations when record-type was left out.
            "create-table" | "drop-table" | "rename-table" | "truncate-table" | "add-column"
            | "drop-column" | "column-type-change" => DmsOp::Control,
            _ => {
                return Err(reject(
                    RejectReason::InvalidField,
                    format!(
                        "DMS operation {} is not load/insert/update/delete",
                        short(&Value::String(s.clone()))
                    ),
                ));
            }
        },
        Some(v) => {
            return Err(reject(
                RejectReason::InvalidField,
                format!("DMS metadata.operation {} is not text", short(v)),
            ));
        }
    };
    match envelope.get("data") {
        Some(Value::Object(data)) => Ok((data, op)),
        Some(v) => Err(reject(
            RejectReason::InvalidField,
            format!("DMS data {} is not an object", short(v)),
        )),
        None => Err(reject(
            RejectReason::InvalidField,
            "not a DMS envelope: no `data` object",
        )),
    }
}

/// The (empty) row of a control record.
fn empty() -> &'static Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(Map::new)
}

impl Decoder {
    /// A DMS `delete`: the record goes for metadata and mappings; a deleted telemetry row
    /// means nothing to a live map.
    pub(super) fn deleted(
        &self,
        data: &Map<String, Value>,
        key: Option<&str>,
    ) -> Result<Decoded, Rejection> {
        match self.kind {
            TopicKind::Info => Ok(Decoded::InfoDelete(self.vehicle_id(data, key)?)),
            TopicKind::Device => Ok(Decoded::Device(DeviceMapping {
                device: self.vehicle_id(data, key)?,
                vehicle: None,
            })),
            _ => Ok(Decoded::Tombstone),
        }
    }

    pub(super) fn device(
        &self,
        obj: &Map<String, Value>,
        key: Option<&str>,
    ) -> Result<Decoded, Rejection> {
        let device = self.vehicle_id(obj, key)?;
        let vehicle = self
            .get("vehicle", obj)
            .and_then(as_text)
            .ok_or_else(|| reject(RejectReason::MissingId, "device row has no vehicle id"))?;
        check_id(&vehicle)?;
        Ok(Decoded::Device(DeviceMapping {
            device,
            vehicle: Some(vehicle),
        }))
    }
}
