//! One limit key's view of the API's quota window, from `remaining`/`reset` headers.
//!
//! Resets often come in whole seconds (`inin-ratelimit-reset: 38`), rounded up or down:
//! the true reset instant is then only known to lie within a second of `at + reset`.
//! Intersecting those intervals over many reports narrows it to
//! `[earliest, latest]`, about one second wide whichever way the server rounds. Once
//! the rounding is learned (see [`Rounding`]) each report's interval is one second on
//! one side, and the intersection is as narrow as the reports are frequent. The
//! pacing spends the quota by the **earliest** plausible reset, and the window is only
//! considered over at the **latest** one: either way the whole quota is spent before
//! the window ends, and no request is sent into an exhausted window on the belief that
//! it has already reset. A second of idling around the reset costs no goodput against a
//! fixed window: the new window's quota is simply paced over the rest of it.
//!
//! Some limiters free capacity continuously rather than all at once at a reset: a
//! sliding window counter (`estimate = prev·(1 − elapsed/W) + current`, so `remaining`
//! stays level while the fleet sends at the previous window's rate and does not jump
//! at the grid's reset), a token bucket or GCRA (`reset` = time until the bucket is
//! full). Paced as a window, their quota looks nearly spent all the time and the fleet
//! idles (0.88 of the limit against a sliding window). The window notices them (see
//! [`QuotaWindow::observe`]) and then paces at `margin × limit / window` (`window` =
//! the longest reset seen, which is `burst / rate` for a bucket), counts only what the
//! fleet sends beyond that refill against `remaining`, and slows down in proportion
//! when fewer than [`CONTINUOUS_LOW`] of the limit are left.

use std::time::Duration;

/// Remaining below this is an exhausted quota: not one more request can pass.
const EXHAUSTED: f64 = 1.0;

/// Pacing never divides by less time than this: a reset of "0" still has requests left.
const MIN_LEFT: f64 = 0.5;

/// Once the rounding is known, pacing never divides by less time than this.
const KNOWN_MIN_LEFT: f64 = 0.05;

/// Pacing aims to have spent the quota this long before the earliest reset (at most a
/// twentieth of the window), so the last few requests still find an agent to send them
/// (a fleet of N agents paces in whole requests) and nothing is left behind at the reset.
const LEAD: Duration = Duration::from_secs(1);

/// A turnover whose first report shows more than this fraction of the limit still used
/// (beyond what the fleet can have sent since) carried the previous window over.
const CARRIED: f64 = 0.3;

/// `remaining` rising by this fraction of the limit (at least [`MIN_RISE`]) with the
/// same reset instant: capacity freed within a window.
const RISE: f64 = 0.1;
const MIN_RISE: f64 = 3.0;

/// Continuous pacing slows down in proportion once less than this fraction of the
/// limit (at least one request) is left.
const CONTINUOUS_LOW: f64 = 0.02;

/// Windows shorter than this are not classified: whole-second resets blur them.
const MIN_CLASSIFY_WINDOW: Duration = Duration::from_secs(3);

/// How much older than its `at` a report's response may be: the controller stamps
/// reports on receipt, and an agent reports its latest headers up to 10 times a second.
/// A report's reset interval may therefore start this much too late, and a late report
/// of a window that just reset can look like one of the next window.
const REPORT_AGE: Duration = Duration::from_millis(150);

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
    /// `at + reset` of the freshest report: the same instant again with more remaining
    /// means capacity was freed within the window.
    point: Duration,
    /// The limiter frees capacity continuously (sliding window, token bucket, GCRA):
    /// paced as a rate, not as a quota per window. Learned once, kept.
    continuous: bool,
    /// How the server rounds whole-second resets, as far as learned; `floors()` means
    /// the window is a second longer than the longest reset seen.
    rounding: Rounding,
    /// The latest plausible reset of the window before this one: late reports of it
    /// (see [`QuotaWindow::straggler`]) are no news about this one.
    ended: Option<Duration>,
}

/// How a server turns the time until its reset into whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rounding {
    /// Not known yet: the reset is within a second either way of `at + reset`.
    Unknown,
    /// Rounded up (a reset of `n` means `(n − 1, n]`): a window ended before it
    /// could have if resets were rounded down or to the nearest second.
    Up,
    /// Rounded down (`[n, n + 1)`): a reset of 0 was seen.
    Down,
}

