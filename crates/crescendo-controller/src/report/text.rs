//! The summary printed on the terminal at the end of a run.

use std::fmt::Write;

use super::Summary;

/// Kinds of failure shown (all are in `summary.json` and `report.html`).
const TOP_ERRORS: usize = 5;

pub(crate) fn render(s: &Summary) -> String {
    let t = &s.totals;
    let l = &s.latency_ms;
    let st = &s.service_time_ms;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "run {} ({}) — {:.1} s, {} agents",
        s.run_id,
        s.plan_name,
        s.duration_s,
        s.agents.len()
    );
    let _ = writeln!(
        out,
        "  requests {}  ok {}  throttled {} ({:.1} %)  errors {}  retries {}  dropped {}  missed {}",
        t.requests,
        t.ok,
        t.throttled,
        s.throttled_ratio * 100.0,
        t.errors,
        t.retries,
        t.dropped,
        t.missed
    );
    let _ = writeln!(
        out,
        "  throughput {:.2} req/s  goodput {:.2} req/s  offered {:.2} it/s",
        s.throughput_rps, s.goodput_rps, s.offered_rps
    );
    if let (Some(rps), Some(planned), Some(deferred)) = (s.planned_rps, t.planned, t.deferred) {
        let _ = writeln!(
            out,
            "  demand: planned {planned} iterations ({rps:.2} it/s), offered {}, deferred {deferred} (held back by backoff or a ceiling)",
            t.offered
        );
    }
    if let Some(line) = super::paused_line(t) {
        let _ = writeln!(out, "  {line}");
    }
    let _ = writeln!(
        out,
        "  latency ms (from intended start)  p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        l.p50, l.p90, l.p99, l.p999, l.max
    );
    let _ = writeln!(
        out,
        "  service time ms                   p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        st.p50, st.p90, st.p99, st.p999, st.max
    );
    let lag = &s.send_lag_us;
    if lag.count > 0 {
        let _ = writeln!(
            out,
            "  send lag µs (intended → sent)     p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  ({} requests)",
            lag.p50, lag.p90, lag.p99, lag.p999, lag.max, lag.count
        );
    }
    if let Some(first) = s.errors_by_kind.first() {
        let shown = s.errors_by_kind.len().min(TOP_ERRORS);
        if shown == 1 {
            let _ = writeln!(out, "  errors by kind: {}", super::errors::line(first));
        } else {
            let _ = writeln!(
                out,
                "  errors by kind (top {shown} of {}):",
                s.errors_by_kind.len()
            );
            for e in s.errors_by_kind.iter().take(TOP_ERRORS) {
                let _ = writeln!(out, "    {}", super::errors::line(e));
            }
        }
    }
    for lost in &s.lost_agents {
        let _ = writeln!(
            out,
            "  LOST agent {} at {:.1} s: {}",
            lost.id, lost.at_s, lost.reason
        );
    }
    if let Some(a) = &s.aborted {
        let _ = writeln!(out, "  ABORTED at {:.1} s: {}", a.at_s, a.reason);
    } else if let Some(reason) = &s.stopped {
        let _ = writeln!(out, "  stopped early: {reason}");
    }
    for e in &s.agent_errors {
        let _ = writeln!(out, "  agent error: {e}");
    }
    for th in &s.thresholds {
        let _ = writeln!(
            out,
            "  threshold {:<32} {:>12.3}  {}",
            th.expr,
            th.value,
            th.verdict()
        );
    }
    let _ = writeln!(out, "  verdict: {}", s.outcome.label());
    if !s.passed {
        for reason in &s.outcome_reasons {
            let _ = writeln!(out, "    {reason}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::errors::ErrorKindSummary;
    use crate::report::fixture;

    fn kind(count: u64, message: &str) -> ErrorKindSummary {
        ErrorKindSummary {
            step: "update".into(),
            outcome: "connect_error".into(),
            message: message.into(),
            count,
            ..ErrorKindSummary::default()
        }
    }

    #[test]
    fn the_top_five_kinds_of_error_are_printed() {
        let mut s = fixture::summary();
        assert!(!render(&s).contains("errors by kind"));
        s.errors_by_kind = vec![kind(30, "connection refused")];
        let text = render(&s);
        assert!(
            text.contains(
                "  errors by kind: 30 × connect_error: connection refused (step update)\n"
            ),
            "{text}"
        );
        s.errors_by_kind = (0..7).map(|i| kind(10 - i, &format!("m{i}"))).collect();
        let text = render(&s);
        assert!(
            text.contains("errors by kind (top 5 of 7):\n    10 × "),
            "{text}"
        );
        assert!(
            text.contains("(step update)\n") && !text.contains("m5"),
            "{text}"
        );
    }
}
