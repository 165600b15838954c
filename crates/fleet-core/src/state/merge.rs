//! Metadata merged column by column (SPEC §8: several info topics, newest wins).

use fleet_model::VehicleInfo;

/// `known` with the columns `update` carried (see [`LiveFleet::apply_info`]); `extra` fields
/// merge key by key.
pub fn merge_info(mut known: VehicleInfo, update: &VehicleInfo) -> VehicleInfo {
    fn col(known: &mut Option<String>, update: &Option<String>) {
        match update.as_deref() {
            None => {}
            Some("") => *known = None,
            Some(s) => *known = Some(s.to_string()),
        }
    }
    col(&mut known.plate, &update.plate);
    col(&mut known.model, &update.model);
    col(&mut known.driver, &update.driver);
    col(&mut known.group, &update.group);
    known.extra = merge_extra(&known.extra, &update.extra);
    known
}

/// Merges two flattened JSON objects (text); the update's keys win.
fn merge_extra(known: &str, update: &str) -> String {
    type Obj = serde_json::Map<String, serde_json::Value>;
    let parse = |t: &str| serde_json::from_str::<Obj>(t).unwrap_or_default();
    if known.is_empty() || known == "{}" {
        return update.to_string();
    }
    if update.is_empty() || update == "{}" {
        return known.to_string();
    }
    let mut out = parse(known);
    out.extend(parse(update));
    serde_json::to_string(&out).unwrap_or_else(|_| update.to_string())
}
