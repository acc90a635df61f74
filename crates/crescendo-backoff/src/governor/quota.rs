//! One limit key's view of the API's quota window, from `remaining`/`reset` headers.

use std::time::Duration;

/// Two resets closer than this belong to the same window: integer-second headers
/// (`inin-ratelimit-reset: 38`) put the same instant up to 1 s apart.
const SAME_WINDOW_SLACK: Duration = Duration::from_secs(1);

/// Remaining below this is an exhausted quota: not one more request can pass.
const EXHAUSTED: f64 = 1.0;

/// What a report did to the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Observed {
    /// Same window: remaining (and maybe reset) refined.
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
    /// Run time at which the window resets.
    reset_at: Duration,
    /// Run time of the freshest information.
    observed: Duration,
    /// Longest reset seen: a report early in a window shows (almost) the whole window.
    window: Duration,
}

impl QuotaWindow {
    pub(super) fn new(at: Duration, remaining: f64, limit: Option<f64>, reset: Duration) -> Self {
        Self {
            remaining,
            limit,
            reset_at: at.saturating_add(reset),
            observed: at,
            window: reset,
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
        let reset_at = at.saturating_add(reset);
        self.window = self.window.max(reset);
        if reset_at > self.reset_at.saturating_add(SAME_WINDOW_SLACK) {
            let window = self.window;
            *self = Self::new(at, remaining, limit.or(self.limit), reset);
            self.window = window;
            return Observed::NewWindow;
        }
        if reset_at.saturating_add(SAME_WINDOW_SLACK) < self.reset_at {
            return Observed::Stale;
        }
        if limit.is_some() {
            self.limit = limit;
        }
        if at >= self.observed {
            self.remaining = remaining;
            self.observed = at;
        } else {
            self.remaining = self.remaining.min(remaining);
        }
        // Integer resets round down or up: the later instant is the safe one.
        self.reset_at = self.reset_at.max(reset_at);
        Observed::Same
    }

    /// After the reset instant the quota is back: roll the window forward by its length
    /// (when limit and window are known). False when the window can no longer be
    /// predicted and pacing should stop.
    pub(super) fn roll(&mut self, now: Duration) -> bool {
        if now < self.reset_at {
            return true;
        }
        let Some(limit) = self.limit else {
            return false;
        };
        if self.window.is_zero() {
            return false;
        }
        let behind = now.saturating_sub(self.reset_at).as_secs_f64();
        let periods = (behind / self.window.as_secs_f64()).floor();
        let boundary = self.reset_at.saturating_add(self.window.mul_f64(periods));
        self.remaining = limit;
        self.observed = boundary;
        self.reset_at = boundary.saturating_add(self.window);
        true
    }

    /// The fleet rate that spends `margin` of what is left evenly until the reset:
    /// `margin × remaining_now / time_left`, where `remaining_now` discounts what the fleet
    /// has sent at `current` since the last observation. `None` once the window is over.
    pub(super) fn pace(&self, now: Duration, margin: f64, current: f64) -> Option<f64> {
        if now >= self.reset_at {
            return None;
        }
        let since = now.saturating_sub(self.observed).as_secs_f64();
        let remaining = (self.remaining - current * since).max(0.0);
        // Never divide by less than 1 s: a reset of "0" means "under a second".
        let left = (self.reset_at - now).as_secs_f64().max(1.0);
        Some(margin * remaining / left)
    }

    /// Not one more request fits before the reset.
    pub(super) fn exhausted(&self) -> bool {
        self.remaining < EXHAUSTED
    }

    pub(super) fn remaining(&self) -> f64 {
        self.remaining
    }

    pub(super) fn reset_at(&self) -> Duration {
        self.reset_at
    }

    pub(super) fn limit(&self) -> Option<f64> {
        self.limit
    }

    pub(super) fn window(&self) -> Duration {
        self.window
    }
}
