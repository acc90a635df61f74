//! The AIMD part of a key's state: one cut per event, recovery towards a learned
//! ceiling, and the cycle accounting that learns it.

use std::time::Duration;

use super::{KeyState, clamp};
use crate::governor::{GovernorConfig, ThrottleReport};

/// Agent rates older than this no longer count towards the measured fleet rate.
const AGENT_RATE_TTL: Duration = Duration::from_secs(30);

/// The measured fleet rate looks this far back at the accepted rate.
const ACCEPTED_HISTORY: Duration = Duration::from_secs(3);

/// A cycle shorter than this teaches nothing about the ceiling.
const MIN_CYCLE: Duration = Duration::from_secs(1);

/// Above the plateau the rate creeps up by this fraction of the ceiling per cycle (or of
/// `increase_per_s` per second while no cycle is known), to find a raised limit without
/// hitting the current one every window.
const PROBE_PER_CYCLE: f64 = 0.01;
const PROBE_FRACTION: f64 = 0.1;

/// A cycle closed by a cut whose pause may end early (see `KeyState::reopen_cycle`):
/// what it sent, and the ceiling and shortest cycle before it.
#[derive(Debug)]
pub(super) struct ClosedCycle {
    start: Duration,
    sent: f64,
    ceiling: Option<f64>,
    shortest: Option<Duration>,
    /// The cut's rate before the ceiling capped it.
    uncapped: f64,
}

/// A cycle at most this much longer than the shortest one seen spans a single limiter
/// window, so its rate is trusted as the new ceiling.
const SINGLE_CYCLE: f64 = 1.5;

impl KeyState {
    /// Records the fleet's accepted rate (this key's share) at a tick.
    pub(super) fn record_accepted(&mut self, now: Duration, accepted_rps: f64) {
        self.accepted_rps = accepted_rps;
        self.accepted_history.push_back((now, accepted_rps));
        while self
            .accepted_history
            .front()
            .is_some_and(|(t, _)| now.saturating_sub(*t) > ACCEPTED_HISTORY)
        {
            self.accepted_history.pop_front();
        }
    }

    /// The one multiplicative cut of a new throttle event; the cycle ends (and the next
    /// starts) at `cycle_end`, the end of the pause or now. Returns `(old, new, why)`.
    pub(super) fn cut(
        &mut self,
        config: &GovernorConfig,
        now: Duration,
        cycle_end: Duration,
        report: &ThrottleReport,
    ) -> (f64, f64, String) {
        self.learn_ceiling(now, cycle_end);
        let measured = self.measured_rate(now);
        let old = self.current;
        self.too_much_at(now, old);
        let mut new = config.decrease * measured.map_or(old, |m| m.min(old));
        let floor = self.cut_floor(old);
        let uncapped = floor.map_or(new, |f| new.max(f));
        if let Some(ceiling) = self.ceiling {
            new = new.min(ceiling);
        }
        if let Some(floor) = floor {
            new = new.max(floor);
        }
        self.aimd = Some(clamp(config, new));
        if let Some(closed) = &mut self.closed {
            closed.uncapped = uncapped;
        }
        self.cycle_start = Some(cycle_end);
        self.sent = 0.0;
        self.tallied_to = cycle_end;
        // Reports until a cut window after the pause belong to this event: 429s of
        // requests in flight, and of a resume a rounded-down Retry-After made too early.
        self.cut_until = Some(cycle_end.max(now).saturating_add(config.cut_window));
        self.update_current(config, now);
        let measured = measured.map_or_else(|| "unknown".to_owned(), |m| format!("{m:.2}"));
        let wait = report
            .retry_after
            .map(|w| format!(" (Retry-After {})", crate::retry::fmt_secs(w)))
            .unwrap_or_default();
        let ceiling = match (floor, self.ceiling) {
            (Some(f), _) => format!(", back to {f:.2}, sustained before without a throttle"),
            (None, Some(c)) => format!(", capped at learned ceiling {c:.2}"),
            (None, None) => String::new(),
        };
        let why = format!(
            "{} from {}{wait}: {:.2} × min(measured {measured}, allowed {old:.2}) rps{ceiling}",
            report.status, report.agent, config.decrease,
        );
        (old, self.current, why)
    }

