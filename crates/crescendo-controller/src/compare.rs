//! `crescendo-controller compare A B`: two runs' summaries side by side, and whether B
//! regressed from A past a tolerance.
//!
//! Judged (a regression fails the comparison):
//! - latency p50, p90, p99, p99.9 and max: worse when B is higher than A by more than
//!   the tolerance (relative: 0.05 is 5 %), plus the histogram's 1 µs unit;
//! - goodput: worse when B is lower than A by more than the tolerance;
//! - throttled and error ratios (of all attempts): worse when B is higher than A by
//!   more than the tolerance, relative, and by more than 0.1 percentage point, so that
//!   one 429 in a clean run is not a regression but a new stream of them is.
//!
//! Shown for context only: throughput (attempts per second, which rises with retries)
//! and the error count.
//!
//! [`compare`] is pure; [`command`] reads the files and prints.

use std::fmt::Write;
use std::path::Path;

use crate::exit_code::{EXIT_BAD_INPUT, EXIT_OK, EXIT_THRESHOLD};
use crate::report::{self, Summary};

/// Which way a metric gets worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Higher is worse (latency, ratios).
    LowerIsBetter,
    /// Lower is worse (goodput).
    HigherIsBetter,
    /// Not judged.
    Info,
}

/// One metric of both runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: &'static str,
    pub unit: &'static str,
    pub a: f64,
    pub b: f64,
    pub direction: Direction,
    /// B past the tolerance in the worse direction.
    pub regressed: bool,
}

impl Row {
    /// The change from A to B in percent of A; `None` when A is zero.
    pub fn change_pct(&self) -> Option<f64> {
        (self.a != 0.0).then(|| (self.b - self.a) / self.a.abs() * 100.0)
    }
}

/// Every row of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub tolerance: f64,
    pub rows: Vec<Row>,
}

impl Comparison {
    /// Whether any judged metric regressed.
    pub fn regressed(&self) -> bool {
        self.rows.iter().any(|r| r.regressed)
    }

    /// The names of the metrics that regressed.
    pub fn regressions(&self) -> Vec<&'static str> {
        self.rows
            .iter()
            .filter(|r| r.regressed)
            .map(|r| r.name)
            .collect()
    }
}

/// The slack below which a change never counts, whatever the tolerance: the
/// histogram's 1 µs unit for latencies, 0.1 percentage point for ratios.
const LATENCY_SLACK_MS: f64 = 0.001;
const RATIO_SLACK: f64 = 0.001;

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Compare run B against baseline A; `tolerance` is relative (0.05 = 5 %).
pub fn compare(a: &Summary, b: &Summary, tolerance: f64) -> Comparison {
    let worse_if_higher = |a: f64, b: f64, slack: f64| b > a * (1.0 + tolerance) + slack;
    let mut rows = Vec::new();
    let mut row = |name, unit, a: f64, b: f64, direction, slack: f64| {
        let regressed = match direction {
            Direction::LowerIsBetter => worse_if_higher(a, b, slack),
            Direction::HigherIsBetter => b < a * (1.0 - tolerance) - slack,
            Direction::Info => false,
        };
        rows.push(Row {
            name,
            unit,
            a,
            b,
            direction,
            regressed,
        });
    };
    let (la, lb) = (&a.latency_ms, &b.latency_ms);
    use Direction::*;
    row(
        "latency p50",
        "ms",
        la.p50,
        lb.p50,
        LowerIsBetter,
        LATENCY_SLACK_MS,
    );
    row(
        "latency p90",
        "ms",
        la.p90,
        lb.p90,
        LowerIsBetter,
        LATENCY_SLACK_MS,
    );
    row(
        "latency p99",
        "ms",
        la.p99,
        lb.p99,
        LowerIsBetter,
        LATENCY_SLACK_MS,
    );
    row(
        "latency p99.9",
        "ms",
        la.p999,
        lb.p999,
        LowerIsBetter,
        LATENCY_SLACK_MS,
    );
    row(
        "latency max",
        "ms",
        la.max,
        lb.max,
        LowerIsBetter,
        LATENCY_SLACK_MS,
    );
    row(
        "throughput",
        "req/s",
        a.throughput_rps,
        b.throughput_rps,
        Info,
        0.0,
    );
    row(
        "goodput",
        "req/s",
        a.goodput_rps,
        b.goodput_rps,
        HigherIsBetter,
        0.0,
    );
    let throttled = |s: &Summary| ratio(s.totals.throttled, s.totals.requests);
    row(
        "throttled ratio",
        "%",
        throttled(a),
        throttled(b),
        LowerIsBetter,
        RATIO_SLACK,
    );
    let errors = |s: &Summary| ratio(s.totals.errors, s.totals.requests);
    row(
        "error ratio",
        "%",
        errors(a),
        errors(b),
        LowerIsBetter,
        RATIO_SLACK,
    );
    let count = |s: &Summary| s.totals.errors as f64;
    row("errors", "", count(a), count(b), Info, 0.0);
    Comparison { tolerance, rows }
}

fn value(v: f64, unit: &str) -> String {
    match unit {
        "%" => format!("{:.2} %", v * 100.0),
        "" => format!("{v:.0}"),
        _ => format!("{v:.2}"),
    }
}

