//! `report.html`: one self-contained page (inline SVG, no script, no network) with the
//! verdict first, then rates over time (with the governor's decisions as shaded
//! spans), latency over time and by percentile, then per-step, errors-by-kind and
//! agent tables and the plan as run (secrets masked).

use std::fmt::Write;

use super::Summary;
use super::chart::{Series, Span, line_chart};
use super::escape as esc;

pub(crate) fn render(s: &Summary) -> String {
    let verdict = s.outcome.label();
    let mut out = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Crescendo {} {}</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:960px}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}.ok{{color:#176d17}}.fail{{color:#b00}}svg.chart{{display:block;width:100%;height:auto}}</style>\
         </head><body><h1>{}: <span class=\"{}\">{verdict}</span></h1><p>run {} · {:.1} s · {} agents</p>",
        esc(&s.plan_name),
        esc(&s.run_id),
        esc(&s.plan_name),
        if s.passed { "ok" } else { "fail" },
        esc(&s.run_id),
        s.duration_s,
        s.agents.len()
    );
    if !s.passed && !s.outcome_reasons.is_empty() {
        out.push_str("<ul class=\"fail\" id=\"outcome-reasons\">");
        for reason in &s.outcome_reasons {
            let _ = write!(out, "<li>{}</li>", esc(reason));
        }
        out.push_str("</ul>");
    }
    if let Some(a) = &s.aborted {
        let _ = write!(
            out,
            "<p class=\"fail\" id=\"aborted\"><strong>Aborted at {:.1} s</strong>: {}</p>",
            a.at_s,
            esc(&a.reason)
        );
    }
    out.push_str(
        "<h2>Thresholds</h2><table><tr><th>threshold</th><th>step</th><th>value</th><th>verdict</th></tr>",
    );
    for t in &s.thresholds {
        let verdict = t.verdict();
        let _ = write!(
            out,
            "<tr><td>{}{}</td><td>{}</td><td>{:.3}</td><td class=\"{}\">{verdict}</td></tr>",
            esc(&t.expr),
            if t.abort_on_fail {
                " (abort_on_fail)"
            } else {
                ""
            },
            t.step.as_deref().map_or_else(|| "all".to_owned(), esc),
            t.value,
            if t.ok { "ok" } else { "fail" },
        );
    }
    out.push_str("</table>");
    let t = &s.totals;
    let l = &s.latency_ms;
    let _ = write!(
        out,
        "<h2>Totals</h2><table><tr><th>requests</th><th>ok</th><th>throttled</th><th>errors</th><th>retries</th><th>dropped</th><th>missed</th>\
         <th>throughput/s</th><th>goodput/s</th></tr><tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td></tr></table>\
         <h2>Latency (ms, from intended start)</h2><table><tr><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>mean</th></tr>\
         <tr><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td></tr></table>",
        t.requests,
        t.ok,
        t.throttled,
        t.errors,
        t.retries,
        t.dropped,
        t.missed,
        s.throughput_rps,
        s.goodput_rps,
        l.p50,
        l.p90,
        l.p99,
        l.p999,
        l.max,
        l.mean
    );
    if let (Some(rps), Some(planned), Some(deferred)) = (s.planned_rps, t.planned, t.deferred) {
        let _ = write!(
            out,
            "<p id=\"demand\">demand: planned {planned} iterations ({rps:.2} it/s), offered {}, \
             deferred {deferred} (held back by backoff or a ceiling)</p>",
            t.offered
        );
    }
    if let Some(line) = super::paused_line(t) {
        let _ = write!(out, "<p id=\"paused\">{}</p>", esc(&line));
    }
    let lag = &s.send_lag_us;
    if lag.count > 0 {
        let _ = write!(
            out,
            "<p>Send lag (µs, from intended instant to sent, {} requests): p50 {} · p90 {} · p99 {} · p99.9 {} · max {}</p>",
            lag.count, lag.p50, lag.p90, lag.p99, lag.p999, lag.max
        );
    }
    let col = |f: fn(&super::summary::IntervalSummary) -> f64| {
        s.timeline.iter().map(f).collect::<Vec<f64>>()
    };
    let series_of = |name, color, dash, values| Series {
        name,
        color,
        dash,
        values,
    };
    // Solid and dotted lines first; the dashed demand lines go on top, so the offered
    // and planned lines stay visible where they equal `ok`.
    let mut series = vec![
        series_of("ok", "#176d17", "", col(|i| i.ok as f64)),
        series_of(
            "throttled (429)",
            "#d98200",
            "2,3",
            col(|i| i.throttled as f64),
        ),
        series_of("errors", "#b00", "8,3,2,3", col(|i| i.errors as f64)),
        series_of("offered", "#555", "6,3", col(|i| i.offered as f64)),
    ];
    // The demand (open model): what the plan asked for before backoff held some back.
    if s.timeline.iter().any(|i| i.planned.is_some()) {
        series.push(series_of(
            "planned",
            "#5a5ad0",
            "12,4",
            col(|i| i.planned.unwrap_or(0.0)),
        ));
    }
    let t0 = s.timeline.first().map_or(0, |i| i.t) as f64;
    out.push_str(&line_chart(
        "Requests per second",
        "req/s",
        t0,
        &series,
        &governor_spans(s),
    ));
    if !s.governor_events.is_empty() {
        out.push_str(
            "<p>shaded: the fleet governor's decisions, labelled on the chart (hover for the rate and reason):",
        );
        for kind in ["cut", "pause", "resume", "recover", "quota-pace"] {
            let _ = write!(
                out,
                " <span style=\"background:{}33;padding:0 4px\">{kind}</span>",
                kind_color(kind)
            );
        }
        out.push_str("</p>");
    }
    out.push_str(&line_chart(
        "Latency per second (from intended start)",
        "ms",
        t0,
        &[
            series_of("p50", "#1f77b4", "", col(|i| i.p50_ms)),
            series_of("p90", "#9467bd", "6,3", col(|i| i.p90_ms)),
            series_of("p99", "#d62728", "2,3", col(|i| i.p99_ms)),
        ],
        &[],
    ));
    out.push_str(&super::distribution::svg(&s.latency_distribution));
    out.push_str(&steps_table(s));
    out.push_str(&errors_table(s));
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
    out.push_str("</table>");
    if !s.plan_text.is_empty() {
        let _ = write!(
            out,
            "<h2>Plan as run</h2><p>secret values are masked</p><pre>{}</pre>",
            esc(&s.plan_text)
        );
    }
    out.push_str("</body></html>\n");
    out
}

