//! One queued run, from the queue to its record: it goes to the registry like a
//! one-shot run (with the record's id, selector and deadline); this task records when
//! it starts and on which agents, checkpoints the merged totals every
//! [`CHECKPOINT_EVERY`], writes the report files to `DIR/runs/<id>/`, records the
//! verdict and compares the run with its plan's baseline.

use std::cell::Cell;
use std::io;
use std::time::Duration;

use chrono::Utc;
use crescendo_plan::PlanFiles;
use crescendo_store::{Comparison, Outcome, RunRecord, RunState};
use tokio::sync::mpsc;

use super::{Db, Service, ServiceSettings, Submission};
use crate::error::{ControllerError, ServiceError};
use crate::live::{LiveMetrics, RunState as LiveState};
use crate::report::verdict::Verdict;
use crate::report::{self, Summary};
use crate::{Controller, RunRequest};

/// The start barrier of the service's runs: `started_at` is this long after the
/// agents are told to start.
const SERVICE_START_DELAY: Duration = Duration::from_millis(250);

/// The most agents one run of the service may ask for.
pub(crate) const MAX_AGENTS_PER_RUN: u32 = 10_000;

/// How often a running run's merged totals are written to the store.
pub(crate) const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);

/// Refuses every read, remembering that the plan asked for one.
#[derive(Debug, Default)]
struct NoDirectory(Cell<bool>);

impl PlanFiles for NoDirectory {
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        self.0.set(true);
        Err(io::Error::new(io::ErrorKind::Unsupported, path.to_owned()))
    }

    fn header(&self, path: &str) -> io::Result<Vec<u8>> {
        self.read(path)
    }
}

/// The run request for a submission: the plan validated and split, or why not.
pub(super) fn request_for(
    submission: &Submission,
    settings: &ServiceSettings,
) -> Result<RunRequest, ServiceError> {
    let origin = &submission.plan_origin;
    let files = NoDirectory::default();
    let plan = match crescendo_plan::parse_with(&submission.plan_text, origin, &files) {
        Ok(plan) => plan,
        Err(_) if files.0.get() => return Err(ServiceError::NamesFiles(origin.clone())),
        Err(e) => return Err(e.into()),
    };
    if submission.agents == 0 || submission.agents > MAX_AGENTS_PER_RUN {
        return Err(ServiceError::BadRequest(format!(
            "--agents {}: expected 1 to {MAX_AGENTS_PER_RUN}",
            submission.agents
        )));
    }
    // Records are shown to every operator: no credentials in the target's URL.
    if crescendo_plan::mask_url_userinfo(&plan.target.base_url) != plan.target.base_url {
        return Err(ServiceError::BadRequest(format!(
            "{origin}: target.base_url carries a user name or password: put credentials in [auth] (they live on the agents)"
        )));
    }
    let mut request = RunRequest::new(plan, submission.plan_text.clone(), submission.agents)?;
    request.selector = submission.selector.clone();
    request.wait_for_agents = settings.run_deadline;
    // Agents attached to a service are warm and near: a shorter barrier than `run`'s.
    request.start_delay = SERVICE_START_DELAY;
    request.lost_after = settings.lost_after;
    Ok(request)
}

/// Follow `record`'s run on its own task.
pub(super) fn spawn(service: &Service, record: RunRecord, mut request: RunRequest) {
    let (started, started_rx) = mpsc::unbounded_channel();
    let live = LiveMetrics::new();
    request.id = Some(record.id.clone());
    request.started = Some(started);
    request.live = live.clone();
    let follow = Follow {
        db: service.db.clone(),
        controller: service.controller.clone(),
        settings: service.settings.clone(),
        shutting_down: service.shutdown.clone(),
        tracker: service.tracker.clone(),
        record,
        live,
    };
    service.tracker.spawn(follow.run(request, started_rx));
}

struct Follow {
    db: Db,
    controller: Controller,
    settings: ServiceSettings,
    shutting_down: tokio_util::sync::CancellationToken,
    tracker: tokio_util::task::TaskTracker,
    record: RunRecord,
    live: LiveMetrics,
}

impl Follow {
    async fn run(
        self,
        request: RunRequest,
        mut started: mpsc::UnboundedReceiver<crate::RunStarted>,
    ) {
        let id = self.record.id.clone();
        self.log(self.db.call({
            let id = id.clone();
            move |s| s.set_state(&id, RunState::WaitingForAgents)
        }))
        .await;
        let run = self.controller.run(request);
        tokio::pin!(run);
        let mut checkpoints = tokio::time::interval(CHECKPOINT_EVERY);
        let result = loop {
            tokio::select! {
                result = &mut run => break result,
                Some(s) = started.recv() => self.started(s).await,
                _ = checkpoints.tick() => {
                    if self.live.state() == LiveState::Running {
                        let (id, partial) = (id.clone(), self.live.checkpoint());
                        self.log(self.db.call(move |db| db.checkpoint(&id, &partial, Utc::now()))).await;
                    }
                }
            }
        };
        // A start told just as the run ended is still recorded.
        if let Ok(s) = started.try_recv() {
            self.started(s).await;
        }
        match result {
            Ok(outcome) => self.finished(outcome).await,
            Err(e) => self.failed(e).await,
        }
        super::notify::announce(
            &self.db,
            &self.settings,
            &self.tracker,
            self.record.id.clone(),
        );
        self.prune().await;
    }

