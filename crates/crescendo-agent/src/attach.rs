//! Attaching to the controller: the first messages of a stream (`Hello`, then what
//! the controller has not acknowledged), the request that carries them with the
//! enrolment token, and what the controller's refusals mean for the session.

use crescendo_proto::v1 as pb;
use pb::agent_message::Kind as Out;
use tonic::{Code, Status};

use crate::config::{AgentConfig, AgentError};

/// The `Hello` that opens every stream; `resume_run_id` names the run the agent is
/// still part of after a reconnect (empty when idle).
pub(crate) fn hello(config: &AgentConfig, resume_run_id: String) -> pb::AgentMessage {
    pb::AgentMessage {
        kind: Some(Out::Hello(pb::Hello {
            agent_id: config.id.clone(),
            host: hostname(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            capacity: config.capacity,
            resume_run_id,
            labels: config.labels.clone().into_iter().collect(),
        })),
    }
}

/// The attach request for `stream`, with the enrolment token when there is one.
pub(crate) fn request<S>(config: &AgentConfig, stream: S) -> Result<tonic::Request<S>, AgentError> {
    let mut request = tonic::Request::new(stream);
    if let Some(token) = &config.enrol_token {
        token.authorize(&mut request)?;
    }
    Ok(request)
}

/// The controller refused the stream: `Some` when trying again cannot help (no or a
/// wrong enrolment token, a certificate that does not name this id). A refusal because
/// the id is attached on a live stream is worth retrying: that stream may be this
/// agent's own previous one, which the controller drops once it is silent past the
/// heartbeat timeout.
pub(crate) fn refused(config: &AgentConfig, status: &Status) -> Option<AgentError> {
    match status.code() {
        Code::Unauthenticated | Code::PermissionDenied => {
            tracing::error!(code = ?status.code(), message = status.message(), "the controller refused this agent");
            Some(AgentError::Refused {
                id: config.id.clone(),
                message: status.message().to_owned(),
            })
        }
        Code::AlreadyExists => {
            tracing::warn!(
                message = status.message(),
                "the controller still holds a live stream for this id; trying again"
            );
            None
        }
        _ => {
            tracing::warn!(%status, "controller refused the stream");
            None
        }
    }
}

/// The controller ended an attached stream with `status`: `Some` when it closed it
/// because a newer stream took this id over (another process with the same id).
pub(crate) fn replaced(config: &AgentConfig, status: &Status) -> Option<AgentError> {
    (status.code() == Code::Aborted).then(|| AgentError::Replaced {
        id: config.id.clone(),
        message: status.message().to_owned(),
    })
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
