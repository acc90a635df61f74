//! The rate state of one limit key: AIMD with a learned ceiling, pauses, quota pacing.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

mod aimd;
mod bracket;
mod pacing;

use super::quota::{Observed, QuotaWindow};
use super::types::{GovernorConfig, QuotaReport, Scout, ThrottleReport};

/// A pause is only extended when the new end is later than this.
const PAUSE_EXTEND: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub(super) struct KeyState {
    /// AIMD rate; `None` while never cut, or recovered to the plan rate.
    aimd: Option<f64>,
    /// Learned sustainable fleet rate: requests let through per second over the last
    /// throttle cycle (resume → next throttle's resume).
    ceiling: Option<f64>,
    shortest_cycle: Option<Duration>,
    /// Highest rate the fleet sent for a whole quiet stretch (see `bracket`) …
    pub(super) sustained: Option<f64>,
    /// … the allowed rate at the last throttle event, and when …
    too_much: Option<(Duration, f64)>,
    /// … and the allowed and accepted rates at the ticks of the quiet stretch, which started at
    /// `quiet_from` (the first tick after the last throttle event).
    quiet: VecDeque<(Duration, f64, f64)>,
    quiet_from: Option<Duration>,
    /// Start of the current cycle: the previous pause's end, or the previous cut.
    cycle_start: Option<Duration>,
    /// Requests the fleet was allowed to send since `cycle_start` (the integral of the
    /// allowed rate outside pauses), as of `tallied_to`. Unlike the controller's accepted
    /// rate it does not lag behind, and a cycle that ended in exhaustion sent what the
    /// API accepted plus a handful of 429s.
    sent: f64,
    tallied_to: Duration,
    /// Throttle reports before this instant belong to the last cut.
    cut_until: Option<Duration>,
    pause_until: Option<Duration>,
    /// The agent scouting a pause, when it resumes and when the pause it scouts ends
    /// (see [`Scout`]); only while that pause is the one in force …
    scout: Option<(String, Duration, Duration)>,
    /// … and the cycle the pause's cut closed, measured again when the scout gets
    /// through (the cycle really ends then) …
    closed: Option<aimd::ClosedCycle>,
    /// … or the pause ended by time: the scout's rate cap is to be lifted.
    scout_over: bool,
    /// The server seems to round whole-second delays down: add a second to them.
    rounds_down: bool,
    /// Latest `agent_rate` per agent and when it came.
    agent_rates: BTreeMap<String, (Duration, f64)>,
    /// Fleet accepted rate attributed to this key at the last tick …
    accepted_rps: f64,
    /// … and at the ticks of the last `ACCEPTED_HISTORY`: at the moment of a 429 the
    /// accepted rate has already collapsed, the rate before it is what the fleet sent.
    accepted_history: VecDeque<(Duration, f64)>,
    pub(super) quota: Option<QuotaWindow>,
    /// Rate the governor allows now, and what sets it.
    pub(super) current: f64,
    bound: Bound,
    /// A pause decided by a tick, for the governor to announce.
    pending: Option<(Duration, String)>,
    /// Rate last sent out in a decision.
    pub(super) announced: f64,
}

/// What sets a key's current rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Bound {
    #[default]
    Plan,
    Aimd,
    Quota,
}

/// What one input did, for the governor to turn into decisions and events.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    /// `(old, new, why)` of a multiplicative cut.
    pub(super) cut: Option<(f64, f64, String)>,
    /// A new or extended pause and why.
    pub(super) pause: Option<(Duration, String)>,
}

impl KeyState {
    /// A key seen for the first time; `accepted_rps` is the fleet's last accepted rate,
    /// the best guess of what was sent on this key so far.
    pub(super) fn new(config: &GovernorConfig, accepted_rps: f64) -> Self {
        Self {
            accepted_rps,
            current: config.plan_rate,
            announced: config.plan_rate,
            ..Self::default()
        }
    }

    pub(super) fn pause_until(&self, now: Duration) -> Option<Duration> {
        self.pause_until.filter(|p| *p > now)
    }

