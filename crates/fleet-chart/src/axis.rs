//! The time axis: tick positions on round local times, and their labels.

/// Tick steps to choose from (ms): round minutes and hours, then days.
const STEPS_MS: [i64; 14] = [
    60_000,
    2 * 60_000,
    5 * 60_000,
    10 * 60_000,
    15 * 60_000,
    30 * 60_000,
    3_600_000,
    2 * 3_600_000,
    3 * 3_600_000,
    6 * 3_600_000,
    12 * 3_600_000,
    86_400_000,
    2 * 86_400_000,
    7 * 86_400_000,
];

/// Above this span labels carry the date too: HH:MM alone repeats every day.
const DATED_SPAN_MS: i64 = 86_400_000;

/// Tick times for `[from, to]`: both ends (so the range is always readable at a glance) and
/// round times between them, at most about `max_ticks`, none crowding an end's label.
pub(crate) fn ticks(from: i64, to: i64, offset_ms: i64, max_ticks: usize) -> Vec<i64> {
    let span = (to - from).max(1);
    let max_ticks = max_ticks.max(2) as i64;
    let step = STEPS_MS
        .iter()
        .copied()
        .find(|s| span / s < max_ticks)
        .unwrap_or(STEPS_MS[STEPS_MS.len() - 1]);
    // Keep round ticks at least 40 % of a step from either end, so labels do not overlap.
    let keep_off = step * 2 / 5;
    let mut out = vec![from];
    // First multiple of `step` in local time after `from`.
    let mut t = (from + offset_ms).div_euclid(step) * step + step - offset_ms;
    while t < to {
        if t - from >= keep_off && to - t >= keep_off {
            out.push(t);
        }
        t += step;
    }
    if to > from {
        out.push(to);
    }
    out
}

/// A tick's label: `HH:MM`, with the date (`MM-DD HH:MM`) for spans over a day.
pub(crate) fn label(ts_ms: i64, offset_ms: i64, span_ms: i64) -> String {
    let Some(t) = chrono::DateTime::from_timestamp_millis(ts_ms.saturating_add(offset_ms)) else {
        return String::new();
    };
    if span_ms > DATED_SPAN_MS {
        t.format("%m-%d %H:%M").to_string()
    } else {
        t.format("%H:%M").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;
    const M: i64 = 60_000;

    #[test]
    fn ticks_keep_both_ends_and_round_times_between() {
        let from = 1_700_000_000_000 + 7 * M + 13_000; // not round
        let to = from + H;
        let t = ticks(from, to, 0, 8);
        assert_eq!((t[0], t[t.len() - 1]), (from, to));
        for inner in &t[1..t.len() - 1] {
            assert_eq!(inner % (10 * M), 0, "round: {inner}");
            assert!(*inner > from && *inner < to);
        }
        assert!(t.len() <= 10, "{t:?}");
        assert!(t.windows(2).all(|w| w[0] < w[1]), "{t:?}");
    }

    #[test]
    fn ticks_are_round_in_local_time() {
        let from = 1_700_000_000_000;
        let offset = 9 * H + 30 * M; // UTC+09:30
        for t in &ticks(from, from + 6 * H, offset, 7)[1..] {
            if *t != from + 6 * H {
                assert_eq!((t + offset) % H, 0);
            }
        }
    }

    #[test]
    fn labels_are_hh_mm_and_dated_past_a_day() {
        let t = 1_700_000_000_000; // 2023-11-14T22:13:20Z
        assert_eq!(label(t, 0, H), "22:13");
        assert_eq!(label(t, 2 * H, H), "00:13");
        assert_eq!(label(t, 0, 72 * H), "11-14 22:13");
        assert_eq!(label(i64::MAX, 0, H), "");
    }

    #[test]
    fn a_degenerate_range_has_one_tick() {
        assert_eq!(ticks(5, 5, 0, 6), vec![5]);
    }
}
