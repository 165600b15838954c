//! Drawing a [`ChartSpec`] on any plotters backend (SVG or bitmap): the same code for both,
//! so the PNG `fleetctl chart` writes and the SVG the app shows cannot drift apart.

use crate::series::{Panel, Prepared};
use crate::{
    AlertMark, CURSOR_COLOUR, ChartError, ChartSpec, NO_DATA_TEXT, axis, series, series_colour,
    severity_colour,
};
use plotters::coord::Shift;
use plotters::coord::cartesian::Cartesian2d;
use plotters::coord::combinators::WithKeyPoints;
use plotters::coord::types::{RangedCoordf64, RangedCoordi64};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// The registered font family (see `raster::ensure_font`; browsers have their own).
const FONT: &str = "sans-serif";
/// Room left of each panel for the y labels and the unit.
const Y_LABEL_AREA: u32 = 64;
/// Room under the bottom panel for the time labels.
const X_LABEL_AREA: u32 = 28;
/// About one time label per this many pixels.
const PX_PER_TICK: u32 = 110;
/// Room above each panel's plot for its legend (outside the plot: it never hides a line).
const LEGEND_H: u32 = 20;
/// The shortest range drawn (a single instant is widened to it).
const MIN_SPAN_MS: i64 = 1_000;

type Coords = Cartesian2d<WithKeyPoints<RangedCoordi64>, RangedCoordf64>;
type Chart<'a, DB> = ChartContext<'a, DB, Coords>;

/// A plotters error as ours.
pub(crate) fn failed(e: impl std::fmt::Display) -> ChartError {
    ChartError::Draw(e.to_string())
}

fn rgb((r, g, b): (u8, u8, u8)) -> RGBColor {
    RGBColor(r, g, b)
}

/// Draws the whole chart on `root`.
pub(crate) fn chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    spec: &ChartSpec,
) -> Result<(), ChartError> {
    root.fill(&WHITE).map_err(failed)?;
    let area = root.titled(&spec.title, (FONT, 16)).map_err(failed)?;
    let from = spec.from_ms;
    let to = spec.to_ms.max(from.saturating_add(MIN_SPAN_MS));
    let span = to - from;
    let (w, h) = area.dim_in_pixel();
    // Dated labels are wider: more room on the right for the last one.
    let right = if span > 86_400_000 { 48 } else { 28 };
    let plot_w = w.saturating_sub(Y_LABEL_AREA + right).max(1);
    let panels = series::panels(&spec.series, from, to, plot_w as usize);
    let n = panels.len().max(1) as u32;
    // Equal plot heights; the bottom panel also holds the time labels.
    let plot_h = h.saturating_sub(X_LABEL_AREA) / n;
    let breaks: Vec<i32> = (1..n).map(|i| (plot_h * i) as i32).collect();
    let areas = area.split_by_breakpoints::<i32, i32, [i32; 0], _>([], breaks);
    let offset_ms = i64::from(spec.utc_offset_s) * 1000;
    let ticks = axis::ticks(from, to, offset_ms, (plot_w / PX_PER_TICK).max(2) as usize);
    let fmt = |t: &i64| axis::label(*t, offset_ms, span);
    for (i, a) in areas.iter().enumerate() {
        let panel = panels.get(i);
        let bottom = i + 1 == areas.len();
        let (lo, hi) = panel.map_or((0.0, 1.0), |p| p.y);
        let mut c = ChartBuilder::on(a)
            .margin_top(if panel.is_some() { LEGEND_H } else { 10 })
            .margin_left(6)
            .margin_right(right)
            .x_label_area_size(if bottom { X_LABEL_AREA } else { 0 })
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d((from..to).with_key_points(ticks.clone()), lo..hi)
            .map_err(failed)?;
        let desc = panel.map(describe).unwrap_or_default();
        let y_fmt = y_label(hi - lo);
        let mut mesh = c.configure_mesh();
        mesh.x_label_formatter(&fmt)
            .y_label_formatter(&y_fmt)
            // Round-time and value grid lines only: the finer ones were noise.
            .light_line_style(TRANSPARENT)
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 12))
            .y_labels(if panel.is_some() { 5 } else { 0 })
            .y_desc(desc);
        mesh.draw().map_err(failed)?;
        alert_marks(&mut c, &spec.alerts, (from, to), (lo, hi), i == 0)?;
        let cursor = spec.cursor_ms.filter(|t| (from..=to).contains(t));
        // The cursor over the lines, but under the empty chart's message.
        match panel {
            Some(p) => {
                lines(&mut c, p)?;
                legend(a, p, (Y_LABEL_AREA + 6) as i32)?;
                draw_cursor(&mut c, cursor, (lo, hi))?;
            }
            None => {
                draw_cursor(&mut c, cursor, (lo, hi))?;
                no_data(&mut c, (from, to), (lo, hi))?;
            }
        }
    }
    Ok(())
}

