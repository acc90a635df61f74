//! The coordinated policy on the controller: the fleet governor fed with the agents'
//! throttle reports and the merged accepted rate, and its decisions sent to every
//! agent as `Adjust` messages (rate shares and staggered pauses).

use std::time::Duration;

use crescendo_backoff::governor::{
    FleetDecision, Governor, GovernorConfig, GovernorEvent, ThrottleReport, agent_shares,
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
    last_ok: u64,
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
            last_ok: 0,
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

    /// Once a second: the plan's current rate and the fleet's accepted rate.
    pub(crate) fn on_tick(
        &mut self,
        now: Duration,
        ok_total: u64,
        shares: &[(String, Share)],
        run_id: &str,
    ) -> Vec<Adjustment> {
        let accepted = ok_total.saturating_sub(self.last_ok) as f64;
        self.last_ok = ok_total;
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
