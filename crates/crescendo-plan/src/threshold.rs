//! `[thresholds]`: pass/fail criteria such as `"latency.p99" = "< 800ms"`.
//!
//! Keys name a metric: `latency.pNN`, `latency.max`, `latency.mean` (and the same under
//! `service_time.`), the counts `requests ok throttled errors retries dropped`, the ratios
//! `throttled_ratio error_ratio`, and `throughput_rps`, `goodput_rps`. Percentiles follow
//! the HdrHistogram naming: `p99` is 99, `p999` is 99.9, `p9999` is 99.99, `p99.5` is 99.5.
//!
//! Values are an operator (`<`, `<=`, `>`, `>=`, `==`) and a number; latency metrics
//! accept a unit (`us`, `ms`, `s`, default `ms`) and are stored in milliseconds.

use std::fmt;

use crate::model::{CompareOp, CountKind, Metric, Stat, Threshold};

impl CompareOp {
    /// Whether `lhs op rhs` holds (false whenever either side is NaN).
    pub fn holds(self, lhs: f64, rhs: f64) -> bool {
        match self {
            CompareOp::Lt => lhs < rhs,
            CompareOp::Le => lhs <= rhs,
            CompareOp::Gt => lhs > rhs,
            CompareOp::Ge => lhs >= rhs,
            CompareOp::Eq => lhs == rhs,
        }
    }

    /// The operator as written: `<`, `<=`, `>`, `>=`, `==`.
    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Eq => "==",
        }
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

impl CountKind {
    /// The key naming this count (`requests`, `ok`, …).
    pub fn name(self) -> &'static str {
        match self {
            CountKind::Requests => "requests",
            CountKind::Ok => "ok",
            CountKind::Throttled => "throttled",
            CountKind::Errors => "errors",
            CountKind::Retries => "retries",
            CountKind::Dropped => "dropped",
        }
    }
}

impl Metric {
    /// True for metrics measured in milliseconds (latency and service time).
    pub fn is_latency(&self) -> bool {
        matches!(self, Metric::Latency(_) | Metric::ServiceTime(_))
    }
}

/// Displays as the threshold key, e.g. `latency.p99`, `service_time.p99.9`, `throttled_ratio`.
impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (prefix, stat) = match self {
            Metric::Latency(stat) => ("latency", stat),
            Metric::ServiceTime(stat) => ("service_time", stat),
            Metric::Count(kind) => return f.write_str(kind.name()),
            Metric::Ratio(CountKind::Errors) => return f.write_str("error_ratio"),
            Metric::Ratio(kind) => return write!(f, "{}_ratio", kind.name()),
            Metric::ThroughputRps => return f.write_str("throughput_rps"),
            Metric::GoodputRps => return f.write_str("goodput_rps"),
        };
        match stat {
            Stat::Percentile(p) => write!(f, "{prefix}.p{p}"),
            Stat::Max => write!(f, "{prefix}.max"),
            Stat::Mean => write!(f, "{prefix}.mean"),
        }
    }
}

/// The threshold keys, for error messages.
pub(crate) const METRIC_FORMS: &str = "latency.pNN, latency.max, latency.mean, service_time.pNN, \
     service_time.max, service_time.mean, requests, ok, throttled, errors, retries, dropped, \
     throttled_ratio, error_ratio, throughput_rps, goodput_rps";

/// Parses a threshold key into its metric.
pub(crate) fn parse_metric(key: &str) -> Result<Metric, String> {
    let unknown = || format!("unknown metric `{key}`, expected one of {METRIC_FORMS}");
    if let Some((prefix, stat)) = key.split_once('.') {
        let stat = match stat {
            "max" => Stat::Max,
            "mean" => Stat::Mean,
            p => match p.strip_prefix('p') {
                Some(digits) => Stat::Percentile(parse_percentile(digits).ok_or_else(|| {
                    format!(
                        "expected a percentile in (0, 100] after `p` (p50, p99, p999 = 99.9, p99.99), got `{key}`"
                    )
                })?),
                None => return Err(unknown()),
            },
        };
        return match prefix {
            "latency" => Ok(Metric::Latency(stat)),
            "service_time" => Ok(Metric::ServiceTime(stat)),
            _ => Err(unknown()),
        };
    }
    let count = |name: &str| match name {
        "requests" => Some(CountKind::Requests),
        "ok" => Some(CountKind::Ok),
        "throttled" => Some(CountKind::Throttled),
        "errors" => Some(CountKind::Errors),
        "retries" => Some(CountKind::Retries),
        "dropped" => Some(CountKind::Dropped),
        _ => None,
    };
    match key {
        "throttled_ratio" => Ok(Metric::Ratio(CountKind::Throttled)),
        "error_ratio" => Ok(Metric::Ratio(CountKind::Errors)),
        "throughput_rps" => Ok(Metric::ThroughputRps),
        "goodput_rps" => Ok(Metric::GoodputRps),
        _ => count(key).map(Metric::Count).ok_or_else(unknown),
    }
}

