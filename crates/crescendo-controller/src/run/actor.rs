//! One run's actor: the task that owns a run from its agents' assignment to the last
//! merged snapshot. The registry hands it its agents (with their streams) and routes
//! their messages to its inbox; it tells the registry when it ends, so the agents go
//! back to the pool.
//!
//! Phases: assign each agent its share (and stream data rows) → wait until all are
//! ready → send every agent the same start delay (a barrier, so the fleet starts
//! together whatever the clocks say) → merge snapshots and acknowledge them, show
//! progress each second, mark agents lost when they stay away → stop and release the
//! agents → the outcome.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::guard::Guard;
use super::request::{Member, RunOutcome, RunRequest, RunStarted, StopCause};
use super::state::{ActiveRun, RunNews, Seen};
use crate::aggregate::Aggregate;
use crate::error::ControllerError;
use crate::fleet::{self, Fleet};
use crate::live::watch::{RunWatch, TickInput};
use crate::messages::{AgentTx, Assign, CancelView, FromAgent, RunView, ToAgent};
use crate::ship::{Shipment, ship_rows};

/// How long agents have to answer `Ready` after their assignment.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// What reaches a run's actor.
#[derive(Debug)]
pub(crate) enum RunInput {
    Agent {
        agent: String,
        seen: Seen,
    },
    Cancel {
        reason: String,
        cause: StopCause,
        reply: oneshot::Sender<CancelView>,
    },
    Status {
        reply: oneshot::Sender<RunView>,
    },
}

/// A run's agents, chosen by the registry: id, host and stream, in share order.
pub(crate) type Crew = Vec<(String, String, AgentTx)>;

/// Everything a run's actor is started with.
#[derive(Debug)]
pub(crate) struct RunStart {
    pub(crate) run_id: String,
    pub(crate) request: RunRequest,
    pub(crate) crew: Crew,
    pub(crate) inbox: mpsc::Receiver<RunInput>,
    pub(crate) news: mpsc::Sender<RunNews>,
    pub(crate) reply: oneshot::Sender<Result<RunOutcome, ControllerError>>,
    /// Cancelled when the controller shuts down: the run stops its fleet and drains.
    pub(crate) shutdown: CancellationToken,
}

/// Carry a run out; the registry spawns this on its task tracker.
pub(crate) async fn run_actor(start: RunStart) {
    let RunStart {
        run_id,
        request,
        crew,
        inbox,
        news,
        reply,
        shutdown,
    } = start;
    let span = tracing::info_span!("run", run_id = %run_id);
    let _enter = span.enter();
    let mut actor = RunActor {
        inbox,
        shutdown,
        request,
        news: news.clone(),
    };
    let outcome = actor.execute(run_id.clone(), crew).await;
    // Free the agents first, so a caller that submits again finds them idle.
    let _ = news.send(RunNews::Ended { run_id }).await;
    let _ = reply.send(outcome);
}

#[derive(Debug)]
struct RunActor {
    inbox: mpsc::Receiver<RunInput>,
    shutdown: CancellationToken,
    request: RunRequest,
    news: mpsc::Sender<RunNews>,
}

