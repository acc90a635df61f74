//! `[thresholds]`: metric keys (optionally per step) and their expressions, as a string
//! `"< 800ms"` or a table `{ expr = "< 800ms", abort_on_fail = true, grace = "10s" }`.

use std::collections::HashSet;
use std::time::Duration;

use serde_spanned::Spanned;

use super::Ctx;
use crate::error::{PlanError, join_key};
use crate::limits::MAX_THRESHOLDS;
use crate::model::{AbortOnFail, Metric, Scenario, Threshold};
use crate::raw::{RawThreshold, Scalar, SpannedMap};
use crate::threshold::{parse_metric, parse_threshold};

/// `[thresholds]`, in the order they are written.
pub(super) fn thresholds(
    ctx: Ctx<'_>,
    raw: Option<&SpannedMap<RawThreshold>>,
    scenario: &Scenario,
) -> Result<Vec<Threshold>, PlanError> {
    ctx.at_most_entries(raw, MAX_THRESHOLDS, "thresholds", "thresholds")?;
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let mut entries: Vec<_> = raw.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    let steps: HashSet<&str> = scenario.steps.iter().map(|s| s.name.as_str()).collect();
    entries
        .into_iter()
        .map(|(k, v)| threshold(ctx, k, v, scenario, &steps))
        .collect()
}

fn threshold(
    ctx: Ctx<'_>,
    k: &Spanned<String>,
    v: &Spanned<RawThreshold>,
    scenario: &Scenario,
    steps: &HashSet<&str>,
) -> Result<Threshold, PlanError> {
    let name = k.get_ref();
    let key = join_key("thresholds", name);
    let (step, metric) =
        metric_of(name, scenario, steps).map_err(|m| ctx.err(k.span(), &key, m))?;
    let (value, value_span, abort) = match v.get_ref() {
        RawThreshold::Scalar(Scalar::Str(value)) => (value, v.span(), None),
        RawThreshold::Scalar(other) => {
            return Err(ctx.err(
                v.span(),
                &key,
                format!(
                    "expected a string such as \"< 800ms\" or \"== 0\", or a table \
                     {{ expr = \"< 800ms\", abort_on_fail = true }}, got {}",
                    other.text()
                ),
            ));
        }
        RawThreshold::Table(t) => {
            let abort_on = t.abort_on_fail.as_ref().is_some_and(|a| *a.get_ref());
            let grace = match &t.grace {
                Some(g) if !abort_on => {
                    return Err(ctx.err(
                        g.span(),
                        &join_key(&key, "grace"),
                        "applies only with abort_on_fail = true; add it or remove grace",
                    ));
                }
                Some(g) => ctx.duration(g, &join_key(&key, "grace"))?,
                None => Duration::ZERO,
            };
            let abort = abort_on.then_some(AbortOnFail { grace });
            (t.expr.get_ref(), t.expr.span(), abort)
        }
    };
    let value_key = match v.get_ref() {
        RawThreshold::Table(_) => join_key(&key, "expr"),
        RawThreshold::Scalar(_) => key,
    };
    let mut t =
        parse_threshold(name, metric, value).map_err(|m| ctx.err(value_span, &value_key, m))?;
    t.step = step;
    t.abort = abort;
    Ok(t)
}

/// `latency.p99` → (None, metric); `steps.update.latency.p95` → (Some("update"), metric).
/// A step name may itself contain dots: the longest step name that fits wins. Each
/// prefix of the key is looked up in `steps` (the step names), so the cost does not
/// grow with the number of steps.
fn metric_of(
    key: &str,
    scenario: &Scenario,
    steps: &HashSet<&str>,
) -> Result<(Option<String>, Metric), String> {
    let Some(rest) = key.strip_prefix("steps.") else {
        return parse_metric(key).map(|m| (None, m));
    };
    let step = rest
        .match_indices('.')
        .rev()
        .map(|(dot, _)| &rest[..dot])
        .find(|name| steps.contains(name));
    match step {
        Some(name) => {
            let metric = &rest[name.len() + 1..];
            parse_metric(metric).map(|m| (Some(name.to_owned()), m))
        }
        None => {
            let names: Vec<String> = scenario
                .steps
                .iter()
                .map(|s| format!("{:?}", s.name))
                .collect();
            let got = rest.split('.').next().unwrap_or(rest);
            Err(format!(
                "unknown step {got:?} in `steps.<step>.<metric>`, expected one of {}",
                names.join(", ")
            ))
        }
    }
}