    /// The run's agents were told to start: when the load starts, and on whom.
    async fn started(&self, s: crate::RunStarted) {
        let id = self.record.id.clone();
        let at = chrono::DateTime::<Utc>::from(s.at);
        self.log(self.db.call(move |db| db.mark_started(&id, &s.agents, at)))
            .await;
    }

    /// The run ended with results: reports, verdict, baseline comparison.
    async fn finished(&self, outcome: crate::RunOutcome) {
        let id = self.record.id.clone();
        let dir = self.settings.data.join("runs").join(&id);
        let written = tokio::task::spawn_blocking(move || report::write_all(&outcome, &dir)).await;
        let summary = match written {
            Ok(Ok(summary)) => summary,
            Ok(Err(e)) => {
                return self
                    .fail_with(RunState::Error, &format!("writing the reports: {e}"))
                    .await;
            }
            Err(e) => return self.fail_with(RunState::Error, &e.to_string()).await,
        };
        let state = state_of(summary.outcome);
        let reason =
            (!summary.outcome_reasons.is_empty()).then(|| summary.outcome_reasons.join("; "));
        let value = serde_json::to_value(&summary).unwrap_or_default();
        let code = i32::from(summary.outcome.exit_code());
        self.log(self.db.call({
            let id = id.clone();
            move |s| {
                s.finish(
                    &id,
                    state,
                    reason.as_deref(),
                    Some(&value),
                    Some(code),
                    Utc::now(),
                )
            }
        }))
        .await;
        tracing::info!(run_id = %id, state = state.as_str(), "run finished");
        if matches!(state, RunState::Passed | RunState::Failed) {
            self.compare(&summary).await;
        }
    }

    /// Compare with the plan's baseline, when there is one (and it is another run).
    async fn compare(&self, summary: &Summary) {
        let plan = self.record.plan_name.clone();
        let Ok(Some(base)) = self.db.call(move |s| s.baseline(&plan)).await else {
            return;
        };
        if base.id == self.record.id {
            return;
        }
        let Some(base_summary) = base
            .summary
            .clone()
            .and_then(|v| serde_json::from_value::<Summary>(v).ok())
        else {
            return;
        };
        let c = crate::compare::compare(&base_summary, summary, self.settings.tolerance);
        let comparison = Comparison {
            outcome: if c.regressed() {
                Outcome::Regressed
            } else {
                Outcome::Held
            },
            baseline_run: base.id.clone(),
            details: super::records::comparison_json(&c),
        };
        let id = self.record.id.clone();
        self.log(self.db.call(move |s| s.set_comparison(&id, &comparison)))
            .await;
    }

    /// The run produced no results: not started, cancelled while waiting, or an error.
    async fn failed(&self, e: ControllerError) {
        let state = match &e {
            _ if self.shutting_down.is_cancelled() => RunState::Interrupted,
            ControllerError::AgentsMissing { .. } => RunState::NotStarted,
            ControllerError::Cancelled { .. } => RunState::Cancelled,
            ControllerError::Gone => RunState::Interrupted,
            _ => RunState::Error,
        };
        self.fail_with(state, &e.to_string()).await;
    }

    async fn fail_with(&self, state: RunState, reason: &str) {
        let (id, reason) = (self.record.id.clone(), reason.to_owned());
        tracing::warn!(run_id = %id, state = state.as_str(), "{reason}");
        self.log(
            self.db
                .call(move |s| s.finish(&id, state, Some(&reason), None, None, Utc::now())),
        )
        .await;
    }

    /// Apply retention: drop old runs' rows and report folders (never a baseline).
    async fn prune(&self) {
        let retention = self.settings.retention;
        if retention.keep_runs.is_none() && retention.keep_days.is_none() {
            return;
        }
        let Some(pruned) = self
            .log(self.db.call(move |s| s.prune(retention, Utc::now())))
            .await
        else {
            return;
        };
        for id in pruned {
            let dir = self.settings.data.join("runs").join(&id);
            if let Err(e) = std::fs::remove_dir_all(&dir)
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!("retention: removing {}: {e}", dir.display());
            }
        }
    }

    /// A store error is logged, never fatal to the run: its reports are on disk.
    async fn log<T>(&self, call: impl Future<Output = Result<T, ServiceError>>) -> Option<T> {
        call.await
            .map_err(|e| tracing::error!(run_id = %self.record.id, "recording the run: {e}"))
            .ok()
    }
}

/// The record's state for a verdict.
pub(crate) fn state_of(verdict: Verdict) -> RunState {
    match verdict {
        Verdict::Passed => RunState::Passed,
        Verdict::Failed => RunState::Failed,
        Verdict::Aborted => RunState::Aborted,
        Verdict::Cancelled => RunState::Cancelled,
        Verdict::Interrupted => RunState::Interrupted,
        Verdict::Degraded => RunState::Degraded,
        Verdict::Error => RunState::Error,
    }
}
