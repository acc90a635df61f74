//! The quota part of a key's state: folding quota headers into its window, the pace
//! they allow, and how it is described in decisions.

use std::time::Duration;

use super::KeyState;
use crate::governor::GovernorConfig;
use crate::governor::quota::{Observed, QuotaWindow};

impl KeyState {
    /// Describes the quota pacing in force, for decision reasons.
    pub(in crate::governor) fn quota_text(
        &self,
        config: &GovernorConfig,
        now: Duration,
    ) -> Option<String> {
        let quota = self.quota.as_ref()?;
        let margin = config.quota_margin;
        if let Some(resume) = self.pause_until(now) {
            return Some(format!(
                "quota spent: resuming at {:.2} s, pacing the next window at {margin:.2} × limit / window (~{:.0} s)",
                resume.as_secs_f64(),
                quota.window().as_secs_f64(),
            ));
        }
        if quota.continuous() {
            return Some(format!(
                "quota {:.0} left, refilled continuously: pacing at {margin:.2} × limit / {:.0} s",
                quota.estimated_remaining(),
                quota.window().as_secs_f64(),
            ));
        }
        let left = quota.reset_at().saturating_sub(now).as_secs_f64();
        let limit = quota
            .limit()
            .map(|l| format!(" of {l:.0}"))
            .unwrap_or_default();
        Some(format!(
            "quota {:.0}{limit} left, reset within {left:.1} s: pacing at {margin:.2} × remaining / reset",
            quota.remaining(),
        ))
    }

    /// Whether the key's quota is paced as a continuous limiter.
    #[cfg(test)]
    pub(in crate::governor) fn quota_continuous(&self) -> bool {
        self.quota.as_ref().is_some_and(QuotaWindow::continuous)
    }

    /// A continuous limiter's pacing is back at its full rate (`margin × limit /
    /// window`) after slowing down: announced even when the step is below the usual
    /// increase threshold, or the fleet would stay a few percent below the limit.
    pub(in crate::governor) fn back_to_cruise(
        &self,
        config: &GovernorConfig,
        now: Duration,
    ) -> bool {
        let rate = self.decision_rate(config, now);
        let cruise = self
            .quota
            .as_ref()
            .and_then(|q| q.cruise(config.quota_margin));
        cruise.is_some_and(|c| rate > self.announced && rate >= c * (1.0 - 1e-9))
    }

    /// When the quota window is over by the latest, if that is still to come.
    pub(in crate::governor) fn next_wake(&self, now: Duration) -> Option<Duration> {
        self.quota
            .as_ref()
            .filter(|q| !q.continuous())
            .map(QuotaWindow::reset_at)
            .filter(|t| *t > now)
    }

    /// Whether the key's pauses wait for a quota window whose end is known to a report
    /// interval, after which the fleet resumes at a pace (see
    /// [`FleetDecision::interleave`](crate::governor::FleetDecision)).
    pub(in crate::governor) fn resumes_at_pace(&self) -> bool {
        self.quota
            .as_ref()
            .is_some_and(|q| q.rounds_up() && !q.continuous())
    }

    pub(in crate::governor) fn observe_quota(
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
        let sending = self.current.max(self.accepted_rps);
        Some(match &mut self.quota {
            Some(quota) => quota.observe(at, remaining, limit, reset, sending),
            None => {
                let mut quota = QuotaWindow::new(at, remaining, limit, reset);
                if self.rounds_down {
                    quota.rounds_down();
                }
                self.quota = Some(quota);
                Observed::NewWindow
            }
        })
    }

    pub(in crate::governor) fn quota_rate(
        &self,
        config: &GovernorConfig,
        now: Duration,
    ) -> Option<f64> {
        self.quota.as_ref()?.pace(now, config.quota_margin)
    }
}
