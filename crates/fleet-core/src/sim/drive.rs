//! How one vehicle moves along the street grid.
//!
//! The model is deliberately simple but physical: a speed target per block (a fraction of the
//! limit that depends on the driver), bounded acceleration, and braking planned from the
//! distance left to the next point where the vehicle must be slower (a turn, a red light, a
//! parking spot). That gives the smooth speed curves, the stop-and-go at intersections and the
//! occasional hard stop that real telematics show, and keeps every position on a street.

use super::city::{City, Node};
use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;

/// Comfortable braking, m/s²: what drivers plan with.
const BRAKE_COMFORT: f64 = 2.5;
/// Hardest braking of a harsh-braking event (≈ 0.9 g).
const BRAKE_MAX: f64 = 9.0;
/// Firm braking, still below the harsh-braking rule's 4 m/s²: what a driver does when a
/// stop comes up late.
const BRAKE_FIRM: f64 = 3.0;
/// The deceleration stops are planned with (below [`BRAKE_COMFORT`], see `step`).
const BRAKE_PLAN: f64 = 2.0;
/// Mean driving time (above 40 km/h) between two harsh-braking events of an average driver:
/// about three a day for a car driven most of the day, as telematics fleets report. It was
/// 20 minutes, which made the demo's feed mostly harsh braking (issue 12: 1,488 open alerts
/// after two minutes at 20,000 vehicles).
const HARSH_MEAN_S: f64 = 12_000.0;
/// Chance that entering an arterial block starts a speeding episode (scaled by aggressiveness).
const SPEEDING_CHANCE: f64 = 0.002;
/// Snap to a stop point when this close, so vehicles do not creep for ever.
const STOP_SNAP_M: f64 = 0.3;

/// What happens at the far end of the current block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum End {
    /// Straight on.
    Through,
    /// Turn (or U-turn at the city edge) at this speed in m/s.
    Turn(f64),
    /// Red light or stop sign: stop and wait this many ms.
    Light(i64),
}

/// Why a driving step ended with the vehicle standing still.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Arrival {
    /// Still moving (or momentarily slow).
    None,
    /// Stopped at an intersection for this many ms.
    Light(i64),
    /// Reached the chosen parking spot.
    Parked,
}

/// Result of one driving step.
pub(crate) struct StepOut {
    pub arrival: Arrival,
    /// Metres travelled (drains fuel and battery).
    pub dist_m: f64,
    /// A harsh-braking event started in this step.
    pub harsh: bool,
}

/// Position and kinematic state on the grid.
#[derive(Debug, Clone)]
pub(crate) struct Motion {
    pub from: Node,
    pub to: Node,
    next: Node,
    len: f64,
    /// Metres from `from` towards `to`.
    pub s: f64,
    /// Speed in m/s.
    pub v: f64,
    /// Compass heading of the current block.
    pub heading: f64,
    cruise: f64,
    next_cruise: f64,
    end: End,
    park_at: Option<f64>,
    speeding_until: i64,
    speeding_speed: f64,
    harsh_until: i64,
    harsh_decel: f64,
    harsh_floor: f64,
    /// Phase of the slow speed wobble (traffic ahead, attention), radians.
    wobble: f64,
}

/// Cruise speed on a block in m/s: 55–90 % of the limit, a little more for aggressive drivers.
fn pick_cruise(city: &City, a: Node, b: Node, rng: &mut ChaCha8Rng, aggr: f64) -> f64 {
    city.limit_kmh(a, b) * rng.random_range(0.55..0.9) * (0.85 + 0.15 * aggr) / 3.6
}

