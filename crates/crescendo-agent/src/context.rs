//! The state one run's tasks share: what the run was set up with (HTTP client,
//! prepared steps, credentials, data feeder, recorder, backoff pacing, ceilings), its
//! reports to the controller, and what changes while it runs (retry budget, `{seq}`,
//! stops).

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use crescendo_backoff::{Policy, RateLimitInfo, RetryBudget, RetryConfig};
use crescendo_metrics::recorder::Attempt;
use crescendo_metrics::{FailureKind, Outcome, Recorder};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::auth::Credentials;
use crate::ceiling::{Ceiling, Take};
use crate::failure::Failure;
use crate::feeder::{Feed, Feeder, OnExhausted, Row};
use crate::gate::RequestGate;
use crate::pacing::Pacing;
use crate::reports::Reports;
use crate::request::{PreparedStep, uses_uuid};
use crate::target_client::TargetClient;

/// No more iterations may start on this agent (see [`RunContext::next_row`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoMoreRows;

/// What a run is set up with before it starts (from its preparation and its handle).
#[derive(Debug)]
pub(crate) struct RunSetup {
    pub(crate) run_id: String,
    pub(crate) agent_id: String,
    /// Sends the load's requests (with the target's per-attempt timeout).
    pub(crate) client: TargetClient,
    pub(crate) steps: Vec<PreparedStep>,
    /// Rows for iterations.
    pub(crate) feeder: Feeder,
    pub(crate) on_exhausted: OnExhausted,
    /// Tokens for the scenario's requests.
    pub(crate) auth: Credentials,
    pub(crate) retry: RetryConfig,
    pub(crate) recorder: Arc<Mutex<Recorder>>,
    /// Stops retries and new iterations (not requests already on the wire).
    pub(crate) stop: CancellationToken,
    /// Local backoff: pauses, the fleet's rate cap, scouting (coordinated policy).
    pub(crate) pacing: Arc<Pacing>,
    /// Holds requests the schedule does not time during a pause or past the rate cap.
    pub(crate) gate: RequestGate,
    /// The plan's hard ceilings for this agent, taken before every request.
    pub(crate) ceiling: Ceiling,
}

/// Everything an iteration needs, shared by all of one run's tasks.
#[derive(Debug)]
pub(crate) struct RunContext {
    pub(crate) setup: RunSetup,
    /// Snapshots, throttle and quota reports, `Finished`: the run's outbox.
    pub(crate) reports: Reports,
    pub(crate) budget: RetryBudget,
    /// Next value of `{seq}`.
    pub(crate) seq: AtomicU64,
    /// Stops new iterations only (a child of `stop`): cancelled alone when this
    /// agent's unique data rows run out, so iterations in flight still finish.
    pub(crate) no_new_iterations: CancellationToken,
    /// Whether iterations need a `{uuid}`.
    pub(crate) uses_uuid: bool,
    /// A reason to stop the whole run early (e.g. a daily quota), set once.
    pub(crate) abort: Mutex<Option<String>>,
}

impl RunContext {
    pub(crate) fn new(setup: RunSetup, reports: Reports) -> Self {
        Self {
            reports,
            budget: RetryBudget::new(setup.retry.retry_budget),
            seq: AtomicU64::new(0),
            no_new_iterations: setup.stop.child_token(),
            uses_uuid: uses_uuid(&setup.steps),
            abort: Mutex::new(None),
            setup,
        }
    }