    /// Additive increase over `dt` without throttles.
    pub(super) fn recover(&mut self, config: &GovernorConfig, now: Duration, dt: Duration) {
        let Some(aimd) = self.aimd else {
            return;
        };
        let dt = dt.as_secs_f64();
        let next = match self.plateau(config) {
            // Far below what the API sustained: climb fast up to the plateau …
            Some(p) if aimd < p => (aimd + config.increase_per_s * dt).min(p),
            // … then step halfway to a recent "too much" and hold there until it proves
            // sustainable …
            Some(p) if let Some(step) = self.bisect_step(now, p) => {
                (aimd + config.increase_per_s * dt).min(step).max(aimd)
            }
            // … or creep, to find a raised limit without hitting the old one.
            Some(p) => (aimd + self.creep_per_s(p, self.probe_per_s(config)) * dt)
                .min(self.creep_cap(now, p).max(aimd)),
            None => aimd + config.increase_per_s * dt,
        };
        self.aimd = (next < config.plan_rate).then_some(next.max(config.min_rate));
    }

    /// The fleet's sending rate: the larger of the sum of the agents' own rates (fresh
    /// reports; the first report of an event only knows one agent) and the highest
    /// accepted rate of the last few seconds; `None` when neither is known.
    fn measured_rate(&mut self, now: Duration) -> Option<f64> {
        self.agent_rates
            .retain(|_, (seen, _)| now.saturating_sub(*seen) <= AGENT_RATE_TTL);
        let agents: f64 = self.agent_rates.values().map(|(_, r)| r).sum();
        let accepted = self
            .accepted_history
            .iter()
            .map(|(_, r)| *r)
            .fold(self.accepted_rps, f64::max);
        let measured = agents.max(accepted);
        (measured > 0.0).then_some(measured)
    }

    /// Adds what the fleet was allowed to send since the last tally, at the rate in force
    /// (`current`, unchanged since then), outside pauses. Before the first cut there is
    /// no cycle: the run's start is no resume point.
    pub(super) fn tally(&mut self, now: Duration) {
        let Some(start) = self.cycle_start else {
            return;
        };
        let from = self
            .tallied_to
            .max(start)
            .max(self.pause_until.unwrap_or_default());
        self.sent += self.current * now.saturating_sub(from).as_secs_f64();
        self.tallied_to = self.tallied_to.max(now);
    }

    /// Closes a cycle at `end`: its rate becomes the ceiling when the cycle
    /// spans one limiter window; longer cycles (quiet windows, then a probe too far) can
    /// only raise it.
    fn learn_ceiling(&mut self, now: Duration, end: Duration) {
        self.closed = None;
        let Some(start) = self.cycle_start else {
            return;
        };
        self.tally(now);
        self.closed = Some(ClosedCycle {
            start,
            sent: self.sent,
            ceiling: self.ceiling,
            shortest: self.shortest_cycle,
            uncapped: f64::INFINITY,
        });
        self.measure_cycle(start, end);
    }

    /// The pause ended at `now`, before the end the cut assumed (its scout got through):
    /// the closed cycle is measured again, and the cut's rate, if the old estimate
    /// capped it, raised to what the new one allows. The next cycle starts now.
    pub(super) fn reopen_cycle(&mut self, config: &GovernorConfig, now: Duration) {
        // A cycle too short to measure keeps what the cut learned.
        let closed = self
            .closed
            .take()
            .filter(|c| now.saturating_sub(c.start) >= MIN_CYCLE);
        if let Some(closed) = closed {
            self.ceiling = closed.ceiling;
            self.shortest_cycle = closed.shortest;
            self.sent = closed.sent;
            self.measure_cycle(closed.start, now);
            if let (Some(aimd), Some(ceiling)) = (self.aimd, self.ceiling) {
                self.aimd = Some(clamp(config, aimd.max(closed.uncapped.min(ceiling))));
            }
        }
        if self.cycle_start.is_some_and(|c| c > now) {
            self.cycle_start = Some(now);
        }
        self.sent = 0.0;
        self.tallied_to = now;
    }

    /// Learns from a cycle from `start` to `end` in which `self.sent` requests went.
    fn measure_cycle(&mut self, start: Duration, end: Duration) {
        let len = end.saturating_sub(start);
        if len < MIN_CYCLE || self.sent <= 0.0 {
            return;
        }
        let estimate = self.sent / len.as_secs_f64();
        let shortest = self.shortest_cycle.map_or(len, |s| s.min(len));
        self.shortest_cycle = Some(shortest);
        let single = len.as_secs_f64() <= SINGLE_CYCLE * shortest.as_secs_f64();
        self.ceiling = Some(match self.ceiling {
            Some(c) if !single => c.max(estimate),
            _ => estimate,
        });
    }

    fn probe_per_s(&self, config: &GovernorConfig) -> f64 {
        match (self.ceiling, self.shortest_cycle) {
            (Some(c), Some(cycle)) if !cycle.is_zero() => {
                (PROBE_PER_CYCLE * c / cycle.as_secs_f64()).min(config.increase_per_s)
            }
            _ => config.increase_per_s * PROBE_FRACTION,
        }
    }
}
