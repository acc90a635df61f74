//! The gRPC edge: `AgentControl.Attach` streams and the `Admin` service.
//!
//! Each attached stream gets a reader task that turns the agent's messages into
//! domain [`AgentEvent`]s (through `wire`) for the registry, which owns all state.
//! Garbage never reaches further than this file and `wire`: a stream that does not
//! start with `Hello` is refused, a snapshot that cannot be decoded arrives as
//! `Rejected`, and a broken stream becomes a `Detached` event. Generated protobuf
//! types appear only here, in `wire` and in the CLI's admin client (`cli`).
//!
//! Who may call is settled here too (`security`): the enrolment token (and, with
//! mutual TLS, an id the certificate names) before an agent hears anything, the
//! registry's word on the id (no second stream for a live agent), the admin token
//! before `status` or `cancel`.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crescendo_proto::v1 as pb;
use futures::{Stream, StreamExt};
use pb::agent_message::Kind as Out;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::{IntervalStream, ReceiverStream};
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status, Streaming};

use crate::ControllerSettings;
use crate::admin_service::AdminService;
use crate::certs::Role;
use crate::connections::{self, ConnectionLimit};
use crate::error::ControllerError;
use crate::liveness::StreamLife;
use crate::messages::{AGENT_QUEUE, AgentEvent};
use crate::registry::Command;
use crate::security::{Gate, Security, peer, refuse_role};
use crate::wire;

impl From<ControllerError> for Status {
    fn from(e: ControllerError) -> Self {
        let message = e.to_string();
        match e {
            ControllerError::Gone => Status::unavailable(message),
            ControllerError::Cancelled { .. } => Status::cancelled(message),
            ControllerError::AgentsMissing { .. } | ControllerError::NotReady { .. } => {
                Status::deadline_exceeded(message)
            }
            e if e.is_bad_input() => Status::invalid_argument(message),
            _ => Status::failed_precondition(message),
        }
    }
}

/// Serve both services on `listener` (or the admin service alone on `admin_listener`,
/// when there is one) until `shutdown` is cancelled; then stop accepting and let open
/// streams end (each agent's ends once the registry and its run dropped their senders,
/// after what is queued on it).
pub(crate) async fn serve(
    (listener, admin_listener): (TcpListener, Option<TcpListener>),
    events: mpsc::Sender<AgentEvent>,
    commands: mpsc::Sender<Command>,
    shutdown: CancellationToken,
    settings: ControllerSettings,
) {
    let ControllerSettings {
        heartbeat_timeout,
        security,
        service,
        max_connections,
    } = settings;
    let agent_control = AgentControlService {
        events,
        next_conn: AtomicU64::new(1),
        heartbeat_timeout,
        gate: Gate::new(security.enrol_token.as_ref(), "enrolment token"),
        client_auth: security.client_auth(),
    };
    let admin_gate = Gate::new(security.admin_token.as_ref(), "admin token");
    let admin = pb::admin_server::AdminServer::new(AdminService::new(
        commands,
        admin_gate.clone(),
        security.client_auth(),
        service,
    ))
    .max_decoding_message_size(MAX_ADMIN_REQUEST);
    // The token is checked on the headers, before a request body (up to
    // MAX_ADMIN_REQUEST, a plan) is read: a caller without it costs no more than that.
    let admin = InterceptedService::new(admin, move |request: Request<()>| {
        admin_gate.check(&request, "admin")?;
        Ok(request)
    });
    let router = builder(heartbeat_timeout).add_service(
        pb::agent_control_server::AgentControlServer::new(agent_control)
            .max_decoding_message_size(MAX_FROM_AGENT)
            .max_encoding_message_size(MAX_TO_AGENT),
    );
    // One cap over both ports: together they hold at most `max_connections`.
    let limit = ConnectionLimit::new(max_connections);
    let served = match admin_listener {
        None => {
            let router = router.add_service(admin);
            serve_router(router, listener, &security, limit, &shutdown).await
        }
        Some(admin_listener) => {
            let admin_router = builder(heartbeat_timeout).add_service(admin);
            let (agents, operators) = tokio::join!(
                serve_router(router, listener, &security, limit.clone(), &shutdown),
                serve_router(admin_router, admin_listener, &security, limit, &shutdown),
            );
            agents.and(operators)
        }
    };
    if let Err(e) = served {
        tracing::error!("grpc server failed: {e}");
    }
}

