//! `summary.json`: the run's result in one document. The keys named in DESIGN.md are
//! a contract (pinned by a schema test); more may be added.

use std::collections::BTreeMap;
use std::time::Duration;

use crescendo_metrics::{Counters, LatencySummary, SendLagSummary, StepStats};
use serde::{Deserialize, Serialize};

use crate::aggregate::sum;
use crate::run::RunOutcome;
use crate::thresholds::{Aborted, ThresholdResult, evaluate, mark_aborted};

use super::errors::{ErrorKindSummary, by_kind};
use super::verdict::{Verdict, judge};

/// The run's result. Read back (`report`, `compare`) with every field missing from an
/// older `summary.json` taken as its default.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    pub run_id: String,
    pub plan_name: String,
    /// Seconds since the Unix epoch when the load started.
    pub started_at_unix_s: f64,
    /// From the start barrier to the end of load.
    pub duration_s: f64,
    pub agents: Vec<AgentSummary>,
    /// Agents counted as lost: when (seconds since the start) and why. Their figures up
    /// to their last merged snapshot are in the totals.
    pub lost_agents: Vec<LostAgent>,
    pub totals: Totals,
    /// Intended-time (coordinated-omission corrected) latency of successful requests.
    #[serde(with = "LatencyDef")]
    pub latency_ms: LatencySummary,
    /// Service time (from the actual send) of successful requests.
    #[serde(with = "LatencyDef")]
    pub service_time_ms: LatencySummary,
    /// The schedule's own error: each request's lag from its intended instant to its
    /// hand-over to the HTTP client, in microseconds (zeros in older summaries).
    pub send_lag_us: SendLagSummary,
    /// Attempts per second.
    pub throughput_rps: f64,
    /// Successful requests per second.
    pub goodput_rps: f64,
    /// Iterations per second the schedule intended (the offered load).
    pub offered_rps: f64,
    /// Iterations per second the plan asks for over the run (open model only): the
    /// demand, before the fleet governor's pauses and caps (`offered` is after them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_rps: Option<f64>,
    pub throttled_ratio: f64,
    pub statuses: BTreeMap<u16, u64>,
    /// The run's distinct failures, the most frequent first: step, outcome, status,
    /// normalised message, count, first seen, masked sample (see `report::errors`).
    /// Empty in summaries written before it existed.
    pub errors_by_kind: Vec<ErrorKindSummary>,
    pub steps: BTreeMap<String, StepSummary>,
    /// Requests that are not scenario steps, kept out of every total: `auth.token`
    /// (OAuth token fetches).
    pub auxiliary: BTreeMap<String, StepSummary>,
    pub thresholds: Vec<ThresholdResult>,
    /// `outcome` is `passed`: the run went as planned and every threshold held.
    pub passed: bool,
    /// How the run went: `passed`, `failed` (thresholds), `aborted` (abort_on_fail),
    /// `cancelled`, `interrupted`, `degraded` (agents lost or failed) or `error`.
    pub outcome: Verdict,
    /// Everything that counts against the run (stops, lost agents, agent errors,
    /// failed thresholds); empty when it passed.
    pub outcome_reasons: Vec<String>,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
    /// Set when an `abort_on_fail` threshold stopped the run: why, and when (seconds
    /// since the start).
    pub aborted: Option<Aborted>,
    pub agent_errors: Vec<String>,
    pub throttle_reports: u64,
    /// Snapshots refused (undecodable, unknown steps, inconsistent or implausible
    /// counters, outside the run): acknowledged, never merged.
    pub rejected_snapshots: u64,
    /// Every refused message by reason, rate-limited reports included.
    pub rejected_messages: BTreeMap<String, u64>,
    /// One entry per second of the run.
    pub timeline: Vec<IntervalSummary>,
    /// The fleet governor's decisions (coordinated policy): time, kind, old and new rate, reason.
    pub governor_events: Vec<GovernorEventSummary>,
    /// The API's quota as last reported: remaining, limit, seconds to reset, and when
    /// (seconds since the start); absent when the API sent no quota headers.
    pub last_quota: Option<QuotaSummary>,
    /// The longest reset the API reported in any snapshot: about its window length.
    pub longest_reset_s: Option<f64>,
    /// Spread of the agents' load starts in milliseconds, measured on the controller's
    /// clock (first snapshot arrival minus the time it covers); `None` with one agent.
    pub start_skew_ms: Option<f64>,
    /// The merged intended-time latency distribution: (percentile, ms) from 0 to
    /// 99.999 %, evenly spaced on a log(1 / (1 − p)) axis, for the report's plot.
    pub latency_distribution: Vec<(f64, f64)>,
    /// The plan as run, with secret values (authorization, tokens, keys) masked.
    pub plan_text: String,
}

