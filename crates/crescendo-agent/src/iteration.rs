//! One iteration of the scenario: render each step, send it, classify the answer,
//! count it, and retry as the backoff policy says.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crescendo_backoff::{Policy, RateLimitInfo, RetryBudget, RetryConfig, RetryDecision, Signal};
use crescendo_metrics::recorder::Attempt;
use crescendo_metrics::{Outcome, Recorder};
use crescendo_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::request::{PreparedStep, Vars, uses_uuid};
use crate::run::Pacing;

/// Everything an iteration needs, shared by all of one run's tasks.
#[derive(Debug)]
pub(crate) struct RunContext {
    pub(crate) run_id: String,
    pub(crate) agent_id: String,
    pub(crate) base_url: String,
    pub(crate) client: reqwest::Client,
    pub(crate) steps: Vec<PreparedStep>,
    pub(crate) rows: Vec<BTreeMap<String, String>>,
    pub(crate) retry: RetryConfig,
    pub(crate) budget: RetryBudget,
    pub(crate) recorder: Mutex<Recorder>,
    /// Next value of `{seq}`.
    pub(crate) seq: AtomicU64,
    /// Messages to the controller (throttle reports, snapshots).
    pub(crate) outbox: mpsc::Sender<pb::AgentMessage>,
    /// Stops retries and new iterations (not requests already on the wire).
    pub(crate) stop: CancellationToken,
    /// Whether iterations need a `{uuid}`.
    uses_uuid: bool,
    /// This agent's attempts per second over the last snapshot interval, as f64 bits.
    last_rate: AtomicU64,
    /// Local backoff: pauses and quota pacing (coordinated policy).
    pub(crate) pacing: Arc<Pacing>,
    /// A reason to stop the whole run early (e.g. a daily quota), set once.
    pub(crate) abort: Mutex<Option<String>>,
    /// The API's quota as last reported, for the next snapshot.
    pub(crate) last_quota: Mutex<Option<pb::Quota>>,
    /// When the last quota report went to the controller (ms since start; MAX: never).
    last_quota_report: AtomicU64,
    /// Throttle reports sent in the current second, to keep the stream light.
    throttle_window: Mutex<(u64, u32)>,
}

/// Quota reports to the governor are at least this far apart (milliseconds).
const QUOTA_REPORT_EVERY_MS: u64 = 100;

/// At most this many throttle reports a second per agent.
const MAX_THROTTLE_REPORTS_PER_S: u32 = 20;

