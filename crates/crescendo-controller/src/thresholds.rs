//! Evaluating the plan's thresholds against the merged result.

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

/// Evaluate every threshold.
pub fn evaluate(
    thresholds: &[Threshold],
    total: &StepStats,
    duration_s: f64,
) -> Vec<ThresholdResult> {
    thresholds
        .iter()
        .map(|t| {
            let value = measure(&t.metric, total, duration_s);
            ThresholdResult {
                expr: t.expr.clone(),
                ok: t.op.holds(value, t.value),
                value,
            }
        })
        .collect()
}
