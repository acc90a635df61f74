//! The gRPC edge: `AgentControl.Attach` streams and the `Admin` service.
//!
//! Each attached stream gets a reader task that turns the agent's messages into
//! [`AgentEvent`]s for the coordinator, which owns all state. Garbage never reaches
//! further than this file: a stream that does not start with `Hello` is refused, and
//! a broken stream becomes a `Detached` event.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crescendo_proto::v1 as pb;
use futures::Stream;
use pb::agent_message::Kind as Out;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::coordinator::Command;

/// Messages to one agent; a failed send means the agent is gone.
pub(crate) type AgentTx = mpsc::Sender<Result<pb::ControllerMessage, Status>>;

/// What the gRPC edge tells the coordinator.
#[derive(Debug)]
pub(crate) enum AgentEvent {
    Attached {
        hello: pb::Hello,
        conn: u64,
        tx: AgentTx,
    },
    Message {
        agent: String,
        conn: u64,
        kind: Out,
    },
    Detached {
        agent: String,
        conn: u64,
    },
}

/// The `AgentControl` service.
#[derive(Debug)]
pub(crate) struct AgentControlService {
    pub(crate) events: mpsc::Sender<AgentEvent>,
    pub(crate) next_conn: AtomicU64,
}

#[tonic::async_trait]
impl pb::agent_control_server::AgentControl for AgentControlService {
    type AttachStream = Pin<Box<dyn Stream<Item = Result<pb::ControllerMessage, Status>> + Send>>;

    async fn attach(
        &self,
        request: Request<Streaming<pb::AgentMessage>>,
    ) -> Result<Response<Self::AttachStream>, Status> {
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(Duration::from_secs(10), inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no hello within 10 s"))??;
        let hello = match first.and_then(|m| m.kind) {
            Some(Out::Hello(hello)) if valid_id(&hello.agent_id) => hello,
            Some(Out::Hello(_)) => {
                return Err(Status::invalid_argument(
                    "agent id must be 1-128 characters of letters, digits, '-', '_', '.'",
                ));
            }
            _ => return Err(Status::invalid_argument("the first message must be hello")),
        };
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let agent = hello.agent_id.clone();
        let (tx, rx) = mpsc::channel(256);
        let welcome = pb::ControllerMessage {
            kind: Some(pb::controller_message::Kind::Welcome(pb::Welcome {
                agent_id: agent.clone(),
                controller_version: env!("CARGO_PKG_VERSION").to_owned(),
            })),
        };
        tx.send(Ok(welcome))
            .await
            .map_err(|_| Status::unavailable("closing"))?;
        self.events
            .send(AgentEvent::Attached {
                hello,
                conn,
                tx: tx.clone(),
            })
            .await
            .map_err(|_| Status::unavailable("controller is shutting down"))?;
        let events = self.events.clone();
        tokio::spawn(async move {
            loop {
                let received = tokio::select! {
                    r = inbound.message() => r,
                    // The coordinator dropped its sender: the agent is unwanted.
                    _ = tx.closed() => break,
                };
                match received {
                    Ok(Some(pb::AgentMessage { kind: Some(kind) })) => {
                        let event = AgentEvent::Message {
                            agent: agent.clone(),
                            conn,
                            kind,
                        };
                        if events.send(event).await.is_err() {
                            break;
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(status) if hung_up(&status) => {
                        // An agent that exits (e.g. released after a run) closes its
                        // connection without ending the stream first: not a fault.
                        tracing::debug!(agent = %agent, %status, "agent connection closed");
                        break;
                    }
                    Err(status) => {
                        tracing::warn!(agent = %agent, %status, "agent stream broke");
                        break;
                    }
                }
            }
            let _ = events.send(AgentEvent::Detached { agent, conn }).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Whether a stream error is the peer's connection going away (closed, reset, broken
/// pipe) rather than a protocol fault.
fn hung_up(status: &Status) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(error) = source {
        // h2 keeps the I/O error to itself (no `source`): ask it.
        if let Some(h2) = error.downcast_ref::<h2::Error>() {
            return h2.is_io() || h2.is_go_away();
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                BrokenPipe | ConnectionReset | ConnectionAborted | UnexpectedEof
            );
        }
        source = error.source();
    }
    false
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The `Admin` service, a thin shim over coordinator commands.
#[derive(Debug)]
pub(crate) struct AdminService {
    pub(crate) commands: mpsc::Sender<Command>,
}

#[tonic::async_trait]
impl pb::admin_server::Admin for AdminService {
    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusReply>, Status> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Status { reply })
            .await
            .map_err(|_| Status::unavailable("controller is shutting down"))?;
        let status = rx
            .await
            .map_err(|_| Status::unavailable("controller is shutting down"))?;
        Ok(Response::new(status))
    }

    async fn cancel(
        &self,
        request: Request<pb::CancelRequest>,
    ) -> Result<Response<pb::CancelReply>, Status> {
        let (reply, rx) = oneshot::channel();
        let reason = request.into_inner().reason;
        self.commands
            .send(Command::Cancel { reason, reply })
            .await
            .map_err(|_| Status::unavailable("controller is shutting down"))?;
        let answer = rx
            .await
            .map_err(|_| Status::unavailable("controller is shutting down"))?;
        Ok(Response::new(answer))
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    #[test]
    fn a_closed_connection_is_a_hang_up_and_other_errors_are_not() {
        let closed = |kind| Status::from_error(Box::new(io::Error::new(kind, "gone")));
        assert!(hung_up(&closed(io::ErrorKind::BrokenPipe)));
        assert!(hung_up(&closed(io::ErrorKind::ConnectionReset)));
        assert!(!hung_up(&closed(io::ErrorKind::InvalidData)));
        assert!(!hung_up(&Status::internal("bad frame")));
        // An h2 stream reset by the peer is a protocol matter, not a hang-up.
        let reset = Status::from_error(Box::new(h2::Error::from(h2::Reason::PROTOCOL_ERROR)));
        assert!(!hung_up(&reset));
    }
}
