//! One prepared run on this agent: started after the controller's delay, adjusted by
//! backoff decisions, reporting until it finishes: at the plan's end, on `Stop` or
//! the agent's shutdown, on an abort reason, when its `unique` data rows run out
//! (`OnExhausted`), or when its part of the plan's `max_total_requests` is spent.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crescendo_backoff::Policy;
use crescendo_metrics::Recorder;
use crescendo_plan::{Load, Share};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Credentials;
use crate::ceiling::Ceiling;
use crate::context::{RunContext, RunSetup};
use crate::failure::RunFailures;
use crate::gate::RequestGate;
use crate::iteration::{IterationId, run_iteration};
use crate::messages::{Adjust, Finished, Snapshot, ToController};
use crate::pacing::Pacing;
use crate::prepare::{PrepareError, PreparedRun};
use crate::reports::Reports;
use crate::request::{StepError, prepare};
use crate::schedule::{ArrivalSchedule, Limits};
use crate::target_client::TargetClient;

/// Controls of a started run.
#[derive(Debug)]
pub(crate) struct RunHandle {
    pub(crate) run_id: String,
    pacing: Arc<Pacing>,
    stop: CancellationToken,
    /// This agent's share; a new one (a lost agent's part redistributed) takes effect
    /// at once.
    share: watch::Sender<Share>,
    /// Why the load stopped before the plan's end on this agent's own account.
    stopped_early: Arc<Mutex<Option<String>>>,
    /// The plan's end on this agent's clock.
    ends_at: Instant,
    /// How long the run may still take once stopped: its requests on the wire finish
    /// within the target's timeout.
    drain: Duration,
}

impl RunHandle {
    /// Apply a fleet decision.
    pub(crate) fn adjust(&self, adjust: &Adjust) {
        self.pacing.set_max_rate(adjust.max_rate);
        if adjust.replace_pause {
            self.pacing.replace_pause(adjust.pause);
        } else if !adjust.pause.is_zero() {
            self.pacing.pause(adjust.pause);
        }
        self.pacing.scout(adjust.scout);
    }

    /// Stop issuing load; the run still drains and reports.
    pub(crate) fn stop(&self) {
        self.stop.cancel();
    }

    /// Stop issuing load before the plan's end for `reason` (a signal, a silent
    /// controller): `Finished` says so, and the controller reports the run as short.
    pub(crate) fn stop_early(&self, reason: String) {
        // (The run's stop token may already be cancelled: it is a child of the
        // agent's root token, which a signal cancels.)
        if Instant::now() < self.ends_at {
            let mut early = self.stopped_early.lock().expect("early-stop lock");
            early.get_or_insert(reason);
        }
        self.stop.cancel();
    }

    /// Take a new share of the run (rate fraction and turn, VUs, in-flight cap).
    pub(crate) fn reshare(&self, share: Share) {
        let _ = self.share.send(share);
    }

    /// Whether the load was told to stop.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// An upper bound of the time from [`stop`](Self::stop) to the run's `Finished`.
    pub(crate) fn drain(&self) -> Duration {
        self.drain
    }
}

/// A run never outlives its handle: when the session that holds it ends, however it
/// ends (a panic, an aborted task), the load stops.
impl Drop for RunHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Start a prepared run `delay` from now on `tracker`. Its snapshots and `Finished`
/// go to `outbox`; cancelling `stop` (or calling [`RunHandle::stop`]) stops its load.
pub(crate) fn start_run(
    prepared: PreparedRun,
    agent_id: String,
    delay: Duration,
    outbox: mpsc::Sender<ToController>,
    stop: CancellationToken,
    tracker: &TaskTracker,
) -> RunHandle {
    let t0 = Instant::now() + delay;
    // The ceilings come from the plan this agent validated: no Adjust lifts them.
    let ceilings = prepared.plan.ceilings_for(&prepared.share);
    let (pacing, limits_rx) = Pacing::new(t0, ceilings.max_rps);
    let pacing = Arc::new(pacing);
    let (share, shares) = watch::channel(prepared.share);
    let stopped_early = Arc::new(Mutex::new(None));
    let handle = RunHandle {
        run_id: prepared.run_id.clone(),
        pacing: pacing.clone(),
        stop: stop.clone(),
        share,
        stopped_early: stopped_early.clone(),
        ends_at: t0 + prepared.plan.duration(),
        // A token fetch and then the request, each within the timeout; the last
        // snapshot and `Finished` follow at once.
        drain: prepared.plan.target.timeout * 2 + Duration::from_secs(1),
    };
    let inputs = RunInputs {
        agent_id,
        pacing,
        stop,
        outbox,
        shares,
        stopped_early,
    };
    tracker.spawn(drive(prepared, inputs, limits_rx));
    handle
}

