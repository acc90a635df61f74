//! The rate state of one limit key: AIMD with a learned ceiling, pauses, quota pacing.

use std::collections::BTreeMap;
use std::time::Duration;

use super::quota::{Observed, QuotaWindow};
use super::{GovernorConfig, QuotaReport, ThrottleReport};

/// Agent rates older than this no longer count towards the measured fleet rate.
const AGENT_RATE_TTL: Duration = Duration::from_secs(30);

/// Above the plateau the rate creeps up by this fraction of the ceiling per cycle (or of
/// `increase_per_s` per second while no cycle is known), to find a raised limit without
/// hitting the current one every window.
const PROBE_PER_CYCLE: f64 = 0.01;
const PROBE_FRACTION: f64 = 0.1;

/// A cycle at most this much longer than the shortest one seen spans a single limiter
/// window, so its accepted rate is trusted as the new ceiling.
const SINGLE_CYCLE: f64 = 1.5;

/// A pause is only extended when the new end is later than this.
const PAUSE_EXTEND: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub(super) struct KeyState {
    /// AIMD rate; `None` while never cut, or recovered to the plan rate.
    aimd: Option<f64>,
    /// Learned sustainable fleet rate: requests accepted per second over the last
    /// throttle cycle (resume → next throttle's resume).
    ceiling: Option<f64>,
    shortest_cycle: Option<Duration>,
    /// Start of the current cycle: the previous pause's end, or the previous cut.
    cycle_start: Option<Duration>,
    /// Requests accepted since `cycle_start`.
    accepted: f64,
    /// Throttle reports before this instant belong to the last cut.
    cut_until: Option<Duration>,
    pause_until: Option<Duration>,
    /// Latest `agent_rate` per agent and when it came.
    agent_rates: BTreeMap<String, (Duration, f64)>,
    /// Fleet accepted rate attributed to this key at the last tick.
    accepted_rps: f64,
    quota: Option<QuotaWindow>,
    /// Rate the governor allows now, and what sets it.
    pub(super) current: f64,
    bound: Bound,
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
        if let (Some(remaining), Some(reset)) = (report.remaining, report.reset) {
            self.observe_quota(at, remaining, report.limit, reset);
        }
        // The server's delay: Retry-After, else the reset of an exhausted quota.
        let server_wait = report
            .retry_after
            .or_else(|| report.remaining.filter(|r| *r < 1.0).and(report.reset));
        let pause_end = server_wait
            .map(|w| at.saturating_add(w))
            .filter(|p| *p > now);
        let mut outcome = Outcome::default();

        if self.cut_until.is_some_and(|until| now < until) {
            // Same event: no second cut, but a much later pause wins (e.g. a daily quota).
            let later = pause_end.filter(|end| {
                self.pause_until
                    .is_none_or(|p| *end > p.saturating_add(PAUSE_EXTEND))
            });
            if let Some(end) = later {
                self.pause_until = Some(end);
                self.cut_until = self.cut_until.max(Some(end));
                outcome.pause = Some((
                    end,
                    format!("{} from {} extends the pause", report.status, report.agent),
                ));
            }
            return outcome;
        }

        // A new event: close the cycle, learn from it, cut once.
        let cycle_end = pause_end.unwrap_or(now);
        self.learn_ceiling(cycle_end);
        let measured = self.measured_rate(now);
        let old = self.current;
        let mut new = config.decrease * measured.map_or(old, |m| m.min(old));
        if let Some(ceiling) = self.ceiling {
            new = new.min(ceiling);
        }
        self.aimd = Some(clamp(config, new));
        self.cycle_start = Some(cycle_end);
        self.accepted = 0.0;
        self.cut_until = Some(now.saturating_add(config.cut_window).max(cycle_end));
        self.update_current(config, now);
        let measured_text = measured.map_or_else(|| "unknown".to_owned(), |m| format!("{m:.2}"));
        let wait_text = report
            .retry_after
            .map(|w| format!(" (Retry-After {})", crate::retry::fmt_secs(w)))
            .unwrap_or_default();
        outcome.cut = Some((
            old,
            self.current,
            format!(
                "{} from {}{wait_text}: {:.2} × min(measured {measured_text}, allowed {old:.2}) rps{}",
                report.status,
                report.agent,
                config.decrease,
                self.ceiling
                    .map(|c| format!(", capped at learned ceiling {c:.2}"))
                    .unwrap_or_default(),
            ),
        ));
        if let Some(end) = pause_end {
            self.pause_until = Some(end);
            outcome.pause = Some((end, format!("the API asked to wait{wait_text}")));
        }
        outcome
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
            if end > now
                && self
                    .pause_until
                    .is_none_or(|p| end > p.saturating_add(PAUSE_EXTEND))
            {
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

    /// Time passes: pauses end, quota windows roll over, the AIMD rate recovers.
    /// `dt` is the time since the previous tick; `accepted_rps` this key's share.
    pub(super) fn on_tick(
        &mut self,
        config: &GovernorConfig,
        now: Duration,
        dt: Duration,
        accepted_rps: f64,
    ) {
        self.accepted_rps = accepted_rps;
        if self.pause_until(now).is_none() {
            self.accepted += accepted_rps * dt.as_secs_f64();
        }
        if self.cycle_start.is_none() {
            // Not a resume point: the first cycle is never used to learn a ceiling.
            self.accepted = 0.0;
        }
        let quiet = self.cut_until.is_none_or(|until| now >= until);
        if let Some(aimd) = self.aimd.filter(|_| quiet) {
            let dt = dt.as_secs_f64();
            let plateau = self.ceiling.map(|c| config.quota_margin * c);
            let next = match plateau {
                // Far below what the API sustained: climb fast up to the plateau …
                Some(p) if aimd < p => (aimd + config.increase_per_s * dt).min(p),
                // … then creep, to find a raised limit without hitting the old one.
                Some(_) => aimd + self.probe_per_s(config) * dt,
                None => aimd + config.increase_per_s * dt,
            };
            self.aimd = (next < config.plan_rate).then_some(next.max(config.min_rate));
        }
        self.update_current(config, now);
    }

    /// A plan rate change: a cut rate above the new plan no longer matters.
    pub(super) fn on_plan_rate(&mut self, config: &GovernorConfig, now: Duration) {
        if self.aimd.is_some_and(|a| a >= config.plan_rate) {
            self.aimd = None;
        }
        self.update_current(config, now);
    }

    /// Describes the quota pacing in force, for decision reasons.
    pub(super) fn quota_text(&self, config: &GovernorConfig, now: Duration) -> Option<String> {
        let quota = self.quota.as_ref()?;
        let left = quota.reset_at().saturating_sub(now).as_secs_f64();
        let limit = quota
            .limit()
            .map(|l| format!(" of {l:.0}"))
            .unwrap_or_default();
        Some(format!(
            "quota {:.0}{limit} left, reset in {left:.1} s (window ~{:.0} s): pacing at {:.2} × remaining / reset",
            quota.remaining(),
            quota.window().as_secs_f64(),
            config.quota_margin,
        ))
    }

    /// What sets the current rate.
    pub(super) fn bound(&self) -> Bound {
        self.bound
    }

    fn observe_quota(
        &mut self,
        at: Duration,
        remaining: f64,
        limit: Option<f64>,
        reset: Duration,
    ) -> Option<Observed> {
        if !remaining.is_finite() || remaining < 0.0 {
            return None;
        }
        let limit = limit.filter(|l| l.is_finite() && *l > 0.0);
        Some(match &mut self.quota {
            Some(quota) => quota.observe(at, remaining, limit, reset),
            None => {
                self.quota = Some(QuotaWindow::new(at, remaining, limit, reset));
                Observed::NewWindow
            }
        })
    }

    fn quota_rate(&self, config: &GovernorConfig, now: Duration) -> Option<f64> {
        self.quota.as_ref()?.pace(now, config.quota_margin)
    }

    /// The rate to announce now: during a pause, the rate that will hold at its end
    /// (a quota window rolled over by then), so agents resume at the right pace.
    pub(super) fn decision_rate(&self, config: &GovernorConfig, now: Duration) -> f64 {
        let Some(resume) = self.pause_until(now) else {
            return self.current;
        };
        let mut rate = config.plan_rate.min(self.aimd.unwrap_or(f64::INFINITY));
        if let Some(mut quota) = self.quota.clone() {
            if quota.roll(resume) {
                if let Some(pace) = quota.pace(resume, config.quota_margin) {
                    rate = rate.min(pace);
                }
            }
        }
        clamp(config, rate)
    }

    fn update_current(&mut self, config: &GovernorConfig, now: Duration) {
        let in_force = if self.pause_until(now).is_some() {
            0.0
        } else {
            self.current
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

    /// The fleet's sending rate: the larger of the agents' own reports (fresh ones) and
    /// the accepted rate of the last tick; `None` when neither is known.
    fn measured_rate(&mut self, now: Duration) -> Option<f64> {
        self.agent_rates
            .retain(|_, (seen, _)| now.saturating_sub(*seen) <= AGENT_RATE_TTL);
        let agents: f64 = self.agent_rates.values().map(|(_, r)| r).sum();
        let measured = agents.max(self.accepted_rps);
        (measured > 0.0).then_some(measured)
    }

    /// Closes a cycle at `end`: its accepted rate becomes the ceiling when the cycle
    /// spans one limiter window; longer cycles (quiet windows, then a probe too far) can
    /// only raise it.
    fn learn_ceiling(&mut self, end: Duration) {
        let Some(start) = self.cycle_start else {
            return;
        };
        let len = end.saturating_sub(start);
        if len < Duration::from_millis(100) || self.accepted <= 0.0 {
            return;
        }
        let estimate = self.accepted / len.as_secs_f64();
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

/// Never above the plan rate, never below `min_rate` (unless the plan itself is lower).
fn clamp(config: &GovernorConfig, rate: f64) -> f64 {
    let rate = if rate.is_nan() { config.min_rate } else { rate };
    rate.max(config.min_rate).min(config.plan_rate.max(0.0))
}