    pub(super) fn on_throttle(
        &mut self,
        config: &GovernorConfig,
        now: Duration,
        report: &ThrottleReport,
    ) -> Outcome {
        let at = report.at.min(now);
        if report.agent_rate.is_finite() && report.agent_rate > 0.0 {
            self.agent_rates
                .insert(report.agent.clone(), (now, report.agent_rate));
        }
        let observed = report
            .remaining
            .zip(report.reset)
            .and_then(|(remaining, reset)| self.observe_quota(at, remaining, report.limit, reset));
        if observed == Some(Observed::Stale) {
            // A straggler from a quota window that is already over.
            return Outcome::default();
        }
        self.end_quiet();
        // The server's delay: Retry-After, else the reset of an exhausted quota. A 429
        // soon after a resume means the delays are rounded down (or clocks drift): from
        // then on whole-second delays get the second they may have lost.
        let resumed_early = self.cut_until.is_some_and(|until| now < until)
            && self.pause_until.is_some_and(|p| p <= now);
        // A Retry-After of 0 on a 429 is a delay rounded down, too.
        if resumed_early || report.retry_after == Some(Duration::ZERO) {
            self.rounds_down = true;
        }
        if let Some(quota) = self.quota.as_mut().filter(|_| self.rounds_down) {
            quota.rounds_down();
        }
        let server_wait = report
            .retry_after
            .or_else(|| report.remaining.filter(|r| *r < 1.0).and(report.reset))
            .map(|w| {
                if self.rounds_down && w.subsec_nanos() == 0 {
                    w.saturating_add(Duration::from_secs(1))
                } else {
                    w
                }
            });
        let pause_end = server_wait
            .map(|w| at.saturating_add(w))
            .filter(|p| *p > now);
        let mut outcome = Outcome::default();

        // The quota the governor paces ran out (the report says so, or nothing is left
        // by its own estimate): this is no sign of an unknown limit, so no cut; the fleet
        // waits until the window has surely reset, pacing resumes with the new window.
        let known_quota_spent = self.quota.as_ref().filter(|q| {
            report
                .remaining
                .map_or(q.estimated_remaining() < 1.0, |r| r < 1.0)
        });
        if let Some(quota) = known_quota_spent {
            // A continuous limiter frees capacity within the Retry-After: the throttled
            // agent waits it out, the fleet only slows down (its pacing sees nothing
            // left), unless the server asks for longer than the window (another limit).
            let end = if quota.continuous() {
                pause_end
                    .filter(|end| end.saturating_sub(now) > quota.window())
                    .unwrap_or(now)
            } else if quota.rounds_up() {
                // Known to a report interval, this 429's own reset included; a
                // whole-second Retry-After would add up to a second more.
                quota.reset_at()
            } else {
                pause_end.unwrap_or(now).max(quota.reset_at())
            };
            self.cut_until = self
                .cut_until
                .max(Some(end.saturating_add(config.cut_window)));
            if end > now && self.extends_pause(end, PAUSE_EXTEND) {
                self.pause_until = Some(end);
                outcome.pause = Some((
                    end,
                    format!(
                        "{} from {}: quota spent, no cut",
                        report.status, report.agent
                    ),
                ));
            }
            self.update_current(config, now);
            return outcome;
        }

        if self.cut_until.is_some_and(|until| now < until) {
            // Same event: no second cut, but a much later pause wins (e.g. a daily quota).
            let extend_by = if resumed_early {
                Duration::ZERO
            } else {
                PAUSE_EXTEND
            };
            let later = pause_end.filter(|end| self.extends_pause(*end, extend_by));
            if let Some(end) = later {
                self.pause_until = Some(end);
                // A much later end is another limit (or rounding): no scouting it.
                self.scout = None;
                // The cycle starts when the fleet really resumes.
                if self.cycle_start.is_some_and(|c| c < end) {
                    self.cycle_start = Some(end);
                    self.sent = 0.0;
                    self.tallied_to = end;
                }
                self.cut_until = self
                    .cut_until
                    .max(Some(end.saturating_add(config.cut_window)));
                outcome.pause = Some((
                    end,
                    format!("{} from {} extends the pause", report.status, report.agent),
                ));
            }
            return outcome;
        }

        // A new event: close the cycle, learn from it, cut once.
        outcome.cut = Some(self.cut(config, now, pause_end.unwrap_or(now), report));
        let wait_text = report
            .retry_after
            .map(|w| format!(" (Retry-After {})", crate::retry::fmt_secs(w)))
            .unwrap_or_default();
        if let Some(end) = pause_end {
            self.pause_until = Some(end);
            // With quota headers the window's end is known better than to a second:
            // scouting is for Retry-After alone.
            self.scout = report
                .retry_after
                .filter(|_| self.quota.is_none())
                .and(server_wait)
                .and_then(|wait| scout_from(now, end, wait))
                .map(|from| (report.agent.clone(), from, end));
            self.scout_over = false;
            outcome.pause = Some((end, format!("the API asked to wait{wait_text}")));
        }
        outcome
    }