impl Motion {
    /// A random spot on a random block; `moving` vehicles start near their cruise speed.
    pub fn new(city: &City, rng: &mut ChaCha8Rng, now: i64, aggr: f64, moving: bool) -> Self {
        let from = city.random_node(rng);
        let options: Vec<Node> = city.neighbors(from).collect();
        let to = options.choose(rng).copied().unwrap_or(from);
        let len = city.edge_len(from, to);
        let cruise = pick_cruise(city, from, to, rng, aggr);
        let mut m = Motion {
            from,
            to,
            next: to,
            len,
            s: rng.random_range(0.0..=len.max(0.0)),
            v: 0.0,
            heading: city.heading(from, to),
            cruise,
            next_cruise: cruise,
            end: End::Through,
            park_at: None,
            speeding_until: i64::MIN,
            speeding_speed: 0.0,
            harsh_until: i64::MIN,
            harsh_decel: 0.0,
            harsh_floor: 0.0,
            wobble: rng.random_range(0.0..std::f64::consts::TAU),
        };
        m.plan(city, rng, now, false);
        if moving {
            let allowed = (2.0 * BRAKE_COMFORT * (m.len - m.s)).sqrt();
            m.v = (cruise * rng.random_range(0.3..1.0)).min(allowed);
        } else {
            m.park_at = Some(m.s);
        }
        m
    }

    /// True while a speeding episode is running.
    pub fn speeding(&self, now: i64) -> bool {
        now < self.speeding_until
    }

    /// Leaves a parking spot: the block's plan (turn, light) still applies.
    pub fn unpark(&mut self) {
        self.park_at = None;
        self.v = 0.0;
    }

    /// Decides what happens at the end of the current block: next block, turn speed, light.
    fn plan(&mut self, city: &City, rng: &mut ChaCha8Rng, now: i64, park: bool) {
        let speeding = self.speeding(now);
        let (from, to) = (self.from, self.to);
        let straight = Node {
            i: 2 * to.i - from.i,
            j: 2 * to.j - from.j,
        };
        let options: Vec<Node> = city.neighbors(to).filter(|n| *n != from).collect();
        let has_straight = options.contains(&straight);
        let p_straight = if speeding {
            0.97
        } else if city.is_arterial(from, to) {
            0.7
        } else {
            0.45
        };
        self.next = if options.is_empty() {
            from // dead end at the city edge: U-turn
        } else if has_straight && (options.len() == 1 || rng.random_bool(p_straight)) {
            straight
        } else {
            let turns: Vec<Node> = options.iter().copied().filter(|n| *n != straight).collect();
            turns.choose(rng).copied().unwrap_or(straight)
        };
        let next = self.next;
        self.next_cruise = pick_cruise(city, to, next, rng, 1.0);
        self.end = if next == from {
            End::Turn(8.0 / 3.6)
        } else if next != straight {
            End::Turn(rng.random_range(15.0..25.0) / 3.6)
        } else {
            End::Through
        };
        if !speeding {
            let busy = city.is_arterial(from, to) || city.is_arterial(to, next);
            if rng.random_bool(if busy { 0.35 } else { 0.12 }) {
                // Traffic lights on arterials, stop signs and yields on side streets.
                let wait_s = if busy {
                    rng.random_range(5.0..45.0)
                } else {
                    rng.random_range(1.0..4.0)
                };
                self.end = End::Light((wait_s * 1000.0) as i64);
            }
        }
        self.park_at = (park && !speeding).then(|| self.len * rng.random_range(0.25..0.75));
    }

    /// Moves onto the next block (after a light, or driving through an intersection).
    pub fn enter_next(
        &mut self,
        city: &City,
        rng: &mut ChaCha8Rng,
        now: i64,
        aggr: f64,
        park: bool,
    ) {
        self.from = self.to;
        self.to = self.next;
        self.s = 0.0;
        self.len = city.edge_len(self.from, self.to);
        self.cruise = self.next_cruise * (0.85 + 0.15 * aggr);
        self.heading = city.heading(self.from, self.to);
        if !self.speeding(now)
            && city.is_arterial(self.from, self.to)
            && rng.random_bool((SPEEDING_CHANCE * aggr).min(1.0))
        {
            self.speeding_until = now + rng.random_range(15_000..45_000);
            self.speeding_speed = rng.random_range(105.0..135.0) / 3.6;
        }
        self.plan(city, rng, now, park);
    }

