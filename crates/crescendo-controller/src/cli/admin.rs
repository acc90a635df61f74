//! The admin service's client: `status` and `cancel` against a running controller.
//! With the gRPC server (`server`, `wire`) the only place protobuf is spoken.

use crescendo_proto::v1 as pb;

use crate::exit_code::EXIT_OK;

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
