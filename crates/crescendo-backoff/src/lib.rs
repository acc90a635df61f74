//! Crescendo backoff: what the API says, what one request does about it, and what the
//! whole fleet does about it. Pure logic: no sockets, no runtime, no clock of its own.
//! Times come in as arguments (`now: Duration` since the run's start, `SystemTime` only
//! where HTTP dates need a wall clock), so every rule is tested with plain values.
//!
//! # Layout
//!
//! - [`signals`]: [`parse_response`] reads `Retry-After` (seconds or HTTP-date),
//!   `inin-ratelimit-*`, `X-RateLimit-*` and the IETF `RateLimit*` fields into a
//!   [`RateLimitInfo`]; [`classify`] turns a status into a [`Signal`].
//! - [`retry`]: the per-request retry policies (`none`, `retry-after`, `exponential`,
//!   `coordinated`) behind [`decide`], and the shared [`RetryBudget`].
//! - [`governor`]: the controller's fleet governor, one state machine per limit key:
//!   one multiplicative cut per throttle event, fleet pauses with staggered resumes,
//!   additive recovery up to a learned ceiling, quota-aware pacing; [`agent_shares`]
//!   splits a [`FleetDecision`] between agents. Its module docs explain the design; a
//!   test-only simulation of a fleet against a fixed-window or sliding-window limiter
//!   checks the benchmark targets (goodput and 429 share) on a fake clock.

#![forbid(unsafe_code)]

pub mod governor;
pub mod retry;
pub mod signals;

pub use governor::{
    AgentAdjust, EventKind, FleetDecision, Governor, GovernorConfig, GovernorEvent, QuotaReport,
    ThrottleReport, agent_shares,
};
pub use retry::{GiveUpReason, Policy, RetryBudget, RetryConfig, RetryDecision, decide};
pub use signals::{HeaderFamily, RateLimitInfo, Signal, classify, parse_response};
