//! The Crescendo controller: hands a plan to a fleet of agents, merges what they
//! measure into one exact result, and writes the reports.
//!
//! [`Controller::start`] serves gRPC on an already-bound listener and spawns the
//! coordinator, the one task that owns the agent registry and the run in progress;
//! [`Controller::run`] executes one plan on N agents and returns a [`RunOutcome`],
//! which [`report::write_all`] turns into `summary.json`, `latency.hlog` and
//! `report.html`.
//!
//! # Layout
//! - `server`: the gRPC edge (agent streams, admin service) turning messages into events.
//! - `coordinator`: the registry and command loop.
//! - `run`: one run's phases: wait, assign, ready, start barrier, merge, stop.
//! - `aggregate`: exact merging of snapshots, once per (agent, sequence).
//! - `fleet`: the coordinated policy's governor and the `Adjust` messages it sends.
//! - [`probe`]: the capacity probe's plan and its sustainable-rate analysis.
//! - `progress`: the progress each second: live display, plain lines or JSON Lines.
//! - [`live`]: live results: the `/metrics` endpoint and the run loop's hooks
//!   (progress, metrics, `abort_on_fail`).
//! - [`thresholds`]: evaluating the plan's thresholds.
//! - [`report`]: the report files.
//! - [`demo`]: the embedded rehearsal (flowsim + agents on loopback).
//! - [`cli`]: the command line, shared by `main.rs`.
//! - [`compare`]: two runs' summaries side by side, and whether the second regressed.

mod aggregate;
pub mod cli;
pub mod compare;
mod coordinator;
pub mod demo;
mod fleet;
pub mod live;
pub mod probe;
mod progress;
pub mod report;
mod run;
mod server;
mod ship;
pub mod thresholds;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crescendo_proto::v1 as pb;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;

use coordinator::{Command, Coordinator};
pub use progress::ProgressMode;
pub use run::{RunOutcome, RunRequest};

/// Why a run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(transparent)]
    Plan(crescendo_plan::PlanError),
    #[error("{0}")]
    Args(String),
    #[error(
        "timed out after {waited:?} waiting for {want} agents: attached [{attached}], {missing} missing"
    )]
    AgentsMissing {
        waited: Duration,
        want: usize,
        attached: String,
        missing: usize,
    },
    #[error("agents not ready: {0}")]
    NotReady(String),
    #[error("agent {agent} rejected the run: {error}")]
    AgentRejected { agent: String, error: String },
    #[error("a run is already in progress")]
    Busy,
    #[error("run cancelled: {0}")]
    Cancelled(String),
    #[error("the controller has shut down")]
    Gone,
}

/// A running controller.
#[derive(Debug, Clone)]
pub struct Controller {
    addr: SocketAddr,
    commands: mpsc::Sender<Command>,
}

impl Controller {
    /// Serve on `listener` until `shutdown` is cancelled.
    pub fn start(listener: TcpListener, shutdown: CancellationToken) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let (events_tx, events) = mpsc::channel(4096);
        let (commands_tx, commands) = mpsc::channel(64);
        let agent_control = server::AgentControlService {
            events: events_tx,
            next_conn: AtomicU64::new(1),
        };
        let admin = server::AdminService {
            commands: commands_tx.clone(),
        };
        let router = tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(5)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .add_service(pb::agent_control_server::AgentControlServer::new(
                agent_control,
            ))
            .add_service(pb::admin_server::AdminServer::new(admin));
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let incoming = TcpListenerStream::new(listener);
            if let Err(e) = router
                .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
                .await
            {
                tracing::error!("grpc server failed: {e}");
            }
        });
        let coordinator = Coordinator {
            agents: Default::default(),
            events,
            commands,
            shutdown,
        };
        tokio::spawn(coordinator.serve());
        Ok(Self {
            addr,
            commands: commands_tx,
        })
    }

    /// The address agents attach to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL agents attach to.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Execute one plan on the fleet.
    pub async fn run(&self, request: RunRequest) -> Result<RunOutcome, ControllerError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Run {
                request: Box::new(request),
                reply,
            })
            .await
            .map_err(|_| ControllerError::Gone)?;
        rx.await.map_err(|_| ControllerError::Gone)?
    }

    /// Stop the run in progress on every agent.
    pub async fn cancel(&self, reason: &str) -> Result<bool, ControllerError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Cancel {
                reason: reason.to_owned(),
                reply,
            })
            .await
            .map_err(|_| ControllerError::Gone)?;
        Ok(rx.await.map_err(|_| ControllerError::Gone)?.cancelled)
    }

    /// Agents attached now.
    pub async fn attached_agents(&self) -> Result<Vec<String>, ControllerError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Status { reply })
            .await
            .map_err(|_| ControllerError::Gone)?;
        let status = rx.await.map_err(|_| ControllerError::Gone)?;
        Ok(status.agents.into_iter().map(|a| a.id).collect())
    }
}