impl RunActor {
    async fn execute(&mut self, run_id: String, crew: Crew) -> Result<RunOutcome, ControllerError> {
        let request = &self.request;
        let shipment = Shipment::for_plan(&request.plan, request.files.as_ref())?;
        let mut members = BTreeMap::new();
        for ((agent, host, tx), share) in crew.iter().zip(request.shares()) {
            let assign = Assign {
                run_id: run_id.clone(),
                plan_toml: request.plan_text.clone(),
                share: *share,
                files: shipment.files.clone().into_iter().collect(),
                data_streamed: shipment.streams_rows(),
            };
            if let Err(e) = tx.try_send(ToAgent::Assign(Box::new(assign))) {
                tracing::warn!(agent = %agent, "could not assign: {e}");
            }
            let guard = Guard::new(&request.plan, share, request.drain());
            members.insert(
                agent.clone(),
                Member::new(host.clone(), *share, tx.clone(), guard),
            );
        }
        let watch = RunWatch::new(
            &request.plan,
            (request.progress, request.stream.clone()),
            request.live.clone(),
            &run_id,
            members.len(),
        );
        let mut run = ActiveRun {
            run_id,
            members,
            aggregate: Aggregate::default(),
            started: None,
            load_end: None,
            stopped: None,
            stop_cause: None,
            agent_errors: Vec::new(),
            throttle_reports: 0,
            watch,
            fleet: Fleet::for_plan(&request.plan),
            news: self.news.clone(),
            on_agent_loss: request.plan.fleet.on_agent_loss,
            redistributed: 0,
        };
        if shipment.streams_rows() {
            let agents: Vec<(String, AgentTx)> =
                crew.into_iter().map(|(id, _, tx)| (id, tx)).collect();
            if let Err(e) = ship_rows(&run.run_id, &agents, &shipment).await {
                run.send_stop("data rows could not be shipped", false);
                return Err(e);
            }
        }
        self.await_ready(&mut run).await?;
        self.drive(&mut run).await;
        run.watch.publish(&run.aggregate);
        let request = &self.request;
        if let Some(started) = run.started {
            // A last tick with the final figures: the display ends at the run's end (a
            // run that ends between two ticks no longer leaves it at 95 %).
            let input = TickInput {
                started,
                aggregate: &run.aggregate,
                attached: run.attached(),
                members: run.members.len(),
                governor: run.fleet.as_ref().map(|f| f.live(run.elapsed())),
                fleet_paused: run.fleet.as_ref().map(|f| f.paused(run.elapsed())),
                load_running: false,
            };
            let _ = run.watch.tick(input);
        }
        let reason = run
            .stopped
            .clone()
            .unwrap_or_else(|| "run complete".to_owned());
        run.send_stop(&reason, request.release_agents);
        let start_skew = run.start_skew();
        let started = run.started.unwrap_or_else(Instant::now);
        let load_end = run.load_end.unwrap_or_else(Instant::now);
        let elapsed = Instant::now().saturating_duration_since(started);
        Ok(RunOutcome {
            run_id: run.run_id,
            plan: request.plan.clone(),
            plan_text: request.plan_text.clone(),
            started_at: SystemTime::now() - elapsed,
            load_duration: load_end.saturating_duration_since(started),
            members: run.members,
            aggregate: run.aggregate,
            stopped: run.stopped,
            stop_cause: run.stop_cause,
            agent_errors: run.agent_errors,
            throttle_reports: run.throttle_reports,
            governor_events: run.fleet.as_ref().map(Fleet::events).unwrap_or_default(),
            fleet_paused: run
                .fleet
                .as_ref()
                .map(|f| f.paused(load_end.saturating_duration_since(started))),
            start_skew,
            aborted: run.watch.aborted(),
        })
    }

