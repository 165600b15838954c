//! One vehicle's life: driving, stopping at lights, parking, its body state (engine, doors,
//! headlights, fuel, battery, temperature) and its telematics unit (what it reports and when,
//! including going silent).
//!
//! Each vehicle owns its random stream, so what it does never depends on the other vehicles or
//! on the order they are stepped in: the fleet is reproducible from the seed alone.

use super::SimMessage;
use super::city::City;
use super::drive::{Arrival, Motion};
use super::names::Info;
use super::payload;
use fleet_model::TopicKind;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

mod device;

use device::STATUS_EVERY_MS;

/// Physics resolution: long ticks (low rates) are integrated in steps of at most this.
const SUBSTEP_MS: i64 = 250;
/// Parked vehicles report their position on every n-th tick only (they are not moving).
const PARKED_REPORT_EVERY: u64 = 10;
/// Share of harsh-braking events that the accelerometer reports as a possible crash.
const CRASH_AFTER_HARSH: f64 = 0.005;
const AMBIENT_C: f64 = 18.0;
const ENGINE_HOT_C: f64 = 90.0;

/// Where the vehicle is in its drive/park cycle. Times are sim ms.
#[derive(Debug, Clone, Copy)]
enum Phase {
    Driving,
    AtLight {
        until: i64,
    },
    /// Engine off. Doors open for a moment after stopping; headlights may be left on.
    Parked {
        until: i64,
        doors_open_at: i64,
        doors_close_at: i64,
        lights_off_at: i64,
    },
    /// Driver getting in: doors open, engine still off.
    Boarding {
        until: i64,
    },
    /// Engine on, doors closed, not moving yet.
    Starting {
        until: i64,
    },
}

/// Driver habits, fixed per vehicle.
#[derive(Debug, Clone, Copy)]
struct Traits {
    /// 0.6 (calm) to 1.6 (aggressive): speed, acceleration, harsh braking, speeding.
    aggr: f64,
    /// Drives with headlights on in daylight too.
    lights_habit: bool,
    /// Prone to leaving the headlights on when parking.
    forgetful: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Vehicle {
    pub id: String,
    pub info: Info,
    index: u32,
    rng: ChaCha8Rng,
    traits: Traits,
    motion: Motion,
    phase: Phase,
    trip_ends: i64,
    engine: bool,
    doors_open: bool,
    headlights: bool,
    fuel: f64,
    battery: f64,
    temp_c: f64,
    silent_until: i64,
    was_silent: bool,
    next_status: i64,
    changed: bool,
    ticks: u64,
    pub lat: f64,
    pub lng: f64,
}

/// Local solar time is close enough to decide whether it is dark.
fn is_night(now: i64, lng: f64) -> bool {
    let hour = (now as f64 / 3_600_000.0 + lng / 15.0).rem_euclid(24.0);
    !(6.0..19.0).contains(&hour)
}

/// Trip length before the driver looks for a parking spot.
fn trip_ms(rng: &mut ChaCha8Rng) -> i64 {
    rng.random_range(3 * 60_000..25 * 60_000)
}

impl Vehicle {
    pub fn new(index: u32, city: &City, mut rng: ChaCha8Rng, now: i64) -> Self {
        let info = Info::random(&mut rng);
        let traits = Traits {
            aggr: rng.random_range(0.6..1.6),
            lights_habit: rng.random_bool(0.25),
            forgetful: rng.random_bool(0.1),
        };
        let parked = rng.random_bool(0.35);
        let motion = Motion::new(city, &mut rng, now, traits.aggr, !parked);
        // A few percent start with a weak battery or an almost empty tank, as real fleets do.
        let battery = if rng.random_bool(0.03) {
            rng.random_range(6.0..14.0)
        } else {
            rng.random_range(55.0..100.0)
        };
        let fuel = if rng.random_bool(0.04) {
            rng.random_range(3.0..10.0)
        } else {
            rng.random_range(20.0..100.0)
        };
        let mut v = Vehicle {
            id: format!("car-{:05}", u64::from(index) + 1),
            info,
            index,
            traits,
            motion,
            phase: Phase::Driving,
            trip_ends: now + trip_ms(&mut rng),
            engine: !parked,
            doors_open: false,
            headlights: false,
            fuel,
            battery,
            temp_c: if parked { AMBIENT_C } else { ENGINE_HOT_C },
            silent_until: i64::MIN,
            was_silent: false,
            next_status: now + rng.random_range(0..STATUS_EVERY_MS),
            changed: false,
            ticks: 0,
            lat: 0.0,
            lng: 0.0,
            rng,
        };
        v.update_position(city);
        if parked {
            let left_on = v.rng.random_bool(0.02);
            v.headlights = left_on;
            let until = now + v.rng.random_range(0..20 * 60_000);
            v.phase = Phase::Parked {
                until,
                doors_open_at: i64::MAX,
                doors_close_at: i64::MAX,
                lights_off_at: if left_on { until } else { i64::MAX },
            };
        } else {
            v.headlights = v.lights_wanted(now);
        }
        if v.rng.random_bool(0.004) {
            v.silent_until = now + v.rng.random_range(60_000..600_000);
            v.was_silent = true;
        }
        v
    }

