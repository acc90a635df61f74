//! Evaluating the plan's thresholds against the merged result: at the end of a run for
//! the verdict, and while it goes for the thresholds marked `abort_on_fail`.
//!
//! A threshold with a step (`steps.update.latency.p95`) is measured on that step's
//! merged stats; the others on all steps added up.

use std::collections::BTreeMap;
use std::time::Duration;

use crescendo_metrics::StepStats;
use crescendo_metrics::histogram::percentile_ms;
use crescendo_plan::{CountKind, Metric, Stat, Threshold};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// One threshold's verdict.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ThresholdResult {
    pub expr: String,
    pub ok: bool,
    /// The measured value, in the metric's unit (ms for latencies).
    pub value: f64,
    /// The step it is about; `None` for the whole run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Marked `abort_on_fail`: checked each second while the run goes.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub abort_on_fail: bool,
    /// This threshold failed while the run went and stopped it early.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub aborted_run: bool,
    /// A latency or service-time threshold with no successful request to measure:
    /// failed, whatever its expression says of the empty value.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_samples: bool,
}

impl ThresholdResult {
    /// The verdict as reports show it: `ok`, `FAILED`, or `FAILED (aborted the run)`.
    pub fn verdict(&self) -> &'static str {
        match (self.ok, self.aborted_run, self.no_samples) {
            (true, ..) => "ok",
            (false, true, _) => "FAILED (aborted the run)",
            (false, false, true) => "FAILED (no successful requests)",
            (false, false, false) => "FAILED",
        }
    }
}

/// Why and when an `abort_on_fail` threshold stopped the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Aborted {
    /// For people: `threshold latency.p99 < 800ms failed at 12.0 s (measured 950.1)`.
    pub reason: String,
    /// Seconds since the start barrier.
    pub at_s: f64,
    /// The failed threshold's expression.
    pub threshold: String,
    /// What it measured then.
    pub value: f64,
}

fn stat(hist: &Histogram<u64>, stat: Stat) -> f64 {
    match stat {
        Stat::Percentile(p) => percentile_ms(hist, p),
        Stat::Max => hist.max() as f64 / 1000.0,
        Stat::Mean if hist.is_empty() => 0.0,
        Stat::Mean => hist.mean() / 1000.0,
    }
}

fn count(total: &StepStats, kind: CountKind) -> f64 {
    let c = &total.counters;
    (match kind {
        CountKind::Requests => c.requests,
        CountKind::Ok => c.ok,
        CountKind::Throttled => c.throttled,
        CountKind::Errors => c.errors(),
        CountKind::Retries => c.retries,
        CountKind::Dropped => c.dropped,
    }) as f64
}

/// The measured value of a metric over the whole run.
pub fn measure(metric: &Metric, total: &StepStats, duration_s: f64) -> f64 {
    let per_s = |v: u64| {
        if duration_s > 0.0 {
            v as f64 / duration_s
        } else {
            0.0
        }
    };
    match metric {
        Metric::Latency(s) => stat(&total.latency, *s),
        Metric::ServiceTime(s) => stat(&total.service_time, *s),
        Metric::Count(kind) => count(total, *kind),
        Metric::Ratio(kind) => {
            let requests = total.counters.requests;
            if requests == 0 {
                0.0
            } else {
                count(total, *kind) / requests as f64
            }
        }
        Metric::ThroughputRps => per_s(total.counters.requests),
        Metric::GoodputRps => per_s(total.counters.ok),
    }
}

/// Whether `metric` is a latency over `stats` that has no sample to measure.
fn no_samples(metric: &Metric, stats: &StepStats) -> bool {
    match metric {
        Metric::Latency(_) => stats.latency.is_empty(),
        Metric::ServiceTime(_) => stats.service_time.is_empty(),
        _ => false,
    }
}

/// The stats a threshold is measured on: its step's, or the total. A step that
/// recorded nothing measures as empty (and fails a latency threshold: `no_samples`).
fn stats_for<'a>(
    t: &Threshold,
    total: &'a StepStats,
    steps: &'a BTreeMap<String, StepStats>,
    empty: &'a StepStats,
) -> &'a StepStats {
    match &t.step {
        Some(step) => steps.get(step).unwrap_or(empty),
        None => total,
    }
}

/// Evaluate every threshold: `total` is all steps added up, `steps` each step's own.
pub fn evaluate(
    thresholds: &[Threshold],
    total: &StepStats,
    steps: &BTreeMap<String, StepStats>,
    duration_s: f64,
) -> Vec<ThresholdResult> {
    let empty = StepStats::default();
    thresholds
        .iter()
        .map(|t| {
            let stats = stats_for(t, total, steps, &empty);
            let value = measure(&t.metric, stats, duration_s);
            let no_samples = no_samples(&t.metric, stats);
            ThresholdResult {
                expr: t.expr.clone(),
                ok: !no_samples && t.op.holds(value, t.value),
                value,
                step: t.step.clone(),
                abort_on_fail: t.abort.is_some(),
                aborted_run: false,
                no_samples,
            }
        })
        .collect()
}

