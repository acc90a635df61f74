//! The validated plan: plain domain types, no serde, every value already checked.
//!
//! These types are the contract that the agent and the controller program against.
//! `auth` holds `[auth]` (where credentials come from, never the credentials) and `data`
//! holds `[data]` (rows that feed template variables).

mod auth;
mod data;

use std::collections::BTreeMap;
use std::time::Duration;

pub use auth::{Auth, ClientCredentials, ClientSharing, OAuthClient, Secret};
pub use data::{Data, DataFile, DataFormat, DataSource, OnExhausted, Partition};

/// A validated test plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub name: String,
    pub description: Option<String>,
    pub target: Target,
    pub scenario: Scenario,
    pub load: Load,
    /// `[load]`'s `max_total_requests` and `max_rps`: hard limits for either model.
    pub ceilings: Ceilings,
    pub backoff: Backoff,
    /// Rows that feed template variables (`{flowId}` …); `None` when the plan has no `[data]`.
    pub data: Option<Data>,
    pub thresholds: Vec<Threshold>,
    /// `[auth]`: how the agents obtain the `Authorization` header ([`Auth::None`] when absent).
    pub auth: Auth,
    /// `[fleet]`: what the run does when it loses an agent.
    pub fleet: Fleet,
}

/// `[fleet]`: how the run treats its agents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fleet {
    pub on_agent_loss: OnAgentLoss,
}

/// `on_agent_loss`: what happens to a lost agent's share (an agent is lost when its
/// controller has heard nothing from it for the heartbeat timeout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnAgentLoss {
    /// The survivors take its share of the rate, the VUs and the in-flight cap, so the
    /// fleet keeps the plan's load (its data rows are not moved).
    #[default]
    Redistribute,
    /// The run goes on short, and says so (`degraded`).
    Continue,
    /// The fleet stops; the reports say why.
    Abort,
}

/// `[target]`: where the load goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Absolute `http://` or `https://` URL without a trailing slash.
    pub base_url: String,
    /// Per-attempt timeout (default 10 s).
    pub timeout: Duration,
    /// Headers sent with every request (templates allowed).
    pub headers: BTreeMap<String, String>,
}

/// `[scenario]`: what one iteration does.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// At least one step; names are unique.
    pub steps: Vec<Step>,
}

/// One HTTP request of an iteration.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    /// Upper-case HTTP method (GET, PUT, POST, PATCH, DELETE, HEAD, OPTIONS).
    pub method: String,
    /// Path template starting with `/`, e.g. `/api/v2/flows/{flowId}`.
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
    /// Body template, sent as is after substitution. With `body_file` this is the
    /// file's content, read when the plan is loaded.
    pub body: Option<String>,
    /// `body_file` as written in the plan (relative to the plan's directory), so the
    /// controller can ship the file to the agents; `None` for an inline `body`.
    pub body_file: Option<String>,
    /// Statuses that count as success (default: any 2xx, stored as empty).
    pub expect: Vec<u16>,
    /// Values taken from this step's JSON response body, in the order written; later
    /// steps of the same iteration may use them as template variables.
    pub captures: Vec<Capture>,
    /// Assertions on this step's JSON response body; a failed check makes the request
    /// an error even when its status is expected.
    pub checks: Vec<Check>,
}

/// `captures = { version = "/version" }`: the value at `pointer` in the response body
/// becomes the variable `var` for the rest of the iteration (strings as they are, other
/// JSON values as their JSON text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// An identifier that is neither a built-in variable nor a data column.
    pub var: String,
    /// RFC 6901 JSON Pointer: empty (the whole document) or starting with `/`.
    pub pointer: String,
}

/// `checks = [{ pointer = "/id", equals = "{flowId}" }]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// RFC 6901 JSON Pointer: empty or starting with `/`.
    pub pointer: String,
    /// A string (a template, rendered per request like a path), a number or a boolean.
    pub equals: serde_json::Value,
}

/// `[load]`: how much load, over which stages.
#[derive(Debug, Clone, PartialEq)]
pub enum Load {
    Open(OpenLoad),
    Closed(ClosedLoad),
}

/// The highest rate (iterations per second) a plan accepts: keeps every schedule
/// computation finite and exact enough.
pub const MAX_RATE: f64 = 1e9;

