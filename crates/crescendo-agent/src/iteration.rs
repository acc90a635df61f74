//! One iteration of the scenario: render each step, send it with the run's token,
//! classify the answer, check and capture its body, count it, and retry as the
//! backoff policy says.
//!
//! A 401 to a refreshable (OAuth) token drops that token, fetches a new one and
//! sends the same request once more; the 401 is not an attempt with an outcome (it
//! counts `auth_refreshes`), the resent request is. A second 401 is a client error.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use crescendo_backoff::{RateLimitInfo, RetryDecision, Signal};
use crescendo_metrics::Outcome;
use crescendo_metrics::recorder::Attempt;
use tokio::time::Instant;

use crate::capture;
use crate::context::RunContext;
use crate::failure::{self, Failure};
use crate::feeder::Row;
use crate::request::{PreparedStep, Vars};
use crate::target_client::SendError;

/// What the iteration knows about where it is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IterationId {
    pub(crate) iteration: u64,
    pub(crate) vu: u64,
    /// When the iteration should have started (its latency is measured from here).
    pub(crate) intended: Instant,
}

/// Run every step of one iteration with its data `row`; stops at the first step
/// that does not succeed (including a failed check).
pub(crate) async fn run_iteration(ctx: Arc<RunContext>, id: IterationId, row: Option<Arc<Row>>) {
    let seq = ctx.seq.fetch_add(1, Ordering::Relaxed);
    let mut vars = Vars {
        seq,
        iteration: id.iteration,
        vu: id.vu,
        agent: &ctx.setup.agent_id,
        uuid: ctx.uses_uuid.then(|| uuid::Uuid::new_v4().to_string()),
        row: row.as_deref(),
        captured: Vec::new(),
    };
    let mut intended = id.intended;
    for index in 0..ctx.setup.steps.len() {
        if !run_step(&ctx, index, &mut vars, intended).await {
            return;
        }
        // The next step is due as soon as this one has answered.
        intended = Instant::now();
    }
}

/// One attempt as counted.
#[derive(Debug)]
struct Answer {
    outcome: Outcome,
    status: Option<u16>,
    info: RateLimitInfo,
    /// When the counted request was sent (after any token fetch and 401 refresh).
    sent: Instant,
    /// Variables captured from the body (only for `Outcome::Ok`).
    captured: Vec<(String, String)>,
    /// No token could be obtained, so nothing was sent: the outcome is the token
    /// endpoint's, the API said nothing (no quota, no throttle report, no retry).
    no_token: bool,
    /// Why it failed (`None` for `Ok` and `Throttled`).
    failure: Option<Failure>,
}

