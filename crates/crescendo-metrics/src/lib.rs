//! Measurements for Crescendo: what one agent records and what the controller merges.
//!
//! Latencies live in HdrHistograms (1 µs to 1 h, 3 significant digits, values in
//! microseconds). An agent records into a [`Recorder`], takes one interval snapshot a
//! second and ships each histogram as V2+deflate bytes; the controller decodes them and
//! adds them into [`StepStats`]. Percentiles are only ever read from merged histograms,
//! never averaged, so the fleet's result is exact.
//!
//! # Layout
//! - [`histogram`]: histogram construction, V2+deflate encoding, guarded decoding of
//!   untrusted bytes, and [`LatencySummary`].
//! - [`outcome`]: the per-attempt [`Outcome`] enum and [`Counters`] by outcome.
//! - [`failures`]: [`Failures`], a step's distinct failures (outcome, status, normalised
//!   message) with counts and a sample, bounded so counts stay exact.
//! - [`recorder`]: the agent side, [`Recorder`] and its interval snapshots.
//! - [`merged`]: [`StepStats`], one step's measurements (an interval's or merged), and
//!   [`StepSnapshot`], one step's interval as shipped.
//! - [`send_lag`]: [`SendLag`], the schedule's own error (intended instant to send) of
//!   every request, one histogram per interval and run, not per step.
//!
//! This crate knows nothing of the wire: the agent's session encodes a
//! [`StepSnapshot`]'s histograms with [`encode`] and the controller's gRPC edge decodes
//! them with [`decode`], which refuses hostile bytes there, before anything is merged.

pub mod failures;
pub mod histogram;
pub mod merged;
pub mod outcome;
pub mod recorder;
pub mod send_lag;

pub use failures::{FailureDetail, FailureKind, Failures};
pub use histogram::{LatencySummary, decode, encode, new_histogram};
pub use merged::{StepSnapshot, StepStats};
pub use outcome::{Counters, Outcome};
pub use recorder::Recorder;
pub use send_lag::{SendLag, SendLagSummary};

/// Errors from decoding measurements that came over the network.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("histogram bytes rejected: {0}")]
    BadHistogram(String),
    #[error("histogram could not be merged: {0}")]
    Merge(String),
}
