//! What one agent may tell its run: every message is checked against what that agent
//! was told (the plan's steps, its share, the run's length) before it changes anything,
//! so nothing one agent sends can change another agent's figures, forge totals, or grow
//! the controller's memory.
//!
//! A snapshot is refused whole when a step name is not the plan's, its counters
//! contradict each other (outcomes must add up to `requests`, `ok` equals the latency
//! histograms' counts, statuses at most `requests`, the failure table's counts at most
//! each error outcome's counter, send lags at most the scenario's requests), it counts
//! more requests than the
//! agent's share could send in its interval (with generous slack), its interval lies
//! outside the run, or its sequence number is far ahead of what was merged. Throttle
//! and quota reports are rate-limited per agent. A refusal is counted by reason
//! (`rejected_messages` in `summary.json`) and logged; an agent that keeps sending them
//! is disconnected.
//!
//! Memory per run is bounded by design: merged steps are the plan's (plus the
//! auxiliary `auth.token`), intervals are seconds within the run's bounded length,
//! merged sequence numbers are kept as a contiguous prefix plus at most
//! [`SEQ_WINDOW`] out of order (`aggregate::SeqSet`).

use std::collections::BTreeSet;
use std::time::Duration;

use crescendo_metrics::Outcome;
use crescendo_plan::{Load, Plan, Share};
use tokio::time::Instant;

use crate::messages::Snapshot;

/// Sequence numbers may run this far ahead of the last contiguous one merged (an agent
/// keeps unacknowledged snapshots, about one a second, while its controller is away).
pub(crate) const SEQ_WINDOW: u64 = 1_000;

/// Measurements that are not scenario steps and may appear in snapshots.
const AUXILIARY_STEPS: [&str; 1] = ["auth.token"];

/// Most invalid messages an agent may send before it is disconnected.
pub(crate) const MAX_REJECTIONS: u64 = 20;

/// Throttle and quota reports: a burst of this many, refilled at this rate per second.
const REPORT_BURST: f64 = 400.0;
const REPORT_RATE: f64 = 200.0;

/// Why a message was refused; the name is the key in `rejected_messages`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Rejection {
    /// Histogram bytes or a status that could not be decoded (at the gRPC edge).
    Undecodable,
    UnknownStep,
    Inconsistent,
    TooManyRequests,
    OutsideRun,
    SeqOutOfWindow,
    RateLimited,
}

impl Rejection {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Rejection::Undecodable => "undecodable",
            Rejection::UnknownStep => "unknown-step",
            Rejection::Inconsistent => "inconsistent-counters",
            Rejection::TooManyRequests => "more-than-the-share",
            Rejection::OutsideRun => "outside-the-run",
            Rejection::SeqOutOfWindow => "seq-out-of-window",
            Rejection::RateLimited => "rate-limited",
        }
    }
}

/// What one member may report, derived from the plan and its share.
#[derive(Debug)]
pub(crate) struct Guard {
    steps: BTreeSet<String>,
    /// Most attempts a second this agent's share can make (generous).
    max_rps: f64,
    /// Latest interval end (agent run clock, ms) a snapshot may have.
    max_end_ms: u64,
    /// Report budget (token bucket).
    reports: f64,
    refilled: Instant,
}

impl Guard {
    pub(crate) fn new(plan: &Plan, share: &Share, drain: Duration) -> Self {
        let attempts = plan.scenario.steps.len().max(1) as f64
            * f64::from(plan.backoff.max_retries.saturating_add(1));
        let iterations = match &plan.load {
            Load::Open(open) => open.peak_rate().max(open.start_rate) * share.rate_fraction,
            Load::Closed(closed) => {
                // A virtual user without think time is bounded by how fast one request
                // can possibly go (20 µs): the bound only stops forgeries.
                let think = closed.think_time.max(Duration::from_micros(20));
                f64::from(share.vus.max(closed.peak_vus())) / think.as_secs_f64()
            }
        };
        let span = plan.duration() + drain + Duration::from_secs(120);
        Self {
            steps: plan.scenario.steps.iter().map(|s| s.name.clone()).collect(),
            // Twice the planned pace plus slack: catching up after a stall is allowed.
            max_rps: 2.0 * iterations * attempts + 1_000.0,
            max_end_ms: u64::try_from(span.as_millis()).unwrap_or(u64::MAX),
            reports: REPORT_BURST,
            refilled: Instant::now(),
        }
    }

    /// Check a snapshot before it is merged; `merged_upto` is the last contiguous
    /// sequence number merged for this agent.
    pub(crate) fn check(&self, s: &Snapshot, merged_upto: u64) -> Result<(), Rejection> {
        if s.seq == 0 || s.seq > merged_upto.saturating_add(SEQ_WINDOW) {
            return Err(Rejection::SeqOutOfWindow);
        }
        if s.start_ms > s.end_ms || s.end_ms > self.max_end_ms {
            return Err(Rejection::OutsideRun);
        }
        let mut names = BTreeSet::new();
        let interval_s = ((s.end_ms - s.start_ms) as f64 / 1000.0).max(1.0);
        let most = self.max_rps * interval_s;
        for step in &s.steps {
            let known = if step.auxiliary {
                AUXILIARY_STEPS.contains(&step.step.as_str())
            } else {
                self.steps.contains(&step.step)
            };
            if !known || !names.insert(step.step.as_str()) {
                return Err(Rejection::UnknownStep);
            }
            let st = &step.stats;
            let c = &st.counters;
            let outcomes =
                c.ok.checked_add(c.throttled)
                    .and_then(|n| n.checked_add(c.errors()));
            let statuses = st
                .statuses
                .values()
                .try_fold(0u64, |sum, n| sum.checked_add(*n));
            let consistent = outcomes == Some(c.requests)
                && c.retries <= c.requests
                && statuses.is_some_and(|n| n <= c.requests)
                && st.latency.len() == c.ok
                && st.service_time.len() == c.ok
                && Outcome::ERRORS
                    .iter()
                    .all(|&o| st.failures.count_of(o) <= c.of(o));
            if !consistent {
                return Err(Rejection::Inconsistent);
            }
            if c.requests as f64 > most || c.dropped as f64 > most {
                return Err(Rejection::TooManyRequests);
            }
        }
        if s.offered as f64 > most {
            return Err(Rejection::TooManyRequests);
        }
        let requests = s
            .steps
            .iter()
            .filter(|step| !step.auxiliary)
            .fold(0u64, |sum, step| {
                sum.saturating_add(step.stats.counters.requests)
            });
        if s.send_lag.histogram().len() > requests {
            return Err(Rejection::Inconsistent);
        }
        Ok(())
    }

