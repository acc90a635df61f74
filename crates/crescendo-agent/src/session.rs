//! The agent's connection to its controller: attach, reconnect, keep the outbox,
//! stop gracefully.
//!
//! One task owns the session. It forwards the run's messages to the controller,
//! keeps every snapshot until the controller acknowledges it, and resends the
//! unacknowledged ones (and a `Finished`) after a reconnect.
//!
//! # Heartbeats and the dead-man switch
//! Both sides send a `Heartbeat` every second ([`HEARTBEAT_INTERVAL`]) and the channel
//! runs HTTP/2 keepalive pings. When nothing has come from the controller for
//! [`AgentConfig::heartbeat_timeout`] (a hung or partitioned controller sends nothing
//! and may not break the TCP connection) the run's load stops at once, requests on the
//! wire finish within their timeout, the unacknowledged snapshots are kept, and the
//! session attaches again: a run never goes on unattended past the timeout.
//!
//! # Shutdown
//! Cancelling the root token (the binary does on SIGTERM or Ctrl-C) stops the run's
//! load at once. Requests on the wire finish within the target's timeout, the last
//! snapshot and `Finished` go out, and the session waits, at most
//! [`AgentConfig::shutdown_grace`] past that, until the controller has acknowledged
//! every snapshot; then it ends its stream and waits (within the same bound) for the
//! controller to close its side. Idle, or with no stream, it returns at once.

use std::collections::BTreeMap;
use std::time::Duration;

use crescendo_proto::v1 as pb;
use crescendo_proto::v1::agent_control_client::AgentControlClient;
use pb::agent_message::Kind as Out;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::attach;
pub use crate::config::{AgentConfig, AgentError};
use crate::messages::{Finished, ToController};
use crate::prepare::PreparedRun;
use crate::run::RunHandle;
use crate::wire;

mod inbound;

/// How often the agent tells its controller it is alive.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

/// The run this agent takes part in, from assignment to the last acknowledgement.
#[derive(Debug)]
enum RunState {
    Idle,
    Prepared(Box<PreparedRun>),
    Started(RunHandle),
}

#[derive(Debug)]
struct Session {
    config: AgentConfig,
    run: RunState,
    run_id: String,
    /// Snapshots not yet acknowledged, by sequence number.
    unacked: BTreeMap<u64, pb::Snapshot>,
    finished: Option<pb::Finished>,
    outbox_tx: mpsc::Sender<ToController>,
    /// The controller said it is done with this agent.
    release_requested: bool,
    released: bool,
    /// The root token: cancelled, the agent stops gracefully.
    shutdown: CancellationToken,
    /// The tasks of started runs.
    tracker: TaskTracker,
    /// Once the shutdown began: how long the session waits to flush.
    flush_until: Option<Instant>,
    /// When the controller was last heard from (any message, a heartbeat included).
    last_heard: Instant,
    /// The controller refused this agent for good (see [`attach::refused`]).
    fatal: Option<AgentError>,
}

/// Attach to the controller and serve runs until released, or until `shutdown` is
/// cancelled and the run in progress is flushed (see the module docs).
pub async fn run(config: AgentConfig, shutdown: CancellationToken) -> Result<(), AgentError> {
    let endpoint = crate::transport::endpoint(&config.controller, config.tls.as_ref())?
        .connect_timeout(Duration::from_secs(3))
        .http2_keep_alive_interval(HEARTBEAT_INTERVAL)
        .keep_alive_timeout(config.heartbeat_timeout)
        .keep_alive_while_idle(true)
        .tcp_nodelay(true);
    let (outbox_tx, mut outbox_rx) = mpsc::channel(1024);
    let grace = config.shutdown_grace;
    let mut session = Session {
        config,
        run: RunState::Idle,
        run_id: String::new(),
        unacked: BTreeMap::new(),
        finished: None,
        outbox_tx,
        release_requested: false,
        released: false,
        shutdown,
        tracker: TaskTracker::new(),
        flush_until: None,
        last_heard: Instant::now(),
        fatal: None,
    };
    let result = session.serve(&endpoint, &mut outbox_rx).await;
    session.stop_run();
    drop(outbox_rx);
    let tracker = session.tracker.clone();
    drop(session);
    tracker.close();
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!("the run's tasks did not end within {grace:?}: abandoned");
    }
    result
}

