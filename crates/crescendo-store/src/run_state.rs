//! [`RunState`] and [`Missed`]: the small words stored as text, with their parsers.

use std::fmt;
use std::str::FromStr;

/// Where a run is in its life. The first three are unfinished; the rest are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunState {
    /// Accepted, not yet handed to agents.
    Queued,
    /// Needs more matching agents than are connected.
    WaitingForAgents,
    /// Agents are generating load.
    Running,
    /// Ran to its end and every threshold held.
    Passed,
    /// Ran to its end and a threshold did not hold.
    Failed,
    /// Stopped early by a threshold's `abort` or by the agents.
    Aborted,
    /// Stopped by a person before or during the run.
    Cancelled,
    /// Never started: a schedule's time was missed with `missed = skip`.
    NotStarted,
    /// Unfinished when the service stopped; found so on the next start.
    Interrupted,
    /// Finished, but with fewer agents than it started with (its figures are partial).
    Degraded,
    /// Could not run: the controller or the agents failed.
    Error,
}

/// Text that names no [`RunState`] or [`Missed`] policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {text:?}: expected one of {expected}")]
pub struct UnknownWord {
    what: &'static str,
    text: String,
    expected: String,
}

impl UnknownWord {
    pub(crate) fn new(what: &'static str, text: &str, expected: &[&str]) -> UnknownWord {
        UnknownWord {
            what,
            text: text.to_owned(),
            expected: expected.join(", "),
        }
    }
}

impl RunState {
    /// Every state, unfinished ones first.
    pub const ALL: [RunState; 11] = [
        RunState::Queued,
        RunState::WaitingForAgents,
        RunState::Running,
        RunState::Passed,
        RunState::Failed,
        RunState::Aborted,
        RunState::Cancelled,
        RunState::NotStarted,
        RunState::Interrupted,
        RunState::Degraded,
        RunState::Error,
    ];

    /// The kebab-case word stored in the database and shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::WaitingForAgents => "waiting-for-agents",
            RunState::Running => "running",
            RunState::Passed => "passed",
            RunState::Failed => "failed",
            RunState::Aborted => "aborted",
            RunState::Cancelled => "cancelled",
            RunState::NotStarted => "not-started",
            RunState::Interrupted => "interrupted",
            RunState::Degraded => "degraded",
            RunState::Error => "error",
        }
    }

    /// True for a final state: the run will not change state again.
    pub fn is_finished(self) -> bool {
        !matches!(
            self,
            RunState::Queued | RunState::WaitingForAgents | RunState::Running
        )
    }
}

impl FromStr for RunState {
    type Err = UnknownWord;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        RunState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| {
                UnknownWord::new("run state", text, &RunState::ALL.map(RunState::as_str))
            })
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a schedule does about times that passed while the service was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Missed {
    /// One run for the newest missed time, however many were missed.
    RunOnce,
    /// No run; a `not-started` run records each outage instead.
    Skip,
}

impl Missed {
    /// `run-once` or `skip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Missed::RunOnce => "run-once",
            Missed::Skip => "skip",
        }
    }
}

impl FromStr for Missed {
    type Err = UnknownWord;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "run-once" => Ok(Missed::RunOnce),
            "skip" => Ok(Missed::Skip),
            _ => Err(UnknownWord::new(
                "missed-time policy",
                text,
                &["run-once", "skip"],
            )),
        }
    }
}

impl fmt::Display for Missed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips_through_its_word() {
        for state in RunState::ALL {
            assert_eq!(state.as_str().parse::<RunState>(), Ok(state));
            assert_eq!(state.to_string(), state.as_str());
        }
        assert_eq!(RunState::WaitingForAgents.as_str(), "waiting-for-agents");
        assert_eq!(RunState::NotStarted.as_str(), "not-started");
    }

    #[test]
    fn only_queued_waiting_and_running_are_unfinished() {
        let unfinished: Vec<_> = RunState::ALL
            .into_iter()
            .filter(|s| !s.is_finished())
            .collect();
        assert_eq!(
            unfinished,
            [
                RunState::Queued,
                RunState::WaitingForAgents,
                RunState::Running
            ]
        );
    }

    #[test]
    fn unknown_words_are_named_with_the_choices() {
        let err = "done".parse::<RunState>().unwrap_err().to_string();
        assert!(
            err.starts_with(
                "unknown run state \"done\": expected one of queued, waiting-for-agents"
            ),
            "{err}"
        );
        assert_eq!("skip".parse::<Missed>(), Ok(Missed::Skip));
        assert_eq!(Missed::RunOnce.to_string(), "run-once");
        assert_eq!(
            "once".parse::<Missed>().unwrap_err().to_string(),
            "unknown missed-time policy \"once\": expected one of run-once, skip"
        );
    }
}