    /// The scout of the pause in force: none once another pause (a spent quota, a
    /// longer wait) replaced the one it scouts.
    pub(super) fn scout(&self, now: Duration) -> Option<Scout> {
        let until = self.pause_until(now)?;
        self.scout
            .as_ref()
            .filter(|(_, _, end)| *end == until)
            .map(|(agent, from, _)| Scout {
                agent: agent.clone(),
                from: *from,
            })
    }

    /// The scout `agent` got through at `now`: the pause ends. Returns why, or `None`
    /// when `agent` scouts no pause in force.
    pub(super) fn on_opened(
        &mut self,
        config: &GovernorConfig,
        now: Duration,
        agent: &str,
    ) -> Option<String> {
        let until = self.pause_until(now)?;
        // Only the scout of the pause in force, and only once it resumed: an answer
        // before that is one of a request sent before the pause.
        self.scout(now)
            .filter(|s| s.agent == agent && s.from <= now)?;
        self.scout = None;
        self.pause_until = Some(now);
        self.reopen_cycle(config, now);
        // The API lets requests through again: a throttle from now on is news.
        self.cut_until = Some(now);
        self.update_current(config, now);
        Some(format!(
            "{agent} got through {:.2} s before the pause's end: the fleet resumes",
            until.saturating_sub(now).as_secs_f64()
        ))
    }

    /// Whether a scout's pause ended without an opening (once).
    pub(super) fn take_scout_over(&mut self) -> bool {
        std::mem::take(&mut self.scout_over)
    }

    pub(super) fn on_quota(
        &mut self,
        config: &GovernorConfig,
        now: Duration,
        report: &QuotaReport,
    ) -> Outcome {
        let at = report.at.min(now);
        let mut outcome = Outcome::default();
        if self.observe_quota(at, report.remaining, report.limit, report.reset)
            == Some(Observed::Stale)
        {
            return outcome;
        }
        if let Some(quota) = self.quota.as_ref().filter(|q| q.exhausted()) {
            let end = quota.reset_at();
            if end > now && self.extends_pause(end, PAUSE_EXTEND) {
                self.pause_until = Some(end);
                outcome.pause = Some((
                    end,
                    format!(
                        "quota exhausted ({:.0} left): pausing until the window resets",
                        quota.remaining()
                    ),
                ));
            }
        }
        self.update_current(config, now);
        outcome
    }

    /// Whether pausing until `end` lasts more than `extend_by` beyond the pause in force.
    fn extends_pause(&self, end: Duration, extend_by: Duration) -> bool {
        self.pause_until
            .is_none_or(|p| end > p.saturating_add(extend_by))
    }

