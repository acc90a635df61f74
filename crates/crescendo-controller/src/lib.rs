//! The Crescendo controller: hands a plan to a fleet of agents, merges what they
//! measure into one exact result, and writes the reports.
//!
//! [`Controller::start`] serves gRPC on an already-bound listener and spawns the
//! agent registry, the one task that knows every attached agent and lends them to
//! runs; each run gets an actor of its own. [`Controller::run`] executes one plan on N
//! agents and returns a [`RunOutcome`], which [`report::write_all`] turns into
//! `summary.json`, `latency.hlog` and `report.html`.
//!
//! # Layout
//! - [`service`]: `serve`: the queue, schedules and run history ([`crescendo_store`]).
//! - `admin_service`: the `Admin` gRPC service (status, cancel, and the service's
//!   calls), a thin shim over registry and service commands.
//! - `server` and `wire`: the gRPC edge (agent streams, admin service) and the
//!   conversions between protobuf and the domain; generated types stop there (and in
//!   [`cli`]'s admin client).
//! - [`security`]: who may call (enrolment and admin tokens, mutual TLS, the
//!   loopback-only default); `tls`: the port's TLS and the names a client
//!   certificate carries; `liveness`: a stream's liveness, so a live agent's id is
//!   never taken over.
//! - [`certs`]: a CA, a controller certificate and agent certificates, for teams
//!   without a PKI (`crescendo-controller certs`).
//! - `messages`: the agent protocol in domain terms, and the registry's events.
//! - `registry`: attached agents (a pool that outlives runs), the queue of runs
//!   waiting for agents, routing of members' messages to their run.
//! - `run`: one run's request, actor and state (phases: assign, ready, start barrier,
//!   merge, stop).
//! - `aggregate`: exact merging of snapshots, once per (agent, sequence).
//! - `fleet`: the coordinated policy's governor and the `Adjust` decisions it makes.
//! - `ship`: the plan's files and data rows shipped to a run's agents.
//! - [`probe`]: the capacity probe's plan and its sustainable-rate analysis.
//! - `progress`: the progress each second: live display, plain lines or JSON Lines.
//! - [`live`]: live results: the `/metrics` endpoint and the run loop's hooks
//!   (progress, metrics, `abort_on_fail`).
//! - [`thresholds`]: evaluating the plan's thresholds.
//! - [`report`]: the report files.
//! - [`demo`]: the embedded rehearsal (flowsim + agents on loopback).
//! - [`cli`]: the command line, shared by `main.rs`; `cli/admin` is the admin
//!   service's client (`status`, `cancel`), the one other place protobuf is spoken.
//! - [`exit_code`]: the documented exit codes.
//! - [`compare`]: two runs' summaries side by side, and whether the second regressed.
//!
//! # Shutdown
//! One root [`CancellationToken`] (given to [`Controller::start`]) and one
//! [`TaskTracker`]: cancelling the token stops new runs, makes every run stop its
//! fleet and drain, and lets the registry end once no run is left; the gRPC server
//! then closes each agent's stream after the messages queued on it (the release).
//! [`Controller::closed`] waits for all of that, bounded by a grace period.

mod admin_service;
/// Merging snapshots; public only for the benchmarks (`aggregate::bench`).
#[doc(hidden)]
pub mod aggregate;
pub mod certs;
pub mod cli;
pub mod compare;
pub mod connections;
pub mod demo;
mod error;
pub mod exit_code;
mod fleet;
pub mod live;
mod liveness;
mod messages;
pub mod probe;
mod progress;
mod registry;
pub mod report;
mod run;
pub mod security;
mod server;
pub mod service;
mod ship;
pub mod thresholds;
mod tls;
mod wire;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use error::{ControllerError, ServiceError, ShipError};
pub use progress::ProgressMode;
pub use run::{RunOutcome, RunRequest, RunStarted, StopCause};
pub use security::{Security, Serves};

use registry::{Command, Registry};

/// How a controller treats its agents.
#[derive(Debug, Clone)]
pub struct ControllerSettings {
    /// An agent stream silent this long (it sends a heartbeat every second) is dropped;
    /// agents apply the same timeout to the controller's heartbeats. A stream heard
    /// from within it is alive: no second stream may take its agent id.
    pub heartbeat_timeout: Duration,
    /// TLS, tokens, and whether a non-loopback address may go unauthenticated.
    pub security: Security,
    /// The service behind the admin edge's queue, schedule and history calls (`serve`);
    /// without it those calls answer UNIMPLEMENTED.
    pub service: Option<service::ServiceHandle>,
    /// Open connections at once, both ports together; past it a connection is closed
    /// at once ([`connections`]: the memory this bounds).
    pub max_connections: usize,
}

