//! `[load]` and `[backoff]`: stages, rates, VUs and retry policy.

use std::time::Duration;

use serde_spanned::Spanned;

use super::Ctx;
use crate::error::{PlanError, join_index};
use crate::limits::MAX_STAGES;
use crate::model::{
    Backoff, Ceilings, ClosedLoad, Fleet, Load, MAX_RATE, OnAgentLoss, OpenLoad, Policy, RateStage,
    VuStage,
};
use crate::raw::RawFleet;
use crate::raw::{RawBackoff, RawLoad};

/// Longest plan accepted: keeps every schedule computation finite and exact enough.
const MAX_PLAN_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);
const DEFAULT_MAX_IN_FLIGHT: u32 = 1000;

pub(super) fn load(ctx: Ctx<'_>, raw: &Spanned<RawLoad>) -> Result<Load, PlanError> {
    let raw = raw.get_ref();
    let model = raw.model.as_ref();
    let stages = &raw.stages;
    if stages.get_ref().is_empty() {
        return Err(ctx.err(
            stages.span(),
            "load.stages",
            "expected at least one stage, such as [{ duration = \"10s\", target = 20 }]",
        ));
    }
    ctx.at_most(stages.get_ref(), MAX_STAGES, "load.stages", "stages")?;
    let mut total = Duration::ZERO;
    let mut durations = Vec::with_capacity(stages.get_ref().len());
    for (i, stage) in stages.get_ref().iter().enumerate() {
        let key = format!("{}.duration", join_index("load.stages", i));
        let d = ctx.positive_duration(&stage.get_ref().duration, &key)?;
        total = total.saturating_add(d);
        if total > MAX_PLAN_DURATION {
            return Err(ctx.err(
                stage.get_ref().duration.span(),
                &key,
                "expected the stages to last at most 366 days in total",
            ));
        }
        durations.push(d);
    }
    match model.map(|m| m.get_ref().as_str()) {
        None | Some("open") => open(ctx, raw, durations).map(Load::Open),
        Some("closed") => closed(ctx, raw, durations).map(Load::Closed),
        Some(other) => Err(ctx.err(
            model.map(Spanned::span).unwrap_or_default(),
            "load.model",
            format!("expected \"open\" or \"closed\", got {other:?}"),
        )),
    }
}

/// `max_total_requests` and `max_rps` of `[load]`, for either model.
pub(super) fn ceilings(ctx: Ctx<'_>, raw: &Spanned<RawLoad>) -> Result<Ceilings, PlanError> {
    let raw = raw.get_ref();
    let max_total_requests = match &raw.max_total_requests {
        None => None,
        Some(m) => match u64::try_from(*m.get_ref()) {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                return Err(ctx.err(
                    m.span(),
                    "load.max_total_requests",
                    format!(
                        "expected an integer >= 1 (requests sent by the whole fleet), got {}",
                        m.get_ref()
                    ),
                ));
            }
        },
    };
    let max_rps = match &raw.max_rps {
        None => None,
        Some(r) => {
            let v = *r.get_ref();
            if !(v > 0.0 && v <= MAX_RATE) {
                return Err(ctx.err(
                    r.span(),
                    "load.max_rps",
                    format!(
                        "expected a rate > 0 (requests per second for the whole fleet), got {v}"
                    ),
                ));
            }
            Some(v)
        }
    };
    Ok(Ceilings {
        max_total_requests,
        max_rps,
    })
}

/// Rejects a key that belongs to the other load model.
fn only_for<T>(
    ctx: Ctx<'_>,
    value: Option<&Spanned<T>>,
    key: &str,
    model: &str,
) -> Result<(), PlanError> {
    match value {
        Some(v) => Err(ctx.err(
            v.span(),
            key,
            format!(
                "applies only to model = \"{model}\"; remove it or set load.model = \"{model}\""
            ),
        )),
        None => Ok(()),
    }
}

fn rate(ctx: Ctx<'_>, value: &Spanned<f64>, key: &str) -> Result<f64, PlanError> {
    let r = *value.get_ref();
    if !(0.0..=MAX_RATE).contains(&r) {
        return Err(ctx.err(
            value.span(),
            key,
            format!("expected a rate >= 0 (iterations per second), got {r}"),
        ));
    }
    Ok(r)
}

fn open(ctx: Ctx<'_>, raw: &RawLoad, durations: Vec<Duration>) -> Result<OpenLoad, PlanError> {
    only_for(ctx, raw.start_vus.as_ref(), "load.start_vus", "closed")?;
    only_for(ctx, raw.think_time.as_ref(), "load.think_time", "closed")?;
    let mut stages = Vec::with_capacity(durations.len());
    for (i, (stage, duration)) in raw.stages.get_ref().iter().zip(durations).enumerate() {
        let key = format!("{}.target", join_index("load.stages", i));
        let target = rate(ctx, &stage.get_ref().target, &key)?;
        stages.push(RateStage { duration, target });
    }
    let start_rate = match &raw.start_rate {
        Some(r) => rate(ctx, r, "load.start_rate")?,
        None => stages[0].target,
    };
    if start_rate == 0.0 && stages.iter().all(|s| s.target == 0.0) {
        return Err(ctx.err(
            raw.stages.span(),
            "load.stages",
            "expected a target rate above 0 in at least one stage, got 0 everywhere",
        ));
    }
    let max_in_flight = match &raw.max_in_flight {
        Some(m) if *m.get_ref() == 0 => {
            return Err(ctx.err(
                m.span(),
                "load.max_in_flight",
                "expected an integer >= 1, got 0",
            ));
        }
        Some(m) => *m.get_ref(),
        None => DEFAULT_MAX_IN_FLIGHT,
    };
    Ok(OpenLoad {
        start_rate,
        stages,
        max_in_flight,
    })
}