/// The replay cursor: a thick vertical line.
fn draw_cursor<'a, DB: DrawingBackend + 'a>(
    c: &mut Chart<'a, DB>,
    cursor: Option<i64>,
    (lo, hi): (f64, f64),
) -> Result<(), ChartError> {
    if let Some(t) = cursor {
        let style = rgb(CURSOR_COLOUR).stroke_width(2);
        c.draw_series(std::iter::once(PathElement::new(
            vec![(t, lo), (t, hi)],
            style,
        )))
        .map_err(failed)?;
    }
    Ok(())
}

/// y labels without noise: whole numbers once the axis spans more than a few units.
fn y_label(span: f64) -> impl Fn(&f64) -> String {
    move |v: &f64| {
        if span >= 10.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        }
    }
}

/// The y axis's caption: the shared unit, or the lone series' name when it has none.
fn describe(p: &Panel<'_>) -> String {
    match (p.unit, p.series.as_slice()) {
        ("", [only]) => only.series.name.clone(),
        (unit, _) => unit.to_string(),
    }
}

/// The series of one panel.
fn lines<'a, DB: DrawingBackend + 'a>(
    c: &mut Chart<'a, DB>,
    p: &Panel<'_>,
) -> Result<(), ChartError> {
    for s in &p.series {
        draw_series(c, s)?;
    }
    Ok(())
}

/// A panel's legend in one row above its plot, starting at `x` pixels: a colour box and
/// the series' name (and unit) each. Inside the plot (plotters' own legend box) it covered
/// the lines where they were highest, at the start of the range.
fn legend<DB: DrawingBackend>(
    a: &DrawingArea<DB, Shift>,
    p: &Panel<'_>,
    mut x: i32,
) -> Result<(), ChartError> {
    let font = (FONT, 12).into_font();
    let y = (LEGEND_H / 2) as i32;
    for s in &p.series {
        let colour = rgb(series_colour(s.index));
        let label = series_label(s);
        a.draw(&Rectangle::new(
            [(x, y - 4), (x + 14, y + 4)],
            colour.filled(),
        ))
        .map_err(failed)?;
        let style = TextStyle::from(font.clone())
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        let w = a
            .estimate_text_size(&label, &style)
            .map_or(label.chars().count() as u32 * 7, |(w, _)| w);
        a.draw(&Text::new(label, (x + 18, y), style))
            .map_err(failed)?;
        x += 18 + w as i32 + 16;
    }
    Ok(())
}

/// A series' name with its unit.
fn series_label(s: &Prepared<'_>) -> String {
    if s.series.unit.is_empty() {
        s.series.name.clone()
    } else {
        format!("{} ({})", s.series.name, s.series.unit)
    }
}

/// One series: a polyline per segment (a dot for a lone sample).
fn draw_series<'a, DB: DrawingBackend + 'a>(
    c: &mut Chart<'a, DB>,
    s: &Prepared<'_>,
) -> Result<(), ChartError> {
    let colour = rgb(series_colour(s.index));
    for seg in &s.segments {
        match seg.as_slice() {
            [one] => c.draw_series(std::iter::once(Circle::new(*one, 3, colour.filled()))),
            _ => c.draw_series(LineSeries::new(seg.iter().copied(), colour.stroke_width(2))),
        }
        .map_err(failed)?;
    }
    Ok(())
}

/// Alerts in range as vertical lines; the top panel also names the rule.
fn alert_marks<'a, DB: DrawingBackend + 'a>(
    c: &mut Chart<'a, DB>,
    alerts: &[AlertMark],
    (from, to): (i64, i64),
    (lo, hi): (f64, f64),
    named: bool,
) -> Result<(), ChartError> {
    for a in alerts.iter().filter(|a| (from..=to).contains(&a.ts_ms)) {
        let colour = rgb(severity_colour(a.severity));
        c.draw_series(std::iter::once(PathElement::new(
            vec![(a.ts_ms, lo), (a.ts_ms, hi)],
            colour.stroke_width(1),
        )))
        .map_err(failed)?;
        if named {
            let style = TextStyle::from((FONT, 11).into_font())
                .color(&colour)
                .pos(Pos::new(HPos::Left, VPos::Top));
            c.draw_series(std::iter::once(
                EmptyElement::at((a.ts_ms, hi)) + Text::new(a.rule.clone(), (3, 2), style),
            ))
            .map_err(failed)?;
        }
    }
    Ok(())
}

/// The empty chart's message, centred in the plot.
fn no_data<'a, DB: DrawingBackend + 'a>(
    c: &mut Chart<'a, DB>,
    (from, to): (i64, i64),
    (lo, hi): (f64, f64),
) -> Result<(), ChartError> {
    let grey = BLACK.mix(0.6);
    let style = TextStyle::from((FONT, 16).into_font())
        .color(&grey)
        .pos(Pos::new(HPos::Center, VPos::Center));
    let at = (from + (to - from) / 2, lo + (hi - lo) / 2.0);
    c.draw_series(std::iter::once(Text::new(NO_DATA_TEXT, at, style)))
        .map_err(failed)?;
    Ok(())
}
