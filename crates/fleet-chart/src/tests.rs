//! The chart's structure, read back from its SVG elements and PNG pixels: one line per
//! series, alert marks where the alerts are, the time axis spanning exactly the range.

use super::*;
use fleet_model::{AlertState, HistoryAlert, StatusPoint, TrackPoint, VehicleHistory};
use std::collections::HashMap;

const M: i64 = 60_000;
/// 2024-05-01T08:00:00Z
const FROM: i64 = 1_714_550_400_000;

/// One SVG element: its tag, attributes and text.
#[derive(Debug)]
struct El {
    tag: String,
    attrs: HashMap<String, String>,
    text: String,
}

/// A small reader for the flat SVG plotters writes (no nesting beyond the root).
fn elements(svg: &str) -> Vec<El> {
    let mut out = Vec::new();
    for chunk in svg.split('<').skip(1) {
        if chunk.starts_with('/') || chunk.starts_with('?') {
            continue;
        }
        let (head, text) = chunk.split_once('>').unwrap_or((chunk, ""));
        let head = head.trim_end_matches('/');
        let (tag, mut rest) = head.split_once(' ').unwrap_or((head, ""));
        let mut attrs = HashMap::new();
        while let Some((name, after)) = rest.split_once("=\"") {
            let Some((value, tail)) = after.split_once('"') else {
                break;
            };
            attrs.insert(name.trim().to_string(), value.to_string());
            rest = tail;
        }
        out.push(El {
            tag: tag.to_string(),
            attrs,
            text: text.trim().to_string(),
        });
    }
    out
}

fn hex((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02X}{g:02X}{b:02X}")
}

fn polylines(els: &[El], colour: (u8, u8, u8)) -> Vec<&El> {
    els.iter()
        .filter(|e| e.tag == "polyline" && e.attrs.get("stroke") == Some(&hex(colour)))
        .collect()
}

fn points(e: &El) -> Vec<(i32, i32)> {
    e.attrs["points"]
        .split_whitespace()
        .filter_map(|p| {
            let (x, y) = p.split_once(',')?;
            Some((x.parse().ok()?, y.parse().ok()?))
        })
        .collect()
}

fn texts(els: &[El]) -> Vec<&str> {
    els.iter()
        .filter(|e| e.tag == "text")
        .map(|e| e.text.as_str())
        .collect()
}

fn series(name: &str, unit: &str, f: impl Fn(i64) -> f64) -> Series {
    Series {
        name: name.into(),
        unit: unit.into(),
        points: (0..=60).map(|i| (FROM + i * M, f(i))).collect(),
    }
}

fn mark(ts: i64, rule: &str, severity: Severity) -> AlertMark {
    AlertMark {
        ts_ms: ts,
        rule: rule.into(),
        severity,
    }
}

fn spec() -> ChartSpec {
    ChartSpec {
        title: "car-7".into(),
        from_ms: FROM,
        to_ms: FROM + 60 * M,
        series: vec![
            series("speed", "km/h", |i| (i * 2) as f64),
            series("fuel", "%", |i| 80.0 - i as f64 / 2.0),
            series("battery", "%", |i| 90.0 - i as f64),
            series("engine.rpm", "", |i| 800.0 + (i * 30) as f64),
        ],
        alerts: vec![
            mark(FROM + 20 * M, "speeding", Severity::Warning),
            mark(FROM + 45 * M, "crash", Severity::Critical),
            mark(FROM + 90 * M, "later_alert", Severity::Critical),
        ],
        cursor_ms: Some(FROM + 30 * M),
        width: 900,
        height: 600,
        utc_offset_s: 0,
    }
}

