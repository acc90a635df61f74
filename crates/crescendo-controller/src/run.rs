//! One run, from waiting for agents to the last merged snapshot.
//!
//! Phases: wait for N agents (naming who is missing on timeout) → assign each its
//! share → wait until all are ready → send every agent the same start delay (a
//! barrier, so the fleet starts together whatever the clocks say) → merge snapshots
//! and acknowledge them, print progress each second, mark agents lost when they stay
//! away → stop and release the agents → the outcome.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crescendo_plan::{Plan, Share};
use crescendo_proto::v1 as pb;
use pb::agent_message::Kind as Out;
use pb::controller_message::Kind as In;
use tokio::time::Instant;

use crate::ControllerError;
use crescendo_backoff::governor::GovernorEvent;

use crate::aggregate::Aggregate;
use crate::coordinator::{Command, Coordinator, Seen};
use crate::fleet::{self, Adjustment, Fleet};
use crate::live::LiveMetrics;
use crate::live::watch::{RunWatch, TickInput};
use crate::progress::ProgressMode;
use crate::ship::Shipment;
use crate::thresholds::Aborted;

/// What to run and how.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub plan: Plan,
    /// The plan's TOML text, sent to agents as is.
    pub plan_text: String,
    pub agents: u32,
    /// How long to wait for the agents to attach.
    pub wait_for_agents: Duration,
    /// The start barrier: every agent starts this long after its `Start` arrives.
    pub start_delay: Duration,
    /// An agent away longer than this is lost; the run goes on without it.
    pub lost_after: Duration,
    /// How to show progress each second.
    pub progress: ProgressMode,
    /// Tell agents they may exit when the run is over.
    pub release_agents: bool,
    /// Where the live results go (`--metrics-listen` serves them).
    pub live: LiveMetrics,
    /// Where the plan's `body_file` and data files are read from (the plan's
    /// directory); needed only when the plan names files.
    pub files: Option<crescendo_plan::DirFiles>,
}

impl RunRequest {
    pub fn new(plan: Plan, plan_text: String, agents: u32) -> Self {
        Self {
            plan,
            plan_text,
            agents,
            wait_for_agents: Duration::from_secs(60),
            start_delay: Duration::from_millis(500),
            lost_after: Duration::from_secs(15),
            progress: ProgressMode::None,
            release_agents: false,
            live: LiveMetrics::default(),
            files: None,
        }
    }
}

/// One agent's part in the run.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) host: String,
    pub(crate) share: Share,
    ready: bool,
    pub(crate) finished: Option<pb::Finished>,
    away_since: Option<Instant>,
    pub(crate) lost: bool,
    /// When this agent started its load, on the controller's clock: the arrival of its
    /// first snapshot minus the time that snapshot covers (an upper bound on the start,
    /// so the spread across agents bounds the start skew, whatever their clocks say).
    started_at: Option<Instant>,
}

/// Everything a finished run produced, for reports.
#[derive(Debug)]
pub struct RunOutcome {
    pub run_id: String,
    pub plan: Plan,
    pub plan_text: String,
    pub started_at: SystemTime,
    /// From the start barrier to the end of load (the plan's duration unless stopped).
    pub load_duration: Duration,
    pub(crate) members: BTreeMap<String, Member>,
    pub(crate) aggregate: Aggregate,
    /// Why the run ended early, if it did.
    pub stopped: Option<String>,
    /// Errors agents reported (plan rejected, daily quota …).
    pub agent_errors: Vec<String>,
    pub throttle_reports: u64,
    /// The governor's decisions (coordinated policy).
    pub governor_events: Vec<GovernorEvent>,
    /// Spread of the agents' load starts (see `Member::started_at`).
    pub start_skew: Option<Duration>,
    /// Set when an `abort_on_fail` threshold stopped the run early.
    pub aborted: Option<Aborted>,
}