/// `99` → 99, `999` → 99.9, `9999` → 99.99, `99.9` → 99.9, `100` → 100; `None` outside
/// (0, 100] and for undotted numbers past 100 that do not start with `99` (`p101`).
fn parse_percentile(digits: &str) -> Option<f64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let value: f64 = digits.parse().ok()?;
    let value = if !digits.contains('.') && value > 100.0 {
        // HdrHistogram naming: after a leading `99` the digits are decimals (p999 = 99.9).
        let decimals = digits.strip_prefix("99")?;
        format!("99.{decimals}").parse().ok()?
    } else {
        value
    };
    (value > 0.0 && value <= 100.0).then_some(value)
}

/// Parses the value of a threshold entry (`< 800ms`) for `metric`.
pub(crate) fn parse_threshold(key: &str, metric: Metric, value: &str) -> Result<Threshold, String> {
    let latency = metric.is_latency();
    let form = if latency {
        "an operator (<, <=, >, >=, ==) and a duration such as \"< 800ms\", \"<= 1.5s\" or \"< 900us\""
    } else {
        "an operator (<, <=, >, >=, ==) and a number such as \"< 0.02\" or \"== 0\""
    };
    let bad = || format!("expected {form}, got {value:?}");
    let trimmed = value.trim();
    let (op, rest) = [
        ("<=", CompareOp::Le),
        (">=", CompareOp::Ge),
        ("==", CompareOp::Eq),
        ("<", CompareOp::Lt),
        (">", CompareOp::Gt),
    ]
    .into_iter()
    .find_map(|(sym, op)| trimmed.strip_prefix(sym).map(|rest| (op, rest.trim())))
    .ok_or_else(bad)?;
    let number_end = rest
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(rest.len());
    // `e` may start a unit rather than an exponent; no unit here starts with `e`.
    let (number, unit) = rest.split_at(number_end);
    let unit = unit.trim();
    let number: f64 = number.parse().map_err(|_| bad())?;
    if !number.is_finite() {
        return Err(bad());
    }
    let scale = match (latency, unit) {
        (_, "") => 1.0,
        (true, "ms") => 1.0,
        (true, "s") => 1000.0,
        (true, "us" | "µs") => 0.001,
        (true, _) => {
            return Err(format!(
                "expected a unit of us, ms or s, got {unit:?} in {value:?}"
            ));
        }
        (false, _) => {
            return Err(format!(
                "expected a plain number for `{key}` (units apply to latency metrics only), got {value:?}"
            ));
        }
    };
    Ok(Threshold {
        expr: format!("{key} {op} {number}{unit}"),
        metric,
        op,
        value: number * scale,
        step: None,
        abort: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(key: &str, value: &str) -> Result<Threshold, String> {
        parse_threshold(key, parse_metric(key)?, value)
    }

    #[test]
    fn percentiles_follow_hdrhistogram_naming() {
        for (digits, p) in [
            ("50", 50.0),
            ("90", 90.0),
            ("99", 99.0),
            ("999", 99.9),
            ("9999", 99.99),
            ("99.9", 99.9),
            ("99.99", 99.99),
            ("100", 100.0),
            ("1", 1.0),
        ] {
            assert_eq!(parse_percentile(digits), Some(p), "p{digits}");
        }
        assert_eq!(parse_percentile("995"), Some(99.5));
        for bad in ["", "0", "101", "101.5", "abc", "9.9.9", "-1", "1e2"] {
            assert_eq!(parse_percentile(bad), None, "p{bad}");
        }
    }

    #[test]
    fn metrics() {
        assert_eq!(
            parse_metric("latency.p999"),
            Ok(Metric::Latency(Stat::Percentile(99.9)))
        );
        assert_eq!(
            parse_metric("service_time.max"),
            Ok(Metric::ServiceTime(Stat::Max))
        );
        assert_eq!(
            parse_metric("latency.mean"),
            Ok(Metric::Latency(Stat::Mean))
        );
        assert_eq!(
            parse_metric("dropped"),
            Ok(Metric::Count(CountKind::Dropped))
        );
        assert_eq!(
            parse_metric("error_ratio"),
            Ok(Metric::Ratio(CountKind::Errors))
        );
        assert_eq!(parse_metric("goodput_rps"), Ok(Metric::GoodputRps));
        assert!(
            parse_metric("latency.p0")
                .unwrap_err()
                .contains("percentile")
        );
        assert!(
            parse_metric("latency.median")
                .unwrap_err()
                .contains("unknown metric")
        );
        assert!(
            parse_metric("bogus")
                .unwrap_err()
                .contains("expected one of")
        );
        assert!(
            parse_metric("foo.p99")
                .unwrap_err()
                .contains("unknown metric")
        );
    }

    #[test]
    fn metric_display_round_trips() {
        for key in [
            "latency.p99",
            "latency.p99.9",
            "service_time.p50",
            "latency.max",
            "service_time.mean",
            "requests",
            "throttled_ratio",
            "error_ratio",
            "throughput_rps",
            "goodput_rps",
        ] {
            let metric = parse_metric(key).unwrap();
            assert_eq!(metric.to_string(), key);
            assert_eq!(parse_metric(&metric.to_string()).unwrap(), metric);
        }
    }

    #[test]
    fn values_and_units() {
        let t = parse("latency.p99", "< 800ms").unwrap();
        assert_eq!(
            (t.op, t.value, t.expr.as_str()),
            (CompareOp::Lt, 800.0, "latency.p99 < 800ms")
        );
        let t = parse("latency.max", "<=1.5s").unwrap();
        assert_eq!(
            (t.op, t.value, t.expr.as_str()),
            (CompareOp::Le, 1500.0, "latency.max <= 1.5s")
        );
        assert_eq!(parse("service_time.p50", "< 900us").unwrap().value, 0.9);
        assert_eq!(parse("latency.p50", "< 20").unwrap().value, 20.0);
        let t = parse("errors", "== 0").unwrap();
        assert_eq!(
            (t.op, t.value, t.expr.as_str()),
            (CompareOp::Eq, 0.0, "errors == 0")
        );
        assert_eq!(parse("goodput_rps", " >= 4.5 ").unwrap().op, CompareOp::Ge);
        assert_eq!(parse("throttled_ratio", "> 2e-2").unwrap().value, 0.02);
    }

    #[test]
    fn bad_values() {
        assert!(
            parse("errors", "0")
                .unwrap_err()
                .contains("expected an operator")
        );
        assert!(
            parse("errors", "== x")
                .unwrap_err()
                .contains("expected an operator")
        );
        assert!(
            parse("errors", "== 1ms")
                .unwrap_err()
                .contains("latency metrics only")
        );
        assert!(parse("latency.p99", "< 5m").unwrap_err().contains("unit"));
        assert!(parse("latency.p99", "< inf").is_err());
        assert!(parse("latency.p99", "=< 5").is_err());
        assert!(parse("latency.p99", "").is_err());
    }

    #[test]
    fn holds() {
        assert!(CompareOp::Lt.holds(1.0, 2.0));
        assert!(!CompareOp::Lt.holds(2.0, 2.0));
        assert!(CompareOp::Le.holds(2.0, 2.0));
        assert!(CompareOp::Gt.holds(3.0, 2.0));
        assert!(CompareOp::Ge.holds(2.0, 2.0));
        assert!(CompareOp::Eq.holds(0.0, 0.0));
        assert!(!CompareOp::Ge.holds(f64::NAN, 0.0));
        assert_eq!(CompareOp::Ge.to_string(), ">=");
    }
}