    /// Reporting = not silent; silent devices are also missing from the Redis geo set.
    pub fn is_reporting(&self, now: i64) -> bool {
        now >= self.silent_until
    }

    fn lights_wanted(&self, now: i64) -> bool {
        self.traits.lights_habit || is_night(now, self.lng)
    }

    fn update_position(&mut self, city: &City) {
        (self.lat, self.lng) = city.to_lat_lng(self.motion.local(city));
    }

    fn set_engine(&mut self, on: bool) {
        self.changed |= self.engine != on;
        self.engine = on;
    }
    fn set_doors(&mut self, open: bool) {
        self.changed |= self.doors_open != open;
        self.doors_open = open;
    }
    fn set_lights(&mut self, on: bool) {
        self.changed |= self.headlights != on;
        self.headlights = on;
    }

    /// Advances the vehicle from `t0` by `dt` ms and appends what its device sent.
    pub fn advance(&mut self, city: &City, t0: i64, dt: i64, out: &mut Vec<SimMessage>) {
        let end = t0 + dt;
        let mut t = t0;
        while t < end {
            let h = (end - t).min(SUBSTEP_MS);
            t += h;
            self.substep(city, t, h, out);
            if self.changed && self.is_reporting(t) {
                self.emit_status(t, out);
            }
            self.changed = false;
        }
        self.ticks += 1;
        self.update_position(city);
        if !self.is_reporting(end) {
            return;
        }
        if self.was_silent {
            // Back online: devices send their state first thing.
            self.was_silent = false;
            self.emit_status(end, out);
        } else if end >= self.next_status {
            self.emit_status(end, out);
        }
        let parked = !self.engine;
        if !parked || (self.ticks + u64::from(self.index)).is_multiple_of(PARKED_REPORT_EVERY) {
            out.push(SimMessage {
                kind: TopicKind::Position,
                key: self.id.clone(),
                payload: payload::position(
                    self.lat,
                    self.lng,
                    end,
                    self.motion.v * 3.6,
                    self.motion.heading,
                ),
                ts_ms: end,
            });
        }
    }