/// The side-by-side table and a verdict line.
pub fn render(c: &Comparison, a_name: &str, b_name: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<22} {:>14} {:>14} {:>10}",
        "metric", "A", "B", "change"
    );
    for r in &c.rows {
        let name = if r.unit.is_empty() || r.unit == "%" {
            r.name.to_owned()
        } else {
            format!("{} ({})", r.name, r.unit)
        };
        let change = match r.change_pct() {
            Some(p) => format!("{p:+.1} %"),
            None if r.b == 0.0 => "0".to_owned(),
            None => "new".to_owned(),
        };
        let flag = if r.regressed { "  REGRESSED" } else { "" };
        let _ = writeln!(
            out,
            "{name:<22} {:>14} {:>14} {change:>10}{flag}",
            value(r.a, r.unit),
            value(r.b, r.unit),
        );
    }
    let _ = writeln!(out, "A: {a_name}\nB: {b_name}");
    let tolerance = c.tolerance * 100.0;
    if c.regressed() {
        let _ = writeln!(
            out,
            "verdict: REGRESSED past {tolerance} % on {}",
            c.regressions().join(", ")
        );
    } else {
        let _ = writeln!(out, "verdict: no regression past {tolerance} %");
    }
    out
}

/// Parse `--tolerance`: a finite fraction, 0 or more (0.05 = 5 %).
pub fn parse_tolerance(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if t.is_finite() && t >= 0.0 => Ok(t),
        _ => Err(format!(
            "expected a fraction of 0 or more such as 0.05, got {s:?}"
        )),
    }
}

/// The `compare` command: exit 0 when B holds, 99 when it regressed, 2 when either
/// summary cannot be read.
pub fn command(a: &Path, b: &Path, tolerance: f64) -> u8 {
    let (sa, sb) = match (report::load_summary(a), report::load_summary(b)) {
        (Ok(sa), Ok(sb)) => (sa, sb),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return EXIT_BAD_INPUT;
        }
    };
    let comparison = compare(&sa, &sb, tolerance);
    let name =
        |s: &Summary, p: &Path| format!("{} ({}, run {})", p.display(), s.plan_name, s.run_id);
    print!("{}", render(&comparison, &name(&sa, a), &name(&sb, b)));
    if comparison.regressed() {
        EXIT_THRESHOLD
    } else {
        EXIT_OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    fn row<'a>(c: &'a Comparison, name: &str) -> &'a Row {
        c.rows.iter().find(|r| r.name == name).unwrap()
    }

    #[test]
    fn a_run_compared_with_itself_holds() {
        let s = fixture::summary();
        let c = compare(&s, &s, 0.0);
        assert!(!c.regressed(), "{c:?}");
        assert_eq!(row(&c, "latency p99").change_pct(), Some(0.0));
    }

    #[test]
    fn latency_up_past_the_tolerance_regresses_and_within_it_holds() {
        let a = fixture::summary();
        let mut b = a.clone();
        b.latency_ms.p99 = a.latency_ms.p99 * 1.04;
        assert!(!compare(&a, &b, 0.05).regressed());
        b.latency_ms.p99 = a.latency_ms.p99 * 1.06;
        let c = compare(&a, &b, 0.05);
        assert_eq!(c.regressions(), vec!["latency p99"]);
        let change = row(&c, "latency p99").change_pct().unwrap();
        assert!((change - 6.0).abs() < 1e-9, "{change}");
        // Faster is never a regression.
        b.latency_ms.p99 = a.latency_ms.p99 / 2.0;
        assert!(!compare(&a, &b, 0.0).regressed());
    }

    #[test]
    fn goodput_down_regresses_and_throughput_alone_does_not() {
        let a = fixture::summary();
        let mut b = a.clone();
        b.goodput_rps = a.goodput_rps * 0.9;
        b.throughput_rps = a.throughput_rps * 0.5;
        let c = compare(&a, &b, 0.05);
        assert_eq!(c.regressions(), vec!["goodput"]);
        b.goodput_rps = a.goodput_rps * 2.0;
        assert!(!compare(&a, &b, 0.05).regressed());
    }

    #[test]
    fn throttle_and_error_ratios_up_regress_but_a_stray_one_does_not() {
        let mut a = fixture::summary();
        a.totals = fixture::totals(1000, 1000, 0);
        let mut b = a.clone();
        b.totals = fixture::totals(1000, 999, 1);
        assert!(!compare(&a, &b, 0.05).regressed(), "one 429 in 1000");
        b.totals = fixture::totals(1000, 900, 50);
        let c = compare(&a, &b, 0.05);
        assert_eq!(c.regressions(), vec!["throttled ratio", "error ratio"]);
        assert_eq!(row(&c, "throttled ratio").change_pct(), None);
        assert_eq!(row(&c, "errors").b, 50.0);
    }

    #[test]
    fn the_table_shows_both_runs_the_change_and_the_verdict() {
        let a = fixture::summary();
        let mut b = a.clone();
        b.latency_ms.p50 = 12.5;
        let text = render(&compare(&a, &b, 0.05), "runs/a", "runs/b");
        let p50 = text.lines().find(|l| l.starts_with("latency p50")).unwrap();
        assert!(p50.contains("10.00") && p50.contains("12.50"), "{text}");
        assert!(
            p50.contains("+25.0 %") && p50.ends_with("REGRESSED"),
            "{text}"
        );
        let throttled = text.lines().find(|l| l.starts_with("throttled")).unwrap();
        assert!(throttled.contains("9.00 %"), "{text}");
        assert!(
            text.contains("verdict: REGRESSED past 5 % on latency p50"),
            "{text}"
        );
        assert!(
            text.contains("A: runs/a") && text.contains("B: runs/b"),
            "{text}"
        );
    }

    #[test]
    fn tolerance_parsing() {
        assert_eq!(parse_tolerance("0.05"), Ok(0.05));
        assert_eq!(parse_tolerance("0"), Ok(0.0));
        for bad in ["-0.1", "NaN", "inf", "5%", ""] {
            assert!(parse_tolerance(bad).is_err(), "{bad}");
        }
    }
}
