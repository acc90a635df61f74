//! `report.html`: one self-contained page (inline SVG, no script, no network) with the
//! verdict first, then rates and latency over time, then tables.

use std::fmt::Write;

use super::Summary;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A line chart of several series over the run's seconds.
fn chart(title: &str, unit: &str, series: &[(&str, &str, Vec<f64>)]) -> String {
    let (w, h, pad) = (860.0, 220.0, 40.0);
    let n = series.iter().map(|s| s.2.len()).max().unwrap_or(0).max(2);
    let max = series
        .iter()
        .flat_map(|s| s.2.iter().copied())
        .fold(0.0_f64, f64::max)
        .max(1e-9)
        * 1.1;
    let x = |i: usize| pad + (w - 2.0 * pad) * i as f64 / (n - 1) as f64;
    let y = |v: f64| h - pad - (h - 2.0 * pad) * v / max;
    let mut svg = format!(
        "<h3>{}</h3><svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\">\
         <rect x=\"{pad}\" y=\"{pad}\" width=\"{}\" height=\"{}\" fill=\"#fafafa\" stroke=\"#ccc\"/>\
         <text x=\"4\" y=\"{}\" font-size=\"11\">{max:.1} {unit}</text><text x=\"4\" y=\"{}\" font-size=\"11\">0</text>",
        esc(title),
        w - 2.0 * pad,
        h - 2.0 * pad,
        pad + 4.0,
        h - pad,
    );
    for (i, (name, color, values)) in series.iter().enumerate() {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
            .collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"{color}\">{}</text>",
            points.join(" "),
            pad + 10.0 + 140.0 * i as f64,
            h - 10.0,
            esc(name)
        );
    }
    svg.push_str("</svg>");
    svg
}

pub(crate) fn render(s: &Summary) -> String {
    let verdict = if s.passed { "PASSED" } else { "FAILED" };
    let mut out = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Crescendo {} {}</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:960px}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}.ok{{color:#176d17}}.fail{{color:#b00}}</style>\
         </head><body><h1>{}: <span class=\"{}\">{verdict}</span></h1><p>run {} · {:.1} s · {} agents</p>",
        esc(&s.plan_name),
        esc(&s.run_id),
        esc(&s.plan_name),
        if s.passed { "ok" } else { "fail" },
        esc(&s.run_id),
        s.duration_s,
        s.agents.len()
    );
    out.push_str(
        "<h2>Thresholds</h2><table><tr><th>threshold</th><th>value</th><th>verdict</th></tr>",
    );
    for t in &s.thresholds {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{:.3}</td><td class=\"{}\">{}</td></tr>",
            esc(&t.expr),
            t.value,
            if t.ok { "ok" } else { "fail" },
            if t.ok { "ok" } else { "FAILED" }
        );
    }
    out.push_str("</table>");
    let t = &s.totals;
    let l = &s.latency_ms;
    let _ = write!(
        out,
        "<h2>Totals</h2><table><tr><th>requests</th><th>ok</th><th>throttled</th><th>errors</th><th>retries</th><th>dropped</th>\
         <th>throughput/s</th><th>goodput/s</th></tr><tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td></tr></table>\
         <h2>Latency (ms, from intended start)</h2><table><tr><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>mean</th></tr>\
         <tr><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td></tr></table>",
        t.requests,
        t.ok,
        t.throttled,
        t.errors,
        t.retries,
        t.dropped,
        s.throughput_rps,
        s.goodput_rps,
        l.p50,
        l.p90,
        l.p99,
        l.p999,
        l.max,
        l.mean
    );
    let col = |f: fn(&super::summary::IntervalSummary) -> f64| {
        s.timeline.iter().map(f).collect::<Vec<f64>>()
    };
    out.push_str(&chart(
        "Requests per second",
        "req/s",
        &[
            ("offered", "#888", col(|i| i.offered as f64)),
            ("ok", "#176d17", col(|i| i.ok as f64)),
            ("throttled (429)", "#d98200", col(|i| i.throttled as f64)),
            ("errors", "#b00", col(|i| i.errors as f64)),
        ],
    ));
    out.push_str(&chart(
        "Latency per second",
        "ms",
        &[
            ("p50", "#1f77b4", col(|i| i.p50_ms)),
            ("p90", "#9467bd", col(|i| i.p90_ms)),
            ("p99", "#d62728", col(|i| i.p99_ms)),
        ],
    ));
    out.push_str("<h2>Agents</h2><table><tr><th>agent</th><th>host</th><th>requests</th><th>ok</th><th>throttled</th><th>errors</th><th>lost</th></tr>");
    for a in &s.agents {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.id),
            esc(&a.host),
            a.requests,
            a.ok,
            a.throttled,
            a.errors,
            a.lost
        );
    }
    out.push_str("</table></body></html>\n");
    out
}
