//! The state one run's tasks share: the HTTP client, prepared steps, credentials,
//! the data feeder, the recorder, backoff pacing, and reports to the controller.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crescendo_backoff::{Policy, RateLimitInfo, RetryBudget, RetryConfig};
use crescendo_metrics::recorder::Attempt;
use crescendo_metrics::{Outcome, Recorder};
use crescendo_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::auth::Credentials;
use crate::feeder::{Feed, Feeder, Row};
use crate::gate::RequestGate;
use crate::request::{PreparedStep, uses_uuid};
use crate::run::Pacing;

/// What an agent does when its `unique` data rows run out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum OnExhausted {
    /// Start no more iterations; finish the ones in flight and report as at a normal end.
    #[default]
    StopAgent,
    /// Stop the whole run: the agent finishes with "data rows exhausted".
    StopRun,
}

/// No more iterations may start on this agent (see [`RunContext::next_row`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoMoreRows;

/// The parts of a run's context that come from its preparation.
#[derive(Debug)]
pub(crate) struct RunSetup {
    pub(crate) run_id: String,
    pub(crate) agent_id: String,
    pub(crate) base_url: String,
    pub(crate) client: reqwest::Client,
    pub(crate) steps: Vec<PreparedStep>,
    pub(crate) feeder: Feeder,
    pub(crate) on_exhausted: OnExhausted,
    pub(crate) auth: Credentials,
    /// The credential the API's limits apply to (a hash), for throttle and quota reports.
    pub(crate) limit_key: String,
    pub(crate) retry: RetryConfig,
    pub(crate) recorder: Arc<Mutex<Recorder>>,
    pub(crate) outbox: mpsc::Sender<pb::AgentMessage>,
    pub(crate) stop: CancellationToken,
    pub(crate) pacing: Arc<Pacing>,
    pub(crate) gate: RequestGate,
}

/// Everything an iteration needs, shared by all of one run's tasks.
#[derive(Debug)]
pub(crate) struct RunContext {
    pub(crate) run_id: String,
    pub(crate) agent_id: String,
    pub(crate) base_url: String,
    pub(crate) client: reqwest::Client,
    pub(crate) steps: Vec<PreparedStep>,
    /// Rows for iterations.
    pub(crate) feeder: Feeder,
    on_exhausted: OnExhausted,
    /// Tokens for the scenario's requests.
    pub(crate) auth: Credentials,
    limit_key: String,
    pub(crate) retry: RetryConfig,
    pub(crate) budget: RetryBudget,
    pub(crate) recorder: Arc<Mutex<Recorder>>,
    /// Next value of `{seq}`.
    pub(crate) seq: AtomicU64,
    /// Messages to the controller (throttle reports, snapshots).
    pub(crate) outbox: mpsc::Sender<pb::AgentMessage>,
    /// Stops retries and new iterations (not requests already on the wire).
    pub(crate) stop: CancellationToken,
    /// Stops new iterations only (a child of `stop`): cancelled alone when this
    /// agent's unique data rows run out, so iterations in flight still finish.
    pub(crate) no_new_iterations: CancellationToken,
    /// Whether iterations need a `{uuid}`.
    pub(crate) uses_uuid: bool,
    /// This agent's attempts per second over the last snapshot interval, as f64 bits.
    last_rate: AtomicU64,
    /// Local backoff: pauses and quota pacing (coordinated policy).
    pub(crate) pacing: Arc<Pacing>,
    /// Holds requests the schedule does not time during a pause or past the rate cap.
    pub(crate) gate: RequestGate,
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

/// … unless the quota has news ([`quota_news`]): then this far (milliseconds).
const QUOTA_NEWS_EVERY_MS: u64 = 5;

/// Quota headers that tell the governor something at once: a whole-second reset that
/// ticked over (the instant it did pins down the window's end), or a count that jumped
/// back up (a new window).
fn quota_news(previous: &pb::Quota, next: &pb::Quota) -> bool {
    let whole = |r: Option<f64>| r.filter(|r| r.fract() == 0.0);
    let ticked = matches!(
        (whole(previous.reset_s), whole(next.reset_s)),
        (Some(a), Some(b)) if a != b
    );
    let rise = (next.limit.unwrap_or(0.0) / 10.0).max(2.0);
    ticked || next.remaining > previous.remaining + rise
}

/// At most this many throttle reports a second per agent.
const MAX_THROTTLE_REPORTS_PER_S: u32 = 20;

impl RunContext {
    pub(crate) fn new(setup: RunSetup) -> Self {
        let RunSetup {
            run_id,
            agent_id,
            base_url,
            client,
            steps,
            feeder,
            on_exhausted,
            auth,
            limit_key,
            retry,
            recorder,
            outbox,
            stop,
            pacing,
            gate,
        } = setup;
        Self {
            run_id,
            agent_id,
            base_url,
            client,
            uses_uuid: uses_uuid(&steps),
            last_rate: AtomicU64::new(0),
            steps,
            feeder,
            on_exhausted,
            auth,
            limit_key,
            budget: RetryBudget::new(retry.retry_budget),
            retry,
            recorder,
            seq: AtomicU64::new(0),
            outbox,
            no_new_iterations: stop.child_token(),
            stop,
            pacing,
            gate,
            abort: Mutex::new(None),
            last_quota: Mutex::new(None),
            last_quota_report: AtomicU64::new(u64::MAX),
            throttle_window: Mutex::new((u64::MAX, 0)),
        }
    }