impl Coordinator {
    pub(crate) async fn execute(
        &mut self,
        request: RunRequest,
    ) -> Result<RunOutcome, ControllerError> {
        let agents = self.wait_for_agents(&request).await?;
        let shares =
            crescendo_plan::split(&request.plan, request.agents).map_err(ControllerError::Plan)?;
        let shipment = Shipment::for_plan(&request.plan, request.files.as_ref())?;
        let run_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let span = tracing::info_span!("run", run_id = %run_id);
        let _enter = span.enter();
        let mut members = BTreeMap::new();
        for (agent, share) in agents.iter().zip(shares) {
            let host = self
                .agents
                .get(agent)
                .map(|a| a.hello.host.clone())
                .unwrap_or_default();
            let assign = pb::Assign {
                run_id: run_id.clone(),
                plan_toml: request.plan_text.clone(),
                share: Some(pb::Share {
                    index: share.index,
                    count: share.count,
                    rate_fraction: share.rate_fraction,
                    vus: share.vus,
                    max_in_flight: share.max_in_flight,
                }),
                files: shipment.files.clone().into_iter().collect(),
                data_streamed: shipment.streams_rows(),
            };
            self.send(agent, In::Assign(assign));
            members.insert(
                agent.clone(),
                Member {
                    host,
                    share,
                    ready: false,
                    finished: None,
                    away_since: None,
                    lost: false,
                    started_at: None,
                },
            );
        }
        let watch = RunWatch::new(
            &request.plan,
            request.progress,
            request.live.clone(),
            &run_id,
            members.len(),
        );
        if shipment.streams_rows() {
            let rows = self.ship_rows(&run_id, &agents, &shipment).await;
            if let Err(e) = rows {
                self.send_stop_to(
                    &run_id,
                    members.keys(),
                    "data rows could not be shipped",
                    false,
                );
                return Err(e);
            }
        }
        let mut run = ActiveRun {
            run_id,
            members,
            aggregate: Aggregate::default(),
            started: None,
            load_end: None,
            stopped: None,
            agent_errors: Vec::new(),
            throttle_reports: 0,
            watch,
            fleet: Fleet::for_plan(&request.plan),
        };
        self.await_ready(&mut run).await?;
        self.drive(&mut run, &request).await;
        let reason = run
            .stopped
            .clone()
            .unwrap_or_else(|| "run complete".to_owned());
        self.send_stop(&run, &reason, request.release_agents);
        let start_skew = run.start_skew();
        let started = run.started.unwrap_or_else(Instant::now);
        let load_end = run.load_end.unwrap_or_else(Instant::now);
        let elapsed = Instant::now().saturating_duration_since(started);
        Ok(RunOutcome {
            run_id: run.run_id,
            plan: request.plan,
            plan_text: request.plan_text,
            started_at: SystemTime::now() - elapsed,
            load_duration: load_end.saturating_duration_since(started),
            members: run.members,
            aggregate: run.aggregate,
            stopped: run.stopped,
            agent_errors: run.agent_errors,
            throttle_reports: run.throttle_reports,
            governor_events: run.fleet.as_ref().map(Fleet::events).unwrap_or_default(),
            start_skew,
            aborted: run.watch.aborted(),
        })
    }

    /// Wait until enough idle agents are attached; pick them in id order.
    async fn wait_for_agents(
        &mut self,
        request: &RunRequest,
    ) -> Result<Vec<String>, ControllerError> {
        let want = request.agents as usize;
        if want == 0 {
            return Err(ControllerError::Args(
                "--agents must be at least 1".to_owned(),
            ));
        }
        let deadline = Instant::now() + request.wait_for_agents;
        let mut announced = usize::MAX;
        loop {
            if self.agents.len() >= want {
                return Ok(self.agents.keys().take(want).cloned().collect());
            }
            request.live.waiting(self.agents.len());
            if matches!(request.progress, ProgressMode::Plain | ProgressMode::Bar)
                && announced != self.agents.len()
            {
                announced = self.agents.len();
                println!("waiting for agents: {}/{want} attached", self.agents.len());
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {
                    let attached: Vec<&str> = self.agents.keys().map(String::as_str).collect();
                    return Err(ControllerError::AgentsMissing {
                        waited: request.wait_for_agents,
                        want,
                        attached: attached.join(", "),
                        missing: want - attached.len(),
                    });
                }
                _ = self.shutdown.cancelled() => return Err(ControllerError::Cancelled("shutdown".into())),
                Some(event) = self.events.recv() => { self.observe(event); }
                Some(command) = self.commands.recv() => {
                    if self.answer_idle(command) {
                        return Err(ControllerError::Cancelled("cancelled while waiting for agents".into()));
                    }
                }
            }
        }
    }