    fn substep(&mut self, city: &City, now: i64, h_ms: i64, out: &mut Vec<SimMessage>) {
        let h = h_ms as f64 / 1000.0;
        let aggr = self.traits.aggr;
        match self.phase {
            Phase::Driving => {
                let park = now >= self.trip_ends;
                let step = self.motion.step(city, &mut self.rng, now, h, aggr, park);
                let km = step.dist_m / 1000.0;
                self.fuel -= km * if self.info.electric { 0.2 } else { 0.15 };
                self.battery -= km * 0.03;
                if step.harsh && self.rng.random_bool(CRASH_AFTER_HARSH) {
                    self.emit_alert(now, "crash_detected", out);
                }
                match step.arrival {
                    Arrival::None => {}
                    Arrival::Light(ms) => self.phase = Phase::AtLight { until: now + ms },
                    Arrival::Parked => self.park(now),
                }
                if matches!(self.phase, Phase::Driving) {
                    // Dusk and dawn switch the lights while driving.
                    let wanted = self.lights_wanted(now);
                    self.set_lights(wanted);
                }
            }
            Phase::AtLight { until } => {
                if now >= until {
                    let park = now >= self.trip_ends;
                    self.motion.enter_next(city, &mut self.rng, now, aggr, park);
                    self.phase = Phase::Driving;
                }
            }
            Phase::Parked {
                until,
                doors_open_at,
                doors_close_at,
                lights_off_at,
            } => {
                if now >= doors_open_at && now < doors_close_at {
                    self.set_doors(true);
                } else if now >= doors_close_at {
                    self.set_doors(false);
                }
                if now >= lights_off_at {
                    self.set_lights(false);
                }
                if self.headlights {
                    // Headlights drain a 12 V battery by roughly half a percent per minute.
                    self.battery -= 0.01 * h;
                }
                if now >= until {
                    self.set_doors(true);
                    self.phase = Phase::Boarding {
                        until: now + self.rng.random_range(3_000..9_000),
                    };
                }
            }
            Phase::Boarding { until } => {
                if now >= until {
                    self.service_at_depart();
                    self.set_doors(false);
                    self.set_engine(true);
                    let lights = self.lights_wanted(now);
                    self.set_lights(lights);
                    self.phase = Phase::Starting {
                        until: now + self.rng.random_range(2_000..6_000),
                    };
                }
            }
            Phase::Starting { until } => {
                if now >= until {
                    self.motion.unpark();
                    self.trip_ends = now + trip_ms(&mut self.rng);
                    self.phase = Phase::Driving;
                }
            }
        }
        self.fuel = self.fuel.max(0.0);
        self.battery = self.battery.max(0.0);
        if self.engine && !self.info.electric {
            self.fuel = (self.fuel - 0.0003 * h).max(0.0); // idling burns a little too
        }
        let (goal, tau) = if self.engine {
            (ENGINE_HOT_C, 120.0)
        } else {
            (AMBIENT_C, 900.0)
        };
        self.temp_c += (goal - self.temp_c) * (1.0 - (-h / tau).exp());
        self.device_events(now, h, out);
    }

    /// Parking: engine off at once, doors open a moment later; headlights normally go off
    /// with the engine, but forgetful drivers sometimes leave them on for minutes.
    fn park(&mut self, now: i64) {
        self.set_engine(false);
        let r = &mut self.rng;
        let minutes: f64 = match r.random_range(0..10) {
            0..6 => r.random_range(1.0..8.0),
            6..9 => r.random_range(8.0..25.0),
            _ => r.random_range(25.0..60.0),
        };
        // Refuelling and battery service take a while.
        let minutes = if self.fuel < 10.0 || self.battery < 5.0 {
            minutes.max(6.0)
        } else {
            minutes
        };
        let doors_open_at = now + r.random_range(1_000..4_000);
        let doors_close_at = doors_open_at + r.random_range(5_000..30_000);
        let left_on =
            self.headlights && r.random_bool(if self.traits.forgetful { 0.4 } else { 0.03 });
        let lights_off_at = if left_on {
            now + r.random_range(3 * 60_000..25 * 60_000)
        } else {
            now
        };
        self.set_lights(left_on);
        self.phase = Phase::Parked {
            until: now + (minutes * 60_000.0) as i64,
            doors_open_at,
            doors_close_at,
            lights_off_at,
        };
    }

    /// A stop with an almost empty tank or a dead battery was a fuel / service stop.
    fn service_at_depart(&mut self) {
        if self.fuel < 10.0 {
            self.fuel = self.rng.random_range(90.0..100.0);
        }
        if self.battery < 5.0 {
            self.battery = self.rng.random_range(85.0..100.0);
        }
    }
}