impl Session {
    /// Attach, serve, reconnect, until released or shut down.
    async fn serve(
        &mut self,
        endpoint: &tonic::transport::Endpoint,
        outbox_rx: &mut mpsc::Receiver<ToController>,
    ) -> Result<(), AgentError> {
        let mut delay = Duration::from_millis(100);
        let mut waiting = Waiting::default();
        loop {
            // Shut down while no stream is up: nobody to flush to.
            if self.shutdown.is_cancelled() || self.released {
                return Ok(());
            }
            let silent_at = self.silent_at();
            let channel = tokio::select! {
                c = endpoint.connect() => c,
                _ = self.shutdown.cancelled() => continue,
                _ = tokio::time::sleep_until(silent_at), if self.is_running() => {
                    self.controller_silent();
                    continue;
                }
            };
            match channel {
                Ok(channel) => {
                    delay = Duration::from_millis(100);
                    waiting.reached(&self.config.controller);
                    // The limits mirror the controller's (`MAX_TO_AGENT`, `MAX_FROM_AGENT`).
                    let mut client = AgentControlClient::new(channel)
                        .max_decoding_message_size(64 * 1024 * 1024)
                        .max_encoding_message_size(4 * 1024 * 1024);
                    self.attached(&mut client, outbox_rx).await;
                    self.drop_partial_data();
                    if let Some(fatal) = self.fatal.take() {
                        return Err(fatal);
                    }
                }
                Err(e) => waiting.unreachable(&self.config.controller, &e),
            }
            if self.released || self.shutdown.is_cancelled() {
                continue;
            }
            let away = self.last_heard.elapsed();
            if !self.is_running() && self.config.give_up_after.is_some_and(|limit| away >= limit) {
                return Err(AgentError::Unreachable(self.config.controller.clone()));
            }
            // Keep draining the run's messages while away, so nothing blocks or is lost.
            let until = Instant::now() + delay;
            loop {
                let silent_at = self.silent_at();
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => break,
                    _ = self.shutdown.cancelled() => break,
                    _ = tokio::time::sleep_until(silent_at), if self.is_running() => self.controller_silent(),
                    Some(message) = outbox_rx.recv() => self.keep(&message_of(message)),
                }
            }
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    /// When the controller will have been silent for the heartbeat timeout.
    fn silent_at(&self) -> Instant {
        self.last_heard + self.config.heartbeat_timeout
    }

    /// The dead-man switch: nothing from the controller for the heartbeat timeout, so
    /// the load stops now (its unacknowledged snapshots and `Finished` wait for the
    /// next stream). Idempotent.
    fn controller_silent(&mut self) {
        if let RunState::Started(handle) = &self.run
            && !handle.is_stopped()
        {
            let timeout = self.config.heartbeat_timeout;
            tracing::warn!(
                run_id = %self.run_id,
                "nothing from the controller for {timeout:?}: stopping the load"
            );
            handle.stop_early(format!("nothing from the controller for {timeout:?}"));
        } else if matches!(self.run, RunState::Prepared(_)) {
            tracing::warn!(run_id = %self.run_id, "controller silent before the start: dropping the run");
            self.run = RunState::Idle;
            self.finished = Some(pb::Finished {
                run_id: self.run_id.clone(),
                last_seq: 0,
                error: "the controller fell silent before the start".into(),
                ..pb::Finished::default()
            });
        }
        // Look again only after another full timeout.
        self.last_heard = Instant::now();
    }

    /// A run is in progress until its `Finished` has been produced.
    fn is_running(&self) -> bool {
        match self.run {
            RunState::Idle => false,
            RunState::Prepared(_) => true,
            RunState::Started(_) => self.finished.is_none(),
        }
    }

    /// The controller let this agent go and nothing is left to report.
    fn check_released(&mut self) {
        if self.release_requested && !self.is_running() {
            self.released = true;
        }
    }

    fn stop_run(&mut self) {
        if let RunState::Started(handle) = &self.run {
            handle.stop();
        }
    }

    /// The stream broke while data rows were still arriving: they are not resent on
    /// a new stream, so the preparation fails (its spool file goes) and the
    /// controller hears why after the reconnect.
    fn drop_partial_data(&mut self) {
        if matches!(&self.run, RunState::Prepared(p) if p.awaiting_data()) {
            tracing::warn!(run_id = %self.run_id, "stream lost while receiving data rows");
            self.run = RunState::Idle;
            self.finished = Some(pb::Finished {
                run_id: self.run_id.clone(),
                last_seq: 0,
                error: "data rows interrupted: the controller stream broke".into(),
                ..pb::Finished::default()
            });
        }
    }

    /// Remember a message of the run's for resending after a reconnect.
    fn keep(&mut self, message: &pb::AgentMessage) {
        match &message.kind {
            Some(Out::Snapshot(s)) => {
                self.unacked.insert(s.seq, s.clone());
            }
            Some(Out::Finished(f)) => {
                self.finished = Some(f.clone());
                self.check_released();
            }
            _ => {}
        }
    }

    /// The shutdown began on an attached stream: stop the run's load and arrange the
    /// flush. False when there is nothing to flush (the session may end at once).
    async fn begin_shutdown(&mut self, tx: &mpsc::Sender<pb::AgentMessage>) -> bool {
        let grace = self.config.shutdown_grace;
        let drain = match &self.run {
            RunState::Started(handle) if self.finished.is_none() => {
                tracing::info!(run_id = %self.run_id, "shutting down: stopping the load, flushing the last snapshot");
                handle.stop_early("the agent was shut down (a signal)".to_owned());
                handle.drain()
            }
            RunState::Prepared(_) => {
                tracing::info!(run_id = %self.run_id, "shutting down before the start");
                self.run = RunState::Idle;
                let f = Finished {
                    run_id: self.run_id.clone(),
                    last_seq: 0,
                    error: "agent shut down before the start".into(),
                    stopped_early: String::new(),
                };
                let m = message_of(ToController::Finished(f));
                self.keep(&m);
                if tx.send(m).await.is_err() {
                    return false;
                }
                Duration::ZERO
            }
            _ if self.unacked.is_empty() => return false,
            _ => Duration::ZERO,
        };
        self.flush_until = Some(Instant::now() + drain + grace);
        true
    }

    /// Shutting down, and everything is out: `Finished` sent, snapshots acknowledged.
    fn flushed(&self) -> bool {
        self.flush_until.is_some() && !self.is_running() && self.unacked.is_empty()
    }

    /// Serve one attached stream until it breaks, or until the shutdown is flushed.
    async fn attached(
        &mut self,
        client: &mut AgentControlClient<tonic::transport::Channel>,
        outbox_rx: &mut mpsc::Receiver<ToController>,
    ) {
        let (tx, rx) = mpsc::channel::<pb::AgentMessage>(1024);
        let resume = if self.is_running() {
            self.run_id.clone()
        } else {
            String::new()
        };
        let mut pending = vec![attach::hello(&self.config, resume)];
        pending.extend(self.unacked.values().cloned().map(|s| pb::AgentMessage {
            kind: Some(Out::Snapshot(s)),
        }));
        pending.extend(self.finished.clone().map(|f| pb::AgentMessage {
            kind: Some(Out::Finished(f)),
        }));
        for m in pending {
            if tx.send(m).await.is_err() {
                return;
            }
        }
        let request = match attach::request(&self.config, ReceiverStream::new(rx)) {
            Ok(request) => request,
            Err(e) => {
                self.fatal = Some(e);
                return;
            }
        };
        // A hung controller may accept the connection and never answer.
        let attach = client.attach(request);
        let mut inbound = match tokio::time::timeout(self.config.heartbeat_timeout, attach).await {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) => {
                self.fatal = attach::refused(&self.config, &status);
                return;
            }
            Err(_) => {
                tracing::warn!("controller did not answer within the heartbeat timeout");
                return;
            }
        };
        self.last_heard = Instant::now();
        let shutdown = self.shutdown.clone();
        let mut beat = tokio::time::interval(HEARTBEAT_INTERVAL);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let flush_until = self.flush_until;
            let silent_at = self.silent_at();
            tokio::select! {
                _ = tokio::time::sleep_until(silent_at) => {
                    self.controller_silent();
                    tracing::warn!("dropping the silent stream; attaching again");
                    return;
                }
                _ = beat.tick() => {
                    let beat = pb::Heartbeat { run_id: self.run_id.clone(), in_flight: 0 };
                    if tx.send(pb::AgentMessage { kind: Some(Out::Heartbeat(beat)) }).await.is_err() {
                        return;
                    }
                }
                _ = shutdown.cancelled(), if flush_until.is_none() => {
                    if !self.begin_shutdown(&tx).await {
                        return;
                    }
                }
                _ = sleep_until_or_never(flush_until) => {
                    tracing::warn!(
                        unacknowledged = self.unacked.len(),
                        "shutting down: gave up waiting for the controller"
                    );
                    return;
                }
                received = inbound.message() => match received {
                    Ok(Some(m)) => {
                        self.last_heard = Instant::now();
                        match m.kind.map(wire::from_controller) {
                            Some(Ok(message)) => self.handle(message, &tx).await,
                            Some(Err(refused)) => self.refuse(refused, &tx).await,
                            None => {}
                        }
                    }
                    Ok(None) => return,
                    Err(status) => {
                        self.fatal = attach::replaced(&self.config, &status);
                        tracing::warn!(%status, "controller stream broke");
                        return;
                    }
                },
                Some(m) = outbox_rx.recv() => {
                    let m = message_of(m);
                    self.keep(&m);
                    if tx.send(m).await.is_err() {
                        return;
                    }
                }
            }
            if self.released {
                return;
            }
            if self.flushed() {
                break;
            }
        }
        // Ending this side tells the controller that nothing more comes; it closes
        // its side once it has taken everything (or the bound passes).
        drop(tx);
        let closed = async { while let Ok(Some(_)) = inbound.message().await {} };
        let until = self.flush_until.unwrap_or_else(Instant::now);
        if tokio::time::timeout_at(until, closed).await.is_err() {
            tracing::warn!("shutting down: the controller did not close the stream");
        }
        tracing::info!(run_id = %self.run_id, "shut down: the last snapshot is acknowledged");
    }
}

