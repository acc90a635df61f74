//! The controller as a service (`crescendo-controller serve`): a queue of runs on a
//! pool of agents, schedules, and a history with baselines, kept in
//! [`crescendo_store`] under the data directory.
//!
//! The [`Service`] actor takes [`ServiceCommand`]s from the admin edge and wakes up for
//! schedules; each run it queues goes to the registry like a one-shot run (with the
//! record's id and selector) and is followed by a task of its own (`execute`): the
//! start, a checkpoint of the merged totals every few seconds, the report files in
//! `DIR/runs/<id>/`, the verdict, and the comparison with the plan's baseline.
//!
//! # Layout
//! - `db`: the store behind a mutex, called off the async threads.
//! - `execute`: one run from queue to record.
//! - `schedules`: when schedules fire, and what a missed time becomes.
//! - `notify`: the webhook on finished runs.
//! - `records`: the JSON form of runs and schedules (the admin replies, `--output json`).
//!
//! # Edges
//! Plans come in as text and are validated here (file:line:column errors, nothing is
//! queued); plans that name files (`body_file`, data files) are refused: a service has
//! no plan directory. Records never hold secrets: plans cannot (credentials live on
//! agents).

mod db;
mod execute;
mod notify;
pub(crate) mod records;
mod schedules;

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use crescendo_plan::labels::Labels;
use crescendo_store::{
    NewRun, Origin, Retention, RunFilter, RunRecord, RunState, Schedule, Selector,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::Controller;
use crate::error::ServiceError;
pub(crate) use db::Db;

/// The most runs queued or running at once.
const MAX_QUEUED: usize = 1000;

/// How the service runs what it queues.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// Where the database and `runs/<id>/` live.
    pub data: PathBuf,
    /// A queued run that cannot get its agents within this long is `not-started`.
    pub run_deadline: Duration,
    /// An agent away this long is lost (the controller's heartbeat timeout).
    pub lost_after: Duration,
    /// How much history to keep.
    pub retention: Retention,
    /// The relative change a baseline comparison allows (0.05 = 5 %).
    pub tolerance: f64,
    /// A webhook POSTed on every finished run (`notify`).
    pub notify: Option<String>,
}

/// A plan to queue, and why.
#[derive(Debug, Clone)]
pub(crate) struct Submission {
    pub(crate) plan_text: String,
    /// The file name the text came from, for error locations.
    pub(crate) plan_origin: String,
    pub(crate) agents: u32,
    pub(crate) selector: Labels,
}

/// What to do to one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunAction {
    Show,
    Cancel,
    Rerun,
    Baseline,
}

/// What to do with schedules.
#[derive(Debug, Clone)]
pub(crate) enum ScheduleAction {
    Add(Box<Schedule>),
    List,
    Pause(String),
    Resume(String),
    Remove(String),
    RunNow(String),
}

type Reply<T> = oneshot::Sender<Result<T, ServiceError>>;

/// Requests from the admin edge.
#[derive(Debug)]
pub(crate) enum ServiceCommand {
    Submit {
        submission: Submission,
        reply: Reply<RunRecord>,
    },
    ListRuns {
        filter: RunFilter,
        reply: Reply<Vec<RunRecord>>,
    },
    Run {
        id: String,
        action: RunAction,
        reply: Reply<RunRecord>,
    },
    Trend {
        plan_name: String,
        limit: usize,
        reply: Reply<Vec<RunRecord>>,
    },
    Schedules {
        action: ScheduleAction,
        reply: Reply<(Vec<Schedule>, Option<RunRecord>)>,
    },
}

/// The service's sender, for the admin edge.
pub(crate) type ServiceTx = mpsc::Sender<ServiceCommand>;

/// The service actor.
#[derive(Debug)]
pub struct Service {
    db: Db,
    controller: Controller,
    settings: ServiceSettings,
    shutdown: CancellationToken,
    /// The runs' followers: the service ends once each has recorded its run.
    tracker: TaskTracker,
}

impl Service {
    /// Open the store (refusing a newer schema), mark runs a previous process left
    /// unfinished `interrupted`, and return the service with the channel the admin
    /// edge sends to.
    pub fn open(
        settings: ServiceSettings,
        shutdown: CancellationToken,
    ) -> Result<(ServiceOpening, Vec<String>), ServiceError> {
        let store = crescendo_store::Store::open(&settings.data)?;
        let interrupted = store.interrupt_unfinished(
            "interrupted: the service stopped while the run was queued or in progress",
            Utc::now(),
        )?;
        let (tx, rx) = mpsc::channel(64);
        Ok((
            ServiceOpening {
                db: Db::new(store),
                settings,
                shutdown,
                tx,
                rx,
                interrupted: interrupted.clone(),
            },
            interrupted,
        ))
    }
}

/// An opened store waiting for its controller (the controller needs the service's
/// sender for its admin edge, the service needs the controller).
#[derive(Debug)]
pub struct ServiceOpening {
    db: Db,
    settings: ServiceSettings,
    shutdown: CancellationToken,
    tx: ServiceTx,
    rx: mpsc::Receiver<ServiceCommand>,
    /// Runs a previous process left unfinished, now recorded `interrupted`.
    interrupted: Vec<String>,
}

impl ServiceOpening {
    /// The sender the admin edge needs ([`crate::ControllerSettings::service`]).
    pub fn sender(&self) -> ServiceHandle {
        ServiceHandle(self.tx.clone())
    }

