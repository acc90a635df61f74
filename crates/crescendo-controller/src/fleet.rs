//! The coordinated policy on the controller: the fleet governor fed with the agents'
//! throttle reports and the merged accepted rate, and its decisions sent as `Adjust`
//! messages (rate shares and staggered pauses) to the agents on the decision's limit
//! key: agents name the credential their reports are about, so one client's 429s never
//! slow the agents of another.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crescendo_backoff::governor::{
    FleetDecision, Governor, GovernorConfig, GovernorEvent, QuotaReport, ThrottleReport,
    agent_shares,
};
use crescendo_plan::{Load, Plan, Share};

use crate::messages::{Adjust, Opened, Quota, Throttle};

/// The limit key used when agents do not name the credential (one shared key).
const DEFAULT_KEY: &str = "default";

/// Governor state of one run.
#[derive(Debug)]
pub(crate) struct Fleet {
    governor: Governor,
    ceiling: Ceiling,
    /// Merged `ok` totals at recent ticks, to measure the accepted rate over ~1 s.
    accepted: VecDeque<(Duration, u64)>,
    /// The limit key each agent last reported; agents not heard from yet have none.
    agent_keys: BTreeMap<String, String>,
    /// Wall-clock time the fleet spent paused.
    pauses: PauseClock,
}

/// The fleet's pause time as wall-clock time: the union of the spans during which the
/// governor held a pause on some limit key (not the agents' pauses summed).
#[derive(Debug, Default)]
pub(crate) struct PauseClock {
    /// Finished spans, summed.
    closed: Duration,
    /// The pause in force: its start and its announced end.
    open: Option<(Duration, Duration)>,
}

impl PauseClock {
    /// The pause in force at `now` ends at `until` (`None`: no pause in force).
    pub(crate) fn observe(&mut self, now: Duration, until: Option<Duration>) {
        match (self.open, until) {
            (Some((from, end)), Some(until)) if now <= end => self.open = Some((from, until)),
            (Some((from, end)), _) => {
                self.closed += end.min(now).saturating_sub(from);
                self.open = until.map(|u| (now, u));
            }
            (None, until) => self.open = until.map(|u| (now, u)),
        }
    }

    /// Time paused up to `now`.
    pub(crate) fn total(&self, now: Duration) -> Duration {
        self.closed
            + self.open.map_or(Duration::ZERO, |(from, end)| {
                end.min(now).saturating_sub(from)
            })
    }
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

/// The request rate the governor may let the fleet recover to: the plan's own rate.
/// The governor counts requests, so an iteration of several steps counts as many.
#[derive(Debug)]
enum Ceiling {
    /// Open model: the plan's arrival rate times the steps per iteration.
    Open {
        load: crescendo_plan::OpenLoad,
        steps: f64,
    },
    /// Closed model: no planned rate, so an upper bound of what the virtual users can
    /// send (each at most one iteration per think time, or per 10 ms without one); their
    /// real rate is lower and the governor's cap bites only when the API pushes back.
    Closed(f64),
}

/// A closed-model VU without think time is bounded as if it thought this long.
const MIN_THINK: Duration = Duration::from_millis(10);

impl Ceiling {
    fn of(plan: &Plan) -> Self {
        let steps = plan.scenario.steps.len().max(1) as f64;
        match &plan.load {
            Load::Open(load) => Ceiling::Open {
                load: load.clone(),
                steps,
            },
            Load::Closed(closed) => {
                let per_vu = 1.0 / closed.think_time.max(MIN_THINK).as_secs_f64();
                Ceiling::Closed(f64::from(closed.peak_vus().max(1)) * per_vu * steps)
            }
        }
    }

    /// The highest rate over the run, for the governor's recovery speed.
    fn peak(&self) -> f64 {
        match self {
            Ceiling::Open { load, steps } => {
                load.rate_at(Duration::ZERO).max(load.peak_rate()) * steps
            }
            Ceiling::Closed(rate) => *rate,
        }
    }

    fn rate_at(&self, now: Duration) -> f64 {
        match self {
            Ceiling::Open { load, steps } => load.rate_at(now) * steps,
            Ceiling::Closed(rate) => *rate,
        }
    }
}

/// One `Adjust` to send.
pub(crate) type Adjustment = (String, Adjust);

impl Fleet {
    /// A governor when the plan asks for the coordinated policy.
    pub(crate) fn for_plan(plan: &Plan) -> Option<Self> {
        if plan.backoff.policy != crescendo_plan::Policy::Coordinated {
            return None;
        }
        let ceiling = Ceiling::of(plan);
        let config = GovernorConfig::new(ceiling.peak());
        Some(Self {
            governor: Governor::new(config),
            ceiling,
            accepted: VecDeque::new(),
            agent_keys: BTreeMap::new(),
            pauses: PauseClock::default(),
        })
    }

    /// A throttle report from `agent`, `now` after the start.
    pub(crate) fn on_throttle(
        &mut self,
        now: Duration,
        agent: &str,
        t: &Throttle,
        shares: &[(String, Share)],
        run_id: &str,
    ) -> Vec<Adjustment> {
        let report = ThrottleReport {
            agent: agent.to_owned(),
            limit_key: limit_key(&t.limit_key),
            status: t.status,
            retry_after: t.retry_after,
            remaining: t.remaining,
            limit: t.limit,
            reset: t.reset,
            at: now,
            agent_rate: t.rate_rps,
        };
        let mut out = self.place(now, agent, &report.limit_key, shares, run_id);
        let decision = self.governor.on_throttle(now, report);
        out.extend(self.send(decision, shares, run_id));
        self.observe_pause(now);
        out
    }