    /// The row for the next iteration (`Ok(None)` when the plan has no data), or
    /// [`NoMoreRows`] when no more iterations may start: the rows ran out or cannot
    /// be read, and the run's end is already arranged ([`OnExhausted`]).
    pub(crate) fn next_row(&self) -> Result<Option<Arc<Row>>, NoMoreRows> {
        match self.feeder.next() {
            Feed::NoData => Ok(None),
            Feed::Row(row) => Ok(Some(row)),
            Feed::Exhausted => {
                match self.on_exhausted {
                    OnExhausted::StopAgent => {
                        if !self.no_new_iterations.is_cancelled() {
                            tracing::info!(run_id = %self.run_id, "data rows exhausted: this agent starts no more iterations");
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
    pub(crate) fn observe_quota(&self, info: &RateLimitInfo) {
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
            limit_key: self.limit_key.clone(),
        };
        let previous = self
            .last_quota
            .lock()
            .expect("quota lock")
            .replace(quota.clone());
        if !self.coordinated() || quota.reset_s.is_none() {
            return;
        }
        let last = self.last_quota_report.load(Ordering::Relaxed);
        let news = previous.is_some_and(|p| quota_news(&p, &quota));
        let due = last == u64::MAX
            || at_ms >= last + QUOTA_REPORT_EVERY_MS
            || (news && at_ms >= last + QUOTA_NEWS_EVERY_MS);
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

    pub(crate) fn coordinated(&self) -> bool {
        self.retry.policy == Policy::Coordinated
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
        match outcome {
            Outcome::Throttled if self.pacing.scout_takes(info.retry_after) => return true,
            Outcome::Throttled => self
                .pacing
                .pause(info.retry_after.unwrap_or(self.retry.base)),
            // Only an answer the API meant for the request: an error may come from a
            // gateway, or be a limit in disguise (403).
            Outcome::Ok | Outcome::CheckFailed if self.pacing.scout_got_through(sent) => {
                self.report_opened();
            }
            _ => {}
        }
        false
    }

    /// The scout got through: the controller may end the fleet's pause.
    fn report_opened(&self) {
        let message = pb::AgentMessage {
            kind: Some(pb::agent_message::Kind::Opened(pb::Opened {
                run_id: self.run_id.clone(),
                limit_key: self.limit_key.clone(),
                at_ms: self.since_start_ms(),
            })),
        };
        // Advisory, like throttle reports: never block the hot path.
        let _ = self.outbox.try_send(message);
    }

    pub(crate) fn record(&self, attempt: Attempt) {
        self.recorder.lock().expect("recorder lock").record(attempt);
    }

    fn since_start_ms(&self) -> u64 {
        u64::try_from(self.t0().elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub(crate) fn abort_run(&self, reason: String) {
        let mut abort = self.abort.lock().expect("abort lock");
        if abort.is_none() {
            tracing::error!(run_id = %self.run_id, "{reason}");
            *abort = Some(reason);
        }
        self.stop.cancel();
    }

    pub(crate) fn report_throttle(&self, status: u16, info: &RateLimitInfo) {
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
            limit_key: self.limit_key.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(remaining: f64, reset_s: f64) -> pb::Quota {
        pb::Quota {
            remaining,
            limit: Some(100.0),
            reset_s: Some(reset_s),
            ..pb::Quota::default()
        }
    }

    #[test]
    fn a_whole_second_reset_ticking_over_is_news() {
        assert!(quota_news(&quota(50.0, 2.0), &quota(49.0, 1.0)));
        assert!(!quota_news(&quota(50.0, 2.0), &quota(49.0, 2.0)));
        // Fractional resets change with every answer: only the time-based reports.
        assert!(!quota_news(&quota(50.0, 1.25), &quota(49.0, 1.2)));
    }

    #[test]
    fn a_count_back_up_is_news_a_small_rise_is_not() {
        assert!(quota_news(&quota(3.0, 1.0), &quota(99.0, 1.0)));
        // Answers overtaking each other, or a bucket's trickle.
        assert!(!quota_news(&quota(40.0, 1.0), &quota(45.0, 1.0)));
    }
}
