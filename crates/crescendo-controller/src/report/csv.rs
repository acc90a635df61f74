//! `results.csv`: one row per second and step, for spreadsheets and plotting tools.
//! `offered` is the iterations the schedule intended in that second (the whole
//! scenario's, so it repeats on every step's row); latencies are intended-time
//! latencies of that second's successful requests, in milliseconds.

use std::fmt::Write;

use crescendo_metrics::LatencySummary;

use crate::aggregate::Interval;
use crate::aggregate::timeline::Timeline;

pub(crate) const HEADER: &str =
    "t,step,offered,requests,ok,throttled,errors,p50_ms,p90_ms,p99_ms,max_ms";

/// A field quoted as RFC 4180 asks when it holds a comma, quote or line break.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Append the rows of second `t`, one per step, to `out`.
pub(crate) fn rows(t: u64, interval: &Interval, out: &mut String) {
    for (step, stats) in &interval.steps {
        let c = &stats.counters;
        let l = LatencySummary::of(&stats.latency);
        let _ = writeln!(
            out,
            "{t},{},{},{},{},{},{},{:.3},{:.3},{:.3},{:.3}",
            field(step),
            interval.offered,
            c.requests,
            c.ok,
            c.throttled,
            c.errors(),
            l.p50,
            l.p90,
            l.p99,
            l.max
        );
    }
}

/// The whole file: the header, then every second's rows (see
/// [`crate::aggregate::timeline`] for the order and for late rows).
pub(crate) fn write(timeline: &Timeline, out: &mut impl std::io::Write) -> std::io::Result<()> {
    writeln!(out, "{HEADER}")?;
    timeline.write_csv(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crescendo_metrics::StepStats;
    use crescendo_metrics::histogram::record;

    use super::*;

    fn stats(ok_us: &[u64], throttled: u64, errors: u64) -> StepStats {
        let mut s = StepStats::default();
        for us in ok_us {
            record(&mut s.latency, Duration::from_micros(*us));
        }
        s.counters.ok = ok_us.len() as u64;
        s.counters.throttled = throttled;
        s.counters.server_errors = errors;
        s.counters.requests = s.counters.ok + throttled + errors;
        s
    }

    fn render(intervals: Vec<(u64, Interval)>) -> String {
        let mut timeline = Timeline::default();
        for (t, interval) in intervals {
            *timeline.open(t).expect("an open second") = interval;
        }
        let mut out = Vec::new();
        write(&timeline, &mut out).expect("writing to a Vec");
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn one_row_per_second_and_step_with_exact_counts() {
        let mut intervals = Vec::new();
        let mut first = Interval {
            offered: 7,
            ..Default::default()
        };
        first
            .steps
            .insert("login".into(), stats(&[1000, 1200, 1400, 1600], 1, 0));
        first
            .steps
            .insert("put, \"quoted\"".into(), stats(&[1900], 2, 1));
        intervals.push((0, first));
        let mut second = Interval {
            offered: 3,
            ..Default::default()
        };
        second.steps.insert("login".into(), stats(&[], 0, 2));
        intervals.push((1, second));

        let csv = render(intervals);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], HEADER);
        assert_eq!(lines.len(), 4, "{csv}");
        assert_eq!(
            lines[1], "0,login,7,5,4,1,0,1.200,1.600,1.600,1.600",
            "{csv}"
        );
        assert_eq!(
            lines[2],
            "0,\"put, \"\"quoted\"\"\",7,4,1,2,1,1.900,1.900,1.900,1.900"
        );
        assert_eq!(lines[3], "1,login,3,2,0,0,2,0.000,0.000,0.000,0.000");
        for line in &lines[1..] {
            assert!(line.ends_with(|c: char| c.is_ascii_digit()), "{line}");
        }
    }

    #[test]
    fn an_empty_run_is_just_the_header() {
        assert_eq!(render(Vec::new()), format!("{HEADER}\n"));
    }
}