/// The thresholds marked `abort_on_fail` whose grace has passed at `elapsed`, checked
/// on the cumulative result so far; the first that fails, as an [`Aborted`].
pub fn check_abort(
    thresholds: &[Threshold],
    total: &StepStats,
    steps: &BTreeMap<String, StepStats>,
    elapsed: Duration,
) -> Option<Aborted> {
    let empty = StepStats::default();
    let at_s = elapsed.as_secs_f64();
    thresholds
        .iter()
        .filter(|t| t.abort.is_some_and(|a| elapsed >= a.grace))
        .find_map(|t| {
            let stats = stats_for(t, total, steps, &empty);
            // No successful request yet (none may have arrived): a latency threshold
            // waits for one; the end of the run fails it if none ever comes.
            if no_samples(&t.metric, stats) {
                return None;
            }
            let value = measure(&t.metric, stats, at_s);
            (!t.op.holds(value, t.value)).then(|| Aborted {
                reason: format!(
                    "threshold {} failed at {at_s:.1} s (measured {value:.3})",
                    t.expr
                ),
                at_s,
                threshold: t.expr.clone(),
                value,
            })
        })
}

/// The end-of-run verdicts with the threshold that aborted the run (if one did)
/// marked failed at the value it measured then.
pub fn mark_aborted(results: &mut [ThresholdResult], aborted: Option<&Aborted>) {
    let Some(aborted) = aborted else { return };
    if let Some(r) = results.iter_mut().find(|r| r.expr == aborted.threshold) {
        r.ok = false;
        r.aborted_run = true;
        r.value = aborted.value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crescendo_plan::{AbortOnFail, CompareOp, CountKind, Metric, Stat};

    fn threshold(expr: &str, metric: Metric, op: CompareOp, value: f64) -> Threshold {
        Threshold {
            expr: expr.to_owned(),
            metric,
            op,
            value,
            step: None,
            abort: None,
        }
    }

    fn stats(latencies_ms: &[u64], errors: u64) -> StepStats {
        let mut s = crate::aggregate::ok_stats(latencies_ms);
        s.counters.requests += errors;
        s.counters.server_errors += errors;
        s
    }

    #[test]
    fn a_latency_threshold_over_no_successful_request_fails() {
        let p99 = threshold(
            "latency.p99 < 800ms",
            Metric::Latency(Stat::Percentile(99.0)),
            CompareOp::Lt,
            800.0,
        );
        let errors = threshold(
            "errors < 100",
            Metric::Count(CountKind::Errors),
            CompareOp::Lt,
            100.0,
        );
        let down = stats(&[], 30);
        let results = evaluate(&[p99.clone(), errors], &down, &BTreeMap::new(), 10.0);
        assert!(!results[0].ok && results[0].no_samples);
        assert_eq!(results[0].verdict(), "FAILED (no successful requests)");
        assert!(results[1].ok, "a count threshold still measures zero");
        let up = evaluate(&[p99], &stats(&[5], 0), &BTreeMap::new(), 10.0);
        assert!(up[0].ok && !up[0].no_samples);
    }

    #[test]
    fn a_step_threshold_is_measured_on_its_step_only() {
        let fast = stats(&[10, 10, 10], 0);
        let slow = stats(&[900, 900, 900], 0);
        let steps = BTreeMap::from([("get".to_owned(), fast), ("update".to_owned(), slow)]);
        let mut total = StepStats::default();
        steps.values().for_each(|s| total.add(s).unwrap());
        let p95 = Metric::Latency(Stat::Percentile(95.0));
        let mut on_get = threshold(
            "steps.get.latency.p95 < 400ms",
            p95.clone(),
            CompareOp::Lt,
            400.0,
        );
        on_get.step = Some("get".into());
        let mut on_update = on_get.clone();
        on_update.expr = "steps.update.latency.p95 < 400ms".into();
        on_update.step = Some("update".into());
        let mut on_missing = on_get.clone();
        on_missing.step = Some("absent".into());
        let whole = threshold("latency.p95 < 400ms", p95, CompareOp::Lt, 400.0);
        let r = evaluate(
            &[on_get, on_update, on_missing, whole],
            &total,
            &steps,
            10.0,
        );
        assert!(r[0].ok && r[0].value < 20.0, "{r:?}");
        assert!(!r[1].ok && r[1].value > 800.0, "{r:?}");
        assert_eq!(r[1].step.as_deref(), Some("update"));
        assert!(
            !r[2].ok && r[2].no_samples,
            "a step with no successful request fails its latency threshold: {r:?}"
        );
        assert!(!r[3].ok, "the total includes the slow step: {r:?}");
    }

    #[test]
    fn abort_waits_for_the_grace_and_names_the_first_failure() {
        let total = stats(&[10, 20], 3);
        let steps = BTreeMap::from([("update".to_owned(), total.clone())]);
        let mut errors = threshold(
            "errors == 0",
            Metric::Count(CountKind::Errors),
            CompareOp::Eq,
            0.0,
        );
        let not_abortable = errors.clone();
        assert!(check_abort(&[not_abortable], &total, &steps, Duration::from_secs(60)).is_none());
        errors.abort = Some(AbortOnFail {
            grace: Duration::from_secs(5),
        });
        let in_grace = check_abort(
            std::slice::from_ref(&errors),
            &total,
            &steps,
            Duration::from_secs(4),
        );
        assert!(in_grace.is_none());
        let a = check_abort(
            std::slice::from_ref(&errors),
            &total,
            &steps,
            Duration::from_secs(5),
        )
        .expect("an abort after the grace");
        assert_eq!(
            (a.threshold.as_str(), a.value, a.at_s),
            ("errors == 0", 3.0, 5.0)
        );
        assert!(a.reason.contains("errors == 0"), "{}", a.reason);

        let mut results = evaluate(std::slice::from_ref(&errors), &stats(&[1], 0), &steps, 9.0);
        assert!(results[0].ok && results[0].abort_on_fail);
        mark_aborted(&mut results, Some(&a));
        assert!(!results[0].ok && results[0].aborted_run && results[0].value == 3.0);
    }
}