/// While the rounding is unknown, pacing keeps this many requests (at most
/// [`RESERVE_FRACTION`] of the limit) for after the earliest plausible reset. Sent then,
/// they tell the rounding without a single 429: rounded up, the window is already over
/// and they open the next one early; rounded down, they see a reset of 0.
const RESERVE: f64 = 2.0;
const RESERVE_FRACTION: f64 = 0.02;

/// A window that ended this long before its latest plausible reset did so too early
/// for resets rounded down or to the nearest second.
const EARLY_END: Duration = Duration::from_millis(600);

/// The interval a report puts the reset in: exact for fractional values; for whole
/// seconds a second before `at + reset` (rounded up), after it (rounded down) or either
/// (not known yet).
fn interval(at: Duration, reset: Duration, rounding: Rounding) -> (Duration, Duration) {
    let point = at.saturating_add(reset);
    if reset.subsec_nanos() != 0 {
        return (point, point);
    }
    let second = Duration::from_secs(1);
    match rounding {
        Rounding::Unknown => (point.saturating_sub(second), point.saturating_add(second)),
        Rounding::Up => (point.saturating_sub(second), point),
        Rounding::Down => (point, point.saturating_add(second)),
    }
}

impl QuotaWindow {
    pub(super) fn new(at: Duration, remaining: f64, limit: Option<f64>, reset: Duration) -> Self {
        let rounding = if reset.is_zero() {
            Rounding::Down
        } else {
            Rounding::Unknown
        };
        let (earliest, latest) = interval(at, reset, rounding);
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
            point: at.saturating_add(reset),
            continuous: false,
            rounding,
            ended: None,
        }
    }

    /// The server was seen rounding its delays down: reset readings are `floor`ed. A
    /// window believed to end a second earlier may end up to a second later.
    pub(super) fn rounds_down(&mut self) {
        if self.rounding == Rounding::Up {
            self.latest = self.latest.saturating_add(Duration::from_secs(1));
        }
        self.rounding = Rounding::Down;
    }

    fn floors(&self) -> bool {
        self.rounding == Rounding::Down
    }

    /// Accounts for the fleet sending at `rate` from the last call until `now`; for a
    /// continuous limiter only what exceeds its refill (`limit / window`) is spent, and
    /// sending less earns the difference back (up to the limit).
    pub(super) fn advance(&mut self, now: Duration, rate: f64) {
        if now > self.advanced_to {
            let dt = (now - self.advanced_to).as_secs_f64();
            self.spent += (rate.max(0.0) - self.refill().unwrap_or(0.0)) * dt;
            if let Some(limit) = self.limit {
                self.spent = self.spent.max(self.remaining - limit);
            }
            self.spent = self.spent.max(if self.continuous { f64::MIN } else { 0.0 });
            self.advanced_to = now;
        }
    }

    /// Requests per second a continuous limiter frees: `limit / window`.
    fn refill(&self) -> Option<f64> {
        let whole = self.floors() && self.window.subsec_nanos() == 0;
        let window = self.window.as_secs_f64() + if whole { 1.0 } else { 0.0 };
        (self.continuous && window > 0.0)
            .then_some(self.limit? / window)
            .filter(|r| r.is_finite())
    }

    /// A continuous limiter's full pace, `margin × limit / window`.
    pub(super) fn cruise(&self, margin: f64) -> Option<f64> {
        self.refill().map(|r| margin * r)
    }

    /// Whether the limiter was found to free capacity continuously.
    pub(super) fn continuous(&self) -> bool {
        self.continuous
    }

    /// Folds in one report. Within a window counts only grow, so a report older than
    /// what is known can only lower `remaining`; a newer one replaces it (this also
    /// follows limiters whose remaining refills, such as token buckets). `sending` is
    /// an upper bound of the fleet's rate, to tell what it sent from what a limiter
    /// carried over.
    pub(super) fn observe(
        &mut self,
        at: Duration,
        remaining: f64,
        limit: Option<f64>,
        reset: Duration,
        sending: f64,
    ) -> Observed {
        self.window = self.window.max(reset);
        // Rounded up, a reset is never 0 before the window is over; even a stale report
        // says so.
        if reset.is_zero() {
            self.rounds_down();
        }
        let (mut lo, mut hi) = interval(at, reset, self.rounding);
        // A fixed window's count only grows until it resets: most of the limit back
        // after the earliest plausible reset is the next window.
        let rose = self
            .limit
            .or(limit)
            .is_some_and(|l| remaining >= self.remaining + l / 2.0);
        let fresh = !self.predicted && at >= self.observed;
        if self.straggler(lo, remaining, limit) {
            return Observed::Stale;
        }
        // (Unless the reset instant stayed put: a token bucket refilled while the
        // fleet idled, see `freed`.)
        let jumped = !self.continuous
            && fresh
            && at >= self.earliest
            && rose
            && !self.freed(at, remaining, reset);
        if self.rounding == Rounding::Up
            && fresh
            && !rose
            && (lo > self.latest || hi < self.earliest)
        {
            // Reports of one window that no rounding up explains (rounded to the
            // nearest second, say): back to a second either way.
            self.rounding = Rounding::Unknown;
            (lo, hi) = interval(at, reset, self.rounding);
            self.earliest = self.earliest.min(lo);
            self.latest = self.latest.max(hi);
        }
        if lo > self.latest || jumped {
            // The window ended no later than `at`: too early for resets rounded down.
            if self.rounding == Rounding::Unknown
                && !self.predicted
                && at.saturating_add(EARLY_END) < self.latest
            {
                self.rounding = Rounding::Up;
            }
            let old = self.clone();
            *self = Self::new(at, remaining, limit.or(old.limit), reset);
            self.window = old.window;
            self.rounding = old.rounding;
            self.ended = Some(old.latest);
            (self.earliest, self.latest) = interval(at, reset, self.rounding);
            self.continuous = old.continuous || self.carried_over(reset, sending);
            return Observed::NewWindow;
        }
        // A continuous limiter's fresh report is never stale: nothing resets there.
        if hi < self.earliest && !(self.continuous && at >= self.observed) {
            return Observed::Stale;
        }
        if limit.is_some() {
            self.limit = limit;
        }
        if self.predicted {
            self.continuous = self.continuous || self.carried_over(reset, sending);
        } else if at >= self.observed {
            self.continuous = self.continuous || self.freed(at, remaining, reset);
        }
        if at >= self.observed {
            self.remaining = remaining;
            self.observed = at;
            self.point = at.saturating_add(reset);
            // What was sent between `at` and now is added back by the next `advance`.
            self.spent = 0.0;
            self.advanced_to = at;
        } else {
            self.remaining = self.remaining.min(remaining);
        }
        let (earliest, latest) = (self.earliest.max(lo), self.latest.min(hi));
        // Disjoint only if the server's clock or window moved: trust the new report.
        let narrowed = earliest <= latest && !self.predicted;
        (self.earliest, self.latest) = if narrowed {
            (earliest, latest)
        } else {
            (lo, hi)
        };
        self.predicted = false;
        Observed::Same
    }

    /// A late report of a window that has reset (its response may be [`REPORT_AGE`]
    /// older than its `at`, and its reset interval start that much too late): one that
    /// would open a new window although its reset may be this window's latest, without
    /// the quota coming back; or one whose reset may be the previous window's, with far
    /// less left than this window can have. Read as news, its "0 left" would pause the
    /// fleet until its own reset interval ends: up to a whole window past the reset.
    fn straggler(&self, lo: Duration, remaining: f64, limit: Option<f64>) -> bool {
        let Some(limit) = self.limit.or(limit).filter(|_| !self.continuous) else {
            return false;
        };
        let half = limit / 2.0;
        let over = !self.predicted
            && lo > self.latest
            && lo <= self.latest.saturating_add(REPORT_AGE)
            && remaining < self.remaining + half;
        let previous = self
            .ended
            .is_some_and(|ended| lo <= ended.saturating_add(REPORT_AGE))
            && remaining + half <= self.estimated_remaining();
        over || previous
    }

    /// The first report after a turnover (remaining as set, `reset` from it): more of
    /// the limit is still in use than the fleet can have sent since the turnover, so the
    /// previous window still counts (a sliding window counter).
    fn carried_over(&self, reset: Duration, sending: f64) -> bool {
        let Some(limit) = self.limit.filter(|_| self.window >= MIN_CLASSIFY_WINDOW) else {
            return false;
        };
        let blur = if reset.subsec_nanos() == 0 { 1.0 } else { 0.0 };
        let since = self.window.saturating_sub(reset).as_secs_f64() + blur;
        let sent = sending.max(0.0) * since;
        limit - self.remaining - sent > CARRIED * limit
    }

    /// A fresh report of the same window (same reset instant, within the rounding) with
    /// clearly more remaining than the last one: capacity was freed without a reset.
    fn freed(&self, at: Duration, remaining: f64, reset: Duration) -> bool {
        let Some(limit) = self.limit.filter(|_| self.window >= MIN_CLASSIFY_WINDOW) else {
            return false;
        };
        let point = at.saturating_add(reset);
        let blur = if reset.subsec_nanos() == 0 { 1.0 } else { 0.1 };
        let same = point.abs_diff(self.point).as_secs_f64() <= blur;
        same && remaining >= self.remaining + (RISE * limit).max(MIN_RISE)
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
        self.ended = Some(
            self.latest
                .saturating_add(self.window.mul_f64(periods - 1.0)),
        );
        if self.continuous {
            // Nothing comes back at once: what is left carries on, less what was spent.
            self.remaining = self.estimated_remaining();
            self.spent = 0.0;
            self.advanced_to = now;
        } else {
            // A new quota: only what the fleet sends after the reset counts against it.
            self.remaining = limit;
            self.spent = 0.0;
            self.advanced_to = self.advanced_to.max(self.latest).min(now);
        }
        // From the earliest instant the old window may have ended; widened by a second
        // at the late end unless resets are known to be rounded up (then the longest
        // reset seen is the window), as the window length is itself learned from
        // rounded resets.
        self.observed = self
            .earliest
            .saturating_add(self.window.mul_f64(periods - 1.0));
        self.earliest = self.earliest.saturating_add(shift);
        let widen = if self.rounding == Rounding::Up {
            Duration::ZERO
        } else {
            Duration::from_secs(1)
        };
        self.latest = self.latest.saturating_add(shift).saturating_add(widen);
        self.predicted = true;
        true
    }

    /// The fleet rate that spends `margin` of what is left evenly until the earliest
    /// plausible reset: `margin × remaining_now / time_left`, where `remaining_now`
    /// discounts what the fleet sent since the last observation. `None` once the window
    /// is over.
    pub(super) fn pace(&self, now: Duration, margin: f64) -> Option<f64> {
        if let Some(refill) = self.refill() {
            let low = (CONTINUOUS_LOW * self.limit.unwrap_or(0.0)).max(EXHAUSTED);
            let left = self.estimated_remaining();
            return Some(margin * refill * (left / low).min(1.0));
        }
        if now >= self.latest {
            return None;
        }
        let remaining = (self.remaining - self.spent).max(0.0);
        let whole = self.point.saturating_sub(self.observed).subsec_nanos() == 0;
        if whole && self.rounding != Rounding::Unknown {
            // The reset is known to within a report interval: spending right up to it
            // leaves no gap before the next window (one that opens with the first
            // request after the last one closed loses every moment of one).
            let left = self.latest.saturating_sub(now).as_secs_f64();
            return Some(margin * remaining / left.max(KNOWN_MIN_LEFT));
        }
        let lead = LEAD.min(self.window / 20);
        let until = self.earliest.saturating_sub(lead);
        let reserve = if whole {
            RESERVE.min(RESERVE_FRACTION * self.limit.unwrap_or(0.0))
        } else {
            0.0
        };
        let remaining = if now < until {
            (remaining - reserve).max(0.0)
        } else {
            remaining
        };
        let left = until.saturating_sub(now).as_secs_f64().max(MIN_LEFT);
        Some(margin * remaining / left)
    }

    /// Not one more request fits before the reset. A continuous limiter is never waited
    /// out until a reset: its pacing slows down instead.
    pub(super) fn exhausted(&self) -> bool {
        !self.continuous && self.remaining < EXHAUSTED
    }

    /// Remaining minus what the fleet is estimated to have sent since.
    pub(super) fn estimated_remaining(&self) -> f64 {
        let left = (self.remaining - self.spent).max(0.0);
        self.limit.map_or(left, |l| left.min(l.max(self.remaining)))
    }

    pub(super) fn remaining(&self) -> f64 {
        self.remaining
    }

    /// `[earliest, latest]`: where the reset is believed to lie.
    #[cfg(test)]
    pub(super) fn bounds(&self) -> (Duration, Duration) {
        (self.earliest, self.latest)
    }

    /// Whether the server was found to round its resets up.
    pub(super) fn rounds_up(&self) -> bool {
        self.rounding == Rounding::Up
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
