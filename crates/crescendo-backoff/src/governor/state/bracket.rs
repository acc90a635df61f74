//! The bracket around what a key's API sustains, learned from throttles alone (no quota
//! headers): the highest rate the fleet sent for a whole quiet stretch is known to be
//! sustainable, the rate in force at the last throttle is known to be too much.
//!
//! A cut goes back to the sustainable rate rather than far below it. Above it the rate
//! bisects: once throttles have come often enough to measure a cycle, it steps halfway
//! to "too much" and holds there until a quiet stretch proves the step sustainable (or
//! a throttle makes it the new "too much"); before that it creeps halfway over one
//! quiet stretch. Either way the bracket halves with every probe. Once it is within
//! [`TIGHT`], the rate stays [`BELOW_TOO_MUCH`] below "too much" until that is
//! [`TOO_MUCH_TTL`] old, then creeps on slowly, to notice a raised limit without
//! hitting the current one every few windows: on short windows a probe that is
//! throttled costs up to a second of idling, more than it can win back.
//! This is what learns the limit when whole-second Retry-After values make every
//! throttle cost up to a second of idling: a cycle of "hit, wait, resume" measures the
//! waiting along with the limit.

use std::time::Duration;

use super::KeyState;
use crate::governor::GovernorConfig;

/// A quiet stretch is this many of the shortest throttle cycles seen (a rate above the
/// limit is throttled within a window or two, and a cycle is at least a window; against
/// flowsim 2 did best, 1.5 took rates that were too much for sustained, 2.5 lagged) …
const QUIET_CYCLES: f64 = 2.0;
/// … or this long before any cycle is known, and never shorter than [`MIN_QUIET`].
const DEFAULT_QUIET: Duration = Duration::from_secs(5);
const MIN_QUIET: Duration = Duration::from_secs(2);

/// "Too much" within this fraction above the sustainable rate: the bracket is tight.
const TIGHT: f64 = 0.08;

/// With a tight bracket the rate stays this fraction below "too much" (probing it
/// again is not worth a throttle) …
const BELOW_TOO_MUCH: f64 = 0.03;
/// … until "too much" is this old.
const TOO_MUCH_TTL: Duration = Duration::from_secs(60);

/// A throttle barely above the sustainable rate brings it down to this fraction below
/// the throttled rate …
const OVERESTIMATE: f64 = 0.02;
/// … one this far below it means the limit fell.
const FELL: f64 = 0.1;

/// With a tight bracket the rate creeps this fraction of the sustainable rate per quiet
/// stretch.
const SLOW_CREEP: f64 = 0.005;

impl KeyState {
    /// How long the fleet must go without a throttle for its rate to count as sustained.
    fn quiet_span(&self) -> Duration {
        self.shortest_cycle
            .map_or(DEFAULT_QUIET, |c| c.mul_f64(QUIET_CYCLES))
            .max(MIN_QUIET)
    }

    /// At a tick outside pauses and throttle events: records the allowed and the
    /// accepted rate, and raises the sustainable rate to what the last quiet stretch
    /// shows: the lowest allowed rate, unless the fleet accepted less on average (it
    /// did not keep up, or sent less for another reason).
    pub(super) fn note_quiet(&mut self, now: Duration) {
        let span = self.quiet_span();
        self.quiet.push_back((now, self.current, self.accepted_rps));
        while self
            .quiet
            .front()
            .is_some_and(|(t, _, _)| now.saturating_sub(*t) > span)
        {
            self.quiet.pop_front();
        }
        let from = *self.quiet_from.get_or_insert(now);
        if now.saturating_sub(from) < span {
            return;
        }
        let lowest = self
            .quiet
            .iter()
            .map(|(_, allowed, _)| *allowed)
            .fold(f64::INFINITY, f64::min);
        let accepted = self.quiet.iter().map(|(_, _, a)| *a).sum::<f64>() / self.quiet.len() as f64;
        let rate = lowest.min(accepted);
        if rate.is_finite() && rate > self.sustained.unwrap_or(0.0) {
            self.sustained = Some(rate);
        }
    }

    /// A throttle: a new quiet stretch starts at the first tick after the event.
    pub(super) fn end_quiet(&mut self) {
        self.quiet.clear();
        self.quiet_from = None;
    }

    /// A throttle event at `now` at allowed rate `old`: it becomes "too much". Barely above
    /// what seemed sustainable, or below it, that was an overestimate (agents send in
    /// whole requests, the accepted rate is measured coarsely): it comes down below
    /// `old`; far below it, the limit fell and nothing is known to be sustainable.
    pub(super) fn too_much_at(&mut self, now: Duration, old: f64) {
        self.sustained = self.sustained.and_then(|s| {
            if s * (1.0 - FELL) > old {
                None
            } else {
                Some(s.min(old * (1.0 - OVERESTIMATE)))
            }
        });
        self.too_much = Some((now, old));
    }

    /// The rate a cut goes back to: the sustainable one, when known and lower.
    pub(super) fn cut_floor(&self, old: f64) -> Option<f64> {
        self.sustained.filter(|s| *s < old)
    }

    /// Where the fast recovery after a cut stops: the sustainable rate or
    /// `margin × ceiling`, whichever is higher.
    pub(super) fn plateau(&self, config: &GovernorConfig) -> Option<f64> {
        let from_ceiling = self.ceiling.map(|c| config.quota_margin * c);
        match (self.sustained, from_ceiling) {
            (Some(s), Some(c)) => Some(s.max(c)),
            (s, c) => s.or(c),
        }
    }

    /// Above the plateau: halfway to "too much" per quiet stretch while the bracket is
    /// wide, slowly once it is tight or no throttle bounds it.
    pub(super) fn creep_per_s(&self, plateau: f64, slow: f64) -> f64 {
        let span = self.quiet_span().as_secs_f64();
        match self.too_much.filter(|(_, t)| *t > plateau * (1.0 + TIGHT)) {
            Some((_, too_much)) => (too_much - plateau) / 2.0 / span,
            None if self.sustained.is_some() => (SLOW_CREEP * plateau / span).min(slow),
            None => slow,
        }
    }

    /// While a fresh "too much" is well above the plateau, and throttles have come
    /// often enough to measure a cycle (a single one may have been a blip): the next
    /// rate to try, halfway there (and never closer to it than [`BELOW_TOO_MUCH`]).
    pub(super) fn bisect_step(&self, now: Duration, plateau: f64) -> Option<f64> {
        self.ceiling?;
        let (at, too_much) = self.too_much?;
        let wide = too_much > plateau * (1.0 + TIGHT);
        (wide && now.saturating_sub(at) < TOO_MUCH_TTL)
            .then(|| ((plateau + too_much) / 2.0).min(too_much * (1.0 - BELOW_TOO_MUCH)))
    }

    /// How far the creep may go at `now`: below a recent "too much" once the bracket is
    /// tight.
    pub(super) fn creep_cap(&self, now: Duration, plateau: f64) -> f64 {
        match self.too_much {
            Some((at, too_much))
                if too_much <= plateau * (1.0 + TIGHT) && now.saturating_sub(at) < TOO_MUCH_TTL =>
            {
                (too_much * (1.0 - BELOW_TOO_MUCH)).max(plateau)
            }
            _ => f64::INFINITY,
        }
    }
}
