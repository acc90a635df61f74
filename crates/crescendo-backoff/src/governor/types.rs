//! What goes into the governor and what comes out: its configuration, the agents'
//! reports, the fleet decisions and the events recorded for the report.

use std::time::Duration;

use serde::Serialize;

/// How the governor reacts.
#[derive(Debug, Clone, PartialEq)]
pub struct GovernorConfig {
    /// Fleet rate the plan wants now (updated through [`Governor::set_plan_rate`]).
    pub plan_rate: f64,
    /// Multiplicative decrease on a throttle event (0.7, as AWS adaptive mode).
    pub decrease: f64,
    /// Additive recovery, requests per second gained per second without throttles.
    pub increase_per_s: f64,
    /// Reports within this window after a cut (or before the pause ends) are the same
    /// event: 40 reports from 4 agents make one cut.
    pub cut_window: Duration,
    /// Agents resume over this spread after a pause, not all at once.
    pub resume_jitter: Duration,
    /// The rate never goes below this (0.5 req/s).
    pub min_rate: f64,
    /// Quota pacing spends this fraction of what is left (0.97).
    pub quota_margin: f64,
}

impl GovernorConfig {
    /// The defaults for a plan rate: decrease 0.7, recovery `plan_rate / 20` per second,
    /// cut window 1 s, resume jitter 500 ms, minimum 0.5 req/s, quota margin 0.97.
    pub fn new(plan_rate: f64) -> Self {
        Self {
            plan_rate,
            decrease: 0.7,
            increase_per_s: plan_rate / 20.0,
            cut_window: Duration::from_secs(1),
            resume_jitter: Duration::from_millis(500),
            min_rate: 0.5,
            quota_margin: 0.97,
        }
    }
}

/// An agent's report of one throttled response.
#[derive(Debug, Clone, PartialEq)]
pub struct ThrottleReport {
    pub agent: String,
    /// The credential (or other key) whose server-side counter was hit.
    pub limit_key: String,
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub remaining: Option<f64>,
    pub limit: Option<f64>,
    pub reset: Option<Duration>,
    /// When the response arrived, in run time.
    pub at: Duration,
    /// The reporting agent's own sending rate, requests per second.
    pub agent_rate: f64,
}

/// Quota headers of ordinary responses, sent periodically by agents.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaReport {
    pub agent: String,
    pub limit_key: String,
    pub remaining: f64,
    pub limit: Option<f64>,
    /// Time from `at` until the window resets.
    pub reset: Duration,
    /// When the response arrived, in run time.
    pub at: Duration,
}

/// One fleet-wide decision for one limit key; [`agent_shares`] splits it per agent.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetDecision {
    pub limit_key: String,
    /// Fleet-wide allowed rate (after the pause, when there is one).
    pub rate: f64,
    /// Run time until which the fleet sends nothing on this key.
    pub pause_until: Option<Duration>,
    /// Resumes are staggered over this spread …
    pub resume_spread: Duration,
    /// … or, when set, one agent's request interval apart at most (`agents / rate`):
    /// the pause waits for a quota window known to have reset and the fleet resumes at
    /// a pace, so no herd forms, and agents that send in turn rather than together keep
    /// a window that opens with the first request from idling.
    pub interleave: bool,
    /// One agent resumes before the rest, to find when the API lets requests through
    /// again …
    pub scout: Option<Scout>,
    /// … and once it got through the pause ends now, for every agent (a longer pause an
    /// agent took on its own included).
    pub resume: bool,
    pub reason: String,
    /// Run time at which the decision was taken (pauses are sent relative to it).
    pub at: Duration,
}

/// A whole-second Retry-After only says "within the second before": rounded up, the API
/// may let requests through a second earlier, and on a 2 s window that second is half
/// the quota. On a key without quota headers the scout (the agent whose 429 started the
/// pause) resumes at the earliest moment, at most [`SCOUT_RATE`], takes its 429s without
/// pausing or reporting them, and reports its first answer that is no throttle: the
/// governor then ends the pause for every agent ([`Governor::on_opened`]). A scout that
/// never gets through costs a few 429s; the fleet resumes when the server said.
#[derive(Debug, Clone, PartialEq)]
pub struct Scout {
    pub agent: String,
    /// Run time at which it resumes.
    pub from: Duration,
}

/// A scout sends at most this many requests per second.
pub const SCOUT_RATE: f64 = 10.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A multiplicative decrease after a throttle.
    Cut,
    /// A fleet pause (Retry-After, exhausted quota).
    Pause,
    /// A pause ended early: the scout got through.
    Resume,
    /// An additive (or plateau-probing) increase.
    Recover,
    /// Quota-aware pacing changed the rate.
    QuotaPace,
}

/// One entry of the governor's timeline, for the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GovernorEvent {
    /// Run time, serialized as seconds.
    #[serde(serialize_with = "as_secs")]
    pub at: Duration,
    pub kind: EventKind,
    pub limit_key: String,
    pub old_rate: f64,
    pub new_rate: f64,
    pub reason: String,
    /// Quota-pacing adjustments folded into this event (1 for a single decision): the
    /// event runs from `at` to the last of them, `new_rate` is the last rate announced.
    pub adjustments: u32,
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}