fn message_of(message: ToController) -> pb::AgentMessage {
    pb::AgentMessage {
        kind: Some(wire::to_controller(message)),
    }
}

/// Sleeps until `at`, or forever when there is no `at`.
async fn sleep_until_or_never(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;

/// What the agent says while no controller answers: one line at once, then one every
/// [`Waiting::EVERY`], with the cause in words.
#[derive(Debug, Default)]
struct Waiting {
    since: Option<Instant>,
    said: Option<Instant>,
}

impl Waiting {
    const EVERY: Duration = Duration::from_secs(10);

    fn unreachable(&mut self, url: &str, error: &tonic::transport::Error) {
        let now = Instant::now();
        let since = *self.since.get_or_insert(now);
        let why = cause(error);
        match self.said {
            None => {
                tracing::info!("waiting for the controller at {url} ({why}); retrying every 2 s")
            }
            Some(said) if now - said >= Self::EVERY => tracing::info!(
                "still waiting for the controller at {url} after {}s ({why})",
                (now - since).as_secs()
            ),
            Some(_) => return,
        }
        self.said = Some(now);
    }

    fn reached(&mut self, url: &str) {
        if self.since.take().is_some() {
            tracing::info!("the controller at {url} answers");
        }
        self.said = None;
    }
}

/// A transport error's innermost cause, in words ("Connection refused (os error
/// 111)"), rather than h2's or hyper's wrapping of it.
fn cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = error;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}