impl Default for ControllerSettings {
    fn default() -> Self {
        Self {
            heartbeat_timeout: Duration::from_secs(3),
            security: Security::default(),
            service: None,
            max_connections: connections::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// A running controller.
#[derive(Debug, Clone)]
pub struct Controller {
    addr: SocketAddr,
    commands: mpsc::Sender<Command>,
    tracker: TaskTracker,
    /// Whether agents attach with `https://`.
    tls: bool,
}

impl Controller {
    /// Serve on `listener` until `shutdown` is cancelled, with default settings.
    pub fn start(listener: TcpListener, shutdown: CancellationToken) -> std::io::Result<Self> {
        Self::start_with(listener, shutdown, ControllerSettings::default())
    }

    /// Serve on `listener` until `shutdown` is cancelled. Refuses (`PermissionDenied`)
    /// a non-loopback listener that would accept agents or operators without
    /// authentication, unless `settings.security.insecure` ([`Security::exposure`]).
    pub fn start_with(
        listener: TcpListener,
        shutdown: CancellationToken,
        settings: ControllerSettings,
    ) -> std::io::Result<Self> {
        Self::start_split(listener, None, shutdown, settings)
    }

    /// [`Controller::start_with`], with the admin service alone on `admin_listener`
    /// when given (agents only on `listener`); each address is checked against what
    /// it serves.
    pub fn start_split(
        listener: TcpListener,
        admin_listener: Option<TcpListener>,
        shutdown: CancellationToken,
        settings: ControllerSettings,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let denied = |e| std::io::Error::new(std::io::ErrorKind::PermissionDenied, e);
        match &admin_listener {
            None => settings.security.exposure(addr).map_err(denied)?,
            Some(admin) => {
                let admin = admin.local_addr()?;
                settings
                    .security
                    .exposure_of(admin, Serves::Admin)
                    .map_err(denied)?;
                settings
                    .security
                    .exposure_of(addr, Serves::Agents)
                    .map_err(denied)?
            }
        };
        let tls = settings.security.tls.is_some();
        let heartbeat_timeout = settings.heartbeat_timeout;
        let (events_tx, events) = mpsc::channel(4096);
        let (commands_tx, commands) = mpsc::channel(64);
        let tracker = TaskTracker::new();
        tracker.spawn(server::serve(
            (listener, admin_listener),
            events_tx,
            commands_tx.clone(),
            shutdown.clone(),
            settings,
        ));
        let registry = Registry::new(shutdown, tracker.clone(), heartbeat_timeout);
        tracker.spawn(registry.serve(events, commands));
        Ok(Self {
            addr,
            commands: commands_tx,
            tracker,
            tls,
        })
    }

    /// Wait, at most `grace`, for everything the controller started to end after its
    /// shutdown token was cancelled: runs drained, agents' streams closed (their last
    /// messages, such as the release, delivered). False when the grace ran out.
    pub async fn closed(&self, grace: Duration) -> bool {
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }

    /// The address agents attach to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL agents attach to (`https://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
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

    /// Stop the run in progress on every agent: the run ends `cancelled`.
    pub async fn cancel(&self, reason: &str) -> Result<bool, ControllerError> {
        self.stop(reason, StopCause::Cancelled).await
    }

    /// Stop the run in progress on every agent because of a signal: the run ends
    /// `interrupted`.
    pub async fn interrupt(&self, reason: &str) -> Result<bool, ControllerError> {
        self.stop(reason, StopCause::Interrupted).await
    }

    /// Stop one run, waiting or in progress: it ends `cancelled`. False when no such
    /// run is there.
    pub async fn cancel_run(&self, run_id: &str, reason: &str) -> Result<bool, ControllerError> {
        self.stop_some(Some(run_id.to_owned()), reason, StopCause::Cancelled)
            .await
    }

    async fn stop(&self, reason: &str, cause: StopCause) -> Result<bool, ControllerError> {
        self.stop_some(None, reason, cause).await
    }

    async fn stop_some(
        &self,
        only: Option<String>,
        reason: &str,
        cause: StopCause,
    ) -> Result<bool, ControllerError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Cancel {
                only,
                reason: reason.to_owned(),
                cause,
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
