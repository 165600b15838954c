//! PNG output, and the font every native chart's text is measured and drawn with.

use crate::{ChartError, ChartSpec, draw};
use plotters::prelude::*;
use std::sync::OnceLock;

/// Registers DejaVu Sans (compiled in) as plotters' `sans-serif`, once per process. Native
/// plotters measures text even for SVG (label placement), and with `ab_glyph` it only knows
/// fonts registered here: no fontconfig, no system fonts, the same result on every machine.
pub(crate) fn ensure_font() -> Result<(), ChartError> {
    static FONT: OnceLock<Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| "the embedded DejaVu Sans font did not load".to_string())
    })
    .clone()
    .map_err(ChartError::Draw)
}

/// The chart as a PNG file's bytes (RGB, 8 bits per channel).
pub fn render_png(spec: &ChartSpec) -> Result<Vec<u8>, ChartError> {
    spec.check()?;
    ensure_font()?;
    let (w, h) = (spec.width, spec.height);
    let mut pixels = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        draw::chart(&root, spec)?;
        root.present().map_err(draw::failed)?;
    }
    let mut out = Vec::new();
    let mut enc = ::png::Encoder::new(&mut out, w, h);
    enc.set_color(::png::ColorType::Rgb);
    enc.set_depth(::png::BitDepth::Eight);
    // A chart is mostly flat white: fast compression is nearly as small and takes a
    // fraction of the default's time (the PNG's share of the ≤ 100 ms track-and-chart budget).
    enc.set_compression(::png::Compression::Fast);
    let encode = |e: ::png::EncodingError| ChartError::Encode(e.to_string());
    let mut writer = enc.write_header().map_err(encode)?;
    writer.write_image_data(&pixels).map_err(encode)?;
    writer.finish().map_err(encode)?;
    Ok(out)
}
