//! The commands that talk to a running controller (or check one is there): `status`
//! and `cancel` through the admin service's client — with the gRPC server (`server`,
//! `wire`) the only place protobuf is spoken — and `health`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use crescendo_agent::transport::{self, ADMIN_TOKEN_ENV, Token};
use crescendo_proto::v1 as pb;
use pb::admin_client::AdminClient;
use tonic::transport::Channel;

use crate::exit_code::{EXIT_FAILURE, EXIT_OK};

/// Which controller, and how to reach it. The admin token, when the controller asks
/// for one, comes from `CRESCENDO_ADMIN_TOKEN` (never argv).
#[derive(Debug, clap::Args)]
pub(super) struct AdminArgs {
    /// The controller's (or service's admin) URL.
    #[arg(
        long,
        global = true,
        default_value = "http://127.0.0.1:7700",
        env = "CRESCENDO_CONTROLLER"
    )]
    controller: String,
    /// The CA certificate (PEM) that signed the controller's (an https:// controller).
    #[arg(long, global = true, value_name = "PEM")]
    tls_ca: Option<PathBuf>,
    /// Your client certificate (PEM), when the controller asks for mutual TLS.
    #[arg(long, global = true, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The key (PEM) of --tls-cert.
    #[arg(long, global = true, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

impl AdminArgs {
    pub(super) async fn client(&self) -> anyhow::Result<AdminClient<Channel>> {
        let url = &self.controller;
        let tls = transport::client_tls(
            url,
            self.tls_ca.as_deref(),
            self.tls_cert.as_deref(),
            self.tls_key.as_deref(),
        )?;
        let channel = transport::endpoint(url, tls.as_ref())?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .with_context(|| format!("cannot reach the controller at {url}"))?;
        // Run records carry summaries: more than tonic's 4 MiB default may come back.
        Ok(AdminClient::new(channel).max_decoding_message_size(64 * 1024 * 1024))
    }

    /// A request with the admin token from the environment, if set.
    pub(super) fn request<T>(&self, message: T) -> anyhow::Result<tonic::Request<T>> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = Token::from_env(ADMIN_TOKEN_ENV) {
            token.authorize(&mut request)?;
        }
        Ok(request)
    }
}

/// A refusal in words that say what to do.
pub(super) fn refused(call: &str, status: tonic::Status) -> anyhow::Error {
    match status.code() {
        tonic::Code::Unauthenticated => anyhow::anyhow!(
            "{call}: Unauthenticated: {} (the controller asks for an admin token: set {ADMIN_TOKEN_ENV})",
            status.message()
        ),
        code => anyhow::anyhow!("{call}: {code:?}: {}", status.message()),
    }
}

pub(super) async fn status(args: &AdminArgs) -> anyhow::Result<u8> {
    let mut client = args.client().await?;
    let s = client
        .status(args.request(pb::StatusRequest {})?)
        .await
        .map_err(|s| refused("status", s))?
        .into_inner();
    println!(
        "state {}  run {}  elapsed {:.1}s  requests {}",
        s.state, s.run_id, s.elapsed_s, s.requests
    );
    for a in s.agents {
        println!("  agent {} on {} (v{})", a.id, a.host, a.version);
    }
    Ok(EXIT_OK)
}

pub(super) async fn cancel(args: &AdminArgs, reason: String) -> anyhow::Result<u8> {
    let mut client = args.client().await?;
    let r = client
        .cancel(args.request(pb::CancelRequest { reason })?)
        .await
        .map_err(|s| refused("cancel", s))?
        .into_inner();
    if r.cancelled {
        println!("run {} cancelled on every agent", r.run_id);
    } else {
        println!("no run in progress");
    }
    Ok(EXIT_OK)
}

/// Exit 0 when `tcp` accepts a connection within `timeout`, 1 otherwise.
pub(super) async fn health(tcp: SocketAddr, timeout: Duration) -> u8 {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(tcp)).await {
        Ok(Ok(_)) => EXIT_OK,
        Ok(Err(e)) => {
            eprintln!("unhealthy: {tcp}: {e}");
            EXIT_FAILURE
        }
        Err(_) => {
            eprintln!("unhealthy: {tcp}: no answer within {timeout:?}");
            EXIT_FAILURE
        }
    }
}
