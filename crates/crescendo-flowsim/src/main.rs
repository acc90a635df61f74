//! `crescendo-flowsim`: serve the simulated flows API until Ctrl-C.

use std::net::SocketAddr;

use anyhow::Context as _;
use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// A local stand-in for a rate-limited Architect-style flows API.
#[derive(Debug, Parser)]
#[command(name = "crescendo-flowsim", version)]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "FLOWSIM_LISTEN")]
    listen: SocketAddr,
    #[command(flatten)]
    config: crescendo_flowsim::Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    // Secrets come from the environment or a file, never argv (see `--clients-file`).
    cli.config
        .auth
        .clients
        .extend(crescendo_flowsim::clients_from_env()?);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        // No colour codes in logs that go to a file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    // watch for SIGINT and SIGTERM before anything slow, so an early one is not lost
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("watching SIGTERM")?;
    tokio::spawn(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        on_signal.cancel();
    });
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("binding {}", cli.listen))?;
    println!("flowsim listening on http://{}", listener.local_addr()?);
    if let Some(line) = crescendo_flowsim::seeded_summary(cli.config.flows) {
        println!("{line}");
    }

    crescendo_flowsim::serve(listener, cli.config, shutdown)
        .await
        .context("serving")
}