#[test]
fn svg_has_a_line_per_series_the_alert_marks_and_the_range_on_its_axis() {
    let s = spec();
    let svg = render_svg(&s).unwrap();
    let els = elements(&svg);
    // Panels: km/h (speed), % (fuel + battery), and rpm on its own.
    let panels = 3;
    for (i, ser) in s.series.iter().enumerate() {
        let lines = polylines(&els, series_colour(i));
        assert_eq!(lines.len(), 1, "{} is one unbroken line", ser.name);
        assert_eq!(points(lines[0]).len(), ser.points.len(), "{}", ser.name);
    }
    let in_range: Vec<&AlertMark> = s
        .alerts
        .iter()
        .filter(|a| (s.from_ms..=s.to_ms).contains(&a.ts_ms))
        .collect();
    for sev in [Severity::Warning, Severity::Critical] {
        let n = in_range.iter().filter(|a| a.severity == sev).count();
        assert_eq!(
            polylines(&els, severity_colour(sev)).len(),
            n * panels,
            "{sev:?} marks: one per alert per panel"
        );
    }
    assert_eq!(polylines(&els, CURSOR_COLOUR).len(), panels, "cursor");

    let t = texts(&els);
    for want in [
        "08:00",
        "09:00",
        "speed (km/h)",
        "fuel (%)",
        "battery (%)",
        "engine.rpm",
        "speeding",
        "crash",
    ] {
        assert!(t.contains(&want), "{want:?} in {t:?}");
    }
    assert!(
        !t.contains(&"later_alert"),
        "an alert after the range is not drawn"
    );
    assert!(!t.contains(&NO_DATA_TEXT));

    // The time axis spans exactly [from, to]: the speed line starts under the from label and
    // ends under the to label, and an alert mark sits in proportion between them.
    let label_x = |label: &str| -> i32 {
        els.iter()
            .find(|e| e.tag == "text" && e.text == label)
            .and_then(|e| e.attrs["x"].parse().ok())
            .unwrap()
    };
    let speed = points(polylines(&els, series_colour(0))[0]);
    let (x0, x1) = (label_x("08:00"), label_x("09:00"));
    assert!((speed[0].0 - x0).abs() <= 1, "{} vs {x0}", speed[0].0);
    assert!((speed[speed.len() - 1].0 - x1).abs() <= 1);
    let warn = points(polylines(&els, severity_colour(Severity::Warning))[0]);
    let expect = x0 as f64 + (x1 - x0) as f64 * 20.0 / 60.0;
    assert!(
        (warn[0].0 as f64 - expect).abs() <= 1.5,
        "{warn:?} vs {expect}"
    );
    // The speed line rises left to right (y grows downwards in SVG).
    assert!(speed[0].1 > speed[speed.len() - 1].1);
}

#[test]
fn an_empty_range_says_so_on_the_same_axis() {
    let mut s = spec();
    for ser in &mut s.series {
        ser.points.clear();
    }
    s.alerts.clear();
    let els = elements(&render_svg(&s).unwrap());
    let t = texts(&els);
    assert!(t.contains(&NO_DATA_TEXT), "{t:?}");
    assert!(t.contains(&"08:00") && t.contains(&"09:00"), "{t:?}");
    for i in 0..s.series.len() {
        assert!(polylines(&els, series_colour(i)).is_empty());
    }
}

#[test]
fn gaps_break_a_line_and_samples_outside_the_range_are_left_out() {
    let mut s = spec();
    s.series.truncate(1);
    // 08:00–08:10, then nothing until 08:40–09:00, and samples before and after the range.
    s.series[0].points = (-5..=60)
        .chain(61..70)
        .filter(|i| !(11..40).contains(i))
        .map(|i| (FROM + i * M, 50.0))
        .collect();
    let els = elements(&render_svg(&s).unwrap());
    let lines = polylines(&els, series_colour(0));
    assert_eq!(lines.len(), 2);
    let n: usize = lines.iter().map(|l| points(l).len()).sum();
    assert_eq!(n, 11 + 21);
}

#[test]
fn long_series_are_thinned_to_the_pixels() {
    let mut s = spec();
    s.series.truncate(1);
    s.series[0].points = (0..3600 * 6)
        .map(|i| (FROM + i * 1000 / 6, (i % 97) as f64))
        .collect();
    let els = elements(&render_svg(&s).unwrap());
    let n = points(polylines(&els, series_colour(0))[0]).len();
    assert!(n <= 4 * s.width as usize, "{n} points");
    assert!(n > 100);
}

fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut r = ::png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, ::png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

fn count(px: &[u8], c: (u8, u8, u8)) -> usize {
    px.chunks(3).filter(|p| (p[0], p[1], p[2]) == c).count()
}

#[test]
fn png_decodes_at_its_size_with_the_series_and_marks_drawn() {
    let s = spec();
    let (w, h, px) = decode(&render_png(&s).unwrap());
    assert_eq!((w, h), (s.width, s.height));
    let not_white = px.chunks(3).filter(|p| p != &[255, 255, 255]).count();
    assert!(
        not_white > (w * h / 50) as usize,
        "{not_white} drawn pixels"
    );
    for i in 0..s.series.len() {
        assert!(count(&px, series_colour(i)) > 100, "series {i} drawn");
    }
    for sev in [Severity::Warning, Severity::Critical] {
        assert!(count(&px, severity_colour(sev)) > 50, "{sev:?} marks drawn");
    }
    assert!(count(&px, CURSOR_COLOUR) > 50);
}