    /// Serve commands and schedules until shut down, then wait (at most `grace`) for
    /// every run's record to be written.
    pub async fn serve(self, controller: Controller, grace: Duration) {
        let tracker = TaskTracker::new();
        let service = Service {
            db: self.db,
            controller,
            settings: self.settings,
            shutdown: self.shutdown,
            tracker: tracker.clone(),
        };
        // The webhook hears of the runs a crash left interrupted too.
        for id in self.interrupted {
            notify::announce(&service.db, &service.settings, &tracker, id);
        }
        service.serve(self.rx).await;
        tracker.close();
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            tracing::warn!("runs still recording after {grace:?}: stopping anyway");
        }
    }
}

/// The admin edge's way to the service.
#[derive(Debug, Clone)]
pub struct ServiceHandle(pub(crate) ServiceTx);

impl Service {
    async fn serve(self, mut commands: mpsc::Receiver<ServiceCommand>) {
        let mut timetable = schedules::Timetable::default();
        loop {
            timetable.fire_due(&self).await;
            let wake = timetable.next_wake();
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                Some(command) = commands.recv() => self.on_command(command, &mut timetable).await,
                _ = sleep_until(wake) => {}
            }
        }
    }

    async fn on_command(&self, command: ServiceCommand, timetable: &mut schedules::Timetable) {
        match command {
            ServiceCommand::Submit { submission, reply } => {
                let _ = reply.send(self.submit(submission, Origin::Submit).await);
            }
            ServiceCommand::ListRuns { filter, reply } => {
                let _ = reply.send(self.db.call(move |s| s.list_runs(&filter)).await);
            }
            ServiceCommand::Run { id, action, reply } => {
                let _ = reply.send(self.run_action(id, action).await);
            }
            ServiceCommand::Trend {
                plan_name,
                limit,
                reply,
            } => {
                let runs = self
                    .db
                    .call(move |s| s.runs_of_plan(&plan_name, limit))
                    .await;
                let _ = reply.send(runs);
            }
            ServiceCommand::Schedules { action, reply } => {
                let _ = reply.send(timetable.act(self, action).await);
            }
        }
    }

    /// Validate and queue a plan. A bad plan is refused with its error: nothing is
    /// queued.
    pub(crate) async fn submit(
        &self,
        submission: Submission,
        origin: Origin,
    ) -> Result<RunRecord, ServiceError> {
        self.queue(submission, origin, None, None).await
    }

    pub(crate) async fn queue(
        &self,
        submission: Submission,
        origin: Origin,
        scheduled_at: Option<chrono::DateTime<Utc>>,
        missed: Option<crescendo_store::Missed>,
    ) -> Result<RunRecord, ServiceError> {
        // Each queued run is a task and a registry entry: a bounded number of them.
        if self.tracker.len() >= MAX_QUEUED {
            return Err(ServiceError::QueueFull(self.tracker.len()));
        }
        let request = execute::request_for(&submission, &self.settings)?;
        let new = NewRun {
            plan_name: request.plan.name.clone(),
            plan_text: submission.plan_text,
            origin,
            agents: submission.agents,
            selector: Selector(submission.selector),
            scheduled_at,
            missed,
        };
        let record = self.db.call(move |s| s.insert_run(&new)).await?;
        tracing::info!(run_id = %record.id, plan = %record.plan_name, "run queued");
        execute::spawn(self, record.clone(), request);
        Ok(record)
    }

    async fn run_action(&self, id: String, action: RunAction) -> Result<RunRecord, ServiceError> {
        let key = id.clone();
        let record = self
            .db
            .call(move |s| s.run(&key))
            .await?
            .ok_or_else(|| ServiceError::NoSuchRun(id.clone()))?;
        match action {
            RunAction::Show => Ok(record),
            RunAction::Cancel => {
                if record.is_finished() {
                    return Err(ServiceError::Finished {
                        id,
                        state: record.state.as_str(),
                    });
                }
                // A run just queued may not have reached the registry yet: try a few
                // times before saying it is not there.
                for _ in 0..20 {
                    if self
                        .controller
                        .cancel_run(&id, "cancelled from the command line")
                        .await?
                    {
                        return Ok(record);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                let key = id.clone();
                let now = self.db.call(move |s| s.run(&key)).await?;
                Err(ServiceError::Finished {
                    id,
                    state: now.map_or("gone", |r| r.state.as_str()),
                })
            }
            RunAction::Rerun => {
                let submission = Submission {
                    plan_text: record.plan_text.clone(),
                    plan_origin: format!("run {id}"),
                    agents: record.agents_wanted,
                    selector: record.selector.0.clone(),
                };
                self.submit(submission, Origin::Rerun { of: id }).await
            }
            RunAction::Baseline => {
                // A baseline is a run that went as planned, with its final summary.
                if !matches!(record.state, RunState::Passed | RunState::Failed)
                    || record.summary.is_none()
                {
                    return Err(ServiceError::BadRequest(format!(
                        "run {id} is {}: a baseline must be a run that passed or failed its thresholds",
                        record.state.as_str()
                    )));
                }
                let key = id.clone();
                self.db
                    .call(move |s| {
                        s.set_baseline(&key)?;
                        s.run(&key)
                    })
                    .await?
                    .ok_or(ServiceError::NoSuchRun(id))
            }
        }
    }
}

async fn sleep_until(wake: Option<tokio::time::Instant>) {
    match wake {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
