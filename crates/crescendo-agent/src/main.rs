//! `crescendo-agent --controller URL [--id ID]`: attach to a controller and serve runs.

use std::time::Duration;

use clap::Parser;

/// A Crescendo load agent.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The controller's gRPC URL.
    #[arg(long, env = "CRESCENDO_CONTROLLER")]
    controller: String,
    /// This agent's id (default: a random one).
    #[arg(long, env = "CRESCENDO_AGENT_ID")]
    id: Option<String>,
    /// Stop a run when the controller has been unreachable this long.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    orphan_grace: Duration,
    /// Exit when no controller answers for this long while idle (default: keep trying).
    #[arg(long, value_parser = humantime::parse_duration)]
    give_up_after: Option<Duration>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let id = cli
        .id
        .unwrap_or_else(|| format!("agent-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]));
    let mut config = crescendo_agent::AgentConfig::new(cli.controller, id);
    config.orphan_grace = cli.orphan_grace;
    config.give_up_after = cli.give_up_after;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        on_signal.cancel();
    });
    crescendo_agent::run(config, shutdown).await?;
    Ok(())
}
