//! One limit key's view of the API's quota window, from `remaining`/`reset` headers.
//!
//! Resets often come in whole seconds (`inin-ratelimit-reset: 38`), rounded up or down:
//! the true reset instant is then only known to lie within a second of `at + reset`.
//! Intersecting those intervals over many reports narrows it to
//! `[earliest, latest]`, about one second wide whichever way the server rounds. The
//! pacing spends the quota by the **earliest** plausible reset, and the window is only
//! considered over at the **latest** one: either way the whole quota is spent before
//! the window ends, and no request is sent into an exhausted window on the belief that
//! it has already reset. A second of idling around the reset costs no goodput against a
//! fixed window: the new window's quota is simply paced over the rest of it.

use std::time::Duration;

/// Remaining below this is an exhausted quota: not one more request can pass.
const EXHAUSTED: f64 = 1.0;

/// Pacing never divides by less time than this: a reset of "0" still has requests left.
const MIN_LEFT: f64 = 0.5;

/// Pacing aims to have spent the quota this long before the earliest reset (at most a
/// twentieth of the window), so the last few requests still find an agent to send them
/// (a fleet of N agents paces in whole requests) and nothing is left behind at the reset.
const LEAD: Duration = Duration::from_secs(1);

/// What a report did to the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Observed {
    /// Same window: remaining and the reset interval refined.
    Same,
    /// A later window started.
    NewWindow,
    /// A late report from an earlier window: ignored.
    Stale,
}

/// The current quota window, as best known.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct QuotaWindow {
    /// Requests left at `observed`.
    remaining: f64,
    limit: Option<f64>,
    /// The reset lies in `[earliest, latest]` (run time).
    earliest: Duration,
    latest: Duration,
    /// Run time of the freshest information.
    observed: Duration,
    /// Requests the fleet is estimated to have sent since `observed` (at the rates in
    /// force), up to `advanced_to`: stale reports do not let the fleet overspend.
    spent: f64,
    advanced_to: Duration,
    /// Longest reset seen: a report early in a window shows (almost) the whole window.
    window: Duration,
    /// `[earliest, latest]` was rolled forward, not observed: the first report of the
    /// window replaces it instead of narrowing it (the window length is only learned
    /// from rounded resets, so the prediction may be off by a second or two).
    predicted: bool,
}

/// The interval a report puts the reset in: exact for fractional values, ±1 s for whole
/// seconds (the server may have rounded either way).
fn interval(at: Duration, reset: Duration) -> (Duration, Duration) {
    let point = at.saturating_add(reset);
    if reset.subsec_nanos() == 0 {
        let second = Duration::from_secs(1);
        (point.saturating_sub(second), point.saturating_add(second))
    } else {
        (point, point)
    }
}

impl QuotaWindow {
    pub(super) fn new(at: Duration, remaining: f64, limit: Option<f64>, reset: Duration) -> Self {
        let (earliest, latest) = interval(at, reset);
        Self {
            remaining,
            limit,
            earliest,
            latest,
            observed: at,
            spent: 0.0,
            advanced_to: at,
            window: reset,
            predicted: false,
        }
    }

    /// Accounts for the fleet sending at `rate` from the last call until `now`.
    pub(super) fn advance(&mut self, now: Duration, rate: f64) {
        if now > self.advanced_to {
            self.spent += rate.max(0.0) * (now - self.advanced_to).as_secs_f64();
            self.advanced_to = now;
        }
    }

    /// Folds in one report. Within a window counts only grow, so a report older than
    /// what is known can only lower `remaining`; a newer one replaces it (this also
    /// follows limiters whose remaining refills, such as token buckets).
    pub(super) fn observe(
        &mut self,
        at: Duration,
        remaining: f64,
        limit: Option<f64>,
        reset: Duration,
    ) -> Observed {
        let (lo, hi) = interval(at, reset);
        self.window = self.window.max(reset);
        if lo > self.latest {
            let window = self.window;
            *self = Self::new(at, remaining, limit.or(self.limit), reset);
            self.window = window;
            return Observed::NewWindow;
        }
        if hi < self.earliest {
            return Observed::Stale;
        }
        if limit.is_some() {
            self.limit = limit;
        }
        if at >= self.observed {
            self.remaining = remaining;
            self.observed = at;
            // What was sent between `at` and now is added back by the next `advance`.
            self.spent = 0.0;
            self.advanced_to = at;
        } else {
            self.remaining = self.remaining.min(remaining);
        }
        let (earliest, latest) = (self.earliest.max(lo), self.latest.min(hi));
        // Disjoint only if the server's clock or window moved: trust the new report.
        (self.earliest, self.latest) = if earliest <= latest && !self.predicted {
            (earliest, latest)
        } else {
            (lo, hi)
        };
        self.predicted = false;
        Observed::Same
    }

    /// After the latest plausible reset the quota is back: roll the window forward by its
    /// length (when limit and window are known). False when the window can no longer be
    /// predicted and pacing should stop.
    pub(super) fn roll(&mut self, now: Duration) -> bool {
        if now < self.latest {
            return true;
        }
        let Some(limit) = self.limit else {
            return false;
        };
        if self.window.is_zero() {
            return false;
        }
        let behind = now.saturating_sub(self.latest).as_secs_f64();
        let periods = (behind / self.window.as_secs_f64()).floor() + 1.0;
        let shift = self.window.mul_f64(periods);
        self.remaining = limit;
        // From the earliest instant the old window may have ended; widened by a second
        // at the late end, as the window length is itself learned from rounded resets.
        self.observed = self
            .earliest
            .saturating_add(self.window.mul_f64(periods - 1.0));
        self.earliest = self.earliest.saturating_add(shift);
        self.latest = self
            .latest
            .saturating_add(shift)
            .saturating_add(Duration::from_secs(1));
        self.predicted = true;
        true
    }

    /// The fleet rate that spends `margin` of what is left evenly until the earliest
    /// plausible reset: `margin × remaining_now / time_left`, where `remaining_now`
    /// discounts what the fleet sent since the last observation. `None` once the window
    /// is over.
    pub(super) fn pace(&self, now: Duration, margin: f64) -> Option<f64> {
        if now >= self.latest {
            return None;
        }
        let remaining = (self.remaining - self.spent).max(0.0);
        let lead = LEAD.min(self.window / 20);
        let left = self
            .earliest
            .saturating_sub(lead)
            .saturating_sub(now)
            .as_secs_f64()
            .max(MIN_LEFT);
        Some(margin * remaining / left)
    }

    /// Not one more request fits before the reset.
    pub(super) fn exhausted(&self) -> bool {
        self.remaining < EXHAUSTED
    }

    /// Remaining minus what the fleet is estimated to have sent since.
    pub(super) fn estimated_remaining(&self) -> f64 {
        (self.remaining - self.spent).max(0.0)
    }

    pub(super) fn remaining(&self) -> f64 {
        self.remaining
    }

    /// The instant by which the window has surely reset.
    pub(super) fn reset_at(&self) -> Duration {
        self.latest
    }

    pub(super) fn limit(&self) -> Option<f64> {
        self.limit
    }

    pub(super) fn window(&self) -> Duration {
        self.window
    }
}
