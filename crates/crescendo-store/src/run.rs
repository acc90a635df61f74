//! What the store keeps about a run: [`NewRun`] going in, [`RunRecord`] coming out.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::run_state::{Missed, RunState, UnknownWord};
use crate::selector::Selector;

/// Why a run exists.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A person submitted the plan.
    Submit,
    /// The named schedule fired.
    Schedule { name: String },
    /// A person asked to run an earlier run's plan again; `of` is that run's id.
    Rerun { of: String },
}

/// A run as it is queued: what to run, on how many agents, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub plan_name: String,
    /// The plan's TOML as submitted, kept so a rerun runs exactly the same text.
    pub plan_text: String,
    pub origin: Origin,
    /// How many agents the plan is split over.
    pub agents: u32,
    pub selector: Selector,
    /// The schedule time this run stands for (`None` for a submitted run).
    pub scheduled_at: Option<DateTime<Utc>>,
    /// Set when the run stands for a time missed while the service was down.
    pub missed: Option<Missed>,
}

/// Everything the store knows about one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// 12 lowercase hex digits, also the name of the run's folder `DIR/runs/<id>/`.
    pub id: String,
    pub plan_name: String,
    pub plan_text: String,
    pub origin: Origin,
    pub agents_wanted: u32,
    pub selector: Selector,
    pub state: RunState,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub queued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub missed: Option<Missed>,
    /// Ids of the agents that ran it, in share order (empty until it starts).
    pub agents: Vec<String>,
    /// Why it ended as it did (an abort's threshold, an error, an interruption).
    pub reason: Option<String>,
    /// The merged result: partial (the last checkpoint) while `checkpointed_at` is the
    /// newest event, final once the run finished with a summary of its own.
    pub summary: Option<Value>,
    pub exit_code: Option<i32>,
    /// When the last checkpoint was written; kept after the run finishes.
    pub checkpointed_at: Option<DateTime<Utc>>,
    /// How it compared with its plan's baseline, once compared.
    pub comparison: Option<Comparison>,
    /// True when this run is its plan's baseline.
    pub baseline: bool,
}

impl RunRecord {
    /// True once the run is in a final state.
    pub fn is_finished(&self) -> bool {
        self.state.is_finished()
    }
}

/// The verdict of comparing a run with its plan's baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub outcome: Outcome,
    /// The baseline run compared against (it may since have been replaced).
    pub baseline_run: String,
    /// The comparison's figures, as the controller computed them.
    pub details: Value,
}

/// Whether a run held up against its baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Held,
    Regressed,
}

impl Outcome {
    /// `held` or `regressed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Held => "held",
            Outcome::Regressed => "regressed",
        }
    }
}

impl FromStr for Outcome {
    type Err = UnknownWord;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "held" => Ok(Outcome::Held),
            "regressed" => Ok(Outcome::Regressed),
            _ => Err(UnknownWord::new(
                "comparison outcome",
                text,
                &["held", "regressed"],
            )),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which runs [`Store::list_runs`](crate::Store::list_runs) returns, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFilter {
    pub plan_name: Option<String>,
    pub state: Option<RunState>,
    /// At most this many runs.
    pub limit: usize,
}

impl Default for RunFilter {
    /// Every run.
    fn default() -> Self {
        RunFilter {
            plan_name: None,
            state: None,
            limit: usize::MAX,
        }
    }
}