fn closed(ctx: Ctx<'_>, raw: &RawLoad, durations: Vec<Duration>) -> Result<ClosedLoad, PlanError> {
    only_for(ctx, raw.start_rate.as_ref(), "load.start_rate", "open")?;
    only_for(
        ctx,
        raw.max_in_flight.as_ref(),
        "load.max_in_flight",
        "open",
    )?;
    let mut stages = Vec::with_capacity(durations.len());
    for (i, (stage, duration)) in raw.stages.get_ref().iter().zip(durations).enumerate() {
        let value = &stage.get_ref().target;
        let v = *value.get_ref();
        if !(v >= 0.0 && v <= f64::from(u32::MAX) && v.fract() == 0.0) {
            return Err(ctx.err(
                value.span(),
                &format!("{}.target", join_index("load.stages", i)),
                format!("expected a whole number of virtual users >= 0, got {v}"),
            ));
        }
        // Checked just above: a whole number within u32.
        let target = v as u32;
        stages.push(VuStage { duration, target });
    }
    let start_vus = raw
        .start_vus
        .as_ref()
        .map_or(stages[0].target, |v| *v.get_ref());
    let think_time = match &raw.think_time {
        Some(t) => ctx.duration(t, "load.think_time")?,
        None => Duration::ZERO,
    };
    if start_vus == 0 && stages.iter().all(|s| s.target == 0) {
        return Err(ctx.err(
            raw.stages.span(),
            "load.stages",
            "expected a target above 0 virtual users in at least one stage, got 0 everywhere",
        ));
    }
    Ok(ClosedLoad {
        start_vus,
        stages,
        think_time,
    })
}

pub(super) fn backoff(
    ctx: Ctx<'_>,
    raw: Option<&Spanned<RawBackoff>>,
) -> Result<Backoff, PlanError> {
    let empty = RawBackoff {
        policy: None,
        max_retries: None,
        retry_budget: None,
        max_retry_after: None,
        base: None,
        cap: None,
    };
    let raw = raw.map_or(&empty, Spanned::get_ref);
    let policy = match &raw.policy {
        None => Policy::RetryAfter,
        Some(p) => match p.get_ref().as_str() {
            "none" => Policy::None,
            "retry-after" => Policy::RetryAfter,
            "exponential" => Policy::Exponential,
            "coordinated" => Policy::Coordinated,
            other => {
                return Err(ctx.err(
                    p.span(),
                    "backoff.policy",
                    format!(
                        "expected one of \"none\", \"retry-after\", \"exponential\", \"coordinated\", got {other:?}"
                    ),
                ));
            }
        },
    };
    // Policy `none` never retries, whatever max_retries says.
    let max_retries = match policy {
        Policy::None => 0,
        _ => raw.max_retries.as_ref().map_or(3, |m| *m.get_ref()),
    };
    let retry_budget = match &raw.retry_budget {
        Some(b) if !(0.0..=1.0).contains(b.get_ref()) => {
            return Err(ctx.err(
                b.span(),
                "backoff.retry_budget",
                format!(
                    "expected a fraction from 0 to 1 of first attempts, got {}",
                    b.get_ref()
                ),
            ));
        }
        Some(b) => *b.get_ref(),
        None => 0.2,
    };
    let duration_or = |value: &Option<Spanned<String>>, key: &str, default: Duration| match value {
        Some(v) => ctx.positive_duration(v, key),
        None => Ok(default),
    };
    let max_retry_after = duration_or(
        &raw.max_retry_after,
        "backoff.max_retry_after",
        Duration::from_secs(180),
    )?;
    let base = duration_or(&raw.base, "backoff.base", Duration::from_millis(100))?;
    let cap = duration_or(&raw.cap, "backoff.cap", Duration::from_secs(30))?;
    if cap < base {
        let span = raw
            .cap
            .as_ref()
            .or(raw.base.as_ref())
            .map(Spanned::span)
            .unwrap_or_default();
        let key = if raw.cap.is_some() {
            "backoff.cap"
        } else {
            "backoff.base"
        };
        return Err(ctx.err(
            span,
            key,
            format!(
                "expected base <= cap, got base {} and cap {}",
                humantime::format_duration(base),
                humantime::format_duration(cap)
            ),
        ));
    }
    Ok(Backoff {
        policy,
        max_retries,
        retry_budget,
        max_retry_after,
        base,
        cap,
    })
}

/// `[fleet]`: `on_agent_loss` (default `redistribute`).
pub(super) fn fleet(ctx: Ctx<'_>, raw: Option<&Spanned<RawFleet>>) -> Result<Fleet, PlanError> {
    let Some(loss) = raw.and_then(|f| f.get_ref().on_agent_loss.as_ref()) else {
        return Ok(Fleet::default());
    };
    let on_agent_loss = match loss.get_ref().as_str() {
        "redistribute" => OnAgentLoss::Redistribute,
        "continue" => OnAgentLoss::Continue,
        "abort" => OnAgentLoss::Abort,
        other => {
            return Err(ctx.err(
                loss.span(),
                "fleet.on_agent_loss",
                format!("expected one of \"redistribute\", \"continue\", \"abort\", got {other:?}"),
            ));
        }
    };
    Ok(Fleet { on_agent_loss })
}
