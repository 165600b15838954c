//! `fleetctl bench ingest --cdc`: the same pipeline on SOCAR's CDC shape (issue 12): DMS
//! car and device tables, 3 devices per car, device-keyed telemetry read as both position
//! and status, the schema registry (always on) and 10 threshold rules. Its rate is reported
//! against the plain-positions figure and the bare consumer of the same run.

use super::{create_topics, prefill, rt, run_ingest};
use crate::error::CliError;
use fleet_core::config::topics_toml;
use fleet_core::sim::{CdcOptions, SimTopics, cdc_mapping};

/// A pre-filled CDC world: its config (topics and rules) and how many messages it holds.
pub(super) struct CdcWorld {
    /// `[[kafka.topics]]` and `[[alerts.thresholds]]` for the ingest under test.
    pub toml: String,
    /// Messages on every topic the ingest reads (telemetry, cars, devices).
    pub messages: u64,
    /// Telemetry messages.
    pub telemetry: u64,
}

/// Creates the CDC topics (telemetry with `partitions`) and pre-fills `messages` telemetry
/// messages from `cars` cars with 3 devices each, a firmware change halfway.
pub(super) async fn prefill_cdc(
    brokers: &str,
    partitions: i32,
    messages: u64,
    cars: u32,
) -> Result<CdcWorld, CliError> {
    let stamp = fleet_core::store::now_ms();
    let name = |t: &str| format!("bench.cdc-{t}.{stamp}");
    let (tele, cars_t, devs, aux) = (
        name("telemetry"),
        name("carinfo"),
        name("deviceinfo"),
        name("aux"),
    );
    create_topics(
        brokers,
        &[(&tele, partitions), (&cars_t, 1), (&devs, 1), (&aux, 1)],
    )
    .await?;
    eprintln!(
        "bench: pre-filling {messages} CDC telemetry messages from {cars} cars × 3 devices …"
    );
    let topics = SimTopics {
        gps: tele.clone(),
        status: aux.clone(),
        info: cars_t.clone(),
        alerts: aux.clone(),
        devices: devs.clone(),
    };
    // Halfway through at 1 Hz: the sim covers about messages / cars seconds.
    let halfway = (messages / u64::from(cars.max(1))) as f64 / 2.0;
    let cdc = CdcOptions {
        firmware_change_s: Some(halfway),
        devices_per_car: Some(3),
    };
    let fill = prefill(brokers, cars, messages, topics, Some(cdc)).await?;
    let count = |t: &str| fill.produced.get(t).copied().unwrap_or(0);
    let telemetry = count(&tele);
    let messages = telemetry + count(&cars_t) + count(&devs);
    let mut toml = topics_toml(&cdc_mapping(&cars_t, &devs, &tele));
    // Ten threshold rules on nested fields, some of which fire.
    for (i, (field, op, v)) in [
        ("engine.temp_c", "above", "105"),
        ("engine.temp_c", "below", "-20"),
        ("engine.rpm", "above", "6500"),
        ("engine.fuel", "below", "3"),
        ("engine.battery", "below", "5"),
        ("gps.speed", "above", "140"),
        ("tpms.fl", "below", "1.8"),
        ("tpms.fr", "below", "1.8"),
        ("tpms.rl", "below", "1.7"),
        ("tpms.rr", "below", "1.7"),
    ]
    .iter()
    .enumerate()
    {
        toml.push_str(&format!(
            "\n[[alerts.thresholds]]\nname = \"bench_rule_{i}\"\nfield = \"{field}\"\n{op} = {v}\nfor_s = 10\nseverity = \"warning\"\n"
        ));
    }
    Ok(CdcWorld {
        toml,
        messages,
        telemetry,
    })
}

/// One ingest of the CDC world; returns its rate (messages/s) and peak RSS (MiB).
pub(super) async fn ingest_cdc(brokers: &str, w: &CdcWorld) -> Result<(f64, f64), CliError> {
    let v = run_ingest(brokers, &[], &w.toml, w.messages).await?;
    let rate = v["rate"]
        .as_f64()
        .ok_or_else(|| rt("ingest reported no rate"))?;
    Ok((rate, v["peak_rss_mib"].as_f64().unwrap_or(0.0)))
}
