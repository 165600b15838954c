//! Online/stale counts kept as messages arrive (issue 13: no O(fleet) scan per frame): each
//! vehicle counted under the second it was last heard from. A vehicle is stale once that
//! second is before the cutoff second, so the stale count is the total minus the vehicles of
//! the last `stale_after` seconds — a walk over at most that many buckets, whatever the size
//! of the fleet.

use std::collections::BTreeMap;

/// Vehicles by the second they were last heard from.
#[derive(Debug, Clone, Default)]
pub struct Census {
    total: u64,
    by_second: BTreeMap<i64, u32>,
}

impl Census {
    /// Counts a vehicle last heard from in second `s`.
    pub fn add(&mut self, s: i64) {
        self.total += 1;
        *self.by_second.entry(s).or_default() += 1;
    }

    /// Forgets a vehicle last heard from in second `s`.
    pub fn sub(&mut self, s: i64) {
        if let Some(n) = self.by_second.get_mut(&s) {
            self.total -= 1;
            *n -= 1;
            if *n == 0 {
                self.by_second.remove(&s);
            }
        }
    }

    /// A vehicle was heard from again.
    pub fn moved(&mut self, from: i64, to: i64) {
        if from != to {
            self.sub(from);
            self.add(to);
        }
    }

    /// Vehicles counted.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Vehicles last heard from before second `cutoff`.
    pub fn before(&self, cutoff: i64) -> u64 {
        self.total
            - self
                .by_second
                .range(cutoff..)
                .map(|(_, n)| u64::from(*n))
                .sum::<u64>()
    }

    /// The earliest second by which at least `n` vehicles were last heard from (the last
    /// second when fewer are counted).
    pub fn second_holding(&self, n: u64) -> i64 {
        let mut seen = 0;
        for (s, k) in &self.by_second {
            seen += u64::from(*k);
            if seen >= n {
                return *s;
            }
        }
        self.by_second
            .keys()
            .next_back()
            .copied()
            .unwrap_or(i64::MIN)
    }

    /// The earliest second any vehicle was last heard from.
    pub fn oldest(&self) -> Option<i64> {
        self.by_second.keys().next().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_moves_and_removals() {
        let mut c = Census::default();
        for s in [1, 1, 2, 5, 9] {
            c.add(s);
        }
        assert_eq!(
            (c.total(), c.before(2), c.before(6), c.before(100)),
            (5, 2, 4, 5)
        );
        c.moved(1, 10);
        c.sub(9);
        c.sub(42); // not counted: ignored
        assert_eq!((c.total(), c.before(2), c.before(10)), (4, 1, 3));
        assert_eq!(c.oldest(), Some(1));
        assert_eq!((c.second_holding(1), c.second_holding(2)), (1, 2));
        assert_eq!((c.second_holding(4), c.second_holding(9)), (10, 10));
    }
}