/// Send one step until it succeeds or the policy gives up; true on success.
async fn run_step(
    ctx: &RunContext,
    index: usize,
    vars: &mut Vars<'_>,
    mut intended: Instant,
) -> bool {
    let mut retries = 0u32;
    ctx.budget.record_first_attempt();
    loop {
        let admitted = if retries == 0 {
            let admitted = ctx
                .setup
                .gate
                .admit(&ctx.setup.pacing, index, &ctx.setup.stop)
                .await;
            if ctx.setup.gate.paces() {
                // A closed-model VU intends its request when its own pacing lets it go:
                // that wait is the client keeping to the fleet's rate, not the API's
                // latency. A retry's wait still counts, from here.
                intended = Instant::now();
            }
            admitted
        } else {
            ctx.setup
                .gate
                .admit_retry(&ctx.setup.pacing, index, &ctx.setup.stop)
                .await
        };
        if !admitted {
            return false;
        }
        // A retry is intended when its wait ends (its lag is the dispatch's, not the
        // backoff's).
        let due = if retries == 0 {
            intended
        } else {
            Instant::now()
        };
        let Some(answer) = attempt(ctx, index, vars).await else {
            return false;
        };
        let Answer {
            outcome,
            status,
            info,
            sent,
            captured,
            no_token,
            failure,
        } = answer;
        let done = Instant::now();
        let attempt = Attempt {
            step: index,
            outcome,
            status,
            latency: done.duration_since(intended),
            service_time: done.duration_since(sent),
            retry: retries > 0,
            send_lag: (!no_token).then(|| sent.saturating_duration_since(due)),
        };
        ctx.record(attempt, failure);
        if no_token {
            // The token provider already waited out throttles; the iteration ends. A
            // closed-model VU, which no schedule spaces, waits out the provider's
            // failure hold before its next iteration rather than spin through it.
            if ctx.setup.gate.paces() {
                wait(ctx, crate::auth::oauth::FAILURE_HOLD).await;
            }
            return false;
        }
        ctx.reports.observe_quota(&info);
        let scouted = ctx.react(outcome, &info, sent);
        match outcome {
            Outcome::Ok => {
                vars.captured.extend(captured);
                return true;
            }
            // The API answered as expected but not what the scenario needs: the
            // iteration cannot go on, and resending would not change the answer.
            Outcome::CheckFailed => return false,
            Outcome::Throttled if !scouted => ctx.reports.throttle(status.unwrap_or(429), &info),
            _ => {}
        }
        let signal = match outcome {
            Outcome::Ok => Signal::Success,
            Outcome::Throttled => Signal::Throttle,
            Outcome::ClientError | Outcome::CheckFailed => Signal::ClientError,
            Outcome::ServerError | Outcome::Timeout | Outcome::ConnectError => Signal::ServerError,
        };
        let decision = crescendo_backoff::decide(
            &ctx.setup.retry,
            retries,
            signal,
            &info,
            &ctx.budget,
            &mut rand::rng(),
        );
        match decision {
            RetryDecision::Retry { after } => {
                // A retry never jumps a fleet pause (it would meet the same limit): the
                // gate holds it until the pause ends, early if the fleet resumes.
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

/// Send step `index` once (twice after a 401 to a refreshable token) and classify
/// the answer. `None` when the run stopped while waiting for a token or for the rate
/// ceiling, or when the request ceiling forbids sending (each send takes one).
async fn attempt(ctx: &RunContext, index: usize, vars: &Vars<'_>) -> Option<Answer> {
    let step = &ctx.setup.steps[index];
    let mut refreshed = false;
    loop {
        let asked = Instant::now();
        let token = match ctx.setup.auth.token(&ctx.setup.stop).await {
            Ok(token) => token,
            Err(e) => {
                return Some(Answer {
                    outcome: e.outcome()?,
                    status: None,
                    info: RateLimitInfo::default(),
                    sent: asked,
                    captured: Vec::new(),
                    no_token: true,
                    failure: Some(failure::no_token(&e)),
                });
            }
        };
        let request = step.build(vars, token.as_ref());
        if !ctx.take_request().await {
            return None;
        }
        let sent = Instant::now();
        let sending = match request {
            Ok(request) => ctx.setup.client.send(request).await,
            Err(e) => Err(SendError::Build(e)),
        };
        let answer = match sending {
            Ok(answer) => answer,
            Err(e) => return Some(transport_failure(ctx, &e, sent)),
        };
        let status = answer.status.as_u16();
        if status == 401 && !refreshed && ctx.setup.auth.refreshable() && !step.expected(status) {
            if let Some(token) = &token {
                ctx.setup.auth.invalidate(token);
            }
            ctx.setup
                .recorder
                .lock()
                .expect("recorder lock")
                .auth_refreshed(index);
            refreshed = true;
            continue;
        }
        // Rate-limit headers matter for a failed attempt, and for every answer under
        // the coordinated policy (quota pacing); skip them otherwise.
        let info = if ctx.coordinated() || !step.expected(status) {
            crescendo_backoff::parse_response(status, &answer.headers, SystemTime::now())
        } else {
            RateLimitInfo::default()
        };
        // The client read the whole body: the request is complete only then.
        let body = answer.body;
        let (outcome, captured, failure) = judge(step, status, &info, &body, vars);
        return Some(Answer {
            outcome,
            status: Some(status),
            info,
            sent,
            captured,
            no_token: false,
            failure,
        });
    }
}

/// The outcome of an answer, with its captures when it succeeded and why when it
/// failed (a throttle is expected: no why).
fn judge(
    step: &PreparedStep,
    status: u16,
    info: &RateLimitInfo,
    body: &[u8],
    vars: &Vars<'_>,
) -> (Outcome, Vec<(String, String)>, Option<Failure>) {
    if !step.expected(status) {
        let outcome = match crescendo_backoff::classify(status, info) {
            Signal::Throttle => return (Outcome::Throttled, Vec::new(), None),
            Signal::ServerError => Outcome::ServerError,
            Signal::ClientError | Signal::Success => Outcome::ClientError,
        };
        return (outcome, Vec::new(), Some(failure::response(status, body)));
    }
    match capture::inspect(body, &step.captures, &step.checks, |t| vars.render(t)) {
        Ok(captured) => (Outcome::Ok, captured, None),
        Err(why) => {
            tracing::debug!(failure = %why, "check failed");
            let failure = failure::check_failed(status, &why, body);
            (Outcome::CheckFailed, Vec::new(), Some(failure))
        }
    }
}

fn transport_failure(ctx: &RunContext, e: &SendError, sent: Instant) -> Answer {
    Answer {
        outcome: if matches!(e, SendError::Timeout) {
            Outcome::Timeout
        } else {
            Outcome::ConnectError
        },
        status: None,
        info: RateLimitInfo::default(),
        sent,
        captured: Vec::new(),
        no_token: false,
        failure: Some(failure::transport(e, ctx.setup.client.timeout())),
    }
}

/// Sleep for a retry; false when the run stopped meanwhile.
async fn wait(ctx: &RunContext, after: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(after) => true,
        _ = ctx.setup.stop.cancelled() => false,
    }
}
