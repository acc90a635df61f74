//! The report's line charts over the run's seconds, as inline SVG: a time axis (seconds,
//! or mm:ss past two minutes) and a value axis with ticks and units, lines told apart by
//! dash pattern and markers as well as colour (a dashed demand line stays visible on top
//! of the solid `ok` line), labelled shaded spans (the governor's decisions) and a
//! responsive width (a `viewBox` scaled to the page, no fixed pixel size).

use std::fmt::Write;

use super::escape as esc;

/// Drawing units of the `viewBox`; the page scales them to its width.
const W: f64 = 860.0;
const H: f64 = 250.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 40.0;

/// A shaded stretch of a chart, in seconds from the chart's first point, labelled on
/// the chart (`label`) and in full on hover (`title`).
pub(crate) struct Span {
    pub(crate) from: f64,
    pub(crate) to: f64,
    pub(crate) color: &'static str,
    pub(crate) label: String,
    pub(crate) title: String,
}

/// How a series is drawn: its name, colour and dash pattern (`""`: solid); a marker
/// shape is added from its position so lines differ without colour.
pub(crate) struct Series<'a> {
    pub(crate) name: &'a str,
    pub(crate) color: &'a str,
    pub(crate) dash: &'a str,
    pub(crate) values: Vec<f64>,
}

/// A step of 1, 2 or 5 × 10^k giving at most `max_ticks` ticks over `span`.
pub(crate) fn nice_step(span: f64, max_ticks: f64) -> f64 {
    let raw = (span / max_ticks).max(1e-9);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude)
}

/// A step in whole seconds for the time axis (1, 2, 5, 10, 15, 30 s, then minutes).
pub(crate) fn time_step(span_s: f64) -> f64 {
    const STEPS: [f64; 14] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
    ];
    STEPS
        .into_iter()
        .find(|step| span_s / step <= 10.0)
        .unwrap_or_else(|| (span_s / 10.0 / 3600.0).ceil() * 3600.0)
}

/// A time tick's label: `12 s` for short runs, `mm:ss` (or `h:mm:ss`) past two minutes.
pub(crate) fn time_label(t: f64, span_s: f64) -> String {
    let t = t.round() as u64;
    if span_s < 120.0 {
        format!("{t} s")
    } else if t >= 3600 {
        format!("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
    } else {
        format!("{}:{:02}", t / 60, t % 60)
    }
}

/// A value tick's label: no more decimals than the step needs.
fn value_label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    format!("{v:.decimals$}")
}

/// Marker `i` (circle, square, triangle, diamond, cross) at (x, y).
fn marker(i: usize, x: f64, y: f64, color: &str) -> String {
    match i % 5 {
        0 => format!("<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"{color}\"/>"),
        1 => format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"6\" height=\"6\" fill=\"{color}\"/>",
            x - 3.0,
            y - 3.0
        ),
        2 => format!(
            "<path d=\"M{x:.1},{:.1}l3.5,6h-7z\" fill=\"{color}\"/>",
            y - 3.5
        ),
        3 => format!(
            "<path d=\"M{x:.1},{:.1}l4,4l-4,4l-4,-4z\" fill=\"{color}\"/>",
            y - 4.0
        ),
        _ => format!(
            "<path d=\"M{:.1},{:.1}l6,6m0,-6l-6,6\" stroke=\"{color}\" stroke-width=\"1.5\"/>",
            x - 3.0,
            y - 3.0
        ),
    }
}

