//! `crescendo-agent --controller URL [--id ID] [--labels K=V,…]`: attach to a controller and serve runs.
//!
//! SIGTERM and the first Ctrl-C mean the same: stop the load, let the requests on the
//! wire finish, flush the last snapshot and `Finished`, exit. A second one exits at once.
//!
//! Exit codes: 0 released by the controller or stopped by a signal; 1 an error (a bad
//! URL or TLS file, no controller, refused by the controller: a missing or wrong
//! enrolment token, an id the certificate does not name, or replaced by another
//! process with the same id); 130 a second signal cut the shutdown short.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use crescendo_agent::transport::{self, ENROL_TOKEN_ENV, Token};
use crescendo_plan::labels::Labels;
use tokio_util::sync::CancellationToken;

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
    /// What this agent is, as key=value pairs (e.g. region=eu-west-1,zone=a): a run's
    /// --selector picks agents by them.
    #[arg(long, env = "CRESCENDO_AGENT_LABELS", value_name = "K=V,…", value_parser = parse_labels)]
    labels: Option<Labels>,
    /// Stop the load when nothing has come from the controller for this long (it sends
    /// a heartbeat every second), then try to attach again: a run never goes on
    /// unattended. At least 2s.
    #[arg(
        long,
        alias = "orphan-grace",
        default_value = "3s",
        env = "CRESCENDO_HEARTBEAT_TIMEOUT",
        value_parser = parse_heartbeat_timeout
    )]
    heartbeat_timeout: Duration,
    /// Exit when no controller answers for this long while idle (default: keep trying).
    #[arg(long, value_parser = humantime::parse_duration)]
    give_up_after: Option<Duration>,
    /// On a signal, wait this long past the run's drain for the controller to
    /// acknowledge the last snapshot.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    shutdown_grace: Duration,
    /// The CA certificate (PEM) that signed the controller's; the controller URL must
    /// then be https://.
    #[arg(long, value_name = "PEM")]
    tls_ca: Option<PathBuf>,
    /// This agent's certificate (PEM) for mutual TLS; its CN or a SAN must be the
    /// agent's --id.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The key (PEM) of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// A file holding the enrolment token the controller asks for (default: the
    /// CRESCENDO_ENROL_TOKEN environment variable).
    #[arg(long, value_name = "FILE")]
    enrol_token_file: Option<PathBuf>,
}

fn parse_labels(s: &str) -> Result<Labels, String> {
    crescendo_plan::labels::parse_labels(s).map_err(|e| e.to_string())
}

/// A heartbeat timeout: a duration of at least two heartbeat intervals.
fn parse_heartbeat_timeout(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d < Duration::from_secs(2) {
        return Err(format!("{s} is shorter than two heartbeats (2s)"));
    }
    Ok(d)
}

/// The exit code when a second signal cuts the shutdown short.
const INTERRUPTED: i32 = 130;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match agent().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The causes in one line; never a backtrace, whatever RUST_BACKTRACE says.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn agent() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        // No colour codes in logs that go to a file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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
    config.labels = cli.labels.unwrap_or_default();
    config.heartbeat_timeout = cli.heartbeat_timeout;
    config.give_up_after = cli.give_up_after;
    config.shutdown_grace = cli.shutdown_grace;
    config.tls = transport::client_tls(
        &config.controller,
        cli.tls_ca.as_deref(),
        cli.tls_cert.as_deref(),
        cli.tls_key.as_deref(),
    )?;
    config.enrol_token = match &cli.enrol_token_file {
        Some(path) => Some(Token::from_file(path)?),
        None => Token::from_env(ENROL_TOKEN_ENV),
    };
    let shutdown = CancellationToken::new();
    let mut signals = Signals::new()?;
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        let first = signals.next().await;
        tracing::info!("{first}: stopping the load and flushing (again to exit at once)");
        on_signal.cancel();
        let second = signals.next().await;
        tracing::warn!("{second} again: exiting without flushing");
        std::process::exit(INTERRUPTED);
    });
    crescendo_agent::run(config, shutdown).await?;
    Ok(())
}

/// SIGINT (Ctrl-C) and SIGTERM, which mean the same.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Self {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?,
        })
    }

    /// The next signal's name.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        tokio::select! {
            Ok(()) = tokio::signal::ctrl_c() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}