impl RunContext {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        run_id: String,
        agent_id: String,
        base_url: String,
        client: reqwest::Client,
        steps: Vec<PreparedStep>,
        rows: Vec<BTreeMap<String, String>>,
        retry: RetryConfig,
        recorder: Recorder,
        outbox: mpsc::Sender<pb::AgentMessage>,
        stop: CancellationToken,
        pacing: Arc<Pacing>,
    ) -> Self {
        Self {
            run_id,
            agent_id,
            base_url,
            client,
            uses_uuid: uses_uuid(&steps),
            last_rate: AtomicU64::new(0),
            steps,
            rows,
            budget: RetryBudget::new(retry.retry_budget),
            retry,
            recorder: Mutex::new(recorder),
            seq: AtomicU64::new(0),
            outbox,
            stop,
            pacing,
            abort: Mutex::new(None),
            last_quota: Mutex::new(None),
            last_quota_report: AtomicU64::new(u64::MAX),
            throttle_window: Mutex::new((u64::MAX, 0)),
        }
    }

    /// The run's start on this agent.
    pub(crate) fn t0(&self) -> Instant {
        self.pacing.t0()
    }

    /// Remember the attempts per second of the interval that just closed.
    pub(crate) fn set_rate(&self, rate: f64) {
        self.last_rate.store(rate.to_bits(), Ordering::Relaxed);
    }

    /// Keep the quota the API reported (parsed for failures, and for every answer
    /// under the coordinated policy).
    /// Under the coordinated policy the quota also goes to the controller's governor,
    /// at most once per [`QUOTA_REPORT_EVERY_MS`].
    fn observe_quota(&self, info: &RateLimitInfo) {
        let Some(remaining) = info.remaining else {
            return;
        };
        let at_ms = self.since_start_ms();
        let quota = pb::Quota {
            remaining,
            limit: info.limit,
            reset_s: info.reset.map(|d| d.as_secs_f64()),
            at_ms,
            run_id: self.run_id.clone(),
            limit_key: String::new(),
        };
        *self.last_quota.lock().expect("quota lock") = Some(quota.clone());
        if !self.coordinated() || quota.reset_s.is_none() {
            return;
        }
        let last = self.last_quota_report.load(Ordering::Relaxed);
        let due = last == u64::MAX || at_ms >= last + QUOTA_REPORT_EVERY_MS;
        if due
            && self
                .last_quota_report
                .compare_exchange(last, at_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let message = pb::AgentMessage {
                kind: Some(pb::agent_message::Kind::Quota(quota)),
            };
            // Advisory, like throttle reports: never block the hot path.
            let _ = self.outbox.try_send(message);
        }
    }

    fn coordinated(&self) -> bool {
        self.retry.policy == Policy::Coordinated
    }

    /// Coordinated policy: pause at once on a throttle, before the controller's fleet
    /// decision arrives (quota pacing is the governor's, from the quota reports).
    fn react(&self, outcome: Outcome, info: &RateLimitInfo) {
        if self.coordinated() && outcome == Outcome::Throttled {
            self.pacing
                .pause(info.retry_after.unwrap_or(self.retry.base));
        }
    }

    fn record(&self, attempt: Attempt) {
        self.recorder.lock().expect("recorder lock").record(attempt);
    }

    fn since_start_ms(&self) -> u64 {
        u64::try_from(self.t0().elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn abort_run(&self, reason: String) {
        let mut abort = self.abort.lock().expect("abort lock");
        if abort.is_none() {
            tracing::error!(run_id = %self.run_id, "{reason}");
            *abort = Some(reason);
        }
        self.stop.cancel();
    }

    fn report_throttle(&self, status: u16, info: &RateLimitInfo) {
        let at_ms = self.since_start_ms();
        {
            let mut window = self.throttle_window.lock().expect("throttle lock");
            let second = at_ms / 1000;
            if window.0 != second {
                *window = (second, 0);
            }
            if window.1 >= MAX_THROTTLE_REPORTS_PER_S {
                return;
            }
            window.1 += 1;
        }
        let msg = pb::Throttle {
            run_id: self.run_id.clone(),
            limit_key: String::new(),
            status: u32::from(status),
            retry_after_s: info.retry_after.map(|d| d.as_secs_f64()),
            remaining: info.remaining,
            limit: info.limit,
            reset_s: info.reset.map(|d| d.as_secs_f64()),
            at_ms,
            rate_rps: f64::from_bits(self.last_rate.load(Ordering::Relaxed)),
        };
        let message = pb::AgentMessage {
            kind: Some(pb::agent_message::Kind::Throttle(msg)),
        };
        // Throttle reports are advisory: drop one rather than block the hot path.
        let _ = self.outbox.try_send(message);
    }
}

/// What the iteration knows about where it is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IterationId {
    pub(crate) iteration: u64,
    pub(crate) vu: u64,
    /// When the iteration should have started (its latency is measured from here).
    pub(crate) intended: Instant,
}

