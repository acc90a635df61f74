//! The agent protocol as the agent's core sees it: plain domain types, already
//! checked at the gRPC edge (`wire`, `session`).
//!
//! Nothing here knows protobuf. A run reports through an outbox of [`ToController`];
//! the session turns those into wire messages, and the controller's messages into
//! [`FromController`], refusing a malformed one (an assignment without a share)
//! before it reaches a run.

use std::time::Duration;

use crescendo_metrics::{SendLag, StepSnapshot};
use crescendo_plan::Share;

/// A message from this agent's core to the controller.
#[derive(Debug, Clone)]
pub(crate) enum ToController {
    /// The run is prepared (its data rows received): it may start.
    Ready {
        run_id: String,
    },
    Snapshot(Box<Snapshot>),
    Throttle(Throttle),
    Quota(Quota),
    Opened(Opened),
    Finished(Finished),
}

/// One interval of this agent's measurements.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub(crate) run_id: String,
    /// From 1, one more per interval.
    pub(crate) seq: u64,
    /// Interval bounds in milliseconds since the run's start on this agent.
    pub(crate) start_ms: u64,
    pub(crate) end_ms: u64,
    pub(crate) steps: Vec<StepSnapshot>,
    /// Iterations this agent intended to start in the interval.
    pub(crate) offered: u64,
    /// The run's last snapshot.
    pub(crate) last: bool,
    /// The API's quota as last reported in this interval.
    pub(crate) quota: Option<Quota>,
    /// Each request's lag behind its intended instant.
    pub(crate) send_lag: SendLag,
}

/// Quota headers of one response.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Quota {
    pub(crate) run_id: String,
    /// The credential the quota applies to (a hash, never the secret).
    pub(crate) limit_key: String,
    pub(crate) remaining: f64,
    pub(crate) limit: Option<f64>,
    /// Until the quota resets.
    pub(crate) reset: Option<Duration>,
    /// Milliseconds since the run's start on this agent.
    pub(crate) at_ms: u64,
}

/// What the API said when it throttled this agent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Throttle {
    pub(crate) run_id: String,
    pub(crate) limit_key: String,
    pub(crate) status: u16,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) remaining: Option<f64>,
    pub(crate) limit: Option<f64>,
    pub(crate) reset: Option<Duration>,
    /// Milliseconds since the run's start on this agent.
    pub(crate) at_ms: u64,
    /// This agent's achieved request rate just before the throttle.
    pub(crate) rate_rps: f64,
}

/// The scout of a fleet pause got through.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Opened {
    pub(crate) run_id: String,
    pub(crate) limit_key: String,
    /// Milliseconds since the run's start on this agent.
    pub(crate) at_ms: u64,
}

/// This agent is done with a run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finished {
    pub(crate) run_id: String,
    /// The last snapshot's sequence number (0: none was sent).
    pub(crate) last_seq: u64,
    /// Why the run stopped early or never started (empty when it ran to its end or
    /// was stopped).
    pub(crate) error: String,
    /// Why this agent stopped its load before the plan's end on its own (a signal, a
    /// silent controller): not an error of the run, but the fleet ran short.
    pub(crate) stopped_early: String,
}

impl Finished {
    /// A run that could not go on because of `error`, told with its causes.
    pub(crate) fn failed(
        run_id: impl Into<String>,
        last_seq: u64,
        error: &dyn std::error::Error,
    ) -> Self {
        Self {
            run_id: run_id.into(),
            last_seq,
            error: chain(error),
            stopped_early: String::new(),
        }
    }
}

/// An error and its sources as one line, `outer: inner: …` (a source whose text the
/// line already holds is left out).
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

/// A message from the controller, checked at the edge.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FromController {
    Welcome {
        controller_version: String,
    },
    Assign(Box<Assign>),
    Data(DataChunk),
    /// Start the run `delay` after receipt (a delay, so clock skew does not matter).
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
    /// The controller is alive (every second); nothing to do but note it.
    Heartbeat,
    /// A new share of the run (a lost agent's part redistributed).
    Reshare {
        run_id: String,
        share: Share,
    },
}

/// A run's plan and this agent's share of it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Assign {
    pub(crate) run_id: String,
    /// The plan as TOML text; the agent parses and validates it again.
    pub(crate) plan_toml: String,
    /// A valid share (`index < count`, `max_in_flight >= 1`).
    pub(crate) share: Share,
    /// Files the plan names, by the path as written in the plan.
    pub(crate) files: Vec<(String, Vec<u8>)>,
    /// Data rows follow as [`DataChunk`]s.
    pub(crate) data_streamed: bool,
}

/// Some of this agent's data rows, as JSON Lines.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DataChunk {
    pub(crate) run_id: String,
    pub(crate) rows_jsonl: Vec<u8>,
    /// Rows the chunk announces.
    pub(crate) rows: u64,
    pub(crate) last: bool,
}

/// A fleet-wide backoff decision for this agent (see `Adjust` in agent.proto).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Adjust {
    pub(crate) run_id: String,
    /// The governor's rate cap (finite, non-negative), `None`: the plan's own rate.
    pub(crate) max_rate: Option<f64>,
    /// Pause for this long from receipt (zero: no pause, or end one with `replace_pause`).
    pub(crate) pause: Duration,
    pub(crate) replace_pause: bool,
    /// Scout the fleet's pause this long after this agent's own ends (zero: stop).
    pub(crate) scout: Duration,
}

/// Stop the run's load; with `release` the agent may exit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stop {
    /// Empty: whatever run this agent is part of.
    pub(crate) run_id: String,
    pub(crate) reason: String,
    pub(crate) release: bool,
}