/// An agent the run lost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "LostAgentRead")]
pub struct LostAgent {
    pub id: String,
    /// Seconds since the start when it was counted as lost.
    pub at_s: f64,
    /// Seconds since the start when its connection ended (before `at_s` by the
    /// heartbeat timeout at most): `at_s - detached_at_s` is the controller's reaction.
    pub detached_at_s: Option<f64>,
    pub reason: String,
}

/// `lost_agents` entries as written now, or as bare ids by older versions.
#[derive(Deserialize)]
#[serde(untagged)]
enum LostAgentRead {
    Id(String),
    Full {
        id: String,
        #[serde(default)]
        at_s: f64,
        #[serde(default)]
        detached_at_s: Option<f64>,
        #[serde(default)]
        reason: String,
    },
}

impl From<LostAgentRead> for LostAgent {
    fn from(read: LostAgentRead) -> Self {
        match read {
            LostAgentRead::Id(id) => LostAgent {
                id,
                ..LostAgent::default()
            },
            LostAgentRead::Full {
                id,
                at_s,
                detached_at_s,
                reason,
            } => LostAgent {
                id,
                at_s,
                detached_at_s,
                reason,
            },
        }
    }
}

/// `crescendo_metrics::LatencySummary` is `Serialize` only; this mirror lets a
/// summary be read back (`crescendo-controller report`, `compare`) with the same keys.
#[derive(Serialize, Deserialize)]
#[serde(remote = "LatencySummary")]
struct LatencyDef {
    #[serde(default)]
    count: u64,
    #[serde(default)]
    p50: f64,
    #[serde(default)]
    p90: f64,
    #[serde(default)]
    p95: f64,
    #[serde(default)]
    p99: f64,
    #[serde(default)]
    p999: f64,
    #[serde(default)]
    max: f64,
    #[serde(default)]
    mean: f64,
}

/// One of the governor's decisions as `summary.json` holds it: the same keys as
/// `crescendo_backoff::governor::GovernorEvent`, which is `Serialize` only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GovernorEventSummary {
    /// Seconds since the start.
    pub at: f64,
    /// `cut`, `pause`, `resume` (a scout got through), `recover` or `quota-pace`.
    pub kind: String,
    pub limit_key: String,
    pub old_rate: f64,
    pub new_rate: f64,
    pub reason: String,
    /// Pacing adjustments merged into this event (1 for every other kind).
    pub adjustments: u32,
}

