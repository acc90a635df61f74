//! The agent protocol as the controller's core sees it: plain domain types, already
//! checked at the gRPC edge (`wire`), and the channels between the edge, the agent
//! registry and the run actors.
//!
//! Nothing here knows protobuf: `server` and `wire` turn the wire's messages into
//! these and back, so a malformed message (a corrupt histogram, a non-finite quota)
//! is refused there and never reaches a run.

use std::time::Duration;

use crescendo_metrics::{SendLag, StepSnapshot};
use crescendo_plan::Share;
use crescendo_plan::labels::Labels;
use tokio::sync::{mpsc, oneshot};

use crate::error::WireError;
use crate::liveness::{AttachRefused, StreamLife};

/// Messages to one agent; a failed send means the agent is gone. Dropping every
/// sender ends the agent's stream.
pub(crate) type AgentTx = mpsc::Sender<ToAgent>;

/// Room for messages to one agent before sends start failing (a stuck peer).
pub(crate) const AGENT_QUEUE: usize = 256;

/// What an agent says when it attaches (first message on every stream).
#[derive(Debug, Clone, Default)]
pub(crate) struct Hello {
    pub(crate) agent_id: String,
    pub(crate) host: String,
    pub(crate) version: String,
    /// The run the agent is still part of after a reconnect (empty when idle).
    pub(crate) resume_run_id: String,
    /// What the agent says it is; checked at the edge ([`crescendo_plan::labels`]).
    pub(crate) labels: Labels,
}

/// A message from an agent, after `Hello`.
#[derive(Debug)]
pub(crate) enum FromAgent {
    Ready {
        run_id: String,
    },
    Snapshot(Box<Snapshot>),
    Throttle(Throttle),
    Quota(Quota),
    Opened(Opened),
    Finished(Finished),
    /// A snapshot refused at the edge (a corrupt histogram, a status out of range):
    /// counted, acknowledged so the agent does not resend it, never merged.
    Rejected {
        run_id: String,
        seq: u64,
        error: WireError,
    },
    /// Nothing for a run (heartbeats, kinds this controller does not know).
    Other,
}

impl FromAgent {
    /// The run a message belongs to, when it belongs to one.
    pub(crate) fn run_id(&self) -> Option<&str> {
        match self {
            FromAgent::Ready { run_id } => Some(run_id),
            FromAgent::Snapshot(s) => Some(&s.run_id),
            FromAgent::Throttle(t) => Some(&t.run_id),
            FromAgent::Quota(q) => Some(&q.run_id),
            FromAgent::Opened(o) => Some(&o.run_id),
            FromAgent::Finished(f) => Some(&f.run_id),
            FromAgent::Rejected { run_id, .. } => Some(run_id),
            FromAgent::Other => None,
        }
    }
}

/// One interval of one agent's measurements; histograms already decoded.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub(crate) run_id: String,
    /// From 1, one more per interval; each (agent, seq) is merged once.
    pub(crate) seq: u64,
    /// Interval bounds in milliseconds since the run's start on the agent.
    pub(crate) start_ms: u64,
    pub(crate) end_ms: u64,
    pub(crate) steps: Vec<StepSnapshot>,
    /// Iterations the agent intended to start in the interval.
    pub(crate) offered: u64,
    pub(crate) quota: Option<Quota>,
    /// Each request's lag behind its intended instant (empty from older agents).
    pub(crate) send_lag: SendLag,
}

/// Quota headers an agent saw (finite, non-negative numbers only).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Quota {
    pub(crate) run_id: String,
    pub(crate) limit_key: String,
    pub(crate) remaining: f64,
    pub(crate) limit: Option<f64>,
    /// Until the quota resets.
    pub(crate) reset: Option<Duration>,
    /// Milliseconds since the run's start on the agent.
    pub(crate) at_ms: u64,
}

/// What the API said when it throttled an agent.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Throttle {
    pub(crate) run_id: String,
    pub(crate) limit_key: String,
    pub(crate) status: u16,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) remaining: Option<f64>,
    pub(crate) limit: Option<f64>,
    pub(crate) reset: Option<Duration>,
    /// The agent's achieved request rate just before the throttle.
    pub(crate) rate_rps: f64,
}

/// The scout of a fleet pause got through.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Opened {
    pub(crate) run_id: String,
    pub(crate) limit_key: String,
}

