//! `fleetctl bench rules`: what fleetdash's own alert rules cost. The same pre-filled
//! positions + status messages (20,000 vehicles) are drained with all rules off and with all
//! rules on (plus geofences), alternating, in the same run. Target: ≤ 15 % lower throughput.

use super::{broker, create_topics, median, ok, prefill, rt, run_ingest};
use crate::cli::BenchRulesArgs;
use crate::error::CliError;
use fleet_core::sim::{self, SimTopics};
use serde_json::{Value, json};

/// Geofences around the simulator's city (Seoul Gangnam): vehicles cross them all the time.
const FENCES: &str = r#"
[[alerts.geofences]]
name = "depot-north"
center = [37.5079, 127.0276]
radius_m = 1500
alert_on = "both"

[[alerts.geofences]]
name = "depot-south"
center = [37.4879, 127.0276]
radius_m = 1200

[[alerts.geofences]]
name = "east-district"
points = [[37.48, 127.035], [37.515, 127.035], [37.515, 127.07], [37.48, 127.07]]
alert_on = "enter"
"#;

pub async fn rules(a: BenchRulesArgs) -> Result<Value, CliError> {
    let (brokers, _guard) = broker(&a.brokers).await?;
    let stamp = fleet_core::store::now_ms();
    let (gps, status, aux) = (
        format!("bench.gps.{stamp}"),
        format!("bench.status.{stamp}"),
        format!("bench.aux.{stamp}"),
    );
    create_topics(&brokers, &[(&gps, 3), (&status, 3), (&aux, 1)]).await?;
    eprintln!(
        "bench: pre-filling {} positions (+ status) from {} vehicles …",
        a.messages, a.vehicles
    );
    let topics = SimTopics {
        gps: gps.clone(),
        status: status.clone(),
        info: aux.clone(),
        alerts: aux.clone(),
        devices: aux.clone(),
    };
    let fill = prefill(&brokers, a.vehicles, a.messages, topics, None).await?;
    let expected = fill.produced.get(&gps).copied().unwrap_or(0)
        + fill.produced.get(&status).copied().unwrap_or(0);
    let topics = [(gps.as_str(), "position"), (status.as_str(), "status")];
    let (mut off, mut on, mut raised) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..a.runs {
        // Alternate the order so neither side always runs on a warmer page cache.
        for rules_on in if run % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        } {
            let extra = if rules_on {
                format!("[alerts]\nenabled = true\n{FENCES}")
            } else {
                "[alerts]\nenabled = false\n".to_string()
            };
            let v = run_ingest(&brokers, &topics, &extra, expected).await?;
            let rate = v["rate"].as_f64().unwrap_or(0.0);
            if rules_on {
                let c = &v["cache"]["alerts"];
                raised.push(
                    (c["open"].as_i64().unwrap_or(0) + c["resolved"].as_i64().unwrap_or(0)) as f64,
                );
                on.push(rate);
            } else {
                off.push(rate);
            }
            eprintln!(
                "bench: run {}/{}: rules {}: {rate:.0} msg/s",
                run + 1,
                a.runs,
                if rules_on { "on " } else { "off" }
            );
        }
    }
    let (r_off, r_on, n) = (median(&mut off), median(&mut on), median(&mut raised));
    let overhead = 1.0 - r_on / r_off;
    // The end-to-end figures are bound by the broker's fetch rate, which can hide the rules'
    // CPU cost; so also time the rules alone on the same kind of messages.
    let ns = rule_cpu_ns(a.vehicles)?;
    let share = ns / (1e9 / r_off);
    eprintln!(
        "\nbench rules — {expected} messages (positions + status), {} vehicles (medians)",
        a.vehicles
    );
    eprintln!("  ingest, rules off (baseline)  {r_off:>10.0} msg/s");
    eprintln!(
        "  ingest, all rules + 3 fences  {r_on:>10.0} msg/s   ({n:.0} alerts raised or resolved)"
    );
    eprintln!(
        "  throughput cost of the rules  {:>10.1} %       target ≤ 15 %   {}",
        overhead * 100.0,
        ok(overhead <= 0.15)
    );
    eprintln!(
        "  rules alone (CPU)             {ns:>10.0} ns/msg  = {:.1} % of the per-message time at the baseline rate",
        share * 100.0
    );
    Ok(json!({
        "messages": expected,
        "rules_off_rate_median": r_off,
        "rules_on_rate_median": r_on,
        "overhead": overhead,
        "alerts_median": n,
        "rules_cpu_ns_per_message": ns,
        "rules_cpu_share_of_baseline": share,
        "runs": {"off": off, "on": on},
        "targets": {"overhead_le_15pct": overhead <= 0.15},
    }))
}

/// Median over 3 rounds of the rules' CPU time per message (ns), on 10 minutes of simulated
/// telemetry from `vehicles` vehicles, decoded as the engine would, all rules + fences on.
fn rule_cpu_ns(vehicles: u32) -> Result<f64, CliError> {
    use fleet_core::config::{Config, TopicConfig};
    use fleet_core::decode::{Decoded, Decoder, RawMessage};
    use fleet_core::rules::RuleEngine;
    use fleet_model::TopicKind;
    let cfg = Config::parse(
        &format!("[alerts]\n{FENCES}"),
        std::path::Path::new("bench"),
    )
    .map_err(rt)?;
    let decoder = |kind| {
        Decoder::new(&TopicConfig {
            name: String::new(),
            kind,
            fields: Default::default(),
            format: Default::default(),
        })
    };
    let (dp, ds) = (decoder(TopicKind::Position), decoder(TopicKind::Status));
    let mut fleet = sim::Fleet::new(7, vehicles, sim::DEFAULT_CENTER, 5.0, 1_700_000_000_000);
    let mut msgs = Vec::new();
    let mut out = Vec::new();
    for _ in 0..600 {
        fleet.step(1000, &mut out);
        for m in out.drain(..) {
            let raw = RawMessage {
                key: Some(m.key.as_bytes()),
                payload: Some(&m.payload),
                kafka_ts_ms: Some(m.ts_ms),
            };
            let d = match m.kind {
                TopicKind::Position => dp.decode(raw, m.ts_ms),
                TopicKind::Status => ds.decode(raw, m.ts_ms),
                _ => continue,
            };
            if let Ok(d) = d {
                msgs.push(d);
            }
        }
        if msgs.len() >= 2_000_000 {
            break;
        }
    }
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let mut rules = RuleEngine::new(&cfg.alerts, 0);
        let mut raised = Vec::new();
        let t = std::time::Instant::now();
        for d in &msgs {
            match d {
                Decoded::Position(p) => rules.on_position(p, &mut raised),
                Decoded::Status(s) => rules.on_status(s, &mut raised),
                _ => {}
            }
        }
        let _ = rules.take_dirty();
        rounds.push(t.elapsed().as_nanos() as f64 / msgs.len().max(1) as f64);
    }
    Ok(median(&mut rounds))
}