/// Open model: iterations arrive at a target rate, whatever the responses do.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenLoad {
    /// Rate (iterations per second) at time zero; each stage ramps linearly from the
    /// previous stage's target (or this) to its own target.
    pub start_rate: f64,
    /// At least one stage.
    pub stages: Vec<RateStage>,
    /// Hard cap of iterations in flight across the fleet; past it iterations are dropped.
    pub max_in_flight: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateStage {
    pub duration: Duration,
    /// Iterations per second at the end of the stage (>= 0).
    pub target: f64,
}

/// Closed model: a number of virtual users loop over the scenario with think time.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedLoad {
    /// VUs at time zero; each stage ramps linearly to its target.
    pub start_vus: u32,
    pub stages: Vec<VuStage>,
    /// Pause between a VU's iterations.
    pub think_time: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VuStage {
    pub duration: Duration,
    pub target: u32,
}

/// `[load]`'s hard ceilings: what the whole fleet never exceeds in a run, whatever the
/// stages, the retries or the controller ask for. Every agent enforces its own part
/// ([`Ceilings::for_agent`]), computed from the plan it validated itself.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Ceilings {
    /// `max_total_requests` (>= 1): HTTP requests sent to the target in the run, every
    /// attempt counted (retries and a resend after a 401 included).
    pub max_total_requests: Option<u64>,
    /// `max_rps` (> 0): requests per second, every attempt counted.
    pub max_rps: Option<f64>,
}

/// One agent's part of the plan's [`Ceilings`]; `None` where the plan sets none.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AgentCeilings {
    /// Requests this agent may send in the run.
    pub max_requests: Option<u64>,
    /// Requests per second this agent may never exceed (requests at least
    /// `1 / max_rps` seconds apart).
    pub max_rps: Option<f64>,
}

/// `[backoff]`: what to do when the API throttles.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    pub policy: Policy,
    /// Retries of one request after a throttle (default 3; 0 with policy `none`).
    pub max_retries: u32,
    /// Retries may never exceed this fraction of first attempts (default 0.2).
    pub retry_budget: f64,
    /// A Retry-After longer than this stops the run with a clear message (default 180 s).
    pub max_retry_after: Duration,
    /// Exponential policy: base and cap of the full-jitter window (defaults 100 ms, 30 s).
    pub base: Duration,
    pub cap: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    None,
    RetryAfter,
    Exponential,
    Coordinated,
}

/// One `[thresholds]` entry, e.g. `"latency.p99" = "< 800ms"`.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The entry as written, `latency.p99 < 800ms`, for reports.
    pub expr: String,
    pub metric: Metric,
    pub op: CompareOp,
    /// Right-hand side in the metric's base unit (milliseconds for latencies).
    pub value: f64,
    /// The step the metric is about (`steps.update.latency.p95` -> `update`); `None`
    /// for the whole run.
    pub step: Option<String>,
    /// `abort_on_fail = true`: the controller stops the run as soon as the threshold
    /// fails, rather than only failing it at the end.
    pub abort: Option<AbortOnFail>,
}

/// When an aborting threshold starts being evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortOnFail {
    /// Evaluation starts this long after the run's start (default 0), so a ramp-up or a
    /// cold cache does not abort the run.
    pub grace: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    /// `latency.p50` … `latency.p999`, `latency.max`, `latency.mean`: intended-time latency, ms.
    Latency(Stat),
    /// `service_time.*`: service time, ms.
    ServiceTime(Stat),
    /// `requests`, `ok`, `throttled`, `errors`, `retries`, `dropped`: counts.
    Count(CountKind),
    /// `throttled_ratio`, `error_ratio`: fraction of requests.
    Ratio(CountKind),
    ThroughputRps,
    GoodputRps,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    /// A percentile in (0, 100], e.g. 99.0 or 99.9.
    Percentile(f64),
    Max,
    Mean,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountKind {
    Requests,
    Ok,
    Throttled,
    Errors,
    Retries,
    Dropped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

/// One agent's part of a plan. The shares of a split add up to the plan exactly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share {
    pub index: u32,
    pub count: u32,
    /// Fraction of the open model's rate (all fractions sum to 1).
    pub rate_fraction: f64,
    /// Closed model VUs at full load (sum = the plan's peak VUs).
    pub vus: u32,
    /// Share of `max_in_flight` (sum = the plan's cap, each at least 1). With the closed
    /// model, which has no cap, this equals `vus`: a VU has one request in flight at most.
    pub max_in_flight: u32,
}
