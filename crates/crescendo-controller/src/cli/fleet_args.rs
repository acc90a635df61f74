//! Where `run` and `probe` meet their agents, how long they wait for them, and who
//! may attach and operate (TLS, tokens, `--insecure`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::security::{Security, ServerTls, Serves, Token};
use crate::{Controller, ControllerSettings};

/// Where `run` and `probe` meet their agents, and how long they wait for them.
#[derive(Debug, clap::Args)]
pub(super) struct FleetArgs {
    /// The address agents attach to. A non-loopback address needs agents and operators
    /// to authenticate (--tls-client-ca, or --enrol-token-file and --admin-token-file),
    /// or --insecure.
    #[arg(long, default_value = "127.0.0.1:7700", env = "CRESCENDO_LISTEN")]
    listen: SocketAddr,
    /// How long to wait for the agents to attach.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub(super) wait_for_agents: Duration,
    /// Drop an agent's stream after this long without a word (agents send a heartbeat
    /// every second); the agents stop their load when the controller is this silent.
    /// While an agent's stream is heard from within it, no other stream may take its id.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub(super) heartbeat_timeout: Duration,
    /// The controller's TLS certificate (PEM, chain first); agents then attach with
    /// https:// and --tls-ca.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The key (PEM) of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Mutual TLS: clients (agents, status, cancel) must present a certificate from this
    /// CA (PEM), and an agent's id must be its certificate's CN or a SAN.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// A file holding the token agents must send to attach (their
    /// CRESCENDO_ENROL_TOKEN or --enrol-token-file).
    #[arg(long, value_name = "FILE")]
    enrol_token_file: Option<PathBuf>,
    /// A file holding the token `status` and `cancel` must send (their
    /// CRESCENDO_ADMIN_TOKEN).
    #[arg(long, value_name = "FILE")]
    admin_token_file: Option<PathBuf>,
    /// Listen on a non-loopback address although agents or operators go
    /// unauthenticated: anyone who reaches the port can attach or cancel.
    #[arg(long)]
    insecure: bool,
    /// Open connections at once (agents and operators, both ports together); past it a
    /// new connection is closed at once and the refusals are logged. Bounds what
    /// strangers can make the controller hold: about 1.5 MiB a connection.
    #[arg(long, default_value_t = crate::connections::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
}

impl FleetArgs {
    /// Read the TLS files and tokens and check the listen address against them; the
    /// error is a bad argument (exit 2). Warnings are printed loudly on stderr.
    pub(super) fn settings(&self) -> anyhow::Result<ControllerSettings> {
        self.settings_for(None)
    }

    /// [`FleetArgs::settings`] when the admin service has a port of its own
    /// (`serve --admin-listen`): each address is checked against what it serves.
    pub(super) fn settings_for(
        &self,
        admin_listen: Option<SocketAddr>,
    ) -> anyhow::Result<ControllerSettings> {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(ServerTls::from_pem_files(
                cert,
                key,
                self.tls_client_ca.as_deref(),
            )?),
            _ => None,
        };
        let token = |path: &Option<PathBuf>| path.as_deref().map(Token::from_file).transpose();
        let security = Security {
            tls,
            enrol_token: token(&self.enrol_token_file)?,
            admin_token: token(&self.admin_token_file)?,
            insecure: self.insecure,
        };
        let warnings = match admin_listen {
            None => security.exposure(self.listen)?,
            Some(admin) => {
                let mut w = security.exposure_of(self.listen, Serves::Agents)?;
                w.extend(security.exposure_of(admin, Serves::Admin)?);
                w
            }
        };
        for warning in warnings {
            eprintln!("{warning}");
        }
        Ok(ControllerSettings {
            heartbeat_timeout: self.heartbeat_timeout,
            security,
            service: None,
            max_connections: self.max_connections,
        })
    }

    /// Bind the listener and start a controller on it.
    pub(super) async fn start(
        &self,
        settings: ControllerSettings,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Controller> {
        self.start_split(None, settings, shutdown).await
    }

    /// Bind the listeners (the admin service's own, when given) and start a
    /// controller on them.
    pub(super) async fn start_split(
        &self,
        admin_listen: Option<SocketAddr>,
        settings: ControllerSettings,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Controller> {
        let listener = TcpListener::bind(self.listen).await?;
        let admin = match admin_listen {
            Some(addr) => Some(TcpListener::bind(addr).await?),
            None => None,
        };
        Ok(Controller::start_split(
            listener,
            admin,
            shutdown.clone(),
            settings,
        )?)
    }
}