/// Run every step of one iteration; stops at the first step that does not succeed.
pub(crate) async fn run_iteration(ctx: Arc<RunContext>, id: IterationId) {
    let seq = ctx.seq.fetch_add(1, Ordering::Relaxed);
    let row = if ctx.rows.is_empty() {
        None
    } else {
        Some(&ctx.rows[(id.iteration % ctx.rows.len() as u64) as usize])
    };
    let vars = Vars {
        seq,
        iteration: id.iteration,
        vu: id.vu,
        agent: &ctx.agent_id,
        uuid: ctx.uses_uuid.then(|| uuid::Uuid::new_v4().to_string()),
        row,
    };
    let mut intended = id.intended;
    for index in 0..ctx.steps.len() {
        if !run_step(&ctx, index, &vars, intended).await {
            return;
        }
        // The next step is due as soon as this one has answered.
        intended = Instant::now();
    }
}

/// Send one step until it succeeds or the policy gives up; true on success.
async fn run_step(ctx: &RunContext, index: usize, vars: &Vars<'_>, intended: Instant) -> bool {
    let step = &ctx.steps[index];
    let mut retries = 0u32;
    ctx.budget.record_first_attempt();
    loop {
        let request = step.build(&ctx.client, &ctx.base_url, vars);
        let sent = Instant::now();
        let result = request.send().await;
        let (outcome, status, info) = match result {
            Ok(response) => {
                let status = response.status().as_u16();
                // Rate-limit headers matter for a failed attempt, and for every
                // answer under the coordinated policy (quota pacing); skip them otherwise.
                let info = if ctx.coordinated() || !step.expected(status) {
                    crescendo_backoff::parse_response(status, response.headers(), SystemTime::now())
                } else {
                    RateLimitInfo::default()
                };
                // Read the whole body: the request is complete only then.
                let body = response.bytes().await;
                let outcome = match body {
                    Err(e) if e.is_timeout() => Outcome::Timeout,
                    Err(_) => Outcome::ConnectError,
                    Ok(_) => classify(step, status, &info),
                };
                (outcome, Some(status), info)
            }
            Err(e) if e.is_timeout() => (Outcome::Timeout, None, RateLimitInfo::default()),
            Err(_) => (Outcome::ConnectError, None, RateLimitInfo::default()),
        };
        let done = Instant::now();
        ctx.record(Attempt {
            step: index,
            outcome,
            status,
            latency: done.duration_since(intended),
            service_time: done.duration_since(sent),
            retry: retries > 0,
        });
        ctx.observe_quota(&info);
        ctx.react(outcome, &info);
        if outcome == Outcome::Ok {
            return true;
        }
        if outcome == Outcome::Throttled {
            ctx.report_throttle(status.unwrap_or(429), &info);
        }
        let signal = match outcome {
            Outcome::Ok => Signal::Success,
            Outcome::Throttled => Signal::Throttle,
            Outcome::ClientError => Signal::ClientError,
            Outcome::ServerError | Outcome::Timeout | Outcome::ConnectError => Signal::ServerError,
        };
        let decision = crescendo_backoff::decide(
            &ctx.retry,
            retries,
            signal,
            &info,
            &ctx.budget,
            &mut rand::rng(),
        );
        match decision {
            RetryDecision::Retry { after } => {
                // A retry never jumps a fleet pause: it would meet the same limit.
                let after = after.max(ctx.pacing.pause_left());
                if !wait(ctx, after).await {
                    return false;
                }
                retries += 1;
            }
            RetryDecision::Abort { reason } => {
                ctx.abort_run(reason);
                return false;
            }
            _ => return false,
        }
    }
}

fn classify(step: &PreparedStep, status: u16, info: &RateLimitInfo) -> Outcome {
    if step.expected(status) {
        return Outcome::Ok;
    }
    match crescendo_backoff::classify(status, info) {
        Signal::Throttle => Outcome::Throttled,
        Signal::ServerError => Outcome::ServerError,
        Signal::ClientError | Signal::Success => Outcome::ClientError,
    }
}

/// Sleep for a retry; false when the run stopped meanwhile.
async fn wait(ctx: &RunContext, after: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(after) => true,
        _ = ctx.stop.cancelled() => false,
    }
}