/// A gRPC server with the controller's keepalive and stream limits.
fn builder(heartbeat_timeout: Duration) -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(HEARTBEAT_INTERVAL))
        .http2_keepalive_timeout(Some(heartbeat_timeout))
        .max_concurrent_streams(Some(STREAMS_PER_CONNECTION))
        .concurrency_limit_per_connection(STREAMS_PER_CONNECTION as usize)
        // Set, not defaulted: the memory bound per connection is built on them.
        .initial_connection_window_size(Some(connections::CONNECTION_WINDOW))
        .initial_stream_window_size(Some(connections::STREAM_WINDOW))
        .http2_max_header_list_size(Some(connections::MAX_HEADER_LIST))
}

/// Serve `router` on `listener` (with TLS when the controller has it) until shutdown.
async fn serve_router(
    router: tonic::transport::server::Router,
    listener: TcpListener,
    security: &Security,
    limit: ConnectionLimit,
    shutdown: &CancellationToken,
) -> Result<(), tonic::transport::Error> {
    match &security.tls {
        Some(tls) => {
            let admitted = connections::admit(listener, limit, shutdown.clone());
            let incoming = crate::tls::incoming(admitted, tls);
            router
                .serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned())
                .await
        }
        None => {
            let incoming = connections::plain(listener, limit, shutdown.clone());
            router
                .serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned())
                .await
        }
    }
}

/// Largest message taken from an agent: a snapshot of the plan's most steps (1,000)
/// with their histograms fits; a larger one ends the stream.
pub(crate) const MAX_FROM_AGENT: usize = 4 * 1024 * 1024;

/// Largest message sent to an agent: an `Assign` with the plan (at most 16 MiB) and its
/// body files.
pub(crate) const MAX_TO_AGENT: usize = 64 * 1024 * 1024;

/// Largest admin request: `submit` and `schedules add` carry a plan (a larger one is
/// refused: run it with `run`).
const MAX_ADMIN_REQUEST: usize = 4 * 1024 * 1024;

/// Streams at once on one connection: an agent needs one, the admin CLI one per call.
const STREAMS_PER_CONNECTION: u32 = 16;

/// The `AgentControl` service.
#[derive(Debug)]
struct AgentControlService {
    events: mpsc::Sender<AgentEvent>,
    next_conn: AtomicU64,
    /// A stream silent this long (no heartbeat, no message) is dropped.
    heartbeat_timeout: Duration,
    /// The enrolment token.
    gate: Gate,
    /// Mutual TLS: the agent id must be a name its certificate carries.
    client_auth: bool,
}

/// How often the controller tells each agent it is alive (the agents' dead-man switch).
pub(crate) const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

type ControllerStream = Pin<Box<dyn Stream<Item = Result<pb::ControllerMessage, Status>> + Send>>;

#[tonic::async_trait]
impl pb::agent_control_server::AgentControl for AgentControlService {
    type AttachStream = ControllerStream;

