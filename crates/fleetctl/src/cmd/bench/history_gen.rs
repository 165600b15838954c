//! The fleet `bench history` looks back at: days of positions, status samples and alerts,
//! generated in time order (as ingestion interleaves vehicles) and written through the
//! store's writer in large transactions, kept exactly as the engine would keep them.
//!
//! The model, per vehicle: it drives about 4 h a day, in trips of 15–45 min between stops of
//! 45 min–4 h, at 20–70 km/h on a wandering heading around a city centre. Its tracker reports
//! a position every 10 s while driving and every 10 min while parked, and status every 30 s
//! while driving and with each parked report; an alert is raised about every 8 h. The first
//! `probes` vehicles are the benchmark's: they report like the simulator (1 Hz driving, 10 s
//! parked, status with each position) and the cache keeps all of it (keep-all policy); the
//! rest go through the default history policy ([`HistoryPolicy`], 25 m / 30 s) and the
//! status policy (known fields changed or 30 s passed). Samples older than
//! `downsample_after_hours` are thinned as housekeeping leaves them in a cache that has run
//! for days: the first per vehicle per `downsample_interval_s`.

use super::rt;
use crate::error::CliError;
use fleet_core::config::HistoryConfig;
use fleet_core::history::HistoryPolicy;
use fleet_core::store::{AlertOrigin, Origin, VehicleSnapshot, WriteBatch, WriterHandle};
use fleet_model::{
    Alert, AlertState, PositionSample, Severity, Source, StatusFields, StatusSample, VehicleInfo,
    alert_id,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

const SEC: i64 = 1000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;
/// Generated time per step over the whole fleet.
const SLICE_MS: i64 = 5 * MIN;
/// Rows per write: the writer commits each (with what else is queued) in one transaction.
const BATCH_ROWS: usize = 50_000;
/// Kafka partitions the rows are spread over (their coordinates are stored, and indexed).
const PARTITIONS: i32 = 12;
const CENTRE: (f64, f64) = (37.5665, 126.978);
const M_PER_DEG: f64 = 111_320.0;
const RULES: [(&str, Severity); 4] = [
    ("speeding", Severity::Warning),
    ("harsh_braking", Severity::Warning),
    ("low_battery", Severity::Critical),
    ("headlights_on", Severity::Info),
];

/// What was written.
#[derive(Debug, Default, Clone, Copy)]
pub struct Generated {
    pub positions: u64,
    pub statuses: u64,
    pub alerts: u64,
}

/// The id of the `i`-th vehicle (the probes first).
pub fn vehicle_id(i: u32, probes: u32) -> String {
    if i < probes {
        format!("probe-{i:04}")
    } else {
        format!("car-{i:05}")
    }
}

struct Car {
    id: String,
    probe: bool,
    lat: f64,
    lng: f64,
    heading: f64,
    speed: f64,
    fuel: f64,
    battery: f64,
    driving: bool,
    /// When the current trip or stop ends.
    phase_end: i64,
    next_report: i64,
    next_status: i64,
    next_alert: i64,
    moved_at: i64,
    /// Last thinned bucket written (positions, status), for samples past the thinning age.
    bucket: (i64, i64),
    last_status: Option<(i64, StatusFields)>,
}

impl Car {
    fn new(id: String, probe: bool, start: i64, rng: &mut ChaCha8Rng) -> Car {
        let r = rng.random_range(0.0..0.15f64).sqrt();
        let a = rng.random_range(0.0..std::f64::consts::TAU);
        let driving = rng.random_bool(0.17);
        Car {
            id,
            probe,
            lat: CENTRE.0 + r * a.sin(),
            lng: CENTRE.1 + r * a.cos() / CENTRE.0.to_radians().cos(),
            heading: rng.random_range(0.0..360.0),
            speed: 0.0,
            fuel: rng.random_range(30.0..100.0),
            battery: rng.random_range(60.0..100.0),
            driving,
            phase_end: start + rng.random_range(0..3 * HOUR),
            next_report: start + rng.random_range(0..10 * SEC),
            next_status: start + rng.random_range(0..30 * SEC),
            next_alert: start + rng.random_range(0..16 * HOUR),
            moved_at: start,
            bucket: (i64::MIN, i64::MIN),
            last_status: None,
        }
    }

    fn report_every(&self) -> i64 {
        match (self.probe, self.driving) {
            (true, true) => SEC,
            (true, false) => 10 * SEC,
            (false, true) => 10 * SEC,
            (false, false) => 10 * MIN,
        }
    }

    fn status_every(&self) -> i64 {
        if self.driving && !self.probe {
            30 * SEC
        } else {
            self.report_every()
        }
    }

    /// Moves the car to `t`, switching between trips and stops on the way.
    fn advance(&mut self, t: i64, rng: &mut ChaCha8Rng) {
        while self.phase_end <= t {
            self.drive_to(self.phase_end, rng);
            self.driving = !self.driving;
            self.phase_end += if self.driving {
                rng.random_range(15 * MIN..45 * MIN)
            } else {
                rng.random_range(45 * MIN..4 * HOUR)
            };
            self.speed = if self.driving {
                rng.random_range(20.0..50.0)
            } else {
                0.0
            };
        }
        self.drive_to(t, rng);
    }

    fn drive_to(&mut self, t: i64, rng: &mut ChaCha8Rng) {
        let dt_s = (t - self.moved_at) as f64 / 1000.0;
        self.moved_at = t;
        if !self.driving || dt_s <= 0.0 {
            return;
        }
        self.speed = (self.speed + rng.random_range(-4.0..4.0)).clamp(15.0, 70.0);
        self.heading = (self.heading + rng.random_range(-20.0..20.0)).rem_euclid(360.0);
        // Turn back towards the centre when far out.
        if (self.lat - CENTRE.0).abs() > 0.25 || (self.lng - CENTRE.1).abs() > 0.3 {
            let back = (CENTRE.1 - self.lng)
                .atan2(CENTRE.0 - self.lat)
                .to_degrees();
            self.heading = back.rem_euclid(360.0);
        }
        let d = self.speed / 3.6 * dt_s;
        let h = self.heading.to_radians();
        self.lat += d * h.cos() / M_PER_DEG;
        self.lng += d * h.sin() / (M_PER_DEG * self.lat.to_radians().cos());
        self.fuel = (self.fuel - d * 8e-5).max(5.0);
        self.battery = (self.battery + rng.random_range(-0.02..0.02)).clamp(20.0, 100.0);
    }

    fn position(&self, t: i64) -> PositionSample {
        PositionSample {
            vehicle: self.id.clone(),
            ts_ms: t,
            lat: self.lat,
            lng: self.lng,
            speed: Some((self.speed * 10.0).round() / 10.0),
            heading: Some(self.heading.round()),
            source: Source::Kafka,
        }
    }

    fn status(&self, t: i64) -> StatusSample {
        let known = StatusFields {
            engine_on: Some(self.driving),
            doors_open: Some(false),
            headlights_on: Some(self.driving),
            speed: Some((self.speed * 10.0).round() / 10.0),
            fuel: Some((self.fuel * 10.0).round() / 10.0),
            battery: Some((self.battery * 10.0).round() / 10.0),
        };
        let on = |b: bool| if b { "on" } else { "off" };
        let fields = format!(
            r#"{{"battery":{},"doors":"closed","engine":"{}","fuel":{},"headlights":"{}","obd.coolant_c":{},"obd.rpm":{},"speed":{},"ts":{t}}}"#,
            known.battery.unwrap_or_default(),
            on(self.driving),
            known.fuel.unwrap_or_default(),
            on(self.driving),
            if self.driving { 88 } else { 24 },
            if self.driving {
                (700.0 + self.speed * 30.0).round()
            } else {
                0.0
            },
            known.speed.unwrap_or_default(),
        );
        StatusSample {
            vehicle: self.id.clone(),
            ts_ms: t,
            known,
            fields,
        }
    }
}

/// Writes `hours` of history ending at `end_ms` for `vehicles` vehicles into the writer's
/// cache; progress on stderr.
pub async fn generate(
    w: &WriterHandle,
    vehicles: u32,
    probes: u32,
    hours: u32,
    end_ms: i64,
    seed: u64,
) -> Result<Generated, CliError> {
    let cfg = HistoryConfig::default();
    let start = end_ms - i64::from(hours) * HOUR;
    let thin_before = end_ms - (cfg.downsample_after_hours * HOUR as f64) as i64;
    let bucket_ms = ((cfg.downsample_interval_s * 1000.0) as i64).max(1);
    let status_interval = (cfg.min_interval_s * 1000.0) as i64;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut policy = HistoryPolicy::new(&cfg);
    let mut cars: Vec<Car> = (0..vehicles)
        .map(|i| Car::new(vehicle_id(i, probes), i < probes, start, &mut rng))
        .collect();
    let gps: Arc<str> = Arc::from("cars.gps.json");
    let status_topic: Arc<str> = Arc::from("cars.status.json");
    let mut offsets = vec![0i64; PARTITIONS as usize * 2];
    let mut origin = |topic: &Arc<str>, i: usize, kind: usize| {
        let p = (i % PARTITIONS as usize) as i32;
        let o = &mut offsets[kind * PARTITIONS as usize + p as usize];
        *o += 1;
        Origin {
            topic: Some(topic.clone()),
            partition: Some(p),
            offset: Some(*o),
        }
    };
    let mut out = Generated::default();
    let mut b = WriteBatch {
        infos: cars.iter().map(|c| info(&c.id, &mut rng)).collect(),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let mut slice = start;
    while slice < end_ms {
        let slice_end = (slice + SLICE_MS).min(end_ms);
        for (i, car) in cars.iter_mut().enumerate() {
            loop {
                let t = car.next_report.min(car.next_status);
                if t >= slice_end {
                    break;
                }
                car.advance(t, &mut rng);
                let thin = t < thin_before;
                if car.next_status == t {
                    car.next_status = t + car.status_every();
                    let s = car.status(t);
                    let changed = car.last_status.as_ref().is_none_or(|(_, k)| *k != s.known);
                    let kept = car.probe
                        || changed
                        || car
                            .last_status
                            .as_ref()
                            .is_none_or(|(lt, _)| t - lt >= status_interval);
                    if changed && !car.probe {
                        policy.status_changed(&car.id);
                    }
                    if kept {
                        car.last_status = Some((t, s.known.clone()));
                        if !thin
                            || std::mem::replace(&mut car.bucket.1, t / bucket_ms) != t / bucket_ms
                        {
                            b.statuses.push((s, origin(&status_topic, i, 1)));
                        }
                    }
                }
                if car.next_report == t {
                    car.next_report = t + car.report_every();
                    let p = car.position(t);
                    let kept = car.probe || policy.keep(&p);
                    if kept
                        && (!thin
                            || std::mem::replace(&mut car.bucket.0, t / bucket_ms) != t / bucket_ms)
                    {
                        b.positions.push((p, origin(&gps, i, 0)));
                    }
                }
            }
            while car.next_alert < slice_end {
                let t = car.next_alert;
                car.next_alert += rng.random_range(4 * HOUR..12 * HOUR);
                let (rule, severity) = RULES[rng.random_range(0..RULES.len())];
                b.alerts
                    .push((alert(&car.id, rule, severity, t, end_ms), AlertOrigin::Rule));
            }
        }
        if b.rows() >= BATCH_ROWS {
            out = flush(w, &mut b, out).await?;
        }
        slice = slice_end;
        if (slice - start) % (6 * HOUR) == 0 {
            eprintln!(
                "bench: generated {:>3} h of {hours} h ({} positions, {} status samples) in {:.0} s",
                (slice - start) / HOUR,
                out.positions,
                out.statuses,
                started.elapsed().as_secs_f64()
            );
        }
    }
    // The live-state snapshot the engine writes for every vehicle (the replay frame walks it).
    b.snapshots = cars
        .iter()
        .map(|c| VehicleSnapshot {
            vehicle: c.id.clone(),
            first_seen: start,
            position: Some(c.position(c.moved_at)),
            status_json: Some(c.status(c.moved_at).fields),
        })
        .collect();
    out = flush(w, &mut b, out).await?;
    w.flush().await.map_err(rt)?;
    Ok(out)
}

async fn flush(
    w: &WriterHandle,
    b: &mut WriteBatch,
    mut out: Generated,
) -> Result<Generated, CliError> {
    out.positions += b.positions.len() as u64;
    out.statuses += b.statuses.len() as u64;
    out.alerts += b.alerts.len() as u64;
    w.write(std::mem::take(b)).await.map_err(rt)?;
    Ok(out)
}

fn info(id: &str, rng: &mut ChaCha8Rng) -> VehicleInfo {
    VehicleInfo {
        vehicle: id.to_string(),
        plate: Some(format!(
            "{:02}가{:04}",
            rng.random_range(10..99),
            rng.random_range(0..10_000)
        )),
        model: Some(["Avante", "K5", "Ioniq 5", "Ray"][rng.random_range(0..4)].into()),
        driver: Some(format!("driver {}", rng.random_range(0..5_000))),
        group: Some(format!("depot-{}", rng.random_range(0..20))),
        extra: "{}".into(),
    }
}

fn alert(vehicle: &str, rule: &str, severity: Severity, t: i64, now: i64) -> Alert {
    // Alerts of the last hour are still open; older ones resolved 5 minutes after.
    let open = now - t < HOUR;
    let mut a = Alert::open(
        alert_id(rule, vehicle, t),
        vehicle.to_string(),
        rule,
        severity,
        format!("{rule} on {vehicle}"),
        t,
    );
    if !open {
        a.state = AlertState::Resolved;
        a.resolved_ms = Some(t + 5 * MIN);
    }
    a
}