    /// Time passes: pauses end, quota windows roll over, the AIMD rate recovers.
    /// `dt` is the time since the previous tick; `accepted_rps` this key's share.
    pub(super) fn on_tick(
        &mut self,
        config: &GovernorConfig,
        now: Duration,
        dt: Duration,
        accepted_rps: f64,
    ) {
        self.record_accepted(now, accepted_rps);
        if self.scout.is_some() && self.pause_until(now).is_none() {
            self.scout = None;
            self.closed = None;
            self.scout_over = true;
        }
        if self.cut_until.is_none_or(|until| now >= until) {
            self.recover(config, now, dt);
            if self.pause_until(now).is_none() {
                self.note_quiet(now);
            }
        }
        self.update_current(config, now);
        // By the governor's own count the quota is spent: wait for the reset rather than
        // trickle requests at `min_rate` into a window that will answer 429.
        let not_paused = self.pause_until(now).is_none();
        let spent = self
            .quota
            .as_ref()
            .filter(|q| not_paused && !q.continuous())
            .filter(|q| q.estimated_remaining() < 1.0 && q.reset_at() > now);
        if let Some(quota) = spent {
            let end = quota.reset_at();
            self.pause_until = Some(end);
            self.pending = Some((
                end,
                format!(
                    "quota spent by estimate ({:.0} reported, {:.0} sent since)",
                    quota.remaining(),
                    quota.remaining() - quota.estimated_remaining()
                ),
            ));
        }
    }

    /// A pause decided by a tick, not yet sent out.
    pub(super) fn take_pending(&mut self) -> Option<(Duration, String)> {
        self.pending.take()
    }

    pub(super) fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// A plan rate change: a cut rate above the new plan no longer matters.
    pub(super) fn on_plan_rate(&mut self, config: &GovernorConfig, now: Duration) {
        if self.aimd.is_some_and(|a| a >= config.plan_rate) {
            self.aimd = None;
        }
        self.update_current(config, now);
    }

    /// What sets the current rate.
    pub(super) fn bound(&self) -> Bound {
        self.bound
    }

    /// The rate to announce now: during a pause, the rate that will hold at its end
    /// (a quota window rolled over by then), so agents resume at the right pace.
    pub(super) fn decision_rate(&self, config: &GovernorConfig, now: Duration) -> f64 {
        let Some(resume) = self.pause_until(now) else {
            return self.current;
        };
        let mut rate = config.plan_rate.min(self.aimd.unwrap_or(f64::INFINITY));
        let pace = self.quota.clone().and_then(|mut quota| {
            quota
                .roll(resume)
                .then(|| quota.pace(resume, config.quota_margin))
                .flatten()
        });
        if let Some(pace) = pace {
            rate = rate.min(pace);
        }
        clamp(config, rate)
    }

    fn update_current(&mut self, config: &GovernorConfig, now: Duration) {
        self.tally(now);
        // What the fleet sends now: at most the allowed rate, at most what was measured
        // (agents lagging behind a raised rate must not make the estimate run ahead, or
        // the last requests of a window would never be paced out).
        let in_force = if self.pause_until(now).is_some() {
            0.0
        } else {
            self.current.min(self.accepted_rps)
        };
        if let Some(quota) = &mut self.quota {
            if quota.roll(now) {
                quota.advance(now, in_force);
            } else {
                self.quota = None;
            }
        }
        let mut rate = config.plan_rate;
        self.bound = Bound::Plan;
        if let Some(aimd) = self.aimd.filter(|a| *a < rate) {
            rate = aimd;
            self.bound = Bound::Aimd;
        }
        if let Some(q) = self.quota_rate(config, now).filter(|q| *q < rate) {
            rate = q;
            self.bound = Bound::Quota;
        }
        self.current = clamp(config, rate);
    }
}

/// When the scout of a pause until `end` resumes: a second before, when the server's
/// wait was whole seconds (rounded up, the API may let requests through that much
/// earlier); `None` for other waits.
fn scout_from(now: Duration, end: Duration, wait: Duration) -> Option<Duration> {
    let second = Duration::from_secs(1);
    (wait.subsec_nanos() == 0 && wait >= second).then(|| end.saturating_sub(second).max(now))
}

/// Never above the plan rate, never below `min_rate` (unless the plan itself is lower).
fn clamp(config: &GovernorConfig, rate: f64) -> f64 {
    let rate = if rate.is_nan() { config.min_rate } else { rate };
    rate.max(config.min_rate).min(config.plan_rate.max(0.0))
}
