//! The Crescendo agent: attaches to a controller, drives its share of a run, reports.
//!
//! An agent holds one long-lived gRPC stream to the controller
//! (`AgentControl.Attach`). For each run it is assigned a share of the plan, waits
//! for the start signal (a delay, so clock skew does not matter), drives requests
//! against the target, and sends one snapshot of HdrHistograms and counters a
//! second. Snapshots are kept until the controller acknowledges them and are resent
//! after a reconnect, so a brief partition loses nothing. Both sides send a heartbeat
//! every second; when nothing comes from the controller for the heartbeat timeout (3 s)
//! the load stops at once (a dead-man switch), so a run never goes on unattended. Cancelling the root token stops the load and flushes the last
//! snapshot and `Finished` before [`run`] returns (bounded; see [`session`]).
//!
//! # Layout
//! The gRPC edge, the only files that know the generated protobuf types:
//! - [`session`]: the controller connection, reconnects, the unacknowledged outbox,
//!   the graceful shutdown; `session/inbound` answers the controller's messages.
//! - `attach`: a stream's first messages, the enrolment token on the request, and
//!   what the controller's refusals mean (retry, or stop for good).
//! - [`transport`]: the channel's TLS and the bearer tokens (enrolment, admin), shared
//!   with the controller's admin CLI.
//! - `wire`: protobuf to and from the domain messages; a controller message that
//!   cannot be taken (an assignment without a valid share) is refused here.
//!
//! The core, in domain types:
//! - `config`: [`AgentConfig`] and the public [`AgentError`].
//! - `messages`: the protocol as the core sees it (`ToController`, `FromController`).
//! - `prepare`: an `Assign` checked and prepared (plan, share, secrets, streamed
//!   data rows) into a run waiting for `Start`.
//! - `run`: one prepared run, started by `Start`, adjusted by `Adjust`, reporting
//!   snapshots until it finishes (at the plan's end, on `Stop` or shutdown, when its
//!   `unique` rows run out, or when its part of `max_total_requests` is spent).
//! - `schedule`: the open model's drift-free arrival times with backoff limits.
//! - `dispatch`: waking the open model's dispatcher at each due time to within
//!   microseconds (a coarse timer sleep, then a precise timer thread), so requests leave
//!   when the schedule says; their lag is measured as `send_lag`.
//! - `pacing`: one run's backoff limits (pauses, the rate cap, scouting), shared by
//!   the session's decisions and the request tasks' reactions.
//! - `gate`: holds requests no schedule times during a pause or past the rate cap.
//! - `ceiling`: the plan's hard ceilings for this agent (`max_total_requests`,
//!   `max_rps`), taken before every request; no controller message lifts them.
//! - `context`: the state one run's tasks share (`RunContext`, holding its
//!   `RunSetup`).
//! - `reports`: the run's outbox and its throttle, quota and scout reports.
//! - `iteration`: one iteration of the scenario: rendering, sending with the run's
//!   token (one refresh and resend after a 401), classifying, checking, capturing,
//!   retrying.
//! - `request`: steps prepared once per run from the plan's templates, captures and
//!   checks, with the URI, headers and body built once where no variable varies them;
//!   the iteration's variables (built-ins, data row, captures).
//! - `target_client`: the client for the load's requests (hyper's pooled client over
//!   rustls; keep-alive, HTTP/2 by ALPN, no redirects, one timeout per exchange).
//! - `auth`: bearer tokens and OAuth2 client credentials (cached, single-flight,
//!   refreshed, measured as the auxiliary step `auth.token`); secrets resolved on the
//!   agent, never logged.
//! - `failure`: why an attempt failed, as a normalised message and a masked sample
//!   (the recorder keeps a bounded table of them per step and interval).
//! - `capture`: JSON Pointer captures and checks on response bodies.
//! - `feeder`: data rows for iterations, cycling or each once, from memory or
//!   streamed from a spool file; what to do when they run out.
//! - `spool`: the spool file that receives streamed `DataChunk`s before `Ready`.
//! - `from_plan`: the bridge from the plan's model to the agent's auth and data
//!   configuration.

mod attach;
mod auth;
mod capture;
mod ceiling;
mod config;
mod context;
mod dispatch;
mod failure;
mod feeder;
mod from_plan;
mod gate;
mod iteration;
mod messages;
mod pacing;
mod prepare;
mod reports;
mod request;
mod run;
mod schedule;
pub mod session;
mod spool;
mod target_client;
pub mod transport;
mod wire;

pub use session::{AgentConfig, AgentError, run};