fn kind_color(kind: &str) -> &'static str {
    match kind {
        "pause" => "#d62728",
        "cut" => "#ff7f0e",
        "recover" => "#2ca02c",
        "resume" => "#8c564b",
        _ => "#1f77b4",
    }
}

/// The governor's decisions as spans: each run of same-kind decisions shades the rate
/// chart from its first decision to the next different one (or the end of the run).
fn governor_spans(s: &Summary) -> Vec<Span> {
    let t0 = s.timeline.first().map_or(0, |i| i.t) as f64;
    let end = s.timeline.last().map_or(s.duration_s, |i| i.t as f64 + 1.0);
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for (i, e) in s.governor_events.iter().enumerate() {
        match spans.last_mut() {
            Some((_, last)) if s.governor_events[*last].kind == e.kind => *last = i,
            _ => spans.push((i, i)),
        }
    }
    spans
        .iter()
        .enumerate()
        .map(|(k, &(first, last))| {
            let (a, b) = (&s.governor_events[first], &s.governor_events[last]);
            let to = spans
                .get(k + 1)
                .map_or(end, |&(next, _)| s.governor_events[next].at);
            let count = last - first + 1;
            Span {
                from: a.at - t0,
                to: to - t0,
                color: kind_color(&a.kind),
                label: if count > 1 {
                    format!("{} ×{count}", a.kind)
                } else {
                    a.kind.clone()
                },
                title: format!(
                    "{} ×{count} from {:.1} s: rate {:.1} → {:.1} req/s ({})",
                    a.kind, a.at, a.old_rate, b.new_rate, a.reason
                ),
            }
        })
        .collect()
}

fn steps_table(s: &Summary) -> String {
    let mut out = String::from(
        "<h2>Steps</h2><table><tr><th>step</th><th>requests</th><th>ok</th><th>throttled</th><th>errors</th>\
         <th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>max ms</th></tr>",
    );
    for (name, step) in &s.steps {
        let (t, l) = (&step.totals, &step.latency_ms);
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td></tr>",
            esc(name),
            t.requests,
            t.ok,
            t.throttled,
            t.errors,
            l.p50,
            l.p90,
            l.p99,
            l.max
        );
    }
    out.push_str("</table>");
    out
}