    /// The row for the next iteration (`Ok(None)` when the plan has no data), or
    /// [`NoMoreRows`] when no more iterations may start: the rows ran out or cannot
    /// be read, and the run's end is already arranged ([`OnExhausted`]).
    pub(crate) fn next_row(&self) -> Result<Option<Arc<Row>>, NoMoreRows> {
        match self.setup.feeder.next() {
            Feed::NoData => Ok(None),
            Feed::Row(row) => Ok(Some(row)),
            Feed::Exhausted => {
                match self.setup.on_exhausted {
                    OnExhausted::StopAgent => {
                        if !self.no_new_iterations.is_cancelled() {
                            tracing::info!(run_id = %self.setup.run_id, "data rows exhausted: this agent starts no more iterations");
                        }
                        self.no_new_iterations.cancel();
                    }
                    OnExhausted::StopRun => self.abort_run("data rows exhausted".to_owned()),
                }
                Err(NoMoreRows)
            }
            Feed::Failed(reason) => {
                self.abort_run(reason);
                Err(NoMoreRows)
            }
        }
    }

    /// Take one request from this agent's ceilings right before sending it (waiting for
    /// its slot under `max_rps`); false when it must not be sent: the requests are spent
    /// or the run stopped. Once the last request is taken no new iteration starts, and
    /// the iterations in flight end at their next attempt.
    pub(crate) async fn take_request(&self) -> bool {
        match self.setup.ceiling.take(&self.setup.stop).await {
            Take::Send { last } => {
                if last {
                    self.ceiling_reached();
                }
                true
            }
            Take::Spent => {
                self.ceiling_reached();
                false
            }
            Take::Stopped => false,
        }
    }

    /// The request ceiling is reached: like rows running out, no new iterations (the
    /// run ends without an error once those in flight are done).
    pub(crate) fn ceiling_reached(&self) {
        if !self.no_new_iterations.is_cancelled() {
            tracing::info!(
                run_id = %self.setup.run_id,
                "request ceiling reached: this agent's part of the plan's max_total_requests is spent, it starts no more iterations"
            );
        }
        self.no_new_iterations.cancel();
    }

    /// The run's start on this agent.
    pub(crate) fn t0(&self) -> Instant {
        self.setup.pacing.t0()
    }

    pub(crate) fn coordinated(&self) -> bool {
        self.setup.retry.policy == Policy::Coordinated
    }

    /// Coordinated policy: pause at once on a throttle, before the controller's fleet
    /// decision arrives (quota pacing is the governor's, from the quota reports). A
    /// scout takes its throttles without pausing, and reports the first answer that
    /// gets through to a request it sent after it resumed. True when the scout took
    /// a throttle: it is expected, and no news to report.
    pub(crate) fn react(&self, outcome: Outcome, info: &RateLimitInfo, sent: Instant) -> bool {
        if !self.coordinated() {
            return false;
        }
        let pacing = &self.setup.pacing;
        match outcome {
            Outcome::Throttled if pacing.scout_takes(info.retry_after) => return true,
            Outcome::Throttled => pacing.pause(info.retry_after.unwrap_or(self.setup.retry.base)),
            // Only an answer the API meant for the request: an error may come from a
            // gateway, or be a limit in disguise (403).
            Outcome::Ok | Outcome::CheckFailed if pacing.scout_got_through(sent) => {
                self.reports.opened();
            }
            _ => {}
        }
        false
    }

    /// Count one attempt and, when it failed, why (see `crate::failure`).
    pub(crate) fn record(&self, attempt: Attempt, failure: Option<Failure>) {
        let kind = failure
            .as_ref()
            .map(|f| FailureKind::new(attempt.outcome, attempt.status, &f.message));
        let mut recorder = self.setup.recorder.lock().expect("recorder lock");
        recorder.record(attempt);
        if let (Some(kind), Some(failure)) = (kind, failure) {
            recorder.record_failure(attempt.step, kind, unix_ms(), || failure.sample());
        }
    }

    pub(crate) fn abort_run(&self, reason: String) {
        let mut abort = self.abort.lock().expect("abort lock");
        if abort.is_none() {
            tracing::error!(run_id = %self.setup.run_id, "{reason}");
            *abort = Some(reason);
        }
        self.setup.stop.cancel();
    }
}

/// Now, in milliseconds since the Unix epoch.
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
