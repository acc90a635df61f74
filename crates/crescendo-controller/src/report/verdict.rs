//! The run's verdict: one word for how it went, the reasons behind it, and the exit
//! code. A run is `passed` only when it ran as planned and every threshold held; a
//! fault (cancelled, interrupted, an agent lost or failed) is never hidden behind the
//! thresholds.

use serde::{Deserialize, Serialize};

use crate::exit_code::{
    EXIT_CANCELLED, EXIT_DEGRADED, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_THRESHOLD,
};
use crate::run::{RunOutcome, StopCause};
use crate::thresholds::ThresholdResult;

/// How a run went, most serious first where several apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Ran as planned, every threshold held.
    #[default]
    Passed,
    /// Ran as planned, a threshold failed.
    Failed,
    /// An `abort_on_fail` threshold stopped the run.
    Aborted,
    /// Someone cancelled the run (`cancel`).
    Cancelled,
    /// A signal (SIGINT, SIGTERM) or the controller's shutdown stopped the run.
    Interrupted,
    /// The run went on short: an agent was lost or stopped with an error.
    Degraded,
    /// No request was sent: every agent failed.
    Error,
}

impl Verdict {
    /// The exit code of `run`, `demo` and `probe` for this verdict.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Passed => EXIT_OK,
            Verdict::Error => EXIT_FAILURE,
            Verdict::Cancelled => EXIT_CANCELLED,
            Verdict::Degraded => EXIT_DEGRADED,
            // Both mean a threshold failed; `outcome` tells them apart.
            Verdict::Aborted | Verdict::Failed => EXIT_THRESHOLD,
            Verdict::Interrupted => EXIT_INTERRUPTED,
        }
    }

    /// The verdict as the console and the report show it.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Passed => "PASSED",
            Verdict::Failed => "FAILED",
            Verdict::Aborted => "ABORTED",
            Verdict::Cancelled => "CANCELLED",
            Verdict::Interrupted => "INTERRUPTED",
            Verdict::Degraded => "DEGRADED",
            Verdict::Error => "ERROR",
        }
    }
}

/// Judge a finished run: the verdict and every reason that counts against it.
pub(crate) fn judge(
    outcome: &RunOutcome,
    thresholds: &[ThresholdResult],
    requests: u64,
) -> (Verdict, Vec<String>) {
    let mut reasons = Vec::new();
    let stopped = || outcome.stopped.clone().unwrap_or_default();
    let stop = match outcome.stop_cause {
        Some(StopCause::Cancelled) => Some(Verdict::Cancelled),
        Some(StopCause::Interrupted) => Some(Verdict::Interrupted),
        Some(StopCause::Aborted) => Some(Verdict::Aborted),
        Some(StopCause::AgentFailed | StopCause::AgentLost) | None => None,
    };
    if stop.is_some() || outcome.stop_cause == Some(StopCause::AgentLost) {
        reasons.push(format!("stopped: {}", stopped()));
    }
    for (id, m) in &outcome.members {
        if let Some((at, why)) = &m.lost_at {
            reasons.push(format!(
                "agent {id} lost at {:.1} s: {why}",
                at.as_secs_f64()
            ));
        }
    }
    for error in &outcome.agent_errors {
        reasons.push(format!("agent error: {error}"));
    }
    let early: Vec<(&String, &str)> = outcome
        .members
        .iter()
        .filter_map(|(id, m)| {
            let f = m.finished.as_ref()?;
            (!f.stopped_early.is_empty()).then_some((id, f.stopped_early.as_str()))
        })
        .collect();
    for (id, why) in &early {
        reasons.push(format!("agent {id} stopped its load early: {why}"));
    }
    for t in thresholds.iter().filter(|t| !t.ok) {
        reasons.push(format!("threshold failed: {}", t.expr));
    }
    let degraded = outcome.members.values().any(|m| m.lost)
        || !outcome.agent_errors.is_empty()
        || !early.is_empty();
    let verdict = if requests == 0 && !outcome.agent_errors.is_empty() {
        Verdict::Error
    } else if let Some(stop) = stop {
        stop
    } else if degraded {
        Verdict::Degraded
    } else if thresholds.iter().any(|t| !t.ok) {
        Verdict::Failed
    } else {
        Verdict::Passed
    };
    (verdict, reasons)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_has_its_own_exit_code_and_only_passed_is_zero() {
        let all = [
            Verdict::Passed,
            Verdict::Failed,
            Verdict::Aborted,
            Verdict::Cancelled,
            Verdict::Interrupted,
            Verdict::Degraded,
            Verdict::Error,
        ];
        let codes: std::collections::BTreeSet<u8> = all.iter().map(|v| v.exit_code()).collect();
        // Failed and aborted share 99 (a threshold failed); every other one differs.
        assert_eq!(codes.len(), all.len() - 1);
        assert_eq!(Verdict::Aborted.exit_code(), 99);
        assert!(all[1..].iter().all(|v| v.exit_code() != 0));
        // 2 is a bad plan or bad arguments, never a verdict.
        assert!(!codes.contains(&2));
        assert_eq!(Verdict::Failed.exit_code(), 99);
    }
}
