//! One prepared run on this agent: started after the controller's delay, adjusted by
//! backoff decisions, reporting until it finishes: at the plan's end, on `Stop`, on
//! an abort reason, or when its `unique` data rows run out (`OnExhausted`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crescendo_backoff::{Policy, RetryConfig};
use crescendo_metrics::Recorder;
use crescendo_plan::{Load, Plan, Share};
use crescendo_proto::v1 as pb;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Credentials;
use crate::context::{RunContext, RunSetup};
use crate::gate::RequestGate;
use crate::iteration::{IterationId, run_iteration};
use crate::prepare::PreparedRun;
use crate::request::prepare;
use crate::schedule::{ArrivalSchedule, Limits};

/// Controls of a started run.
#[derive(Debug)]
pub(crate) struct RunHandle {
    pub(crate) run_id: String,
    pacing: Arc<Pacing>,
    stop: CancellationToken,
}

/// Backoff limits of one run, shared by the session (fleet decisions) and the
/// request tasks (local reactions to the API's answers).
#[derive(Debug)]
pub(crate) struct Pacing {
    limits: watch::Sender<Limits>,
    t0: Instant,
    /// Seconds paused since the last snapshot (counted when a pause is set; negative
    /// when a pause counted in an earlier snapshot was cut short).
    paused: std::sync::Mutex<f64>,
    /// While scouting a fleet pause: when this agent resumed and until when it scouts
    /// (seconds since start) …
    scout: std::sync::Mutex<Option<(f64, f64)>>,
    /// … and whether it does, so that every ok answer need not take the lock.
    scouting: AtomicBool,
}

impl Pacing {
    /// Pacing for a run starting at `t0`, with no pause and no rate cap.
    pub(crate) fn new(t0: Instant) -> (Self, watch::Receiver<Limits>) {
        let (limits, rx) = watch::channel(Limits::default());
        let pacing = Self {
            limits,
            t0,
            paused: std::sync::Mutex::new(0.0),
            scout: std::sync::Mutex::new(None),
            scouting: AtomicBool::new(false),
        };
        (pacing, rx)
    }

    pub(crate) fn t0(&self) -> Instant {
        self.t0
    }

    fn since_start(&self) -> f64 {
        Instant::now()
            .saturating_duration_since(self.t0)
            .as_secs_f64()
    }

    /// Hold new iterations for `pause` from now (never shortening a longer pause).
    pub(crate) fn pause(&self, pause: Duration) {
        self.hold(pause, false);
    }

    /// Hold new iterations for `pause` from now, replacing the pause in force even when
    /// that is longer (zero ends it).
    pub(crate) fn replace_pause(&self, pause: Duration) {
        self.hold(pause, true);
    }

    /// Moves the end of the pause to `pause` from now (earlier only when `shorten`),
    /// counting the time added or taken off.
    fn hold(&self, pause: Duration, shorten: bool) {
        let now = self.since_start();
        let until = now + pause.as_secs_f64();
        self.limits.send_if_modified(|limits| {
            let old = limits.not_before.max(now);
            if until <= limits.not_before && !(shorten && old > now) {
                return false;
            }
            *self.paused.lock().expect("paused lock") += until - old;
            limits.not_before = until;
            true
        });
    }

    /// Scout the fleet's pause for `span` after this agent's own pause ends (zero: stop
    /// scouting).
    pub(crate) fn scout(&self, span: Duration) {
        let scout = (!span.is_zero()).then(|| {
            let resume = self.limits.borrow().not_before.max(self.since_start());
            (resume, resume + span.as_secs_f64())
        });
        let mut current = self.scout.lock().expect("scout lock");
        self.scouting.store(scout.is_some(), Ordering::Release);
        *current = scout;
    }

    /// Whether a throttle asking to wait `retry_after` is one a scout takes without
    /// pausing or reporting it: while it scouts, unless the wait runs more than a second
    /// past the scouting (another limit).
    pub(crate) fn scout_takes(&self, retry_after: Option<Duration>) -> bool {
        let now = self.since_start();
        let wait = retry_after.map_or(0.0, |w| w.as_secs_f64());
        self.scout
            .lock()
            .expect("scout lock")
            .is_some_and(|(_, until)| now < until && now + wait <= until + 1.0)
    }