    /// Quota headers an agent saw on an ordinary response.
    pub(crate) fn on_quota(
        &mut self,
        now: Duration,
        agent: &str,
        q: &Quota,
        shares: &[(String, Share)],
        run_id: &str,
    ) -> Vec<Adjustment> {
        let Some(reset) = q.reset else {
            return Vec::new();
        };
        let report = QuotaReport {
            agent: agent.to_owned(),
            limit_key: limit_key(&q.limit_key),
            remaining: q.remaining,
            limit: q.limit,
            reset,
            at: now,
        };
        let mut out = self.place(now, agent, &report.limit_key, shares, run_id);
        tracing::trace!(
            at = now.as_secs_f64(),
            agent,
            remaining = q.remaining,
            reset = reset.as_secs_f64(),
            "quota report"
        );
        let decision = self.governor.on_quota(now, report);
        out.extend(self.send(decision, shares, run_id));
        self.observe_pause(now);
        out
    }

    /// The scout of a fleet pause got through: the pause may end for every agent.
    pub(crate) fn on_opened(
        &mut self,
        now: Duration,
        agent: &str,
        o: &Opened,
        shares: &[(String, Share)],
        run_id: &str,
    ) -> Vec<Adjustment> {
        let decision = self
            .governor
            .on_opened(now, &limit_key(&o.limit_key), agent);
        let out = self.send(decision, shares, run_id);
        self.observe_pause(now);
        out
    }

    /// Follows the pause in force (on any limit key) for [`PauseClock`].
    fn observe_pause(&mut self, now: Duration) {
        let until = std::iter::once(DEFAULT_KEY)
            .chain(self.agent_keys.values().map(String::as_str))
            .filter_map(|key| self.governor.paused_until(key, now))
            .max();
        self.pauses.observe(now, until);
    }

    /// Wall-clock time the fleet spent paused up to `now`.
    pub(crate) fn paused(&self, now: Duration) -> Duration {
        self.pauses.total(now)
    }

    /// The next run time the governor wants a tick at, besides every [`TICK`].
    pub(crate) fn next_wake(&self, now: Duration) -> Option<Duration> {
        self.governor.next_wake(now)
    }

    /// Every [`TICK`] (and at [`next_wake`](Self::next_wake)): the plan's current rate
    /// and the fleet's accepted rate over the last second or so (from merged snapshots).
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
        self.governor.set_plan_rate(now, self.ceiling.rate_at(now));
        let decision = self.governor.on_tick(now, accepted);
        let out = self.send(decision, shares, run_id);
        self.observe_pause(now);
        out
    }

    /// Records the key an agent reported. An agent seen on a key for the first time gets
    /// that key's current rate and pause at once, unless it already followed the key's
    /// decisions (they go to unplaced agents while only one key is known).
    fn place(
        &mut self,
        now: Duration,
        agent: &str,
        key: &str,
        shares: &[(String, Share)],
        run_id: &str,
    ) -> Vec<Adjustment> {
        // Not heard from while every agent heard from was on this key: it already got
        // this key's decisions (the usual single-key fleet), nothing to catch up on.
        let covered =
            !self.agent_keys.contains_key(agent) && self.agent_keys.values().all(|k| k == key);
        let previous = self.agent_keys.insert(agent.to_owned(), key.to_owned());
        if covered || previous.as_deref() == Some(key) {
            return Vec::new();
        }
        let current = self.governor.current_decision(
            now,
            key,
            format!("agent {agent} reports limit key {key}: joining its pacing"),
        );
        let mut adjusts = adjustments(&current, &self.on_key(key, shares), run_id);
        adjusts.retain(|(a, _)| a == agent);
        adjusts
    }

    /// The `Adjust` messages of a decision, for the agents on its key.
    fn send(
        &self,
        decision: Option<FleetDecision>,
        shares: &[(String, Share)],
        run_id: &str,
    ) -> Vec<Adjustment> {
        decision
            .map(|d| {
                tracing::trace!(
                    at = d.at.as_secs_f64(),
                    rate = d.rate,
                    pause_until = d.pause_until.map(|p| p.as_secs_f64()),
                    reason = %d.reason,
                    "fleet decision"
                );
                adjustments(&d, &self.on_key(&d.limit_key, shares), run_id)
            })
            .unwrap_or_default()
    }

    /// The agents a decision on `key` is for: those that reported `key`, and those not
    /// heard from yet while every agent heard from is on `key` too (one shared key, the
    /// usual case). With several keys an unplaced agent waits for its own first report
    /// (quota reports come every 100 ms) rather than take another key's cut.
    fn on_key(&self, key: &str, shares: &[(String, Share)]) -> Vec<(String, Share)> {
        let single_key = self.agent_keys.values().all(|k| k == key);
        shares
            .iter()
            .filter(|(agent, _)| self.agent_keys.get(agent).map_or(single_key, |k| k == key))
            .cloned()
            .collect()
    }

    /// The fleet's allowed rate and whether it is paused at `now`, on the limit key of
    /// the latest decision (for the live display and `/metrics`).
    pub(crate) fn live(&self, now: Duration) -> (f64, bool) {
        let key = self
            .governor
            .events()
            .last()
            .map_or(DEFAULT_KEY, |e| e.limit_key.as_str());
        (
            self.governor.allowed_rate(key),
            self.governor.paused_until(key, now).is_some(),
        )
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
            let adjust = Adjust {
                run_id: run_id.to_owned(),
                max_rate_rps: Some(a.max_rate),
                pause: a.pause,
                reason: decision.reason.clone(),
                replace_pause: a.replace_pause,
                scout: a.scout_for,
            };
            (a.agent, adjust)
        })
        .collect()
}

#[cfg(test)]
mod tests;
