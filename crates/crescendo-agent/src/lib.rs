//! The Crescendo agent: attaches to a controller, drives its share of a run, reports.
//!
//! An agent holds one long-lived gRPC stream to the controller
//! (`AgentControl.Attach`). For each run it is assigned a share of the plan, waits
//! for the start signal (a delay, so clock skew does not matter), drives requests
//! against the target, and sends one snapshot of HdrHistograms and counters a
//! second. Snapshots are kept until the controller acknowledges them and are resent
//! after a reconnect, so a brief partition loses nothing; if the controller stays
//! away longer than the orphan grace period the run stops, so a run never outlives
//! its controller.
//!
//! # Layout
//! - [`session`]: the controller connection, reconnects, the unacknowledged outbox.
//! - `run`: one assigned run: prepared from `Assign`, started by `Start`, adjusted
//!   by `Adjust`, reporting snapshots until it finishes.
//! - `schedule`: the open model's drift-free arrival times with backoff limits.
//! - `iteration`: one iteration of the scenario: rendering, sending, classifying,
//!   retrying.
//! - `request`: steps prepared once per run from the plan's templates.

mod iteration;
mod request;
mod run;
mod schedule;
pub mod session;

pub use session::{AgentConfig, AgentError, run};
