//! Why a run could not be carried out. The gRPC edge turns these into a `Status`
//! (`server`), the CLI into an exit code ([`ControllerError::is_bad_input`]).

use std::time::Duration;

use crescendo_metrics::MetricsError;
use crescendo_plan::{PlanError, RowError};

/// Why a run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("--agents must be at least 1")]
    NoAgents,
    #[error(transparent)]
    Ship(#[from] ShipError),
    #[error("{0}")]
    Probe(String),
    #[error(
        "timed out after {waited:?} waiting for {want} agents: attached [{attached}], {missing} missing"
    )]
    AgentsMissing {
        waited: Duration,
        want: usize,
        attached: String,
        missing: usize,
    },
    #[error("agents not ready within {waited:?}: {}", agents.join(", "))]
    NotReady {
        waited: Duration,
        agents: Vec<String>,
    },
    #[error("agent {agent} detached before the start")]
    Detached { agent: String },
    #[error("agent {agent} did not take its data rows")]
    DataNotTaken { agent: String },
    #[error("agent {agent} rejected the run: {error}")]
    AgentRejected { agent: String, error: String },
    #[error("run cancelled {phase}")]
    Cancelled { phase: &'static str },
    #[error("the controller has shut down")]
    Gone,
}

impl ControllerError {
    /// The plan, its files or the arguments are at fault (exit code 2), not the fleet.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            ControllerError::Plan(_)
                | ControllerError::NoAgents
                | ControllerError::Ship(_)
                | ControllerError::Probe(_)
        )
    }
}

/// A plan's files could not be read for shipping to the agents.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error(
        "the plan names files (body_file or [data] file) but was not loaded from a directory to read them from"
    )]
    NoDirectory,
    #[error("reading the plan's files: {0}")]
    Bundle(#[source] std::io::Error),
    #[error("{path}: {source}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Row {
        path: String,
        #[source]
        source: RowError,
    },
    #[error("{path}: data.file: no data rows after the header")]
    NoRows { path: String },
    #[error(
        "{path}: data.file: expected at least one row per agent with partition \"per-agent\" or \"unique\" ({agents} agents), got {rows} rows"
    )]
    TooFewRows {
        path: String,
        agents: usize,
        rows: u64,
    },
}

/// An agent's message that cannot be taken as sent.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    #[error("step {step:?}: {source}")]
    Histogram {
        step: String,
        #[source]
        source: MetricsError,
    },
    #[error("step {step:?}: status {status} is not an HTTP status")]
    Status { step: String, status: u32 },
}
