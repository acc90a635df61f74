//! The `Admin` gRPC service: `status` and `cancel` go to the registry; the service's
//! calls (submit, runs, trend, schedules) go to [`crate::service`], and answer
//! UNIMPLEMENTED on a one-shot `run`. Every call passes the admin token first; records
//! travel as JSON ([`crate::service::records`]).

use std::str::FromStr;

use chrono::Utc;
use crescendo_proto::v1 as pb;
use crescendo_store::{Missed, RunFilter, RunState, Schedule, Selector, When};
use tokio::sync::{mpsc, oneshot};
use tonic::{Request, Response, Status};

use crate::certs::Role;
use crate::error::{ControllerError, ServiceError};
use crate::registry::Command;
use crate::run::request::StopCause;
use crate::security::{Gate, refuse_role, require_operator};
use crate::service::records::{run_json, schedule_json};
use crate::service::{RunAction, ScheduleAction, ServiceCommand, ServiceHandle, Submission};
use crate::wire;

/// At most this many runs in one `runs list` or `trend` answer.
const MAX_LIST: usize = 1000;

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Self {
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        match e {
            ServiceError::Plan(_)
            | ServiceError::NamesFiles(_)
            | ServiceError::Labels(_)
            | ServiceError::Schedule(_)
            | ServiceError::BadRequest(_) => Status::invalid_argument(message),
            ServiceError::NoSuchRun(_) | ServiceError::NoSuchSchedule(_) => {
                Status::not_found(message)
            }
            ServiceError::Controller(e) if e.is_bad_input() => Status::invalid_argument(message),
            ServiceError::Controller(e) => e.into(),
            ServiceError::Internal(_) => Status::internal(message),
            ServiceError::QueueFull(_) => Status::resource_exhausted(message),
            ServiceError::Finished { .. } | ServiceError::Store(_) => {
                Status::failed_precondition(message)
            }
        }
    }
}

/// The `Admin` service.
#[derive(Debug)]
pub(crate) struct AdminService {
    commands: mpsc::Sender<Command>,
    /// The admin token.
    gate: Gate,
    /// Mutual TLS: an agent's certificate may not operate.
    client_auth: bool,
    service: Option<ServiceHandle>,
}

impl AdminService {
    pub(crate) fn new(
        commands: mpsc::Sender<Command>,
        gate: Gate,
        client_auth: bool,
        service: Option<ServiceHandle>,
    ) -> Self {
        Self {
            commands,
            gate,
            client_auth,
            service,
        }
    }

    /// The admin token; under mutual TLS also a certificate that is not an agent's, or,
    /// without an admin token, one that is an operator's.
    fn authorize<T>(&self, request: &Request<T>, call: &str) -> Result<(), Status> {
        self.gate.check(request, call)?;
        match (self.client_auth, self.gate.is_set()) {
            (false, _) => Ok(()),
            (true, true) => refuse_role(request, Role::Agent, call),
            (true, false) => require_operator(request, call),
        }
    }

    async fn command(&self, command: Command) -> Result<(), ControllerError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| ControllerError::Gone)
    }

    /// Ask the service; UNIMPLEMENTED without one.
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, ServiceError>>) -> ServiceCommand,
    ) -> Result<T, Status> {
        let Some(service) = &self.service else {
            return Err(Status::unimplemented(
                "this controller runs one plan (`run`); queues, schedules and history need `crescendo-controller serve`",
            ));
        };
        let (reply, rx) = oneshot::channel();
        service
            .0
            .send(make(reply))
            .await
            .map_err(|_| Status::from(ControllerError::Gone))?;
        Ok(rx
            .await
            .map_err(|_| Status::from(ControllerError::Gone))??)
    }
}

fn selector(text: &str) -> Result<crescendo_plan::labels::Labels, Status> {
    crescendo_plan::labels::parse_labels(text)
        .map_err(|e| Status::invalid_argument(format!("selector: {e}")))
}

fn json(v: &serde_json::Value) -> String {
    v.to_string()
}

#[tonic::async_trait]
impl pb::admin_server::Admin for AdminService {
    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusReply>, Status> {
        self.authorize(&request, "status")?;
        let (reply, rx) = oneshot::channel();
        self.command(Command::Status { reply }).await?;
        let status = rx.await.map_err(|_| ControllerError::Gone)?;
        Ok(Response::new(wire::status_reply(status)))
    }

    async fn cancel(
        &self,
        request: Request<pb::CancelRequest>,
    ) -> Result<Response<pb::CancelReply>, Status> {
        self.authorize(&request, "cancel")?;
        let (reply, rx) = oneshot::channel();
        let reason = request.into_inner().reason;
        self.command(Command::Cancel {
            only: None,
            reason,
            cause: StopCause::Cancelled,
            reply,
        })
        .await?;
        let answer = rx.await.map_err(|_| ControllerError::Gone)?;
        Ok(Response::new(wire::cancel_reply(answer)))
    }

    async fn submit(
        &self,
        request: Request<pb::SubmitRequest>,
    ) -> Result<Response<pb::RunReply>, Status> {
        self.authorize(&request, "submit")?;
        let r = request.into_inner();
        let submission = Submission {
            selector: selector(&r.selector)?,
            plan_text: r.plan_text,
            plan_origin: r.plan_origin,
            agents: r.agents,
        };
        let record = self
            .ask(|reply| ServiceCommand::Submit { submission, reply })
            .await?;
        Ok(Response::new(pb::RunReply {
            run_json: json(&run_json(&record, false)),
        }))
    }