    /// An answer that got through to a request sent at `sent`: true (once) when it
    /// ends a scouting, to be reported. A request sent before the scout resumed
    /// proves nothing about the pause.
    pub(crate) fn scout_got_through(&self, sent: Instant) -> bool {
        if !self.scouting.load(Ordering::Acquire) {
            return false;
        }
        let sent = sent.saturating_duration_since(self.t0).as_secs_f64();
        let mut scout = self.scout.lock().expect("scout lock");
        let through =
            scout.is_some_and(|(resume, until)| sent >= resume && self.since_start() < until);
        if through {
            *scout = None;
            self.scouting.store(false, Ordering::Release);
        }
        through
    }

    /// Notified of every change of the limits (pauses, rate caps) from now on.
    pub(crate) fn changes(&self) -> watch::Receiver<Limits> {
        self.limits.subscribe()
    }

    /// How long the current pause still lasts.
    pub(crate) fn pause_left(&self) -> Duration {
        let left = self.limits.borrow().not_before - self.since_start();
        Duration::try_from_secs_f64(left).unwrap_or(Duration::ZERO)
    }

    /// The fleet governor's rate cap for this agent (requests per second), if any.
    pub(crate) fn max_rate(&self) -> Option<f64> {
        self.limits.borrow().max_rate
    }

    /// Set the fleet governor's rate cap for this agent.
    pub(crate) fn set_max_rate(&self, rate: Option<f64>) {
        self.limits.send_if_modified(|limits| {
            let changed = limits.max_rate != rate;
            limits.max_rate = rate;
            changed
        });
    }

    /// Time paused since the last call; a pause cut short after it was counted is
    /// taken off the next ones.
    fn take_paused(&self) -> Duration {
        let mut paused = self.paused.lock().expect("paused lock");
        if *paused <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(std::mem::take(&mut *paused))
    }
}

impl RunHandle {
    /// Apply a fleet decision.
    pub(crate) fn adjust(&self, adjust: &pb::Adjust) {
        let rate = adjust.max_rate_rps.filter(|r| r.is_finite() && *r >= 0.0);
        self.pacing.set_max_rate(rate);
        let pause = Duration::from_millis(adjust.pause_ms.min(3_600_000));
        if adjust.replace_pause {
            self.pacing.replace_pause(pause);
        } else if !pause.is_zero() {
            self.pacing.pause(pause);
        }
        self.pacing
            .scout(Duration::from_millis(adjust.scout_ms.min(60_000)));
    }

    /// Stop issuing load; the run still drains and reports.
    pub(crate) fn stop(&self) {
        self.stop.cancel();
    }
}

/// Start a prepared run `delay` from now. Its snapshots and `Finished` go to `outbox`.
pub(crate) fn start_run(
    prepared: PreparedRun,
    agent_id: String,
    delay: Duration,
    outbox: mpsc::Sender<pb::AgentMessage>,
) -> RunHandle {
    let t0 = Instant::now() + delay;
    let (pacing, limits_rx) = Pacing::new(t0);
    let pacing = Arc::new(pacing);
    let stop = CancellationToken::new();
    let handle = RunHandle {
        run_id: prepared.run_id.clone(),
        pacing: pacing.clone(),
        stop: stop.clone(),
    };
    tokio::spawn(drive(prepared, agent_id, pacing, limits_rx, stop, outbox));
    handle
}

fn retry_config(plan: &Plan) -> RetryConfig {
    let b = &plan.backoff;
    RetryConfig {
        policy: match b.policy {
            crescendo_plan::Policy::None => Policy::None,
            crescendo_plan::Policy::RetryAfter => Policy::RetryAfter,
            crescendo_plan::Policy::Exponential => Policy::Exponential,
            crescendo_plan::Policy::Coordinated => Policy::Coordinated,
        },
        max_retries: b.max_retries,
        retry_budget: b.retry_budget,
        max_retry_after: b.max_retry_after,
        base: b.base,
        cap: b.cap,
    }
}