    /// Answer a command outside the load phase; true when it cancels the run.
    fn answer_idle(&self, command: Command) -> bool {
        match command {
            Command::Status { reply } => {
                let _ = reply.send(self.status(Some(("", "waiting", 0.0, 0))));
                false
            }
            Command::Cancel { reply, .. } => {
                let _ = reply.send(pb::CancelReply {
                    cancelled: true,
                    run_id: String::new(),
                });
                true
            }
            Command::Run { reply, .. } => {
                let _ = reply.send(Err(ControllerError::Busy));
                false
            }
        }
    }

    async fn await_ready(&mut self, run: &mut ActiveRun) -> Result<(), ControllerError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !run.members.values().all(|m| m.ready) {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {
                    let slow: Vec<&str> = run.members.iter().filter(|(_, m)| !m.ready).map(|(a, _)| a.as_str()).collect();
                    return Err(ControllerError::NotReady(slow.join(", ")));
                }
                _ = self.shutdown.cancelled() => return Err(ControllerError::Cancelled("shutdown".into())),
                Some(event) = self.events.recv() => match self.observe(event) {
                    Some(Seen::Message { agent, kind: Out::Ready(r) }) if r.run_id == run.run_id => {
                        if let Some(m) = run.members.get_mut(&agent) {
                            m.ready = true;
                        }
                    }
                    Some(Seen::Message { agent, kind: Out::Finished(f) }) if f.run_id == run.run_id => {
                        return Err(ControllerError::AgentRejected { agent, error: f.error });
                    }
                    Some(Seen::Detached { agent }) if run.members.contains_key(&agent) => {
                        return Err(ControllerError::NotReady(format!("{agent} detached")));
                    }
                    _ => {}
                },
                Some(command) = self.commands.recv() => {
                    if self.answer_idle(command) {
                        self.send_stop(run, "cancelled", false);
                        return Err(ControllerError::Cancelled("cancelled before the start".into()));
                    }
                }
            }
        }
        Ok(())
    }

    /// Start the fleet and merge until every agent finished or was lost.
    async fn drive(&mut self, run: &mut ActiveRun, request: &RunRequest) {
        let delay_ms = u64::try_from(request.start_delay.as_millis()).unwrap_or(500);
        for agent in run.members.keys() {
            self.send(
                agent,
                In::Start(pb::Start {
                    run_id: run.run_id.clone(),
                    delay_ms,
                }),
            );
        }
        let started = Instant::now() + request.start_delay;
        run.started = Some(started);
        let planned_end = started + request.plan.duration();
        // Agents drain in-flight requests (bounded by the target's timeout) after the load.
        let drain = request.plan.target.timeout * 2 + request.lost_after + Duration::from_secs(5);
        let mut tick =
            tokio::time::interval_at(started + Duration::from_secs(1), Duration::from_secs(1));
        let mut governor_tick = tokio::time::interval_at(started, fleet::TICK);
        loop {
            if run.done() {
                break;
            }
            let now = Instant::now();
            if run.load_end.is_none() && now >= planned_end {
                run.load_end = Some(planned_end);
            }
            if now >= run.load_end.unwrap_or(planned_end) + drain {
                for (agent, m) in run
                    .members
                    .iter_mut()
                    .filter(|(_, m)| m.finished.is_none() && !m.lost)
                {
                    tracing::warn!(agent = %agent, "agent did not finish in time: counted as lost");
                    m.lost = true;
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
                    run.mark_lost(request.lost_after);
                    let attached = run.members.iter().filter(|(a, m)| !m.lost && self.agents.contains_key(*a)).count();
                    let input = TickInput {
                        started,
                        aggregate: &run.aggregate,
                        attached,
                        members: run.members.len(),
                        governor: run.fleet.as_ref().map(|f| f.live(run.elapsed())),
                        load_running: run.stopped.is_none() && Instant::now() < planned_end,
                    };
                    if let Some(reason) = run.watch.tick(input) {
                        self.stop_fleet(run, &reason);
                    }
                }
                _ = sleep_until_or_never(wake) => self.tick_governor(run),
                _ = governor_tick.tick(), if run.fleet.is_some() => self.tick_governor(run),
                _ = self.shutdown.cancelled() => {
                    self.stop_fleet(run, "controller shutting down");
                    break;
                }
                Some(event) = self.events.recv() => {
                    if let Some(seen) = self.observe(event) {
                        self.on_seen(run, seen);
                    }
                }
                Some(command) = self.commands.recv() => self.answer_running(run, command),
            }
        }
    }

    /// Tell every agent of the run to stop (and, with `release`, that it may exit).
    fn send_stop(&self, run: &ActiveRun, reason: &str, release: bool) {
        self.send_stop_to(&run.run_id, run.members.keys(), reason, release);
    }

    fn send_stop_to<'a>(
        &self,
        run_id: &str,
        agents: impl Iterator<Item = &'a String>,
        reason: &str,
        release: bool,
    ) {
        for agent in agents {
            let stop = pb::Stop {
                run_id: run_id.to_owned(),
                reason: reason.to_owned(),
                release,
            };
            self.send(agent, In::Stop(stop));
        }
    }

    /// End the load early, everywhere, for `reason`.
    fn stop_fleet(&self, run: &mut ActiveRun, reason: &str) {
        run.stop_load(reason);
        self.send_stop(run, reason, false);
    }

    /// The governor's tick: periodic, and at the instants it asks for.
    fn tick_governor(&self, run: &mut ActiveRun) {
        let ok = run.aggregate.ok();
        let (now, shares) = (run.elapsed(), run.shares());
        if let Some(fleet) = &mut run.fleet {
            let adjustments = fleet.on_tick(now, ok, &shares, &run.run_id);
            self.adjust(adjustments);
        }
    }

    fn adjust(&self, adjustments: Vec<Adjustment>) {
        for (agent, adjust) in adjustments {
            self.send(&agent, In::Adjust(adjust));
        }
    }

    fn answer_running(&mut self, run: &mut ActiveRun, command: Command) {
        match command {
            Command::Status { reply } => {
                let elapsed = run.started.map_or(0.0, |s| {
                    Instant::now().saturating_duration_since(s).as_secs_f64()
                });
                let requests = run.aggregate.total().counters.requests;
                let _ = reply.send(self.status(Some((&run.run_id, "running", elapsed, requests))));
            }
            Command::Cancel { reason, reply } => {
                let reason = if reason.is_empty() {
                    "cancelled".to_owned()
                } else {
                    reason
                };
                tracing::warn!("run cancelled: {reason}");
                self.stop_fleet(run, &reason);
                let _ = reply.send(pb::CancelReply {
                    cancelled: true,
                    run_id: run.run_id.clone(),
                });
            }
            Command::Run { reply, .. } => {
                let _ = reply.send(Err(ControllerError::Busy));
            }
        }
    }

    fn on_seen(&mut self, run: &mut ActiveRun, seen: Seen) {
        match seen {
            Seen::Attached {
                agent,
                resume_run_id,
            } => {
                if let Some(m) = run.members.get_mut(&agent) {
                    if resume_run_id == run.run_id {
                        tracing::info!(agent = %agent, "agent reconnected; it resends what was not acknowledged");
                    }
                    m.away_since = None;
                    if m.lost {
                        tracing::warn!(agent = %agent, "lost agent came back; its resent snapshots still count");
                    }
                }
            }
            Seen::Detached { agent } => {
                if let Some(m) = run.members.get_mut(&agent) {
                    m.away_since = Some(Instant::now());
                }
            }
            Seen::Message { agent, kind } => {
                if !run.members.contains_key(&agent) {
                    return;
                }
                match kind {
                    Out::Snapshot(s) if s.run_id == run.run_id => {
                        if s.seq == 1
                            && let Some(m) = run.members.get_mut(&agent)
                            && m.started_at.is_none()
                        {
                            m.started_at =
                                Instant::now().checked_sub(Duration::from_millis(s.end_ms));
                        }
                        match run.aggregate.merge(&agent, &s) {
                            Ok(merged) => {
                                if merged {
                                    run.watch.merged(&run.aggregate);
                                }
                            }
                            Err(e) => {
                                tracing::error!(agent = %agent, seq = s.seq, "snapshot rejected: {e}")
                            }
                        }
                        self.send(
                            &agent,
                            In::Ack(pb::Ack {
                                run_id: run.run_id.clone(),
                                seq: s.seq,
                            }),
                        );
                    }
                    Out::Throttle(t) if t.run_id == run.run_id => {
                        run.throttle_reports += 1;
                        let now = run.elapsed();
                        let shares = run.shares();
                        if let Some(fleet) = &mut run.fleet {
                            let adjustments =
                                fleet.on_throttle(now, &agent, &t, &shares, &run.run_id);
                            self.adjust(adjustments);
                        }
                    }
                    Out::Quota(q) if q.run_id == run.run_id => {
                        let (now, shares) = (run.elapsed(), run.shares());
                        if let Some(fleet) = &mut run.fleet {
                            let adjustments = fleet.on_quota(now, &agent, &q, &shares, &run.run_id);
                            self.adjust(adjustments);
                        }
                    }
                    Out::Opened(o) if o.run_id == run.run_id => {
                        let (now, shares) = (run.elapsed(), run.shares());
                        if let Some(fleet) = &mut run.fleet {
                            let adjustments =
                                fleet.on_opened(now, &agent, &o, &shares, &run.run_id);
                            self.adjust(adjustments);
                        }
                    }
                    Out::Finished(f) if f.run_id == run.run_id => {
                        if !f.error.is_empty() {
                            let message = format!("{agent}: {}", f.error);
                            if !run.agent_errors.contains(&message) {
                                run.agent_errors.push(message);
                            }
                            // An agent that aborts (e.g. a daily quota) stops the whole fleet.
                            if run.stopped.is_none() {
                                self.stop_fleet(run, &f.error);
                            }
                        }
                        if let Some(m) = run.members.get_mut(&agent) {
                            m.finished = Some(f);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// State of the run in progress.
#[derive(Debug)]
struct ActiveRun {
    run_id: String,
    members: BTreeMap<String, Member>,
    aggregate: Aggregate,
    started: Option<Instant>,
    load_end: Option<Instant>,
    stopped: Option<String>,
    agent_errors: Vec<String>,
    throttle_reports: u64,
    /// Progress, live metrics and `abort_on_fail` (crate::live).
    watch: RunWatch,
    /// The governor, under the coordinated policy.
    fleet: Option<Fleet>,
}

impl ActiveRun {
    /// The spread of the agents' starts, when at least two reported one.
    fn start_skew(&self) -> Option<Duration> {
        let starts: Vec<Instant> = self.members.values().filter_map(|m| m.started_at).collect();
        let (first, last) = (starts.iter().min()?, starts.iter().max()?);
        (starts.len() >= 2).then(|| last.saturating_duration_since(*first))
    }

    /// Time since the start barrier.
    fn elapsed(&self) -> Duration {
        self.started.map_or(Duration::ZERO, |s| {
            Instant::now().saturating_duration_since(s)
        })
    }

    /// The shares of the agents still in the run.
    fn shares(&self) -> Vec<(String, Share)> {
        self.members
            .iter()
            .filter(|(_, m)| !m.lost)
            .map(|(a, m)| (a.clone(), m.share))
            .collect()
    }

    /// Every agent finished with all its snapshots merged, or was lost.
    fn done(&self) -> bool {
        self.members.iter().all(|(agent, m)| {
            m.lost
                || m.finished
                    .as_ref()
                    .is_some_and(|f| self.aggregate.complete(agent, f.last_seq))
        })
    }

    fn stop_load(&mut self, reason: &str) {
        if self.stopped.is_none() {
            self.stopped = Some(reason.to_owned());
        }
        let now = Instant::now();
        let end = self.load_end.map_or(now, |e| e.min(now));
        self.load_end = Some(self.started.map_or(end, |s| end.max(s)));
    }

    fn mark_lost(&mut self, after: Duration) {
        for (agent, m) in &mut self.members {
            if !m.lost && m.away_since.is_some_and(|t| t.elapsed() >= after) {
                tracing::warn!(agent = %agent, "agent lost: away for {after:?}");
                m.lost = true;
            }
        }
    }
}

/// Sleeps until `at`, or forever when there is nothing to wake for.
async fn sleep_until_or_never(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
