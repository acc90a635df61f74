//! The agent's connection to its controller: attach, reconnect, keep the outbox.
//!
//! One task owns the session. It forwards the run's messages to the controller,
//! keeps every snapshot until the controller acknowledges it, and resends the
//! unacknowledged ones (and a `Finished`) after a reconnect. When the controller
//! stays unreachable longer than [`AgentConfig::orphan_grace`] during a run, the run
//! stops: a run never outlives its controller.

use std::collections::BTreeMap;
use std::time::Duration;

use crescendo_proto::v1 as pb;
use crescendo_proto::v1::agent_control_client::AgentControlClient;
use pb::agent_message::Kind as Out;
use pb::controller_message::Kind as In;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::prepare::{PreparedRun, prepare_run};
use crate::run::{RunHandle, start_run};

/// How an agent finds and treats its controller.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The controller's gRPC URL, e.g. `http://127.0.0.1:7700`.
    pub controller: String,
    /// This agent's id, unique in the fleet.
    pub id: String,
    /// Concurrent requests this agent is willing to hold.
    pub capacity: u32,
    /// Stop a run when the controller has been unreachable this long.
    pub orphan_grace: Duration,
    /// Give up when no controller answers for this long while idle (`None`: never).
    pub give_up_after: Option<Duration>,
}

impl AgentConfig {
    /// A config with defaults for everything but the controller URL and id.
    pub fn new(controller: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            controller: controller.into(),
            id: id.into(),
            capacity: 10_000,
            orphan_grace: Duration::from_secs(10),
            give_up_after: None,
        }
    }
}

/// Why an agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("bad controller url {url}: {source}")]
    BadUrl {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("no controller answered at {0}")]
    Unreachable(String),
}

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
    outbox_tx: mpsc::Sender<pb::AgentMessage>,
    /// The controller said it is done with this agent.
    release_requested: bool,
    released: bool,
}

/// Attach to the controller and serve runs until released or `shutdown` is cancelled.
pub async fn run(config: AgentConfig, shutdown: CancellationToken) -> Result<(), AgentError> {
    let endpoint = tonic::transport::Endpoint::from_shared(config.controller.clone())
        .map_err(|source| AgentError::BadUrl {
            url: config.controller.clone(),
            source,
        })?
        .connect_timeout(Duration::from_secs(3))
        .tcp_nodelay(true);
    let (outbox_tx, mut outbox_rx) = mpsc::channel(1024);
    let mut session = Session {
        config,
        run: RunState::Idle,
        run_id: String::new(),
        unacked: BTreeMap::new(),
        finished: None,
        outbox_tx,
        release_requested: false,
        released: false,
    };
    let mut lost_since = Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        if shutdown.is_cancelled() || session.released {
            session.stop_run();
            return Ok(());
        }
        let channel = tokio::select! {
            c = endpoint.connect() => c,
            _ = shutdown.cancelled() => continue,
        };
        match channel {
            Ok(channel) => {
                delay = Duration::from_millis(100);
                let mut client = AgentControlClient::new(channel);
                session
                    .attached(&mut client, &mut outbox_rx, &shutdown)
                    .await;
                session.drop_partial_data();
                lost_since = Instant::now();
            }
            Err(e) => tracing::debug!(error = %e, "controller not reachable"),
        }
        if session.released || shutdown.is_cancelled() {
            continue;
        }
        let away = lost_since.elapsed();
        if session.is_running() && away >= session.config.orphan_grace {
            tracing::warn!(run_id = %session.run_id, "controller gone for {away:?}: stopping the run");
            session.stop_run();
        }
        if !session.is_running()
            && session
                .config
                .give_up_after
                .is_some_and(|limit| away >= limit)
        {
            return Err(AgentError::Unreachable(session.config.controller.clone()));
        }
        // Keep draining the run's messages while away, so nothing blocks or is lost.
        let until = Instant::now() + delay;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => break,
                _ = shutdown.cancelled() => break,
                Some(message) = outbox_rx.recv() => session.keep(&message),
            }
        }
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

impl Session {
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