async fn drive(
    mut prepared: PreparedRun,
    agent_id: String,
    pacing: Arc<Pacing>,
    limits: watch::Receiver<Limits>,
    stop: CancellationToken,
    outbox: mpsc::Sender<pb::AgentMessage>,
) {
    let t0 = pacing.t0;
    let feeder = prepared.feeder();
    let PreparedRun {
        run_id,
        plan,
        share,
        auth,
        data,
        ..
    } = prepared;
    let finish = |error: String, last_seq: u64| pb::AgentMessage {
        kind: Some(pb::agent_message::Kind::Finished(pb::Finished {
            run_id: run_id.clone(),
            last_seq,
            error,
        })),
    };
    let steps = match prepare(&plan) {
        Ok(steps) => steps,
        Err(e) => {
            let _ = outbox.send(finish(e, 0)).await;
            return;
        }
    };
    let client = match reqwest::Client::builder()
        .timeout(plan.target.timeout)
        .pool_max_idle_per_host(usize::try_from(share.max_in_flight).unwrap_or(1024))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            let _ = outbox.send(finish(format!("http client: {e}"), 0)).await;
            return;
        }
    };
    let feeder = match feeder {
        Ok(feeder) => feeder,
        Err(e) => {
            let _ = outbox.send(finish(e, 0)).await;
            return;
        }
    };
    let recorder = Arc::new(Mutex::new(Recorder::new(
        plan.scenario.steps.iter().map(|s| s.name.clone()),
    )));
    let limit_key = auth.limit_key();
    let ctx = Arc::new(RunContext::new(RunSetup {
        run_id: run_id.clone(),
        agent_id,
        base_url: plan.target.base_url.clone(),
        auth: Credentials::start(auth, client.clone(), &recorder),
        client,
        steps,
        feeder,
        on_exhausted: data.on_exhausted,
        limit_key,
        retry: retry_config(&plan),
        recorder,
        outbox: outbox.clone(),
        stop: stop.clone(),
        pacing: pacing.clone(),
        gate: RequestGate::new(matches!(plan.load, Load::Closed(_))),
    }));
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
            drive_open(&ctx, schedule, &share, limits, &tracker).await;
        }
        Load::Closed(closed) => {
            for vu in 0..share.vus {
                let ctx = ctx.clone();
                let closed = closed.clone();
                tracker.spawn(async move { drive_vu(ctx, closed, share, vu, total).await });
            }
            tokio::select! {
                _ = tokio::time::sleep_until(t0 + total) => {}
                _ = ctx.no_new_iterations.cancelled() => {}
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
    let error = ctx
        .abort
        .lock()
        .expect("abort lock")
        .clone()
        .unwrap_or_default();
    let _ = outbox.send(finish(error, last_seq)).await;
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
    tracker: &TaskTracker,
) {
    let in_flight = Arc::new(Semaphore::new(share.max_in_flight as usize));
    let mut iteration = 0u64;
    loop {
        let current = per_iteration(*limits.borrow_and_update(), ctx.steps.len());
        let Some(due) = schedule.peek(current) else {
            break;
        };
        let at = ctx.t0() + Duration::from_secs_f64(due.at);
        tokio::select! {
            _ = tokio::time::sleep_until(at) => {}
            _ = ctx.no_new_iterations.cancelled() => break,
            // A backoff decision arrived while waiting: reschedule under it.
            Ok(()) = limits.changed() => continue,
        }
        schedule.commit(due);
        match in_flight.clone().try_acquire_owned() {
            Ok(permit) => {
                // The row is taken only for an iteration that runs, so a dropped
                // iteration never uses up a unique row.
                let Ok(row) = ctx.next_row() else {
                    break;
                };
                ctx.recorder.lock().expect("recorder lock").offered();
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
            Err(_) => {
                let mut recorder = ctx.recorder.lock().expect("recorder lock");
                recorder.offered();
                recorder.dropped();
            }
        }
        iteration += 1;
    }
}

async fn drive_vu(
    ctx: Arc<RunContext>,
    closed: crescendo_plan::ClosedLoad,
    share: Share,
    vu: u32,
    total: Duration,
) {
    let mut round = 0u64;
    loop {
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
        ctx.recorder.lock().expect("recorder lock").offered();
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
        let (steps, offered) = {
            let mut recorder = ctx.recorder.lock().expect("recorder lock");
            recorder.paused(ctx.pacing.take_paused());
            recorder.take()
        };
        let attempts: u64 = steps.iter().map(|s| s.stats.counters.requests).sum();
        let interval_s = end_ms.saturating_sub(start_ms) as f64 / 1000.0;
        if interval_s > 0.0 {
            ctx.set_rate(attempts as f64 / interval_s);
        }
        let snapshot = pb::Snapshot {
            run_id: ctx.run_id.clone(),
            seq,
            start_ms,
            end_ms,
            steps: steps.iter().map(crate::wire::step_to_pb).collect(),
            offered,
            last,
            quota: ctx.last_quota.lock().expect("quota lock").take(),
        };
        start_ms = end_ms;
        let message = pb::AgentMessage {
            kind: Some(pb::agent_message::Kind::Snapshot(snapshot)),
        };
        if ctx.outbox.send(message).await.is_err() || last {
            return seq;
        }
    }
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