impl From<&crescendo_backoff::governor::GovernorEvent> for GovernorEventSummary {
    fn from(e: &crescendo_backoff::governor::GovernorEvent) -> Self {
        let kind = serde_json::to_value(e.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        Self {
            at: e.at.as_secs_f64(),
            kind,
            limit_key: e.limit_key.clone(),
            old_rate: e.old_rate,
            new_rate: e.new_rate,
            reason: e.reason.clone(),
            adjustments: e.adjustments,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct QuotaSummary {
    pub remaining: f64,
    pub limit: Option<f64>,
    pub reset_s: Option<f64>,
    pub at_s: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentSummary {
    pub id: String,
    pub host: String,
    pub requests: u64,
    pub ok: u64,
    pub throttled: u64,
    pub errors: u64,
    pub lost: bool,
    /// This agent's fraction of the plan's rate, and its VUs and in-flight cap.
    pub rate_fraction: f64,
    pub vus: u32,
    pub max_in_flight: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Totals {
    pub requests: u64,
    pub ok: u64,
    pub throttled: u64,
    pub errors: u64,
    pub retries: u64,
    pub dropped: u64,
    /// Iterations due before the plan's end but never sent (an agent fell behind; no
    /// request goes out after the plan's end).
    pub missed: u64,
    pub offered: u64,
    /// Iterations the plan asked for over the run (open model only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned: Option<u64>,
    /// Planned iterations never offered: held back by the fleet's backoff (pauses,
    /// rate caps) or a ceiling (open model only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred: Option<u64>,
    pub client_errors: u64,
    pub server_errors: u64,
    pub timeouts: u64,
    pub connect_errors: u64,
    /// Expected statuses whose body failed a check (counted among `errors`).
    pub check_failed: u64,
    /// Agent-milliseconds paused by backoff: every agent's pauses summed.
    pub paused_ms: u64,
    /// Wall-clock milliseconds the fleet governor held the fleet paused (coordinated
    /// policy only; the run-wide totals only): the fleet's pause time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet_paused_ms: Option<u64>,
    /// 401s answered by refreshing the token and resending once (not requests).
    pub auth_refreshes: u64,
}

impl Totals {
    fn of(c: &Counters, offered: u64) -> Self {
        Self {
            requests: c.requests,
            ok: c.ok,
            throttled: c.throttled,
            errors: c.errors(),
            retries: c.retries,
            dropped: c.dropped,
            missed: c.missed,
            offered,
            planned: None,
            deferred: None,
            client_errors: c.client_errors,
            server_errors: c.server_errors,
            timeouts: c.timeouts,
            connect_errors: c.connect_errors,
            check_failed: c.check_failed,
            paused_ms: c.paused_ms,
            fleet_paused_ms: None,
            auth_refreshes: c.auth_refreshes,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StepSummary {
    pub totals: Totals,
    #[serde(with = "LatencyDef")]
    pub latency_ms: LatencySummary,
    #[serde(with = "LatencyDef")]
    pub service_time_ms: LatencySummary,
    pub statuses: BTreeMap<u16, u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct IntervalSummary {
    /// Seconds since the start.
    pub t: u64,
    pub offered: u64,
    /// Iterations the plan asked for in this second (open model only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned: Option<f64>,
    pub requests: u64,
    pub ok: u64,
    pub throttled: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

fn step_summary(stats: &StepStats) -> StepSummary {
    StepSummary {
        totals: Totals::of(&stats.counters, 0),
        latency_ms: LatencySummary::of(&stats.latency),
        service_time_ms: LatencySummary::of(&stats.service_time),
        statuses: stats.statuses.clone(),
    }
}

pub(crate) fn build(outcome: &RunOutcome) -> Summary {
    let agg = &outcome.aggregate;
    let total = sum(agg.steps.values());
    let c = total.counters;
    let duration_s = outcome.load_duration.as_secs_f64();
    let per_s = |v: u64| {
        if duration_s > 0.0 {
            v as f64 / duration_s
        } else {
            0.0
        }
    };
    let open = match &outcome.plan.load {
        crescendo_plan::Load::Open(load) => Some(load),
        crescendo_plan::Load::Closed(_) => None,
    };
    let planned = open.map(|load| load.iterations_until(outcome.load_duration).round() as u64);
    let mut totals = Totals::of(&c, agg.offered);
    totals.planned = planned;
    totals.deferred = planned.map(|p| p.saturating_sub(agg.offered));
    totals.fleet_paused_ms = outcome
        .fleet_paused
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut thresholds = evaluate(&outcome.plan.thresholds, &total, &agg.steps, duration_s);
    mark_aborted(&mut thresholds, outcome.aborted.as_ref());
    let agents = outcome
        .members
        .iter()
        .map(|(id, m)| {
            let c = agg.agents.get(id).copied().unwrap_or_default();
            AgentSummary {
                id: id.clone(),
                host: m.host.clone(),
                requests: c.requests,
                ok: c.ok,
                throttled: c.throttled,
                errors: c.errors(),
                lost: m.lost,
                rate_fraction: m.share.rate_fraction,
                vus: m.share.vus,
                max_in_flight: m.share.max_in_flight,
            }
        })
        .collect();
    let mut timeline = agg.timeline.rows();
    if let Some(load) = open {
        let at = |s: u64| load.iterations_until(Duration::from_secs(s));
        for row in &mut timeline {
            row.planned = Some(at(row.t + 1) - at(row.t));
        }
    }
    let (verdict, outcome_reasons) = judge(outcome, &thresholds, c.requests);
    let started_at_unix_s = outcome
        .started_at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    Summary {
        run_id: outcome.run_id.clone(),
        plan_name: outcome.plan.name.clone(),
        started_at_unix_s,
        duration_s,
        passed: verdict == Verdict::Passed,
        outcome: verdict,
        outcome_reasons,
        agents,
        lost_agents: outcome
            .members
            .iter()
            .filter_map(|(id, m)| {
                let (at, reason) = m.lost_at.clone()?;
                Some(LostAgent {
                    id: id.clone(),
                    at_s: at.as_secs_f64(),
                    detached_at_s: m.detached_at.map(|d| d.as_secs_f64()),
                    reason,
                })
            })
            .collect(),
        totals,
        latency_ms: LatencySummary::of(&total.latency),
        service_time_ms: LatencySummary::of(&total.service_time),
        send_lag_us: agg.send_lag.summary(),
        throughput_rps: per_s(c.requests),
        goodput_rps: per_s(c.ok),
        offered_rps: per_s(agg.offered),
        planned_rps: planned.map(per_s),
        throttled_ratio: if c.requests == 0 {
            0.0
        } else {
            c.throttled as f64 / c.requests as f64
        },
        statuses: total.statuses.clone(),
        errors_by_kind: by_kind(&agg.steps, started_at_unix_s),
        steps: agg
            .steps
            .iter()
            .map(|(k, v)| (k.clone(), step_summary(v)))
            .collect(),
        auxiliary: agg
            .auxiliary
            .iter()
            .map(|(k, v)| (k.clone(), step_summary(v)))
            .collect(),
        thresholds,
        stopped: outcome.stopped.clone(),
        aborted: outcome.aborted.clone(),
        agent_errors: outcome.agent_errors.clone(),
        throttle_reports: outcome.throttle_reports,
        rejected_snapshots: agg
            .rejected
            .iter()
            .filter(|(reason, _)| **reason != "rate-limited")
            .map(|(_, n)| n)
            .sum(),
        rejected_messages: agg
            .rejected
            .iter()
            .map(|(reason, n)| ((*reason).to_owned(), *n))
            .collect(),
        timeline,
        governor_events: outcome.governor_events.iter().map(Into::into).collect(),
        longest_reset_s: agg.longest_reset_s,
        start_skew_ms: outcome.start_skew.map(|d| d.as_secs_f64() * 1000.0),
        latency_distribution: super::distribution::of(&total.latency),
        plan_text: super::plan_text::mask_secrets(&outcome.plan_text),
        last_quota: agg.last_quota.as_ref().map(|q| QuotaSummary {
            remaining: q.remaining,
            limit: q.limit,
            reset_s: q.reset.map(|r| r.as_secs_f64()),
            at_s: q.at_ms as f64 / 1000.0,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_agents_read_back_from_old_and_new_summaries() {
        let old: Summary = serde_json::from_str(r#"{"lost_agents": ["agent-2"]}"#).unwrap();
        assert_eq!(old.lost_agents[0].id, "agent-2");
        let lost = LostAgent {
            id: "agent-3".into(),
            at_s: 7.5,
            detached_at_s: Some(4.5),
            reason: "connection lost for 15s".into(),
        };
        let json = serde_json::json!({ "lost_agents": [lost] }).to_string();
        let new: Summary = serde_json::from_str(&json).unwrap();
        assert_eq!(new.lost_agents, [lost]);
        assert!(old.errors_by_kind.is_empty() && new.errors_by_kind.is_empty());
    }
}