#[test]
fn png_text_is_rendered_without_system_fonts() {
    let mut s = spec();
    s.series.clear();
    s.alerts.clear();
    s.cursor_ms = None;
    let (w, h, px) = decode(&render_png(&s).unwrap());
    // The message in the middle of the plot: dark pixels where only white would be without
    // a font.
    let (cx, cy) = (w as usize / 2, h as usize / 2);
    let mut dark = 0;
    for y in cy - 15..cy + 15 {
        for x in cx - 120..cx + 120 {
            let p = &px[(y * w as usize + x) * 3..][..3];
            dark += usize::from(p.iter().all(|&c| c < 200));
        }
    }
    assert!(dark > 100, "{dark} dark pixels where the text should be");
}

#[test]
fn bad_specs_are_errors_not_panics() {
    let mut s = spec();
    s.width = 10;
    assert!(matches!(render_svg(&s), Err(ChartError::Size { .. })));
    assert!(matches!(render_png(&s), Err(ChartError::Size { .. })));
    let mut s = spec();
    s.from_ms = s.to_ms + 1;
    assert!(matches!(render_png(&s), Err(ChartError::Range { .. })));
    let mut s = spec();
    s.to_ms = s.from_ms; // one instant: drawn, widened
    s.series[0].points.push((s.from_ms, f64::NAN));
    s.series[0].points.push((s.from_ms, f64::INFINITY));
    s.series.push(series("x", "", |_| f64::NAN));
    assert!(render_svg(&s).is_ok());
    assert!(render_png(&s).is_ok());
}

#[test]
fn a_history_becomes_the_fields_asked_for() {
    let pos = |ts: i64, speed: Option<f64>| TrackPoint {
        ts_ms: ts,
        lat: 37.5,
        lng: 127.0,
        speed,
        heading: None,
        source: fleet_model::Source::Kafka,
    };
    let status = |ts: i64, json: &str| StatusPoint {
        ts_ms: ts,
        fields: serde_json::from_str(json).unwrap(),
    };
    let h = VehicleHistory {
        vehicle: "car-7".into(),
        info: Default::default(),
        positions: vec![
            pos(FROM, Some(10.0)),
            pos(FROM + M, None),
            pos(FROM + 2 * M, Some(30.0)),
        ],
        status: vec![
            status(FROM, r#"{"fuel":50,"engine.rpm":"900","doors":"open"}"#),
            status(FROM + M, r#"{"fuel":49.5}"#),
            status(FROM + 99 * M, r#"{"fuel":1}"#),
        ],
        alerts: vec![
            HistoryAlert {
                id: "a".into(),
                rule: "low_fuel".into(),
                severity: Severity::Info,
                ts_ms: FROM + M,
                state: AlertState::Open,
            },
            HistoryAlert {
                id: "b".into(),
                rule: "late".into(),
                severity: Severity::Info,
                ts_ms: FROM + 99 * M,
                state: AlertState::Open,
            },
        ],
    };
    let fields: Vec<String> = ["speed", "fuel", "engine.rpm", "doors", "battery"]
        .map(String::from)
        .to_vec();
    let s = spec_for_history(&h, &fields, FROM, FROM + 10 * M, (800, 400));
    let pts: Vec<&[(i64, f64)]> = s.series.iter().map(|s| s.points.as_slice()).collect();
    assert_eq!(
        pts[0],
        [(FROM, 10.0), (FROM + 2 * M, 30.0)],
        "speed from positions"
    );
    assert_eq!(pts[1], [(FROM, 50.0), (FROM + M, 49.5)], "fuel in range");
    assert_eq!(pts[2], [(FROM, 900.0)], "numeric strings count");
    assert!(pts[3].is_empty() && pts[4].is_empty());
    assert_eq!(
        s.series.iter().map(|s| s.unit.as_str()).collect::<Vec<_>>(),
        ["km/h", "%", "", "", "%"]
    );
    assert_eq!(s.alerts.len(), 1);
    assert_eq!(s.alerts[0].rule, "low_fuel");
    assert!(s.title.contains("car-7") && s.title.contains("2024-05-01 08:00"));
}

/// The legend sits above the plot, never on a line: battery is highest at the start of the
/// range, right where plotters' own legend box (upper left, inside the plot) covered it.
#[test]
fn the_legend_is_above_the_lines_it_names() {
    let s = spec();
    let els = elements(&render_svg(&s).unwrap());
    for (i, label) in [(1, "fuel (%)"), (2, "battery (%)"), (0, "speed (km/h)")] {
        let text = els
            .iter()
            .find(|e| e.tag == "text" && e.text == label)
            .unwrap_or_else(|| panic!("legend {label:?}"));
        let y: i32 = text.attrs["y"].parse().unwrap();
        let top = points(polylines(&els, series_colour(i))[0])
            .iter()
            .map(|p| p.1)
            .min()
            .unwrap();
        // The text is centred on y and 12 px high.
        assert!(y + 6 < top, "{label:?} at y={y}, its line reaches y={top}");
    }
}
