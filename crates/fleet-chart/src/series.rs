//! From the spec's series to what is drawn: panels by unit, points thinned to the pixels
//! they land on, lines broken where data is missing, and each panel's value range.

use crate::Series;

/// A series ready to draw: its index in the spec (its colour) and its line segments.
pub(crate) struct Prepared<'a> {
    pub(crate) index: usize,
    pub(crate) series: &'a Series,
    pub(crate) segments: Vec<Vec<(i64, f64)>>,
}

/// One stacked panel: the series sharing a unit, and the y range they need.
pub(crate) struct Panel<'a> {
    pub(crate) unit: &'a str,
    pub(crate) series: Vec<Prepared<'a>>,
    pub(crate) y: (f64, f64),
}

/// Groups the series with samples in `[from, to]` into panels, in order of first appearance.
/// `columns` is about the plot's width in pixels: more points than a few per column cannot
/// be seen, only drawn slowly (and make a large SVG).
pub(crate) fn panels(series: &[Series], from: i64, to: i64, columns: usize) -> Vec<Panel<'_>> {
    let mut panels: Vec<Panel<'_>> = Vec::new();
    for (index, s) in series.iter().enumerate() {
        let mut points: Vec<(i64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|(t, v)| (from..=to).contains(t) && v.is_finite())
            .collect();
        if points.is_empty() {
            continue;
        }
        points.sort_by_key(|p| p.0);
        let points = thin(&points, from, to, columns);
        let prepared = Prepared {
            index,
            series: s,
            segments: segments(&points, gap_ms(from, to)),
        };
        // A series without a unit cannot share a scale with anything.
        match panels
            .iter_mut()
            .find(|p| !s.unit.is_empty() && p.unit == s.unit)
        {
            Some(p) => p.series.push(prepared),
            None => panels.push(Panel {
                unit: &s.unit,
                series: vec![prepared],
                y: (0.0, 1.0),
            }),
        }
    }
    for p in &mut panels {
        p.y = y_range(p);
    }
    panels
}

/// A gap longer than this breaks the line: a vehicle that was off for hours is not drawn
/// as if its value slid from one end of the gap to the other.
fn gap_ms(from: i64, to: i64) -> i64 {
    (15 * 60_000).max((to - from) / 12)
}

/// At most the first, lowest, highest and last sample per pixel column, in time order: the
/// line looks the same (every peak stays), with a bounded number of points.
pub(crate) fn thin(points: &[(i64, f64)], from: i64, to: i64, columns: usize) -> Vec<(i64, f64)> {
    let columns = columns.max(1);
    if points.len() <= columns * 4 {
        return points.to_vec();
    }
    let span = (to - from).max(1) as i128;
    let column = |t: i64| ((i128::from(t - from) * columns as i128) / span) as usize;
    let mut out = Vec::with_capacity(columns * 4);
    let mut start = 0;
    while start < points.len() {
        let c = column(points[start].0);
        let mut end = start;
        while end < points.len() && column(points[end].0) == c {
            end += 1;
        }
        let bucket = &points[start..end];
        let (mut lo, mut hi) = (0, 0);
        for (i, p) in bucket.iter().enumerate() {
            if p.1 < bucket[lo].1 {
                lo = i;
            }
            if p.1 > bucket[hi].1 {
                hi = i;
            }
        }
        let mut keep = [0, lo, hi, bucket.len() - 1];
        keep.sort_unstable();
        let mut last = None;
        for k in keep {
            if last != Some(k) {
                out.push(bucket[k]);
                last = Some(k);
            }
        }
        start = end;
    }
    out
}

/// Splits time-ordered points where consecutive samples are more than `gap` apart.
pub(crate) fn segments(points: &[(i64, f64)], gap: i64) -> Vec<Vec<(i64, f64)>> {
    let mut out: Vec<Vec<(i64, f64)>> = Vec::new();
    for &p in points {
        match out.last_mut() {
            Some(seg) if seg.last().is_some_and(|q| p.0 - q.0 <= gap) => seg.push(p),
            _ => out.push(vec![p]),
        }
    }
    out
}

/// The panel's y range: from 0 for non-negative data (speeds and levels read against zero),
/// the whole 0–100 for percentages, and a little headroom above.
fn y_range(p: &Panel<'_>) -> (f64, f64) {
    let values = p
        .series
        .iter()
        .flat_map(|s| s.segments.iter().flatten().map(|q| q.1));
    let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    if p.unit == "%" {
        lo = lo.min(0.0);
        hi = hi.max(100.0);
        return (lo, hi);
    }
    if lo >= 0.0 {
        lo = 0.0;
    }
    let pad = if hi > lo { (hi - lo) * 0.08 } else { 1.0 };
    if lo < 0.0 {
        lo -= pad;
    }
    (lo, hi + pad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(name: &str, unit: &str, points: Vec<(i64, f64)>) -> Series {
        Series {
            name: name.into(),
            unit: unit.into(),
            points,
        }
    }

    #[test]
    fn series_share_a_panel_only_with_the_same_unit() {
        let pts = vec![(10, 1.0), (20, 2.0)];
        let all = [
            s("speed", "km/h", pts.clone()),
            s("fuel", "%", pts.clone()),
            s("rpm", "", pts.clone()),
            s("battery", "%", pts.clone()),
            s("temp", "", pts.clone()),
            s("empty", "%", vec![]),
            s("outside", "bar", vec![(99, 1.0)]),
        ];
        let p = panels(&all, 0, 50, 100);
        let names: Vec<Vec<&str>> = p
            .iter()
            .map(|p| p.series.iter().map(|s| s.series.name.as_str()).collect())
            .collect();
        assert_eq!(
            names,
            vec![
                vec!["speed"],
                vec!["fuel", "battery"],
                vec!["rpm"],
                vec!["temp"]
            ]
        );
        assert_eq!(p[1].y, (0.0, 100.0));
        assert_eq!(p[1].series[1].index, 3, "colour follows the spec's order");
    }

    #[test]
    fn thinning_keeps_every_peak_and_the_order() {
        let pts: Vec<(i64, f64)> = (0..10_000)
            .map(|i| (i, if i == 4321 { 500.0 } else { (i % 7) as f64 }))
            .collect();
        let t = thin(&pts, 0, 10_000, 100);
        assert!(t.len() <= 400, "{}", t.len());
        assert!(t.contains(&(4321, 500.0)));
        assert!(t.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!((t[0], t[t.len() - 1]), (pts[0], pts[9_999]));
        let few = &pts[..50];
        assert_eq!(thin(few, 0, 10_000, 100), few);
    }

    #[test]
    fn gaps_break_lines() {
        let pts = [(0, 1.0), (10, 1.0), (100, 2.0), (105, 2.0), (300, 1.0)];
        let segs = segments(&pts, 50);
        assert_eq!(segs.len(), 3);
        assert_eq!(segs[1], vec![(100, 2.0), (105, 2.0)]);
    }

    #[test]
    fn negative_values_get_room_below() {
        let all = [s("accel", "m/s²", vec![(1, -3.0), (2, 2.0)])];
        let p = panels(&all, 0, 10, 10);
        assert!(p[0].y.0 < -3.0 && p[0].y.1 > 2.0, "{:?}", p[0].y);
    }
}
