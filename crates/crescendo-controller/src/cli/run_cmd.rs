//! `crescendo-controller run`: one plan on N agents, some of them (`--local-agents`)
//! in this process.

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use super::fleet_args::FleetArgs;
use super::{CLOSE_GRACE, Shown, cancel_on_signal, execute_and_report, fleet_settings, say};
use crate::demo;
use crate::exit_code::EXIT_BAD_INPUT;

/// `run`: `agents` in all, `local` of them started in this process.
pub(super) async fn run_cmd(
    source: &super::PlanArgs,
    (agents, local): (u32, u32),
    fleet: &FleetArgs,
    out: Option<PathBuf>,
    shown: &Shown,
) -> anyhow::Result<u8> {
    let (progress, live) = (shown.progress, &shown.live);
    let Some(settings) = fleet_settings(fleet) else {
        return Ok(EXIT_BAD_INPUT);
    };
    let Some(mut request) = source.request(agents) else {
        return Ok(EXIT_BAD_INPUT);
    };
    let enrol_token = settings.security.enrol_token.clone();
    let tls = settings.security.tls.is_some();
    if local > 0 && tls {
        eprintln!(
            "error: --local-agents attach without TLS: leave out --tls-cert, or start the agents yourself"
        );
        return Ok(EXIT_BAD_INPUT);
    }
    let shutdown = CancellationToken::new();
    let controller = fleet.start(settings, &shutdown).await?;
    let addr = controller.addr();
    let (local_url, remote_url) = if addr.ip().is_unspecified() {
        let scheme = if tls { "https" } else { "http" };
        (
            format!("http://127.0.0.1:{}", addr.port()),
            format!("{scheme}://<this host>:{}", addr.port()),
        )
    } else {
        (controller.url(), controller.url())
    };
    for i in 1..=local {
        let mut config =
            crescendo_agent::AgentConfig::new(local_url.clone(), format!("local-agent-{i}"));
        config.enrol_token = enrol_token.clone();
        demo::start_agent_with(config, &shutdown);
    }
    let remote = agents - local;
    if remote == 0 {
        sayln!(
            progress,
            "controller on {}; {local} local agent(s)",
            controller.url()
        );
    } else {
        sayln!(
            progress,
            "controller listening on {}; waiting for {remote} agent(s){}; on each host run:\n  crescendo-agent --controller {}{}",
            controller.url(),
            if local > 0 {
                format!(" besides {local} local")
            } else {
                String::new()
            },
            remote_url,
            if tls { " --tls-ca CA.pem" } else { "" },
        );
    }
    request.progress = progress;
    request.live = live.clone();
    request.stream = shown.stream.clone();
    request.release_agents = true;
    request.wait_for_agents = fleet.wait_for_agents;
    request.lost_after = fleet.heartbeat_timeout;
    cancel_on_signal(controller.clone());
    let code = execute_and_report(&controller, request, out).await;
    // The release is queued on every agent's stream; closing delivers it.
    shutdown.cancel();
    controller.closed(CLOSE_GRACE).await;
    code
}