/// An agent is done with a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Finished {
    pub(crate) run_id: String,
    /// Its last snapshot's sequence number (0: it sent none).
    pub(crate) last_seq: u64,
    /// Why it stopped early (empty when it ran to the end or was stopped).
    pub(crate) error: String,
    /// Why it stopped its load before the plan's end on its own (a signal, a silent
    /// controller): the fleet ran short, though nothing failed.
    pub(crate) stopped_early: String,
}

/// A message to an agent.
#[derive(Debug, Clone)]
pub(crate) enum ToAgent {
    Assign(Box<Assign>),
    Data(DataChunk),
    Start {
        run_id: String,
        delay: Duration,
    },
    Adjust(Adjust),
    Ack {
        run_id: String,
        seq: u64,
    },
    Stop(Stop),
    /// A new share of the run for this agent: the survivors of a lost agent take its
    /// part (`on_agent_loss = "redistribute"`).
    Reshare {
        run_id: String,
        share: Share,
    },
}

/// A run's plan and one agent's share of it.
#[derive(Debug, Clone)]
pub(crate) struct Assign {
    pub(crate) run_id: String,
    /// The plan as TOML text; the agent validates it again (it never trusts the wire).
    pub(crate) plan_toml: String,
    pub(crate) share: Share,
    /// Files the plan names, by the path as written in the plan.
    pub(crate) files: Vec<(String, Vec<u8>)>,
    /// Data rows follow as [`DataChunk`]s.
    pub(crate) data_streamed: bool,
}

/// Rows of the plan's data file for one agent, as JSON Lines.
#[derive(Debug, Clone)]
pub(crate) struct DataChunk {
    pub(crate) run_id: String,
    pub(crate) rows_jsonl: Vec<u8>,
    pub(crate) rows: u64,
    pub(crate) last: bool,
}

/// A fleet-wide backoff decision for one agent (see `Adjust` in agent.proto).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Adjust {
    pub(crate) run_id: String,
    pub(crate) max_rate_rps: Option<f64>,
    pub(crate) pause: Duration,
    pub(crate) reason: String,
    pub(crate) replace_pause: bool,
    pub(crate) scout: Duration,
}

/// Stop the run's load; with `release` the agent may exit (one-shot runs).
#[derive(Debug, Clone)]
pub(crate) struct Stop {
    pub(crate) run_id: String,
    pub(crate) reason: String,
    pub(crate) release: bool,
}

/// What the gRPC edge tells the registry. `conn` tells one stream of an agent from
/// the next after a reconnect.
#[derive(Debug)]
pub(crate) enum AgentEvent {
    /// A stream said `Hello`. The registry answers on `reply` before the edge says
    /// anything: a second stream for an id whose stream is alive is refused.
    Attached {
        hello: Hello,
        conn: u64,
        tx: AgentTx,
        life: StreamLife,
        reply: oneshot::Sender<Result<(), AttachRefused>>,
    },
    Message {
        agent: String,
        conn: u64,
        message: FromAgent,
    },
    Detached {
        agent: String,
        conn: u64,
    },
}

/// One attached agent, for `status`.
#[derive(Debug, Clone, Default)]
pub(crate) struct AgentView {
    pub(crate) id: String,
    pub(crate) host: String,
    pub(crate) version: String,
    /// The run it is part of (empty when idle).
    pub(crate) run_id: String,
    pub(crate) labels: Labels,
    /// Since its stream was last heard from.
    pub(crate) silent: Duration,
}

/// The controller's state, for `status`.
#[derive(Debug, Clone, Default)]
pub(crate) struct StatusView {
    pub(crate) agents: Vec<AgentView>,
    pub(crate) run: RunView,
}

/// The run in progress (or `idle`), for `status`.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunView {
    pub(crate) run_id: String,
    pub(crate) state: &'static str,
    pub(crate) elapsed_s: f64,
    pub(crate) requests: u64,
}

/// The answer to `cancel`.
#[derive(Debug, Clone, Default)]
pub(crate) struct CancelView {
    pub(crate) cancelled: bool,
    pub(crate) run_id: String,
}

/// An agent id or schedule name: 1 to `max` characters of ASCII letters, digits, '-',
/// '_', '.' (safe in logs, file names and URLs).
pub(crate) fn valid_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}