/// A line chart of `series` over the run's seconds (point `i` is second `t0 + i`),
/// values in `unit`, with shaded, labelled `spans`.
pub(crate) fn line_chart(
    title: &str,
    unit: &str,
    t0: f64,
    series: &[Series<'_>],
    spans: &[Span],
) -> String {
    let n = series
        .iter()
        .map(|s| s.values.len())
        .max()
        .unwrap_or(0)
        .max(2);
    let span_s = (n - 1) as f64;
    let top_value = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0_f64, f64::max);
    let y_step = nice_step(top_value.max(1e-9) * 1.05, 5.0);
    let y_max = (top_value * 1.05 / y_step).ceil().max(1.0) * y_step;
    let (plot_w, plot_h) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let x = |i: f64| LEFT + plot_w * i.clamp(0.0, span_s) / span_s;
    let y = |v: f64| TOP + plot_h - plot_h * v / y_max;
    let mut svg = format!(
        "<h3>{}</h3><svg class=\"chart\" viewBox=\"0 0 {W} {H}\" width=\"100%\" \
         preserveAspectRatio=\"xMidYMid meet\" role=\"img\" aria-label=\"{}\">\
         <rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{plot_w}\" height=\"{plot_h}\" fill=\"#fafafa\" stroke=\"#ccc\"/>",
        esc(title),
        esc(title),
    );
    // The value axis: gridlines and labels in the unit.
    let mut v = 0.0;
    while v <= y_max + y_step / 2.0 {
        let _ = write!(
            svg,
            "<line class=\"y-tick\" x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"#e4e4e4\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            y(v) + 4.0,
            value_label(v, y_step),
            yy = y(v),
        );
        v += y_step;
    }
    let _ = write!(
        svg,
        "<text x=\"12\" y=\"{:.1}\" font-size=\"11\" transform=\"rotate(-90 12 {:.1})\" text-anchor=\"middle\">{}</text>",
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0,
        esc(unit)
    );
    // The time axis: ticks at round seconds since the start.
    let step = time_step(span_s);
    let total_s = t0 + span_s;
    let mut t = (t0 / step).ceil() * step;
    while t <= total_s + 1e-9 {
        let xx = x(t - t0);
        let _ = write!(
            svg,
            "<line class=\"x-tick\" x1=\"{xx:.1}\" y1=\"{:.1}\" x2=\"{xx:.1}\" y2=\"{:.1}\" stroke=\"#999\"/>\
             <text x=\"{xx:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
            TOP + plot_h,
            TOP + plot_h + 5.0,
            TOP + plot_h + 17.0,
            time_label(t, total_s)
        );
        t += step;
    }
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">time since the start ({})</text>",
        LEFT + plot_w / 2.0,
        H - 4.0,
        if total_s < 120.0 { "s" } else { "mm:ss" }
    );
    for (k, span) in spans.iter().enumerate() {
        let (x0, x1) = (x(span.from), x(span.to));
        let _ = write!(
            svg,
            "<g class=\"span\"><rect x=\"{x0:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{plot_h}\" fill=\"{c}\" fill-opacity=\"0.15\">\
             <title>{}</title></rect><line x1=\"{x0:.1}\" y1=\"{TOP}\" x2=\"{x0:.1}\" y2=\"{:.1}\" stroke=\"{c}\" stroke-dasharray=\"3,3\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"{c}\">{}</text></g>",
            (x1 - x0).max(1.0),
            esc(&span.title),
            TOP + plot_h,
            x0 + 2.0,
            // Alternate rows so neighbouring labels do not overprint.
            TOP + 11.0 + 11.0 * (k % 2) as f64,
            esc(&span.label),
            c = span.color,
        );
    }
    // The first series is drawn first, so later ones (the dashed demand lines come
    // last) stay visible where they coincide.
    let every = (n / 20).max(1);
    for (i, s) in series.iter().enumerate() {
        let points: Vec<String> = s
            .values
            .iter()
            .enumerate()
            .map(|(j, v)| format!("{:.1},{:.1}", x(j as f64), y(*v)))
            .collect();
        let _ = write!(
            svg,
            "<g class=\"series\"><polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" stroke-dasharray=\"{}\" points=\"{}\"/>",
            s.color,
            s.dash,
            points.join(" ")
        );
        // Markers, thinned out on long runs and staggered between series.
        for (j, v) in s.values.iter().enumerate() {
            if (j + i) % every == 0 {
                svg.push_str(&marker(i, x(j as f64), y(*v), s.color));
            }
        }
        // The legend above the plot: a line sample with its dash and marker.
        let lx = LEFT + 150.0 * (i % 5) as f64;
        let ly = 10.0 + 12.0 * (i / 5) as f64;
        let _ = write!(
            svg,
            "<line x1=\"{lx:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{}\" stroke-width=\"2\" stroke-dasharray=\"{}\"/>{}\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\">{}</text></g>",
            lx + 24.0,
            s.color,
            s.dash,
            marker(i, lx + 12.0, ly, s.color),
            lx + 30.0,
            ly + 4.0,
            esc(s.name)
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(105.0, 5.0), 50.0);
        assert_eq!(nice_step(9.0, 5.0), 2.0);
        assert_eq!(nice_step(0.3, 5.0), 0.1);
        assert_eq!(time_step(9.0), 1.0);
        assert_eq!(time_step(60.0), 10.0);
        assert_eq!(time_step(600.0), 60.0);
        assert_eq!(time_label(90.0, 60.0), "90 s");
        assert_eq!(time_label(90.0, 600.0), "1:30");
        assert_eq!(time_label(3725.0, 4000.0), "1:02:05");
    }

    #[test]
    fn a_chart_has_both_axes_dashes_markers_and_a_fluid_width() {
        let series = [
            Series {
                name: "ok",
                color: "#176d17",
                dash: "",
                values: vec![0.0, 10.0, 20.0, 20.0],
            },
            Series {
                name: "planned",
                color: "#5a5ad0",
                dash: "6,4",
                values: vec![0.0, 10.0, 20.0, 20.0],
            },
        ];
        let spans = [Span {
            from: 1.0,
            to: 2.0,
            color: "#d62728",
            label: "paused 1.0 s".into(),
            title: "pause".into(),
        }];
        let svg = line_chart("Rates", "req/s", 0.0, &series, &spans);
        assert!(svg.contains("width=\"100%\"") && !svg.contains("width=\"860\""));
        assert!(
            svg.contains(">0 s</text>") && svg.contains(">3 s</text>"),
            "{svg}"
        );
        assert!(
            svg.contains(">20</text>") && svg.contains(">req/s</text>"),
            "{svg}"
        );
        assert!(svg.contains("stroke-dasharray=\"6,4\""), "{svg}");
        assert!(svg.contains("<circle") && svg.contains("<rect x="), "{svg}");
        assert!(svg.contains(">paused 1.0 s</text>"), "{svg}");
        let planned = svg.find(">planned</text>").unwrap();
        assert!(
            svg.find(">ok</text>").unwrap() < planned,
            "planned drawn over ok"
        );
    }
}
