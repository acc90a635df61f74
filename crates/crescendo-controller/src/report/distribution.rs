//! The latency percentile distribution as HdrHistogram's plotter draws it: the value
//! at percentiles from 0 to 99.999 % on an axis of log10(1 / (1 − p)), so each "nine"
//! gets the same width and the tail is as visible as the median.

use std::fmt::Write;

use hdrhistogram::Histogram;

use super::escape;

/// Points per decade of 1 / (1 − p).
const PER_NINE: u32 = 10;
/// 99.999 %.
const NINES: u32 = 5;

/// (percentile, ms) at evenly spaced points of the log axis; empty for no data.
pub(crate) fn of(hist: &Histogram<u64>) -> Vec<(f64, f64)> {
    if hist.is_empty() {
        return Vec::new();
    }
    (0..=NINES * PER_NINE)
        .map(|i| {
            let x = f64::from(i) / f64::from(PER_NINE);
            let p = 100.0 * (1.0 - 10f64.powf(-x));
            (p, hist.value_at_percentile(p) as f64 / 1000.0)
        })
        .collect()
}

/// The position of percentile `p` on the axis, in nines (0 = 0 %, 2 = 99 %).
fn nines(p: f64) -> f64 {
    (1.0 / (1.0 - (p / 100.0).min(0.999_999))).log10()
}

/// The distribution plot as inline SVG.
pub(crate) fn svg(points: &[(f64, f64)]) -> String {
    let (w, h, pad) = (860.0, 260.0, 50.0);
    let mut out = String::from("<h3>Latency by percentile (ms, from intended start)</h3>");
    if points.is_empty() {
        out.push_str("<p>no successful requests</p>");
        return out;
    }
    let max = points.iter().map(|p| p.1).fold(0.0_f64, f64::max).max(1e-9) * 1.1;
    let x = |p: f64| pad + (w - 2.0 * pad) * nines(p) / f64::from(NINES);
    let y = |v: f64| h - pad - (h - 2.0 * pad) * v / max;
    let _ = write!(
        out,
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" width=\"100%\" role=\"img\">\
         <rect x=\"{pad}\" y=\"{pad}\" width=\"{}\" height=\"{}\" fill=\"#fafafa\" stroke=\"#ccc\"/>\
         <text x=\"12\" y=\"{mid:.1}\" font-size=\"11\" transform=\"rotate(-90 12 {mid:.1})\" text-anchor=\"middle\">ms</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">percentile</text>",
        w - 2.0 * pad,
        h - 2.0 * pad,
        w / 2.0,
        h - 8.0,
        mid = h / 2.0,
    );
    // The value axis: round ticks up to the top.
    let step = super::chart::nice_step(max, 5.0);
    let mut v = 0.0;
    while v <= max {
        let _ = write!(
            out,
            "<line x1=\"{pad}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"#e4e4e4\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
            w - pad,
            pad - 4.0,
            y(v) + 4.0,
            if step >= 1.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            },
            yy = y(v),
        );
        v += step;
    }
    for (p, label) in [
        (0.0, "0%"),
        (90.0, "90%"),
        (99.0, "99%"),
        (99.9, "99.9%"),
        (99.99, "99.99%"),
        (99.999, "99.999%"),
    ] {
        let _ = write!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{pad}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#ddd\"/>\
             <text x=\"{x:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
            h - pad,
            h - pad + 14.0,
            escape(label),
            x = x(p)
        );
    }
    let line: Vec<String> = points
        .iter()
        .map(|&(p, v)| format!("{:.1},{:.1}", x(p), y(v)))
        .collect();
    let _ = write!(
        out,
        "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" points=\"{}\"/></svg>",
        line.join(" ")
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_run_from_0_to_99_999_on_a_log_axis() {
        let mut hist = crescendo_metrics::new_histogram();
        for us in 1..=100_000u64 {
            hist.record(us).unwrap();
        }
        let d = of(&hist);
        assert_eq!(d.len(), 51);
        assert_eq!(d[0].0, 0.0);
        assert!((d[10].0 - 90.0).abs() < 1e-9 && (d[20].0 - 99.0).abs() < 1e-9);
        assert!((d[50].0 - 99.999).abs() < 1e-9, "{:?}", d[50]);
        assert!(d.windows(2).all(|w| w[0].1 <= w[1].1), "monotonic");
        let p99 = d[20].1;
        assert!((p99 - 99.0).abs() < 0.1, "{p99}");
        assert!((nines(99.9) - 3.0).abs() < 1e-9);
        let svg = svg(&d);
        assert!(
            svg.contains("99.999%") && svg.contains("<polyline"),
            "{svg}"
        );
        assert!(of(&crescendo_metrics::new_histogram()).is_empty());
        assert!(super::svg(&[]).contains("no successful requests"));
    }
}
