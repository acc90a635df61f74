//! The commands that talk to a running controller (or check one is there): `status`
//! and `cancel` through the admin service's client — with the gRPC server (`server`,
//! `wire`) the only place protobuf is spoken — and `health`.

use std::net::SocketAddr;
use std::time::Duration;

use crescendo_proto::v1 as pb;

use crate::exit_code::{EXIT_FAILURE, EXIT_OK};

pub(super) async fn status(url: String) -> anyhow::Result<u8> {
    let mut client = pb::admin_client::AdminClient::connect(url).await?;
    let s = client.status(pb::StatusRequest {}).await?.into_inner();
    println!(
        "state {}  run {}  elapsed {:.1}s  requests {}",
        s.state, s.run_id, s.elapsed_s, s.requests
    );
    for a in s.agents {
        println!("  agent {} on {} (v{})", a.id, a.host, a.version);
    }
    Ok(EXIT_OK)
}

pub(super) async fn cancel(url: String, reason: String) -> anyhow::Result<u8> {
    let mut client = pb::admin_client::AdminClient::connect(url).await?;
    let r = client
        .cancel(pb::CancelRequest { reason })
        .await?
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
