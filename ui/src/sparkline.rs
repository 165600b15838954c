//! The messages/s sparkline, drawn with plotters' SVG backend into a string the counters
//! bar sets as inner HTML (no canvas per counter, crisp at any DPI).

use plotters::prelude::*;

/// Sparkline size in CSS pixels.
const W: u32 = 96;
const H: u32 = 26;

/// An SVG sparkline of `values` (oldest first); empty when there is nothing to draw.
pub fn svg(values: &[f64]) -> String {
    if values.len() < 2 {
        return String::new();
    }
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (W, H)).into_drawing_area();
        let max = values.iter().copied().fold(1.0_f64, f64::max) * 1.15;
        let n = values.len();
        let chart = ChartBuilder::on(&root)
            .margin(1)
            .build_cartesian_2d(0..(n - 1), 0.0..max);
        let Ok(mut chart) = chart else {
            return String::new();
        };
        let teal = RGBColor(45, 212, 191);
        let pts = values.iter().copied().enumerate();
        let _ = chart.draw_series(
            AreaSeries::new(pts.clone(), 0.0, teal.mix(0.18)).border_style(teal.stroke_width(1)),
        );
        if let Some((i, v)) = values.iter().copied().enumerate().next_back() {
            let _ = chart.draw_series(std::iter::once(Circle::new((i, v), 2, teal.filled())));
        }
        let _ = root.present();
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn draws_an_svg_only_with_data() {
        assert!(super::svg(&[1.0]).is_empty());
        let s = super::svg(&[1.0, 5.0, 3.0]);
        assert!(
            s.starts_with("<svg") && s.contains("path")
                || s.contains("polyline")
                || s.contains("polygon"),
            "{s}"
        );
    }
}