    async fn list_runs(
        &self,
        request: Request<pb::ListRunsRequest>,
    ) -> Result<Response<pb::ListRunsReply>, Status> {
        self.authorize(&request, "runs list")?;
        let r = request.into_inner();
        let state = match r.state.as_str() {
            "" => None,
            s => Some(RunState::from_str(s).map_err(|e| Status::invalid_argument(e.to_string()))?),
        };
        let filter = RunFilter {
            plan_name: (!r.plan_name.is_empty()).then_some(r.plan_name),
            state,
            limit: limit(r.limit),
        };
        let runs = self
            .ask(|reply| ServiceCommand::ListRuns { filter, reply })
            .await?;
        Ok(Response::new(pb::ListRunsReply {
            run_json: runs.iter().map(|r| json(&run_json(r, false))).collect(),
        }))
    }

    async fn run_action(
        &self,
        request: Request<pb::RunActionRequest>,
    ) -> Result<Response<pb::RunReply>, Status> {
        self.authorize(&request, "runs")?;
        let r = request.into_inner();
        let action = match r.action.as_str() {
            "show" => RunAction::Show,
            "cancel" => RunAction::Cancel,
            "rerun" => RunAction::Rerun,
            "baseline" => RunAction::Baseline,
            other => {
                return Err(Status::invalid_argument(format!(
                    "unknown run action {other:?}: show, cancel, rerun or baseline"
                )));
            }
        };
        let id = r.id;
        let record = self
            .ask(|reply| ServiceCommand::Run { id, action, reply })
            .await?;
        Ok(Response::new(pb::RunReply {
            run_json: json(&run_json(&record, action == RunAction::Show)),
        }))
    }

    async fn trend(
        &self,
        request: Request<pb::TrendRequest>,
    ) -> Result<Response<pb::ListRunsReply>, Status> {
        self.authorize(&request, "runs trend")?;
        let r = request.into_inner();
        let (plan_name, limit) = (r.plan_name, limit(r.limit));
        let runs = self
            .ask(|reply| ServiceCommand::Trend {
                plan_name,
                limit,
                reply,
            })
            .await?;
        Ok(Response::new(pb::ListRunsReply {
            run_json: runs.iter().map(|r| json(&run_json(r, false))).collect(),
        }))
    }

    async fn schedule_action(
        &self,
        request: Request<pb::ScheduleActionRequest>,
    ) -> Result<Response<pb::ScheduleReply>, Status> {
        self.authorize(&request, "schedules")?;
        let r = request.into_inner();
        let action = schedule_action(r)?;
        let (schedules, run) = self
            .ask(|reply| ServiceCommand::Schedules { action, reply })
            .await?;
        let now = Utc::now();
        Ok(Response::new(pb::ScheduleReply {
            schedule_json: schedules
                .iter()
                .map(|s| json(&schedule_json(s, now)))
                .collect(),
            run_json: run.map(|r| json(&run_json(&r, false))).unwrap_or_default(),
        }))
    }
}

fn limit(asked: u32) -> usize {
    match asked {
        0 => 20,
        n => (n as usize).min(MAX_LIST),
    }
}

/// A schedule request in domain terms; bad names, times and words are refused here.
fn schedule_action(r: pb::ScheduleActionRequest) -> Result<ScheduleAction, Status> {
    let bad = |m: String| Status::invalid_argument(m);
    if r.action != "list" && !valid_name(&r.name) {
        return Err(bad(format!(
            "schedule name {:?}: expected 1-64 characters of letters, digits, '-', '_', '.'",
            r.name
        )));
    }
    Ok(match r.action.as_str() {
        "list" => ScheduleAction::List,
        "pause" => ScheduleAction::Pause(r.name),
        "resume" => ScheduleAction::Resume(r.name),
        "rm" => ScheduleAction::Remove(r.name),
        "run-now" => ScheduleAction::RunNow(r.name),
        "add" => {
            let when = match (r.cron.is_empty(), r.at.is_empty()) {
                (false, true) => {
                    let tz = if r.tz.is_empty() { "UTC" } else { &r.tz };
                    When::cron(&r.cron, tz)
                }
                (true, false) => When::at(&r.at),
                _ => return Err(bad("schedules add: give --cron (with --tz) or --at".into())),
            }
            .map_err(|e| bad(e.to_string()))?;
            let missed = match r.missed.as_str() {
                "" => Missed::RunOnce,
                m => Missed::from_str(m).map_err(|e| bad(e.to_string()))?,
            };
            ScheduleAction::Add(Box::new(Schedule {
                name: r.name,
                // Set from the plan when the service validates it.
                plan_name: String::new(),
                plan_text: r.plan_text,
                agents: r.agents,
                selector: Selector(selector(&r.selector)?),
                when,
                missed,
                paused: false,
                created_at: Utc::now(),
                last_handled: None,
            }))
        }
        other => {
            return Err(bad(format!(
                "unknown schedule action {other:?}: add, list, pause, resume, rm or run-now"
            )));
        }
    })
}

fn valid_name(name: &str) -> bool {
    crate::messages::valid_name(name, 64)
}
