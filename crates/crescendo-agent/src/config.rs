//! The agent's configuration and its public error.

use std::time::Duration;

use crate::transport::{ClientTls, Token, TransportError};

/// How an agent finds and treats its controller.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The controller's gRPC URL, e.g. `http://127.0.0.1:7700`.
    pub controller: String,
    /// This agent's id, unique in the fleet.
    pub id: String,
    /// Concurrent requests this agent is willing to hold.
    pub capacity: u32,
    /// What this agent is (region, zone, …): a run's selector picks agents by them.
    pub labels: crescendo_plan::labels::Labels,
    /// The dead-man switch: a run stops its load when nothing (a heartbeat, any
    /// message) has come from the controller for this long, and a stream that stays
    /// silent this long is dropped and attached again.
    pub heartbeat_timeout: Duration,
    /// Give up when no controller answers for this long while idle (`None`: never).
    pub give_up_after: Option<Duration>,
    /// On shutdown, how long to wait past the run's drain for the controller to
    /// acknowledge the last snapshots (and for the run's tasks to end).
    pub shutdown_grace: Duration,
    /// TLS towards the controller (an `https://` URL): its CA and, for mutual TLS,
    /// this agent's certificate, whose CN or a SAN must be [`AgentConfig::id`].
    pub tls: Option<ClientTls>,
    /// Sent as `authorization: Bearer …` on every attach when the controller asks
    /// for an enrolment token.
    pub enrol_token: Option<Token>,
}

impl AgentConfig {
    /// A config with defaults for everything but the controller URL and id.
    pub fn new(controller: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            controller: controller.into(),
            id: id.into(),
            capacity: 10_000,
            labels: Default::default(),
            heartbeat_timeout: Duration::from_secs(3),
            give_up_after: None,
            shutdown_grace: Duration::from_secs(5),
            tls: None,
            enrol_token: None,
        }
    }
}

/// Why an agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("bad controller url {url}")]
    BadUrl {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("no controller answered at {0}")]
    Unreachable(String),
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The controller refused this agent: a missing or wrong enrolment token, or an
    /// id its certificate does not name. Trying again would not help.
    #[error("the controller refused agent {id}: {message}")]
    Refused { id: String, message: String },
    /// The controller closed this agent's stream because a newer stream attached with
    /// the same id (after this one fell silent): another process has this agent's id.
    #[error("the controller replaced agent {id}'s stream with a newer one: {message}")]
    Replaced { id: String, message: String },
}
