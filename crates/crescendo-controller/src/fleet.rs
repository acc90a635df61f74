//! The coordinated policy on the controller: the fleet governor fed with the agents'
//! throttle reports and the merged accepted rate, and its decisions sent to every
//! agent as `Adjust` messages (rate shares and staggered pauses).

use std::time::Duration;

use std::collections::VecDeque;

use crescendo_backoff::governor::{
    FleetDecision, Governor, GovernorConfig, GovernorEvent, QuotaReport, ThrottleReport,
    agent_shares,
};
use crescendo_plan::{Load, Plan, Share};
use crescendo_proto::v1 as pb;

/// The limit key used when agents do not name the credential (one shared key).
const DEFAULT_KEY: &str = "default";

/// Governor state of one run.
#[derive(Debug)]
pub(crate) struct Fleet {
    governor: Governor,
    plan: crescendo_plan::OpenLoad,
    /// Merged `ok` totals at recent ticks, to measure the accepted rate over ~1 s.
    accepted: VecDeque<(Duration, u64)>,
}

/// How often the governor ticks: quota windows are followed at this resolution.
pub(crate) const TICK: Duration = Duration::from_millis(250);

fn limit_key(key: &str) -> String {
    if key.is_empty() {
        DEFAULT_KEY.to_owned()
    } else {
        key.to_owned()
    }
}

/// One `Adjust` to send.
pub(crate) type Adjustment = (String, pb::Adjust);

impl Fleet {
    /// A governor when the plan asks for the coordinated policy on an open model.
    pub(crate) fn for_plan(plan: &Plan) -> Option<Self> {
        if plan.backoff.policy != crescendo_plan::Policy::Coordinated {
            return None;
        }
        let Load::Open(open) = &plan.load else {
            return None;
        };
        let config = GovernorConfig::new(open.rate_at(Duration::ZERO).max(open.peak_rate()));
        Some(Self {
            governor: Governor::new(config),
            plan: open.clone(),
            accepted: VecDeque::new(),
        })
    }

    /// A throttle report from `agent`, `now` after the start.
    pub(crate) fn on_throttle(
        &mut self,
        now: Duration,
        agent: &str,
        t: &pb::Throttle,
        shares: &[(String, Share)],
        run_id: &str,
    ) -> Vec<Adjustment> {
        let secs = |v: Option<f64>| v.and_then(|s| Duration::try_from_secs_f64(s).ok());
        let finite = |v: Option<f64>| v.filter(|x| x.is_finite() && *x >= 0.0);
        let report = ThrottleReport {
            agent: agent.to_owned(),
            limit_key: if t.limit_key.is_empty() {
                DEFAULT_KEY.to_owned()
            } else {
                t.limit_key.clone()
            },
            status: u16::try_from(t.status).unwrap_or(429),
            retry_after: secs(t.retry_after_s),
            remaining: finite(t.remaining),
            limit: finite(t.limit),
            reset: secs(t.reset_s),
            at: now,
            agent_rate: finite(Some(t.rate_rps)).unwrap_or(0.0),
        };
        let decision = self.governor.on_throttle(now, report);
        decision
            .map(|d| adjustments(&d, shares, run_id))
            .unwrap_or_default()
    }

    /// Quota headers an agent saw on an ordinary response.
    pub(crate) fn on_quota(
        &mut self,
        now: Duration,
        agent: &str,
        q: &pb::Quota,
        shares: &[(String, Share)],
        run_id: &str,
    ) -> Vec<Adjustment> {
        let reset = q.reset_s.and_then(|s| Duration::try_from_secs_f64(s).ok());
        let (Some(reset), true) = (reset, q.remaining.is_finite() && q.remaining >= 0.0) else {
            return Vec::new();
        };
        let report = QuotaReport {
            agent: agent.to_owned(),
            limit_key: limit_key(&q.limit_key),
            remaining: q.remaining,
            limit: q.limit.filter(|l| l.is_finite() && *l >= 0.0),
            reset,
            at: now,
        };
        let decision = self.governor.on_quota(now, report);
        decision
            .map(|d| adjustments(&d, shares, run_id))
            .unwrap_or_default()
    }

    /// Every [`TICK`]: the plan's current rate and the fleet's accepted rate over the
    /// last second or so (from merged snapshots).
    pub(crate) fn on_tick(
        &mut self,
        now: Duration,
        ok_total: u64,
        shares: &[(String, Share)],
        run_id: &str,
    ) -> Vec<Adjustment> {
        self.accepted.push_back((now, ok_total));
        while self.accepted.len() > 2 && now - self.accepted[1].0 >= Duration::from_secs(1) {
            self.accepted.pop_front();
        }
        let (then, ok_then) = self.accepted[0];
        let span = (now - then).as_secs_f64();
        let accepted = if span > 0.0 {
            ok_total.saturating_sub(ok_then) as f64 / span
        } else {
            0.0
        };
        self.governor.set_plan_rate(now, self.plan.rate_at(now));
        let decision = self.governor.on_tick(now, accepted);
        decision
            .map(|d| adjustments(&d, shares, run_id))
            .unwrap_or_default()
    }

    pub(crate) fn events(&self) -> Vec<GovernorEvent> {
        self.governor.events().to_vec()
    }
}

fn adjustments(
    decision: &FleetDecision,
    shares: &[(String, Share)],
    run_id: &str,
) -> Vec<Adjustment> {
    let weights: Vec<(String, f64)> = shares
        .iter()
        .map(|(a, s)| (a.clone(), s.rate_fraction))
        .collect();
    agent_shares(decision, &weights, &mut rand::rng())
        .into_iter()
        .map(|a| {
            let adjust = pb::Adjust {
                run_id: run_id.to_owned(),
                max_rate_rps: Some(a.max_rate),
                pause_ms: u64::try_from(a.pause.as_millis()).unwrap_or(u64::MAX),
                reason: decision.reason.clone(),
            };
            (a.agent, adjust)
        })
        .collect()
}
