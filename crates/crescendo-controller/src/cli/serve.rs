//! `crescendo-controller serve`: the controller as a service a team leaves running: a
//! pool of agents, a queue of runs, schedules and history under `--data DIR`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::fleet_args::FleetArgs;
use super::{CLOSE_GRACE, stop_signal};
use crate::exit_code::{EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK};
use crate::service::{Service, ServiceSettings};

/// How long, on shutdown, the runs in progress have to stop their fleets, drain and
/// be recorded.
const RECORD_GRACE: Duration = Duration::from_secs(60);

#[derive(Debug, clap::Args)]
pub(super) struct ServeArgs {
    #[command(flatten)]
    fleet: FleetArgs,
    /// Where the run history (crescendo.db) and each run's report files
    /// (runs/<id>/) are kept.
    #[arg(long, env = "CRESCENDO_DATA", value_name = "DIR")]
    data: PathBuf,
    /// Serve the admin service (submit, runs, schedules, agents, status, cancel) on
    /// this address of its own, and only agents on --listen. Without an admin token
    /// (--admin-token-file) or mutual TLS it must be a loopback address.
    #[arg(long, value_name = "ADDR", env = "CRESCENDO_ADMIN_LISTEN")]
    admin_listen: Option<SocketAddr>,
    /// A queued run that cannot get its agents within this long is recorded
    /// not-started, with the reason.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    run_deadline: Duration,
    /// Keep only the newest N finished runs (a plan's baseline is always kept).
    #[arg(long)]
    keep_runs: Option<usize>,
    /// Keep only runs that ended within D days (a plan's baseline is always kept).
    #[arg(long)]
    keep_days: Option<u32>,
    /// The relative change a run may show against its plan's baseline before it is
    /// `regressed` (0.05 = 5 %).
    #[arg(long, default_value_t = 0.05, value_parser = crate::compare::parse_tolerance)]
    tolerance: f64,
    /// A file holding a webhook URL to POST every finished run to (verdict, headline
    /// figures, baseline comparison; JSON); retried with backoff, failures recorded in
    /// runs/<id>/notify.json. A file (or CRESCENDO_NOTIFY_URL), never argv: webhook
    /// URLs often carry a token.
    #[arg(long, value_name = "FILE")]
    notify_url_file: Option<PathBuf>,
}

pub(super) async fn serve(args: ServeArgs) -> anyhow::Result<u8> {
    let Ok(mut settings) = args
        .fleet
        .settings_for(args.admin_listen)
        .map_err(|e| eprintln!("error: {e:#}"))
    else {
        return Ok(EXIT_BAD_INPUT);
    };
    let notify = match notify_url(args.notify_url_file.as_deref()) {
        Ok(url) => url,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_BAD_INPUT);
        }
    };
    let shutdown = CancellationToken::new();
    let service_settings = ServiceSettings {
        data: args.data.clone(),
        run_deadline: args.run_deadline,
        lost_after: args.fleet.heartbeat_timeout,
        retention: crescendo_store::Retention {
            keep_runs: args.keep_runs,
            keep_days: args.keep_days,
        },
        tolerance: args.tolerance,
        notify,
    };
    let (opening, interrupted) = match Service::open(service_settings, shutdown.clone()) {
        Ok(opened) => opened,
        Err(e) => {
            eprintln!("error: {:#}", anyhow::Error::new(e));
            return Ok(EXIT_FAILURE);
        }
    };
    for id in &interrupted {
        eprintln!(
            "run {id} was queued or in progress when the service stopped: recorded interrupted"
        );
    }
    settings.service = Some(opening.sender());
    let controller = args
        .fleet
        .start_split(args.admin_listen, settings, &shutdown)
        .await?;
    match args.admin_listen {
        None => println!(
            "serving on {}: agents attach and operators call there; data in {}",
            controller.url(),
            args.data.display()
        ),
        Some(admin) => println!(
            "serving agents on {}, operators on {admin}; data in {}",
            controller.url(),
            args.data.display()
        ),
    }
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        if let Some(signal) = stop_signal().await {
            eprintln!("{signal}: stopping every run, recording them, exiting (again to exit now)");
            on_signal.cancel();
        }
        if stop_signal().await.is_some() {
            std::process::exit(130);
        }
    });
    opening.serve(controller.clone(), RECORD_GRACE).await;
    controller.closed(CLOSE_GRACE).await;
    Ok(EXIT_OK)
}

/// The webhook URL from `--notify-url-file` or `CRESCENDO_NOTIFY_URL`, checked; errors
/// never show the URL (it may carry a token).
fn notify_url(file: Option<&std::path::Path>) -> Result<Option<String>, String> {
    let url = match file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("--notify-url-file {}: {e}", path.display()))?,
        None => match std::env::var("CRESCENDO_NOTIFY_URL") {
            Ok(url) => url,
            Err(_) => return Ok(None),
        },
    };
    let url = url.trim().to_owned();
    match reqwest::Url::parse(&url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(Some(url)),
        _ => Err("the webhook URL (--notify-url-file or CRESCENDO_NOTIFY_URL) is not an http:// or https:// URL".to_owned()),
    }
}
