//! The coordinator: the one task that owns the agent registry and the run in
//! progress. The gRPC edge and the CLI talk to it through channels.

use std::collections::BTreeMap;

use crescendo_proto::v1 as pb;
use pb::agent_message::Kind as Out;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::ControllerError;
use crate::run::{RunOutcome, RunRequest};
use crate::server::{AgentEvent, AgentTx};

/// Requests to the coordinator.
#[derive(Debug)]
pub(crate) enum Command {
    Run {
        request: Box<RunRequest>,
        reply: oneshot::Sender<Result<RunOutcome, ControllerError>>,
    },
    Status {
        reply: oneshot::Sender<pb::StatusReply>,
    },
    Cancel {
        reason: String,
        reply: oneshot::Sender<pb::CancelReply>,
    },
}

/// One attached agent.
#[derive(Debug)]
pub(crate) struct AgentConn {
    pub(crate) hello: pb::Hello,
    pub(crate) conn: u64,
    pub(crate) tx: AgentTx,
}

/// Owner of the registry; runs one plan at a time.
#[derive(Debug)]
pub(crate) struct Coordinator {
    pub(crate) agents: BTreeMap<String, AgentConn>,
    pub(crate) events: mpsc::Receiver<AgentEvent>,
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) shutdown: CancellationToken,
}

/// A message from an attached agent, after the registry has seen it.
#[derive(Debug)]
pub(crate) enum Seen {
    Attached {
        agent: String,
        resume_run_id: String,
    },
    Message {
        agent: String,
        kind: Out,
    },
    Detached {
        agent: String,
    },
}

impl Coordinator {
    pub(crate) async fn serve(mut self) {
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                Some(event) = self.events.recv() => {
                    self.observe(event);
                }
                Some(command) = self.commands.recv() => match command {
                    Command::Run { request, reply } => {
                        let outcome = self.execute(*request).await;
                        let _ = reply.send(outcome);
                    }
                    Command::Status { reply } => {
                        let _ = reply.send(self.status(None));
                    }
                    Command::Cancel { reply, .. } => {
                        let _ = reply.send(pb::CancelReply { cancelled: false, run_id: String::new() });
                    }
                },
                else => break,
            }
        }
    }

    /// Keep the registry current; return what a run may care about.
    pub(crate) fn observe(&mut self, event: AgentEvent) -> Option<Seen> {
        match event {
            AgentEvent::Attached { hello, conn, tx } => {
                let agent = hello.agent_id.clone();
                let resume_run_id = hello.resume_run_id.clone();
                tracing::info!(agent = %agent, host = %hello.host, "agent attached");
                // A reconnect replaces the old stream; dropping its sender ends it.
                self.agents
                    .insert(agent.clone(), AgentConn { hello, conn, tx });
                Some(Seen::Attached {
                    agent,
                    resume_run_id,
                })
            }
            AgentEvent::Message { agent, conn, kind } => {
                let current = self.agents.get(&agent).is_some_and(|a| a.conn == conn);
                current.then_some(Seen::Message { agent, kind })
            }
            AgentEvent::Detached { agent, conn } => {
                if self.agents.get(&agent).is_some_and(|a| a.conn == conn) {
                    tracing::info!(agent = %agent, "agent detached");
                    self.agents.remove(&agent);
                    Some(Seen::Detached { agent })
                } else {
                    None
                }
            }
        }
    }

    /// Send to an agent without ever blocking the coordinator on a slow peer.
    pub(crate) fn send(&self, agent: &str, kind: pb::controller_message::Kind) -> bool {
        let Some(conn) = self.agents.get(agent) else {
            return false;
        };
        let message = pb::ControllerMessage { kind: Some(kind) };
        match conn.tx.try_send(Ok(message)) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(agent, "could not send to agent: {e}");
                false
            }
        }
    }

    /// Send to an agent, waiting up to `timeout` for room on its stream (bulk data,
    /// before the load starts). False when the agent is gone or stays full.
    pub(crate) async fn send_wait(
        &self,
        agent: &str,
        kind: pb::controller_message::Kind,
        timeout: std::time::Duration,
    ) -> bool {
        let Some(tx) = self.agents.get(agent).map(|conn| conn.tx.clone()) else {
            return false;
        };
        let message = pb::ControllerMessage { kind: Some(kind) };
        matches!(
            tokio::time::timeout(timeout, tx.send(Ok(message))).await,
            Ok(Ok(()))
        )
    }

    pub(crate) fn status(&self, run: Option<(&str, &str, f64, u64)>) -> pb::StatusReply {
        let (run_id, state, elapsed_s, requests) = run.unwrap_or(("", "idle", 0.0, 0));
        pb::StatusReply {
            agents: self
                .agents
                .values()
                .map(|a| pb::AgentInfo {
                    id: a.hello.agent_id.clone(),
                    host: a.hello.host.clone(),
                    version: a.hello.version.clone(),
                    run_id: String::new(),
                })
                .collect(),
            run_id: run_id.to_owned(),
            state: state.to_owned(),
            elapsed_s,
            requests,
        }
    }
}