/// The run's failures by kind, the most frequent first; nothing when none failed.
fn errors_table(s: &Summary) -> String {
    if s.errors_by_kind.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<h2>Errors by kind</h2><table id=\"errors-by-kind\"><tr><th>count</th><th>step</th><th>outcome</th>\
         <th>status</th><th>message</th><th>first seen s</th><th>sample (masked)</th></tr>",
    );
    for e in &s.errors_by_kind {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td style=\"text-align:left\">{}</td><td>{:.1}</td>\
             <td style=\"text-align:left\"><code>{}</code></td></tr>",
            e.count,
            esc(&e.step),
            esc(&e.outcome),
            e.status.map_or_else(String::new, |s| s.to_string()),
            esc(&e.message),
            e.first_seen_s,
            esc(&e.sample)
        );
    }
    out.push_str("</table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;
    use crate::report::summary::StepSummary;

    #[test]
    fn the_page_has_the_distribution_steps_governor_spans_and_the_masked_plan() {
        let mut s = fixture::summary();
        s.latency_distribution = vec![(0.0, 1.0), (90.0, 5.0), (99.0, 9.0), (99.999, 20.0)];
        s.steps.insert(
            "update <1>".into(),
            StepSummary {
                totals: fixture::totals(10, 9, 1),
                latency_ms: fixture::latency(1.5, 7.0, 9.0),
                ..Default::default()
            },
        );
        s.plan_text = crate::report::plan_text::mask_secrets(
            "name = \"p\"\nheaders = { Authorization = \"Bearer s3cret\" }\n",
        );
        let html = render(&s);
        assert!(html.contains("Latency by percentile"), "{html}");
        assert!(
            html.contains("shaded: the fleet governor's decisions"),
            "{html}"
        );
        assert!(html.contains("99.999%"), "{html}");
        assert!(
            html.contains(
                "<td>update &lt;1&gt;</td><td>10</td><td>9</td><td>1</td><td>0</td><td>1.50</td>"
            ),
            "{html}"
        );
        assert!(
            html.contains(
                "<title>pause ×1 from 2.5 s: rate 100.0 → 50.0 req/s (429 retry-after 2s)</title>"
            ),
            "{html}"
        );
        assert!(
            html.contains("Plan as run") && html.contains("Authorization = &quot;****&quot;"),
            "{html}"
        );
        assert!(!html.contains("s3cret"), "{html}");
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "self-contained"
        );
    }

    #[test]
    fn errors_by_kind_are_a_table_with_escaped_text() {
        let mut s = fixture::summary();
        assert!(!render(&s).contains("Errors by kind"));
        s.errors_by_kind = vec![crate::report::errors::ErrorKindSummary {
            step: "update".into(),
            outcome: "client_error".into(),
            status: Some(404),
            message: "404 Not Found: flow not found: flow-<n>".into(),
            count: 12,
            first_seen_s: 1.5,
            sample: r#"{"message":"flow not found: flow-1"}"#.into(),
        }];
        let html = render(&s);
        assert!(
            html.contains(
                "<tr><td>12</td><td>update</td><td>client_error</td><td>404</td>\
                 <td style=\"text-align:left\">404 Not Found: flow not found: flow-&lt;n&gt;</td><td>1.5</td>"
            ),
            "{html}"
        );
        assert!(html.contains("<code>{&quot;message&quot;"), "{html}");
    }

    #[test]
    fn same_kind_decisions_merge_into_one_span() {
        let mut s = fixture::summary();
        let e = s.governor_events[0].clone();
        let at = |at: f64, kind: &str| super::super::summary::GovernorEventSummary {
            at,
            kind: kind.into(),
            ..e.clone()
        };
        s.governor_events = vec![
            at(1.0, "cut"),
            at(2.0, "cut"),
            at(4.0, "recover"),
            at(5.0, "recover"),
        ];
        let spans = governor_spans(&s);
        assert_eq!(spans.len(), 2);
        assert_eq!((spans[0].from, spans[0].to), (1.0, 4.0));
        assert_eq!((spans[1].from, spans[1].to), (4.0, 10.0));
        assert!(
            spans[1].title.starts_with("recover ×2"),
            "{}",
            spans[1].title
        );
    }
}
