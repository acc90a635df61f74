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
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error(
        "timed out after {waited:?} waiting for {want} agents{matching}: {have} of {want} idle [{attached}], {missing} missing{others}"
    )]
    AgentsMissing {
        waited: Duration,
        want: usize,
        /// ` matching k=v,…` when the run has a selector, else empty.
        matching: String,
        have: usize,
        attached: String,
        missing: usize,
        /// `; also attached: id (busy), id (not matching)` when there are such agents.
        others: String,
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
    #[error("step {step:?}: bad failure table: {reason}")]
    Failures { step: String, reason: String },
}

/// Why a plan cannot be probed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// A closed-model plan without think time: its VUs go as fast as the API answers,
    /// so the plan names no rate for the probe to ramp to.
    #[error(
        "load: the probe ramps to the plan's peak rate, and a closed-model plan without \
         think_time has none; set load.think_time (the peak is then peak VUs / think_time) \
         or use model = \"open\""
    )]
    NoPeakRate,
}

/// Why the service refused or could not do what the admin edge asked.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Plan(#[from] crescendo_plan::PlanError),
    #[error(
        "{0}: the plan names files (body_file or [data] file); a service has no plan directory: inline the body, or use `run` for data files"
    )]
    NamesFiles(String),
    #[error(transparent)]
    Labels(#[from] crescendo_plan::labels::LabelsError),
    #[error(transparent)]
    Controller(#[from] ControllerError),
    #[error(transparent)]
    Store(#[from] crescendo_store::StoreError),
    #[error(transparent)]
    Schedule(#[from] crescendo_store::ScheduleError),
    #[error("no run {0}")]
    NoSuchRun(String),
    #[error("no schedule {0}")]
    NoSuchSchedule(String),
    #[error("run {id} is already {state}")]
    Finished { id: String, state: &'static str },
    #[error("{0}")]
    BadRequest(String),
    #[error("the queue is full ({0} runs queued or running): try again later")]
    QueueFull(usize),
    #[error("the service failed: {0}")]
    Internal(String),
}