    async fn await_ready(&mut self, run: &mut ActiveRun) -> Result<(), ControllerError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while !run.members.values().all(|m| m.ready) {
            let input = tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {
                    let agents = run.members.iter().filter(|(_, m)| !m.ready).map(|(a, _)| a.clone()).collect();
                    run.send_stop("agents not ready", false);
                    return Err(ControllerError::NotReady { waited: READY_TIMEOUT, agents });
                }
                _ = self.shutdown.cancelled() => {
                    run.send_stop("controller shutting down", false);
                    return Err(ControllerError::Cancelled { phase: "before the start: the controller is shutting down" });
                }
                input = self.inbox.recv() => input.ok_or(ControllerError::Gone)?,
            };
            match input {
                RunInput::Agent { agent, seen } => match seen {
                    Seen::Message(FromAgent::Ready { run_id }) if run_id == run.run_id => {
                        if let Some(m) = run.members.get_mut(&agent) {
                            m.ready = true;
                        }
                    }
                    Seen::Message(FromAgent::Finished(f)) if f.run_id == run.run_id => {
                        run.send_stop("an agent rejected the run", false);
                        return Err(ControllerError::AgentRejected {
                            agent,
                            error: f.error,
                        });
                    }
                    Seen::Detached => {
                        run.send_stop("an agent detached before the start", false);
                        return Err(ControllerError::Detached { agent });
                    }
                    other => run.on_seen(&agent, other),
                },
                RunInput::Cancel { reply, .. } => {
                    let _ = reply.send(CancelView {
                        cancelled: true,
                        run_id: run.run_id.clone(),
                    });
                    run.send_stop("cancelled", false);
                    return Err(ControllerError::Cancelled {
                        phase: "before the start",
                    });
                }
                RunInput::Status { reply } => {
                    let _ = reply.send(view(run, "starting"));
                }
            }
        }
        Ok(())
    }

    /// Start the fleet and merge until every agent finished or was lost.
    async fn drive(&mut self, run: &mut ActiveRun) {
        let request = &self.request;
        for agent in run.members.keys() {
            let start = ToAgent::Start {
                run_id: run.run_id.clone(),
                delay: request.start_delay,
            };
            run.send(agent, start);
        }
        let started = Instant::now() + request.start_delay;
        run.started = Some(started);
        if let Some(tell) = &request.started {
            let _ = tell.send(RunStarted {
                run_id: run.run_id.clone(),
                agents: run.members.keys().cloned().collect(),
                at: SystemTime::now() + request.start_delay,
            });
        }
        let planned_end = started + request.plan.duration();
        let drain = request.drain();
        let mut tick =
            tokio::time::interval_at(started + Duration::from_secs(1), Duration::from_secs(1));
        let mut governor_tick = tokio::time::interval_at(started, fleet::TICK);
        let mut shutting_down = false;
        loop {
            if run.done() {
                break;
            }
            let now = Instant::now();
            if run.load_end.is_none() && now >= planned_end {
                run.load_end = Some(planned_end);
            }
            if now >= run.load_end.unwrap_or(planned_end) + drain {
                let at = run.elapsed();
                for (agent, m) in run
                    .members
                    .iter_mut()
                    .filter(|(_, m)| m.finished.is_none() && !m.lost)
                {
                    tracing::warn!(agent = %agent, "agent did not finish in time: counted as lost");
                    m.mark_lost(
                        at,
                        format!("did not finish within {drain:?} of the load's end"),
                    );
                }
                break;
            }
            // A quota window's reset is paced from its first moment, not the next tick.
            let wake = run
                .fleet
                .as_ref()
                .and_then(|f| f.next_wake(run.elapsed()))
                .map(|at| started + at + Duration::from_millis(1));
            tokio::select! {
                _ = tick.tick() => {
                    let running = run.stopped.is_none() && Instant::now() < planned_end;
                    run.mark_lost(request.lost_after, running);
                    let input = TickInput {
                        started,
                        aggregate: &run.aggregate,
                        attached: run.attached(),
                        members: run.members.len(),
                        governor: run.fleet.as_ref().map(|f| f.live(run.elapsed())),
                        fleet_paused: run.fleet.as_ref().map(|f| f.paused(run.elapsed())),
                        load_running: run.stopped.is_none() && Instant::now() < planned_end,
                    };
                    if let Some(reason) = run.watch.tick(input) {
                        run.stop_fleet(&reason, StopCause::Aborted);
                    }
                }
                _ = sleep_until_or_never(wake) => run.tick_governor(),
                _ = governor_tick.tick(), if run.fleet.is_some() => run.tick_governor(),
                _ = self.shutdown.cancelled(), if !shutting_down => {
                    // Stop the load; the agents' last snapshots still merge while the
                    // drain lasts (the controller bounds its own shutdown).
                    shutting_down = true;
                    run.stop_fleet("controller shutting down", StopCause::Interrupted);
                }
                input = self.inbox.recv() => match input {
                    Some(RunInput::Agent { agent, seen }) => run.on_seen(&agent, seen),
                    Some(RunInput::Cancel { reason, cause, reply }) => {
                        let reason = if reason.is_empty() { "cancelled".to_owned() } else { reason };
                        tracing::warn!("run stopped: {reason}");
                        run.stop_fleet(&reason, cause);
                        let _ = reply.send(CancelView { cancelled: true, run_id: run.run_id.clone() });
                    }
                    Some(RunInput::Status { reply }) => {
                        let _ = reply.send(view(run, "running"));
                    }
                    None => break,
                },
            }
        }
    }
}

/// The run as `status` shows it.
fn view(run: &ActiveRun, state: &'static str) -> RunView {
    RunView {
        run_id: run.run_id.clone(),
        state,
        elapsed_s: run.elapsed().as_secs_f64(),
        requests: run.aggregate.total().counters.requests,
    }
}

/// Sleeps until `at`, or forever when there is nothing to wake for.
pub(crate) async fn sleep_until_or_never(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