    async fn attach(
        &self,
        request: Request<Streaming<pb::AgentMessage>>,
    ) -> Result<Response<Self::AttachStream>, Status> {
        self.gate.check(&request, "attach")?;
        if self.client_auth {
            refuse_role(&request, Role::Operator, "attach")?;
        }
        let peer = peer(&request);
        let names = self.client_auth.then(|| {
            request
                .peer_certs()
                .and_then(|certs| certs.first().map(crate::tls::peer_names))
                .unwrap_or_default()
        });
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(Duration::from_secs(10), inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no hello within 10 s"))??;
        let hello = match first.and_then(|m| m.kind) {
            Some(Out::Hello(hello)) if valid_id(&hello.agent_id) => wire::hello(hello),
            Some(Out::Hello(_)) => {
                return Err(Status::invalid_argument(
                    "agent id must be 1-128 characters of letters, digits, '-', '_', '.'",
                ));
            }
            _ => return Err(Status::invalid_argument("the first message must be hello")),
        };
        if let Err(e) = crescendo_plan::labels::check_labels(&hello.labels) {
            return Err(Status::invalid_argument(format!("bad labels: {e}")));
        }
        let agent = hello.agent_id.clone();
        if let Some(names) = names
            && !names.contains(&agent)
        {
            tracing::warn!(%peer, agent, ?names, "refused: the agent id is not its certificate's");
            return Err(Status::permission_denied(format!(
                "agent id {agent} is not a name its certificate carries (CN or SAN: {})",
                names.join(", ")
            )));
        }
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(AGENT_QUEUE);
        let life = StreamLife::new();
        let (reply, decided) = oneshot::channel();
        let attached = AgentEvent::Attached {
            hello,
            conn,
            tx,
            life: life.clone(),
            reply,
        };
        let gone = || Status::from(ControllerError::Gone);
        self.events.send(attached).await.map_err(|_| gone())?;
        if let Err(refused) = decided.await.map_err(|_| gone())? {
            tracing::warn!(%peer, agent, "refused: {refused}");
            return Err(Status::already_exists(refused.to_string()));
        }
        // The stream ends when the registry and the run drop their senders (the agent
        // is unwanted), or when a newer stream replaces it (closed with `Aborted`); then
        // the reader stops too.
        let ended = life.ended().clone();
        let on_end = ended.clone();
        let welcome = futures::stream::iter([Ok(wire::welcome(agent.clone()))]);
        let messages = ReceiverStream::new(rx).map(|m| Ok(wire::to_agent(m)));
        let end =
            futures::stream::once(async move { on_end.cancel() }).filter_map(|()| async { None });
        let beats = IntervalStream::new(tokio::time::interval(HEARTBEAT_INTERVAL))
            .map(|_| Ok(wire::heartbeat()))
            .take_until(ended.clone().cancelled_owned());
        let replaced = life.replaced().clone();
        let outbound = futures::stream::select(welcome.chain(messages).chain(end), beats)
            .take_until(replaced.clone().cancelled_owned())
            .chain(
                futures::stream::iter([replaced_status(&agent)]).filter(move |_| {
                    let replaced = replaced.is_cancelled();
                    async move { replaced }
                }),
            );
        let stream: ControllerStream = Box::pin(outbound);
        let events = self.events.clone();
        let silence = self.heartbeat_timeout;
        tokio::spawn(read_agent(inbound, agent, conn, events, life, silence));
        Ok(Response::new(stream))
    }
}

/// Turn one agent's messages into events until its stream ends either way, or stays
/// silent (no heartbeat, no message) for `silence`: a hung or partitioned agent.
async fn read_agent(
    mut inbound: Streaming<pb::AgentMessage>,
    agent: String,
    conn: u64,
    events: mpsc::Sender<AgentEvent>,
    life: StreamLife,
    silence: Duration,
) {
    let ended = life.ended().clone();
    loop {
        let received = tokio::select! {
            r = tokio::time::timeout(silence, inbound.message()) => match r {
                Ok(r) => r,
                Err(_) => {
                    tracing::warn!(agent = %agent, "nothing from the agent for {silence:?}: dropping its stream");
                    break;
                }
            },
            _ = ended.cancelled() => break,
        };
        if matches!(received, Ok(Some(_))) {
            life.heard();
        }
        match received {
            Ok(Some(pb::AgentMessage { kind: Some(kind) })) => {
                let event = AgentEvent::Message {
                    agent: agent.clone(),
                    conn,
                    message: wire::from_agent(kind),
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
    // Over: the registry no longer counts this stream as the id's live one.
    ended.cancel();
    let _ = events.send(AgentEvent::Detached { agent, conn }).await;
}

/// How a stream replaced by a newer one for the same id ends: an old process still
/// reading it learns another one has its id, and stops.
fn replaced_status(agent: &str) -> Result<pb::ControllerMessage, Status> {
    Err(Status::aborted(format!(
        "a newer stream attached as agent {agent} after this one fell silent: this stream is closed"
    )))
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
    crate::messages::valid_name(id, 128)
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