/// Why a started run could not begin sending.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error(transparent)]
    Steps(#[from] StepError),
    #[error("http client")]
    Client(#[source] reqwest::Error),
    #[error(transparent)]
    Data(#[from] PrepareError),
}

/// What a run gets from the agent besides its preparation.
#[derive(Debug)]
struct RunInputs {
    agent_id: String,
    pacing: Arc<Pacing>,
    stop: CancellationToken,
    outbox: mpsc::Sender<ToController>,
    /// The share in force (see [`RunHandle::reshare`]).
    shares: watch::Receiver<Share>,
    /// Set by [`RunHandle::stop_early`].
    stopped_early: Arc<Mutex<Option<String>>>,
}

/// The run's shared context: steps, HTTP client and feeder prepared, credentials
/// started.
fn context(prepared: &mut PreparedRun, inputs: RunInputs) -> Result<RunContext, StartError> {
    let feeder = prepared.feeder()?;
    let plan = &prepared.plan;
    let steps = prepare(plan)?;
    let max_idle = usize::try_from(prepared.share.max_in_flight.max(prepared.share.vus))
        .unwrap_or(1024)
        .max(1);
    let client = TargetClient::new(plan.target.timeout, max_idle);
    // The token endpoint's client (few requests: reqwest's conveniences are worth it).
    let auth_client = reqwest::Client::builder()
        .timeout(plan.target.timeout)
        .build()
        .map_err(StartError::Client)?;
    let recorder = Arc::new(Mutex::new(Recorder::new(
        plan.scenario.steps.iter().map(|s| s.name.clone()),
    )));
    let retry = crate::from_plan::retry_config(plan);
    let reports = Reports::new(
        prepared.run_id.clone(),
        prepared.auth.limit_key(),
        inputs.outbox,
        inputs.pacing.t0(),
        retry.policy == Policy::Coordinated,
    );
    let setup = RunSetup {
        run_id: prepared.run_id.clone(),
        agent_id: inputs.agent_id,
        auth: Credentials::start(std::mem::take(&mut prepared.auth), auth_client, &recorder),
        client,
        steps,
        feeder,
        on_exhausted: prepared.data.on_exhausted,
        retry,
        recorder,
        stop: inputs.stop,
        pacing: inputs.pacing,
        gate: RequestGate::new(matches!(plan.load, Load::Closed(_))),
        ceiling: Ceiling::new(plan.ceilings_for(&prepared.share)),
    };
    Ok(RunContext::new(setup, reports))
}

async fn drive(mut prepared: PreparedRun, inputs: RunInputs, limits: watch::Receiver<Limits>) {
    let outbox = inputs.outbox.clone();
    let mut shares = inputs.shares.clone();
    let stopped_early = inputs.stopped_early.clone();
    let ctx = match context(&mut prepared, inputs) {
        Ok(ctx) => Arc::new(ctx),
        Err(e) => {
            let finished = Finished::failed(prepared.run_id, 0, &e);
            let _ = outbox.send(ToController::Finished(finished)).await;
            return;
        }
    };
    drop(outbox);
    if ctx.setup.ceiling.spent() {
        // This agent's part of max_total_requests is 0: it sends nothing.
        ctx.ceiling_reached();
    }
    let (plan, share, stop) = (&prepared.plan, prepared.share, &ctx.setup.stop);
    let t0 = ctx.t0();
    tokio::select! {
        _ = tokio::time::sleep_until(t0) => {}
        _ = stop.cancelled() => {}
    }
    let reporting = CancellationToken::new();
    let reporter = tokio::spawn(report_loop(ctx.clone(), reporting.clone()));
    let tracker = TaskTracker::new();
    let total = plan.duration();
    match &plan.load {
        Load::Open(open) => {
            let schedule = ArrivalSchedule::new(open.clone(), &share);
            drive_open(&ctx, schedule, &share, limits, shares, &tracker).await;
        }
        Load::Closed(closed) => {
            // VUs run as the share in force says; a larger share starts more of them.
            let mut started = 0;
            loop {
                let vus = shares.borrow_and_update().vus;
                for vu in started..vus {
                    let ctx = ctx.clone();
                    let closed = closed.clone();
                    let shares = shares.clone();
                    tracker.spawn(async move { drive_vu(ctx, closed, shares, vu, total).await });
                }
                started = started.max(vus);
                tokio::select! {
                    _ = tokio::time::sleep_until(t0 + total) => break,
                    _ = ctx.no_new_iterations.cancelled() => break,
                    Ok(()) = shares.changed() => {}
                }
            }
        }
    }
    if !stop.is_cancelled() && ctx.no_new_iterations.is_cancelled() {
        // This agent's data rows ran out before the end: the iterations in flight
        // finish, retries included (a Stop from the controller still cuts them short).
        tracker.close();
        tracker.wait().await;
    }
    // Load is over: no new retries; requests on the wire finish (bounded by the
    // target's timeout) so every accepted request is counted.
    stop.cancel();
    tracker.close();
    tracker.wait().await;
    reporting.cancel();
    let last_seq = reporter.await.unwrap_or(0);
    let refused = ctx.setup.ceiling.refused();
    if refused > 0 {
        tracing::info!(
            run_id = %prepared.run_id,
            refused,
            "attempts not sent: the request ceiling was reached"
        );
    }
    let error = ctx
        .abort
        .lock()
        .expect("abort lock")
        .clone()
        .unwrap_or_default();
    let stopped_early = stopped_early
        .lock()
        .expect("early-stop lock")
        .clone()
        .unwrap_or_default();
    let finished = Finished {
        run_id: prepared.run_id.clone(),
        last_seq,
        error,
        stopped_early,
    };
    ctx.reports.send(ToController::Finished(finished)).await;
}

/// The governor caps requests per second; an iteration of `steps` steps sends that
/// many requests, so the schedule's cap in iterations per second is the share.
fn per_iteration(limits: Limits, steps: usize) -> Limits {
    Limits {
        max_rate: limits.max_rate.map(|r| r / steps.max(1) as f64),
        ..limits
    }
}

async fn drive_open(
    ctx: &Arc<RunContext>,
    mut schedule: ArrivalSchedule,
    share: &Share,
    mut limits: watch::Receiver<Limits>,
    mut shares: watch::Receiver<Share>,
    tracker: &TaskTracker,
) {
    let mut cap = share.max_in_flight;
    let in_flight = Arc::new(Semaphore::new(cap as usize));
    let mut iteration = 0u64;
    let end = ctx.t0() + schedule.end();
    loop {
        if ctx.no_new_iterations.is_cancelled() {
            break;
        }
        // Never a request after the plan's end, however far behind the schedule is:
        // what was due and not sent is counted as missed.
        if Instant::now() >= end {
            let missed = schedule.remaining();
            if missed > 0 {
                tracing::warn!(
                    missed,
                    "the plan's end came with iterations still due: not sent"
                );
                ctx.setup
                    .recorder
                    .lock()
                    .expect("recorder lock")
                    .missed(missed);
            }
            break;
        }
        let current = per_iteration(*limits.borrow_and_update(), ctx.setup.steps.len());
        let Some(due) = schedule.peek(current) else {
            break;
        };
        let at = ctx.t0() + Duration::from_secs_f64(due.at);
        tokio::select! {
            _ = crate::dispatch::sleep_until(at) => {}
            _ = ctx.no_new_iterations.cancelled() => break,
            // A backoff decision arrived while waiting: reschedule under it.
            Ok(()) = limits.changed() => continue,
            // A lost agent's part came to this one: its turns and cap from now on.
            Ok(()) = shares.changed() => {
                let share = *shares.borrow_and_update();
                let now = Instant::now().saturating_duration_since(ctx.t0());
                schedule.reshare(&share, now);
                if share.max_in_flight > cap {
                    in_flight.add_permits((share.max_in_flight - cap) as usize);
                    cap = share.max_in_flight;
                }
                continue;
            }
        }
        schedule.commit(due);
        let slot = tokio::select! {
            slot = in_flight_slot(&in_flight, at + SLOT_WAIT) => slot,
            _ = ctx.no_new_iterations.cancelled() => break,
        };
        match slot {
            Some(permit) => {
                // The row is taken only for an iteration that runs, so a dropped
                // iteration never uses up a unique row.
                let Ok(row) = ctx.next_row() else {
                    break;
                };
                ctx.setup.recorder.lock().expect("recorder lock").offered();
                let id = IterationId {
                    iteration,
                    vu: 0,
                    intended: at,
                };
                let ctx = ctx.clone();
                tracker.spawn(async move {
                    run_iteration(ctx, id, row).await;
                    drop(permit);
                });
            }
            None => {
                let mut recorder = ctx.setup.recorder.lock().expect("recorder lock");
                recorder.offered();
                recorder.dropped();
            }
        }
        iteration += 1;
    }
}

/// How long past its due time an open-model iteration may wait for an in-flight slot
/// before it is dropped. The dispatcher wakes on the timer's 1 ms ticks, often late
/// under load, and then fires every iteration due meanwhile in one burst: without a
/// wait, those past the cap were dropped before the iterations in flight (answered
/// already, but not yet polled) could give their slots back, so the slots sat idle
/// until the next tick (~28k req/s at 50 slots whatever the core could do). Now an
/// iteration is dropped only when the cap stays full: no slot freed within a tick or
/// two of its due time.
const SLOT_WAIT: Duration = Duration::from_millis(2);

/// An in-flight slot, at once or as soon as one frees before `deadline`; `None` when
/// none did.
async fn in_flight_slot(
    in_flight: &Arc<Semaphore>,
    deadline: Instant,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    if let Ok(permit) = in_flight.clone().try_acquire_owned() {
        return Some(permit);
    }
    if Instant::now() >= deadline {
        return None;
    }
    tokio::time::timeout_at(deadline, in_flight.clone().acquire_owned())
        .await
        .ok()?
        .ok()
}

async fn drive_vu(
    ctx: Arc<RunContext>,
    closed: crescendo_plan::ClosedLoad,
    shares: watch::Receiver<Share>,
    vu: u32,
    total: Duration,
) {
    let mut round = 0u64;
    loop {
        let share = *shares.borrow();
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(ctx.t0());
        if ctx.no_new_iterations.is_cancelled() || elapsed >= total {
            return;
        }
        if vu >= closed.vus_at_for(elapsed, &share) {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
                _ = ctx.no_new_iterations.cancelled() => return,
            }
        }
        let Ok(row) = ctx.next_row() else {
            return;
        };
        ctx.setup.recorder.lock().expect("recorder lock").offered();
        let id = IterationId {
            iteration: round * u64::from(share.vus.max(1)) + u64::from(vu),
            vu: u64::from(vu),
            intended: now,
        };
        run_iteration(ctx.clone(), id, row).await;
        round += 1;
        if !closed.think_time.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(closed.think_time) => {}
                _ = ctx.no_new_iterations.cancelled() => return,
            }
        }
    }
}

