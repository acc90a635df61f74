//! Per-request retry policies: what one request task does after one response.
//!
//! | policy | throttle (429, 503 + Retry-After) | server error (other 5xx) |
//! | --- | --- | --- |
//! | `none` | no retry | no retry |
//! | `retry-after` | wait exactly `Retry-After` (`base` when absent), like the official SDKs | no retry |
//! | `exponential` | full jitter `U(0, min(cap, base·2^n))`, `Retry-After` ignored | same |
//! | `coordinated` | `Retry-After` + `U(0, min(max(20 % of it, base), 1 s))` | full jitter |
//!
//! `exponential` deliberately ignores `Retry-After`: it is the textbook behaviour of
//! independent clients (AWS "full jitter"), the baseline the benchmark compares against.
//! `retry-after` is what the Genesys SDKs do, and shows the synchronised retry wave that
//! whole-second Retry-After values produce. `coordinated` honours the server's delay but
//! adds a small spread so that retries do not land on the same instant; when a 429 has no
//! `Retry-After` but says `remaining == 0` with a reset, it waits for the reset instead.
//! The fleet-wide pause of `coordinated` is not decided here: the governor sends it.
//!
//! Rules shared by every policy, checked in this order:
//! 1. success and client errors (other 4xx) are [`RetryDecision::Done`];
//! 2. a `Retry-After` above `max_retry_after` is [`RetryDecision::Abort`]: no sane load
//!    test waits that long; it is almost always a daily quota;
//! 3. a request retried `max_retries` times gives up;
//! 4. every retry spends from the agent's [`RetryBudget`]; an empty budget gives up.

mod budget;
#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

use rand::Rng;

pub use budget::RetryBudget;

use crate::signals::{RateLimitInfo, Signal};

/// Which retry policy the plan chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Never retry.
    None,
    /// Sleep exactly `Retry-After`, as the official SDKs do.
    RetryAfter,
    /// Full-jitter exponential backoff, independent per client.
    Exponential,
    /// Honour `Retry-After` with a small local spread; the governor paces the fleet.
    #[default]
    Coordinated,
}

/// The retry part of a plan's `[backoff]` (mirrors `crescendo_plan::Backoff`).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    pub policy: Policy,
    /// Retries of one request after its first attempt.
    pub max_retries: u32,
    /// Retries may never exceed this fraction of first attempts (see [`RetryBudget`]).
    pub retry_budget: f64,
    /// A `Retry-After` longer than this stops the run.
    pub max_retry_after: Duration,
    /// Full jitter: the first window, doubled on every retry …
    pub base: Duration,
    /// … up to this cap.
    pub cap: Duration,
}

impl Default for RetryConfig {
    /// The plan's defaults: coordinated, 3 retries, 20 % budget, 180 s, 100 ms, 30 s.
    fn default() -> Self {
        Self {
            policy: Policy::Coordinated,
            max_retries: 3,
            retry_budget: 0.2,
            max_retry_after: Duration::from_secs(180),
            base: Duration::from_millis(100),
            cap: Duration::from_secs(30),
        }
    }
}

/// What to do with a request after a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryDecision {
    /// Success, or an outcome this policy does not retry: record it and move on.
    Done,
    /// Send the request again after this delay.
    Retry { after: Duration },
    /// Retryable, but the request or the agent ran out of retries.
    GiveUp { reason: GiveUpReason },
    /// Stop the whole run: the API asked for a wait no load test should make.
    Abort { reason: String },
}

/// Why a retryable request was not retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GiveUpReason {
    /// This request already had `max_retries` retries.
    MaxRetries { retries: u32 },
    /// The agent's retry budget is spent.
    BudgetExhausted,
}

impl fmt::Display for GiveUpReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MaxRetries { retries } => write!(f, "gave up after {retries} retries"),
            Self::BudgetExhausted => f.write_str("retry budget exhausted"),
        }
    }
}

/// Decides what one request does after a response; `retries_so_far` is 0 after the first
/// attempt. Spends from `budget` only when the answer is [`RetryDecision::Retry`].
pub fn decide(
    config: &RetryConfig,
    retries_so_far: u32,
    signal: Signal,
    info: &RateLimitInfo,
    budget: &RetryBudget,
    rng: &mut impl Rng,
) -> RetryDecision {
    if matches!(signal, Signal::Success | Signal::ClientError) {
        return RetryDecision::Done;
    }
    if let Some(wait) = info.retry_after.filter(|w| *w > config.max_retry_after) {
        return abort("asked to wait", wait, config.max_retry_after);
    }
    let throttle = signal == Signal::Throttle;
    let retryable = match config.policy {
        Policy::None => false,
        Policy::RetryAfter => throttle,
        Policy::Exponential | Policy::Coordinated => true,
    };
    if !retryable {
        return RetryDecision::Done;
    }
    if retries_so_far >= config.max_retries {
        return RetryDecision::GiveUp {
            reason: GiveUpReason::MaxRetries {
                retries: retries_so_far,
            },
        };
    }
    let after = match config.policy {
        Policy::RetryAfter => info.retry_after.unwrap_or(config.base),
        Policy::Coordinated if throttle => match server_wait(info) {
            Some(wait) if wait > config.max_retry_after => {
                return abort("reported a quota reset in", wait, config.max_retry_after);
            }
            Some(wait) => wait.saturating_add(uniform(coordinated_spread(config, wait), rng)),
            None => full_jitter(config, retries_so_far, rng),
        },
        _ => full_jitter(config, retries_so_far, rng),
    };
    if !budget.try_spend_retry() {
        return RetryDecision::GiveUp {
            reason: GiveUpReason::BudgetExhausted,
        };
    }
    RetryDecision::Retry { after }
}

/// The delay the server asked for: `Retry-After`, else the reset of an exhausted quota.
fn server_wait(info: &RateLimitInfo) -> Option<Duration> {
    info.retry_after
        .or_else(|| info.remaining.filter(|r| *r <= 0.0).and(info.reset))
}

/// Spread added to the server's delay by `coordinated`: 20 % of it (at least `base`, so
/// a zero Retry-After still spreads), never more than 1 s.
fn coordinated_spread(config: &RetryConfig, wait: Duration) -> Duration {
    wait.mul_f64(0.2)
        .max(config.base)
        .min(Duration::from_secs(1))
}

/// Full jitter: `U(0, min(cap, base·2^n))`.
fn full_jitter(config: &RetryConfig, retries_so_far: u32, rng: &mut impl Rng) -> Duration {
    let factor = 1u32.checked_shl(retries_so_far).unwrap_or(u32::MAX);
    uniform(config.base.saturating_mul(factor).min(config.cap), rng)
}

/// A uniform draw from `[0, max]`, at nanosecond resolution.
pub(crate) fn uniform(max: Duration, rng: &mut impl Rng) -> Duration {
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rng.random_range(0..=nanos))
}

fn abort(what: &str, wait: Duration, limit: Duration) -> RetryDecision {
    RetryDecision::Abort {
        reason: format!(
            "the API {what} {} (more than max_retry_after {}): likely a daily quota; \
             stopping the run",
            fmt_secs(wait),
            fmt_secs(limit)
        ),
    }
}

/// `86400 s`, `1.5 s`.
pub(crate) fn fmt_secs(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}