    /// Whether one more throttle or quota report fits this agent's budget.
    pub(crate) fn take_report(&mut self) -> bool {
        let now = Instant::now();
        let dt = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.reports = (self.reports + dt * REPORT_RATE).min(REPORT_BURST);
        if self.reports >= 1.0 {
            self.reports -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crescendo_metrics::{Counters, FailureDetail, FailureKind, StepSnapshot, StepStats};

    const PLAN: &str = r#"
name = "guard"
[target]
base_url = "http://127.0.0.1:9"
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/x"
[load]
stages = [ { duration = "60s", target = 100 } ]
[backoff]
max_retries = 0
"#;

    fn guard() -> Guard {
        let plan = crescendo_plan::parse(PLAN, "guard.toml").unwrap();
        let share = crescendo_plan::split(&plan, 2).unwrap()[0];
        Guard::new(&plan, &share, Duration::from_secs(30))
    }

    fn snapshot(step: &str, ok: u64) -> Snapshot {
        let mut stats = StepStats::default();
        for _ in 0..ok {
            stats.latency.record(1000).unwrap();
            stats.service_time.record(900).unwrap();
        }
        stats.counters = Counters {
            requests: ok,
            ok,
            ..Counters::default()
        };
        stats.statuses.insert(200, ok);
        Snapshot {
            seq: 1,
            start_ms: 0,
            end_ms: 1_000,
            steps: vec![StepSnapshot {
                step: step.into(),
                auxiliary: false,
                stats,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_plausible_snapshot_passes() {
        assert_eq!(guard().check(&snapshot("update", 50), 0), Ok(()));
    }

    #[test]
    fn forged_snapshots_are_refused_by_reason() {
        let g = guard();
        assert_eq!(
            g.check(&snapshot("nope", 5), 0),
            Err(Rejection::UnknownStep)
        );
        let mut s = snapshot("update", 5);
        s.steps[0].stats.counters.ok = 1_000_000_000_000;
        assert_eq!(g.check(&s, 0), Err(Rejection::Inconsistent));
        let mut s = snapshot("update", 5);
        s.steps[0].stats.counters.requests = 6;
        assert_eq!(g.check(&s, 0), Err(Rejection::Inconsistent));
        // 50 a second is this agent's share; a million is not.
        let mut s = snapshot("update", 0);
        s.steps[0].stats.counters.throttled = 1_000_000;
        s.steps[0].stats.counters.requests = 1_000_000;
        assert_eq!(g.check(&s, 0), Err(Rejection::TooManyRequests));
        let mut s = snapshot("update", 1);
        s.seq = 1_000_000_000_000_000_000;
        assert_eq!(g.check(&s, 0), Err(Rejection::SeqOutOfWindow));
        let mut s = snapshot("update", 1);
        (s.start_ms, s.end_ms) = (1_000_000_000_000_000, 1_000_000_000_001_000);
        assert_eq!(g.check(&s, 0), Err(Rejection::OutsideRun));
        let mut s = snapshot("update", 1);
        s.steps.push(s.steps[0].clone());
        assert_eq!(g.check(&s, 0), Err(Rejection::UnknownStep));
        // One send lag per request sent, never more.
        let mut s = snapshot("update", 2);
        for _ in 0..3 {
            s.send_lag.record(Duration::from_micros(40));
        }
        assert_eq!(g.check(&s, 0), Err(Rejection::Inconsistent));
    }

    #[test]
    fn failures_may_not_outnumber_their_outcome() {
        let g = guard();
        let mut s = snapshot("update", 0);
        let c = &mut s.steps[0].stats.counters;
        (c.requests, c.connect_errors) = (5, 5);
        let refused = |count| {
            (
                FailureKind::new(Outcome::ConnectError, None, "connection refused"),
                FailureDetail {
                    count,
                    ..FailureDetail::default()
                },
            )
        };
        let (kind, detail) = refused(5);
        s.steps[0].stats.failures.insert(kind, detail);
        assert_eq!(g.check(&s, 0), Ok(()));
        let (kind, detail) = refused(1);
        s.steps[0].stats.failures.insert(kind, detail);
        assert_eq!(g.check(&s, 0), Err(Rejection::Inconsistent));
        // Counted under another outcome than the counter's: refused too.
        let mut s = snapshot("update", 0);
        let c = &mut s.steps[0].stats.counters;
        (c.requests, c.timeouts) = (5, 5);
        let (kind, detail) = refused(1);
        s.steps[0].stats.failures.insert(kind, detail);
        assert_eq!(g.check(&s, 0), Err(Rejection::Inconsistent));
    }

    #[test]
    fn reports_are_rate_limited() {
        let mut g = guard();
        let taken = (0..1_000).filter(|_| g.take_report()).count();
        assert!((400..=410).contains(&taken), "{taken}");
    }
}