/// Send one snapshot a second, aligned to the run's start, and a last one when
/// `done` is cancelled. Returns the last sequence number sent.
async fn report_loop(ctx: Arc<RunContext>, done: CancellationToken) -> u64 {
    let mut seq = 0u64;
    let mut start_ms = 0u64;
    let mut failures = RunFailures::default();
    loop {
        let next = ctx.t0() + Duration::from_secs(seq + 1);
        let last = tokio::select! {
            _ = tokio::time::sleep_until(next) => false,
            _ = done.cancelled() => true,
        };
        seq += 1;
        let end_ms = u64::try_from(
            Instant::now()
                .saturating_duration_since(ctx.t0())
                .as_millis(),
        )
        .unwrap_or(u64::MAX);
        let (steps, offered, send_lag) = {
            let mut recorder = ctx.setup.recorder.lock().expect("recorder lock");
            recorder.paused(ctx.setup.pacing.take_paused());
            let (steps, offered) = recorder.take();
            (steps, offered, recorder.take_send_lag())
        };
        let attempts: u64 = steps.iter().map(|s| s.stats.counters.requests).sum();
        failures.add(&steps);
        if last && let Some(top) = failures.top(5) {
            tracing::warn!(run_id = %ctx.setup.run_id, "errors by kind: {top}");
        }
        let interval_s = end_ms.saturating_sub(start_ms) as f64 / 1000.0;
        if interval_s > 0.0 {
            ctx.reports.set_rate(attempts as f64 / interval_s);
        }
        let snapshot = Snapshot {
            run_id: ctx.setup.run_id.clone(),
            seq,
            start_ms,
            end_ms,
            steps,
            offered,
            last,
            quota: ctx.reports.take_quota(),
            send_lag,
        };
        start_ms = end_ms;
        if !ctx
            .reports
            .send(ToController::Snapshot(Box::new(snapshot)))
            .await
            || last
        {
            return seq;
        }
    }
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