    /// Serve one attached stream until it breaks.
    async fn attached(
        &mut self,
        client: &mut AgentControlClient<tonic::transport::Channel>,
        outbox_rx: &mut mpsc::Receiver<pb::AgentMessage>,
        shutdown: &CancellationToken,
    ) {
        let (tx, rx) = mpsc::channel::<pb::AgentMessage>(1024);
        let hello = pb::Hello {
            agent_id: self.config.id.clone(),
            host: hostname(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            capacity: self.config.capacity,
            resume_run_id: if self.is_running() {
                self.run_id.clone()
            } else {
                String::new()
            },
        };
        let mut pending = vec![message(Out::Hello(hello))];
        pending.extend(
            self.unacked
                .values()
                .cloned()
                .map(|s| message(Out::Snapshot(s))),
        );
        pending.extend(self.finished.clone().map(|f| message(Out::Finished(f))));
        for m in pending {
            if tx.send(m).await.is_err() {
                return;
            }
        }
        let mut inbound = match client.attach(ReceiverStream::new(rx)).await {
            Ok(response) => response.into_inner(),
            Err(status) => {
                tracing::warn!(%status, "controller refused the stream");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                received = inbound.message() => match received {
                    Ok(Some(m)) => {
                        if let Some(kind) = m.kind {
                            self.handle(kind, &tx).await;
                        }
                        if self.released {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(status) => {
                        tracing::warn!(%status, "controller stream broke");
                        return;
                    }
                },
                Some(m) = outbox_rx.recv() => {
                    self.keep(&m);
                    if tx.send(m).await.is_err() {
                        return;
                    }
                    if self.released {
                        return;
                    }
                }
            }
        }
    }

    async fn handle(&mut self, kind: In, tx: &mpsc::Sender<pb::AgentMessage>) {
        match kind {
            In::Welcome(w) => tracing::info!(controller = %w.controller_version, "attached"),
            In::Assign(assign) => {
                if self.is_running() && assign.run_id != self.run_id {
                    let busy = pb::Finished {
                        run_id: assign.run_id,
                        last_seq: 0,
                        error: format!("agent busy with run {}", self.run_id),
                    };
                    let _ = tx.send(message(Out::Finished(busy))).await;
                    return;
                }
                let run_id = assign.run_id.clone();
                match prepare_run(assign, &self.config.id) {
                    Ok(prepared) => {
                        self.run_id = run_id.clone();
                        self.unacked.clear();
                        self.finished = None;
                        // With streamed rows, Ready waits for the last DataChunk.
                        let ready = !prepared.awaiting_data();
                        self.run = RunState::Prepared(Box::new(prepared));
                        if ready {
                            let _ = tx.send(message(Out::Ready(pb::Ready { run_id }))).await;
                        }
                    }
                    Err(error) => self.fail_preparation(run_id, error, tx).await,
                }
            }
            In::Data(chunk) if chunk.run_id == self.run_id => {
                let RunState::Prepared(prepared) = &mut self.run else {
                    return;
                };
                match prepared.receive(&chunk) {
                    Ok(false) => {}
                    Ok(true) => {
                        let ready = pb::Ready {
                            run_id: self.run_id.clone(),
                        };
                        let _ = tx.send(message(Out::Ready(ready))).await;
                    }
                    Err(error) => {
                        // Dropping the prepared run deletes its spool file.
                        self.run = RunState::Idle;
                        self.fail_preparation(self.run_id.clone(), error, tx).await;
                    }
                }
            }
            In::Start(start) if start.run_id == self.run_id => {
                if matches!(&self.run, RunState::Prepared(p) if p.awaiting_data()) {
                    tracing::warn!(run_id = %self.run_id, "start before the last data chunk: ignored");
                    return;
                }
                let run = std::mem::replace(&mut self.run, RunState::Idle);
                if let RunState::Prepared(prepared) = run {
                    let delay = Duration::from_millis(start.delay_ms.min(60_000));
                    tracing::info!(run_id = %self.run_id, ?delay, "starting");
                    let handle = start_run(
                        *prepared,
                        self.config.id.clone(),
                        delay,
                        self.outbox_tx.clone(),
                    );
                    self.run = RunState::Started(handle);
                } else {
                    // A repeated start changes nothing.
                    self.run = run;
                }
            }
            In::Adjust(adjust) => {
                if let RunState::Started(handle) = &self.run
                    && handle.run_id == adjust.run_id
                {
                    handle.adjust(&adjust);
                }
            }
            In::Ack(ack) if ack.run_id == self.run_id => {
                self.unacked.remove(&ack.seq);
            }
            In::Stop(stop) => {
                if stop.run_id.is_empty() || stop.run_id == self.run_id {
                    tracing::info!(reason = %stop.reason, "stop");
                    match &self.run {
                        RunState::Started(handle) => handle.stop(),
                        RunState::Prepared(_) => self.run = RunState::Idle,
                        RunState::Idle => {}
                    }
                }
                self.release_requested |= stop.release;
                self.check_released();
            }
            _ => {}
        }
    }
}

impl Session {
    /// Report a preparation that failed; the controller sees `Finished { error }`.
    async fn fail_preparation(
        &self,
        run_id: String,
        error: String,
        tx: &mpsc::Sender<pb::AgentMessage>,
    ) {
        tracing::warn!(%run_id, %error, "run preparation failed");
        let f = pb::Finished {
            run_id,
            last_seq: 0,
            error,
        };
        let _ = tx.send(message(Out::Finished(f))).await;
    }
}

fn message(kind: Out) -> pb::AgentMessage {
    pb::AgentMessage { kind: Some(kind) }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