    /// Advances by `h` seconds ending at `now`; `park` asks to look for a spot on the next
    /// block.
    pub fn step(
        &mut self,
        city: &City,
        rng: &mut ChaCha8Rng,
        now: i64,
        h: f64,
        aggr: f64,
        park: bool,
    ) -> StepOut {
        if self.from == self.to {
            // A city without a single block (cannot happen with validated options): stand still.
            self.v = 0.0;
            return StepOut {
                arrival: Arrival::None,
                dist_m: 0.0,
                harsh: false,
            };
        }
        let speeding = self.speeding(now);
        let mut harsh = false;
        if now >= self.harsh_until
            && self.v > 11.0
            && rng.random_bool((h / HARSH_MEAN_S * aggr).min(1.0))
        {
            harsh = true;
            self.harsh_until = now + rng.random_range(1000..2500);
            self.harsh_decel = rng.random_range(6.5..BRAKE_MAX);
            self.harsh_floor = rng.random_range(0.0..20.0) / 3.6;
        }
        let base = if speeding {
            self.speeding_speed
        } else {
            self.cruise
        };
        // Nobody holds a speed exactly: a slow ±6 % wobble, deterministic in time.
        let target = base * (1.0 + 0.06 * (now as f64 / 7_000.0 + self.wobble).sin());
        let stops = self.park_at.is_some() || matches!(self.end, End::Light(_));
        let stop_point = self.park_at.unwrap_or(self.len);
        let v_end = match (stops, self.end) {
            (true, _) => 0.0,
            (false, End::Turn(v)) => v,
            _ if speeding => self.speeding_speed,
            _ => self.next_cruise,
        };
        let dist = (stop_point - self.s).max(0.0);
        // Planned with a margin below the comfortable deceleration, so that a 250 ms step
        // can always follow the plan: planned at exactly BRAKE_COMFORT, every stop ended a
        // little late, braking ~4 m/s² in its last second (a harsh-braking alert each).
        let v_allow = (v_end * v_end + 2.0 * BRAKE_PLAN * dist).sqrt();
        let v0 = self.v;
        let a = if now < self.harsh_until {
            if v0 > self.harsh_floor {
                -self.harsh_decel
            } else {
                0.0
            }
        } else if v0 > v_allow + 0.05 {
            // Late (a short block, a light that just turned): brake as hard as needed, but as
            // drivers do, never harder than firmly. A light or a parking spot that cannot be
            // made that way is passed: through the amber, parking further on. Braking up to
            // 0.9 g here made every short block a harsh-braking alert (issue 12).
            let need = (v0 * v0 - v_end * v_end) / (2.0 * dist.max(0.5));
            if need <= BRAKE_FIRM || !stops {
                -need.min(BRAKE_FIRM)
            } else {
                if self.park_at.is_some() {
                    let further = self.s + v0 * v0 / (2.0 * BRAKE_COMFORT) + 1.0;
                    self.park_at = (further < self.len).then_some(further);
                } else {
                    self.end = End::Through;
                }
                0.0
            }
        } else {
            let accel = 1.2 + aggr * (if speeding { 1.5 } else { 0.8 });
            ((target.min(v_allow) - v0) / h).clamp(-BRAKE_COMFORT, accel)
        };
        let v1 = (v0 + a * h).max(0.0);
        self.v = v1;
        let mut travel = 0.5 * (v0 + v1) * h;
        let dist_m = travel;
        loop {
            let stops = self.park_at.is_some() || matches!(self.end, End::Light(_));
            let stop_point = self.park_at.unwrap_or(self.len);
            if stops
                && (self.s + travel >= stop_point - STOP_SNAP_M
                    || (self.v < 0.5 && stop_point - self.s < 2.0))
            {
                self.s = stop_point;
                self.v = 0.0;
                let arrival = match (self.park_at, self.end) {
                    (Some(_), _) => Arrival::Parked,
                    (None, End::Light(ms)) => Arrival::Light(ms),
                    _ => Arrival::None,
                };
                return StepOut {
                    arrival,
                    dist_m,
                    harsh,
                };
            }
            if !stops && self.s + travel >= self.len {
                travel -= self.len - self.s;
                self.enter_next(city, rng, now, aggr, park);
                continue;
            }
            self.s += travel;
            return StepOut {
                arrival: Arrival::None,
                dist_m,
                harsh,
            };
        }
    }

    /// Current position in local grid metres.
    pub fn local(&self, city: &City) -> (f64, f64) {
        city.along(self.from, self.to, self.s)
    }
}
