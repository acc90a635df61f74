//! The `crescendo-controller` command line. `main.rs` parses [`Cli`] and calls
//! [`Cli::execute`], which returns the documented exit code ([`crate::exit_code`]).

/// How `run`, `demo` and `probe` show themselves while they go.
#[derive(Debug, Clone, Default, clap::Args)]
struct ShowArgs {
    /// How progress shows each second: a live display (`bar`, the default on a
    /// terminal), plain lines (the default otherwise), JSON Lines on stdout (everything
    /// else then goes to stderr), or none.
    #[arg(long, value_enum)]
    progress: Option<ProgressMode>,
    /// Serve Prometheus metrics at http://ADDR/metrics while the run goes (port 0 picks
    /// a free port; the address is printed).
    #[arg(long, value_name = "ADDR", env = "CRESCENDO_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
}

/// `say` with `format!` arguments.
macro_rules! sayln {
    ($progress:expr, $($arg:tt)*) => {
        say($progress, format_args!($($arg)*))
    };
}

mod admin;
mod certs;
mod examples;
mod fleet_args;
mod init;
mod plan_args;
mod probe_cmd;
mod run_cmd;
mod serve;
mod service_client;
mod table;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use admin::AdminArgs;
use fleet_args::FleetArgs;
use plan_args::{PlanArgs, SetArgs};

pub use crate::exit_code::{EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, EXIT_THRESHOLD};

use crate::live::{JsonStream, LiveMetrics, start_metrics};
use crate::{Controller, ProgressMode, RunRequest, demo, report};

/// Crescendo controller: rehearse peak load against rate-limited APIs from many hosts.
#[derive(Debug, Parser)]
#[command(
    name = "crescendo-controller",
    version,
    about = "Crescendo controller: rehearse peak load against rate-limited APIs from many hosts"
)]
pub struct Cli {
    /// Also accepted before the subcommand (`crescendo-controller --progress json run …`).
    #[arg(long, value_enum, hide = true)]
    progress: Option<ProgressMode>,
    /// Also accepted before the subcommand.
    #[arg(long, value_name = "ADDR", hide = true)]
    metrics_listen: Option<SocketAddr>,
    #[command(subcommand)]
    command: Cmd,
}

/// Human-readable output: stdout, or stderr when stdout carries JSON progress.
fn say(progress: ProgressMode, text: impl std::fmt::Display) {
    if progress == ProgressMode::Json {
        eprintln!("{text}");
    } else {
        println!("{text}");
    }
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Start flowsim and N agents on loopback and run a short rehearsal.
    #[command(after_long_help = examples::DEMO)]
    Demo {
        /// How many agents to start in this process.
        #[arg(long, default_value_t = 3)]
        agents: u32,
        /// How long the load runs.
        #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// Where the report files go (default ./crescendo-out/<run id>); `json=FILE`
        /// also streams progress and events to FILE as JSON Lines while the run goes
        /// (give --out twice for both).
        #[arg(long, value_name = "DIR|json=FILE", value_parser = parse_out)]
        out: Vec<Out>,
        #[command(flatten)]
        set: SetArgs,
        #[command(flatten)]
        show: ShowArgs,
    },
    /// Wait for N agents, run a plan, write the report files.
    #[command(after_long_help = examples::RUN)]
    Run {
        #[command(flatten)]
        plan: PlanArgs,
        /// How many agents the plan is split over (default: --local-agents); agents
        /// beyond the local ones attach from other hosts.
        #[arg(long, required_unless_present = "local_agents")]
        agents: Option<u32>,
        /// Start this many agents in this process (on this host), so the run needs
        /// nothing else.
        #[arg(long, value_name = "N")]
        local_agents: Option<u32>,
        #[command(flatten)]
        fleet: FleetArgs,
        /// Where the report files go (default ./crescendo-out/<run id>); `json=FILE`
        /// also streams progress and events to FILE as JSON Lines while the run goes
        /// (give --out twice for both).
        #[arg(long, value_name = "DIR|json=FILE", value_parser = parse_out)]
        out: Vec<Out>,
        #[command(flatten)]
        show: ShowArgs,
    },
    /// Find the API's sustainable rate: ramp the fleet up to the plan's peak rate under
    /// coordinated backoff, converge, and report the highest steady accepted rate.
    #[command(after_long_help = examples::PROBE)]
    Probe {
        #[command(flatten)]
        plan: PlanArgs,
        /// How many agents the probe is split over.
        #[arg(long)]
        agents: u32,
        #[command(flatten)]
        fleet: FleetArgs,
        /// The whole probe, ramp included.
        #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// A steady stretch counts only while its throttled share stays below this.
        #[arg(long, default_value_t = 0.01)]
        epsilon: f64,
        /// Where the report files go (default ./crescendo-out/<run id>); `json=FILE`
        /// also streams progress and events to FILE as JSON Lines while the run goes
        /// (give --out twice for both).
        #[arg(long, value_name = "DIR|json=FILE", value_parser = parse_out)]
        out: Vec<Out>,
        #[command(flatten)]
        show: ShowArgs,
    },
    /// Write a commented starter plan (and the files it names) to PATH.
    #[command(after_long_help = examples::INIT)]
    Init(init::InitArgs),
    /// Check a plan and exit 2 with the file, line and key of the first error.
    #[command(after_long_help = examples::VALIDATE)]
    Validate {
        #[command(flatten)]
        plan: PlanArgs,
    },
    /// Compare two runs (run directories or summary.json files): exit 0 when B holds,
    /// 99 when it regressed from A past the tolerance, 2 when either cannot be read.
    #[command(after_long_help = examples::COMPARE)]
    Compare {
        /// The baseline: a run directory or its summary.json.
        a: PathBuf,
        /// The run compared with it.
        b: PathBuf,
        /// Relative change allowed before a metric counts as regressed (0.05 = 5 %).
        #[arg(long, default_value_t = 0.05, value_parser = crate::compare::parse_tolerance)]
        tolerance: f64,
    },
    /// Render report.html, junit.xml and the text summary again from DIR/summary.json.
    #[command(after_long_help = examples::REPORT)]
    Report {
        /// A run directory holding summary.json.
        dir: PathBuf,
    },
    /// Exit 0 when a TCP address accepts a connection, 1 otherwise: a health check for
    /// containers, whose scratch image has no shell or curl (flowsim on :8080, the
    /// controller on :7700).
    #[command(after_long_help = examples::HEALTH)]
    Health {
        /// The address to connect to, e.g. 127.0.0.1:7700.
        #[arg(long)]
        tcp: SocketAddr,
        /// How long to wait for the connection.
        #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
    /// Show the agents attached to a controller and its run (the admin token, if the
    /// controller asks for one, comes from CRESCENDO_ADMIN_TOKEN).
    #[command(after_long_help = examples::STATUS)]
    Status {
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Stop the run in progress on every agent (the admin token, if the controller
    /// asks for one, comes from CRESCENDO_ADMIN_TOKEN).
    #[command(after_long_help = examples::CANCEL)]
    Cancel {
        #[command(flatten)]
        admin: AdminArgs,
        /// Why, as the run's report will say.
        #[arg(long, default_value = "cancelled from the command line")]
        reason: String,
    },
    /// Make a CA, a controller certificate and agent certificates (PEM files) for
    /// --tls-cert/--tls-key/--tls-client-ca and the agents' --tls-*.
    #[command(after_long_help = examples::CERTS)]
    Certs(certs::CertsArgs),
    /// Run as a service: a pool of agents, a queue of runs, schedules and run history
    /// under --data (see "Scheduling rehearsals" in the README).
    #[command(after_long_help = examples::SERVE)]
    Serve(serve::ServeArgs),
    /// Queue a plan on a service (validated first; a bad plan queues nothing); --wait
    /// follows it and exits with its exit code.
    #[command(after_long_help = examples::SUBMIT)]
    Submit {
        /// The plan file (TOML).
        plan: PathBuf,
        #[command(flatten)]
        placement: service_client::Placement,
        /// Follow the run until it finishes and exit with its exit code.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        service: service_client::ServiceArgs,
    },
    /// A service's runs: list, show, cancel, rerun, baseline, trend.
    #[command(after_long_help = examples::RUNS)]
    Runs {
        #[command(subcommand)]
        cmd: service_client::RunsCmd,
        #[command(flatten)]
        service: service_client::ServiceArgs,
    },
    /// A service's schedules: add, list, pause, resume, rm, run-now.
    #[command(after_long_help = examples::SCHEDULES)]
    Schedules {
        #[command(subcommand)]
        cmd: service_client::SchedulesCmd,
        #[command(flatten)]
        service: service_client::ServiceArgs,
    },
    /// The agents attached to a controller (`agents list`: id, host, labels, version,
    /// state, run, last heard from).
    #[command(after_long_help = examples::AGENTS)]
    Agents {
        #[command(subcommand)]
        cmd: service_client::AgentsCmd,
        #[command(flatten)]
        service: service_client::ServiceArgs,
    },
    /// Follow a service's run until it finishes; exits with its exit code.
    #[command(after_long_help = examples::WATCH)]
    Watch {
        /// The run's id (`runs list`).
        id: String,
        #[command(flatten)]
        service: service_client::ServiceArgs,
    },
}

impl Cli {
    /// Run the command; the exit code follows the documented convention.
    pub async fn execute(self) -> ExitCode {
        let show = match &self.command {
            Cmd::Demo { show, .. } | Cmd::Run { show, .. } | Cmd::Probe { show, .. } => {
                show.clone()
            }
            _ => ShowArgs::default(),
        };
        let progress = ProgressMode::resolve(
            show.progress.or(self.progress),
            std::io::stdout().is_terminal(),
        );
        let metrics_listen = show.metrics_listen.or(self.metrics_listen);
        let (out_dir, out_json) = match &self.command {
            Cmd::Demo { out, .. } | Cmd::Run { out, .. } | Cmd::Probe { out, .. } => {
                match outs(out) {
                    Ok(outs) => outs,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(EXIT_BAD_INPUT);
                    }
                }
            }
            _ => (None, None),
        };
        let stream = match out_json.as_deref().map(JsonStream::create).transpose() {
            Ok(stream) => stream,
            Err(e) => {
                eprintln!(
                    "error: --out json={}: {e}",
                    out_json.unwrap_or_default().display()
                );
                return ExitCode::from(EXIT_BAD_INPUT);
            }
        };
        let shown = Shown {
            progress,
            live: LiveMetrics::new(),
            stream,
        };
        let metrics_stop = CancellationToken::new();
        let _stop_metrics = metrics_stop.clone().drop_guard();
        if let Some(addr) = metrics_listen
            && matches!(
                self.command,
                Cmd::Demo { .. } | Cmd::Run { .. } | Cmd::Probe { .. }
            )
        {
            match start_metrics(addr, shown.live.clone(), metrics_stop.clone()).await {
                Ok(bound) => say(progress, format_args!("metrics on http://{bound}/metrics")),
                Err(e) => {
                    eprintln!("error: --metrics-listen {addr}: {e}");
                    return ExitCode::from(EXIT_FAILURE);
                }
            }
        }
        let code = match self.command {
            Cmd::Demo {
                agents,
                duration,
                set,
                ..
            } => demo_cmd((agents, duration), &set.set, out_dir, &shown).await,
            Cmd::Run {
                plan,
                agents,
                local_agents,
                fleet,
                ..
            } => {
                let local = local_agents.unwrap_or(0);
                let agents = agents.unwrap_or(local);
                if local > agents {
                    eprintln!("error: --local-agents {local} is more than --agents {agents}");
                    Ok(EXIT_BAD_INPUT)
                } else {
                    run_cmd::run_cmd(&plan, (agents, local), &fleet, out_dir, &shown).await
                }
            }
            Cmd::Probe {
                plan,
                agents,
                fleet,
                duration,
                epsilon,
                ..
            } => {
                let settings = crate::probe::ProbeSettings { duration, epsilon };
                probe_cmd::probe_cmd(&plan, agents, &fleet, settings, out_dir, &shown).await
            }
            Cmd::Compare { a, b, tolerance } => Ok(crate::compare::command(&a, &b, tolerance)),
            Cmd::Report { dir } => match report::rerender(&dir) {
                Ok(summary) => {
                    print!("{}", report::text(&summary));
                    Ok(EXIT_OK)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(EXIT_BAD_INPUT)
                }
            },
            Cmd::Validate { plan } => match plan.load() {
                Some((p, _)) => {
                    println!(
                        "{}: ok — plan {:?}, {} step(s), {:?}",
                        plan.path().display(),
                        p.name,
                        p.scenario.steps.len(),
                        p.duration()
                    );
                    Ok(EXIT_OK)
                }
                None => Ok(EXIT_BAD_INPUT),
            },
            Cmd::Health { tcp, timeout } => Ok(admin::health(tcp, timeout).await),
            Cmd::Status { admin } => admin::status(&admin).await,
            Cmd::Cancel { admin, reason } => admin::cancel(&admin, reason).await,
            Cmd::Certs(args) => Ok(certs::certs_cmd(args)),
            Cmd::Init(args) => Ok(init::init(&args)),
            Cmd::Serve(args) => serve::serve(args).await,
            Cmd::Submit {
                plan,
                placement,
                wait,
                service,
            } => service_client::submit(&service, &plan, &placement, wait).await,
            Cmd::Runs { cmd, service } => service_client::runs(&service, cmd).await,
            Cmd::Schedules { cmd, service } => service_client::schedules(&service, cmd).await,
            Cmd::Agents {
                cmd: service_client::AgentsCmd::List,
                service,
            } => service_client::agents(&service).await,
            Cmd::Watch { id, service } => service_client::follow(&service, &id).await,
        };
        match code {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(EXIT_FAILURE)
            }
        }
    }
}

/// How a run shows itself while it goes: the progress form, the live metrics, and
/// `--out json=FILE`.
#[derive(Debug)]
struct Shown {
    progress: ProgressMode,
    live: LiveMetrics,
    stream: Option<JsonStream>,
}

/// One `--out`: the report directory, or a JSON Lines file.
#[derive(Debug, Clone)]
enum Out {
    Dir(PathBuf),
    Json(PathBuf),
}

fn parse_out(value: &str) -> Result<Out, String> {
    match value.strip_prefix("json=") {
        Some("") => Err("json= needs a file name: --out json=run.jsonl".to_owned()),
        Some(file) => Ok(Out::Json(PathBuf::from(file))),
        None => Ok(Out::Dir(PathBuf::from(value))),
    }
}

/// The report directory and the JSON Lines file of a command's `--out`s; at most one
/// of each.
fn outs(outs: &[Out]) -> Result<(Option<PathBuf>, Option<PathBuf>), String> {
    let (mut dir, mut json) = (None, None);
    for out in outs {
        let (slot, what) = match out {
            Out::Dir(p) => (&mut dir, p),
            Out::Json(p) => (&mut json, p),
        };
        if slot.replace(what.clone()).is_some() {
            return Err("--out: give at most one report directory and one json=FILE".to_owned());
        }
    }
    Ok((dir, json))
}

/// How long the controller waits, once its run is over, for the agents' streams to
/// deliver what is queued on them (the release) and close.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The first SIGINT (Ctrl-C) or SIGTERM stops the load everywhere and lets the run
/// collect its last snapshots and report; the second exits at once.
fn cancel_on_signal(controller: Controller) {
    tokio::spawn(async move {
        if let Some(signal) = stop_signal().await {
            eprintln!("{signal}: stopping the run on every agent (again to exit now)");
            let _ = controller
                .interrupt(&format!("interrupted ({signal})"))
                .await;
        }
        if stop_signal().await.is_some() {
            std::process::exit(130);
        }
    });
}

/// The next SIGINT or SIGTERM, by name; `None` when signals cannot be watched.
pub(crate) async fn stop_signal() -> Option<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).ok()?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.ok().map(|()| "SIGINT"),
            _ = term.recv() => Some("SIGTERM"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.ok().map(|()| "Ctrl-C")
    }
}

async fn execute_and_report(
    controller: &Controller,
    request: RunRequest,
    out: Option<PathBuf>,
) -> anyhow::Result<u8> {
    let progress = request.progress;
    let stream = request.stream.clone();
    let outcome = match controller.run(request).await {
        Ok(outcome) => outcome,
        Err(e) if e.is_bad_input() => {
            eprintln!("error: {e}");
            return Ok(EXIT_BAD_INPUT);
        }
        Err(e) => return Err(e.into()),
    };
    let dir = out.unwrap_or_else(|| Path::new("crescendo-out").join(&outcome.run_id));
    let summary = report::write_all(&outcome, &dir)?;
    if let Some(stream) = &stream {
        stream.line("summary", stream_summary(&summary, &dir));
    }
    say(progress, report::text(&summary).trim_end());
    say(progress, format_args!("reports: {}", dir.display()));
    Ok(summary.outcome.exit_code())
}

/// The last line of `--out json=FILE`: the verdict and headline figures.
fn stream_summary(summary: &report::Summary, dir: &Path) -> serde_json::Value {
    serde_json::json!({
        "run_id": summary.run_id,
        "outcome": summary.outcome,
        "exit_code": summary.outcome.exit_code(),
        "outcome_reasons": summary.outcome_reasons,
        "totals": summary.totals,
        "goodput_rps": summary.goodput_rps,
        "throttled_ratio": summary.throttled_ratio,
        "latency_p50_ms": summary.latency_ms.p50,
        "latency_p99_ms": summary.latency_ms.p99,
        "reports": dir,
    })
}

async fn demo_cmd(
    (agents, duration): (u32, Duration),
    set: &[crescendo_plan::Override],
    out: Option<PathBuf>,
    shown: &Shown,
) -> anyhow::Result<u8> {
    let (progress, live) = (shown.progress, &shown.live);
    if agents == 0 || duration < Duration::from_secs(2) {
        eprintln!("error: the demo needs at least 1 agent and 2 s");
        return Ok(EXIT_BAD_INPUT);
    }
    let shutdown = CancellationToken::new();
    let base_url = demo::start_flowsim(demo::flowsim_config(), &shutdown).await?;
    say(
        progress,
        format_args!(
            "flowsim on {base_url}: {} requests per {:?} per token",
            demo::DEMO_LIMIT,
            demo::DEMO_WINDOW
        ),
    );
    let controller = Controller::start(TcpListener::bind("127.0.0.1:0").await?, shutdown.clone())?;
    for i in 1..=agents {
        demo::start_agent(&controller.url(), &format!("demo-agent-{i}"), &shutdown);
    }
    let text = demo::plan_text(&base_url, duration);
    let (plan, text) = match crescendo_plan::parse_with_overrides(
        &text,
        "demo plan",
        &crescendo_plan::NoFiles,
        set,
    ) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e}");
            shutdown.cancel();
            return Ok(EXIT_BAD_INPUT);
        }
    };
    let mut request = RunRequest::new(plan, text, agents)?;
    request.progress = progress;
    request.live = live.clone();
    request.stream = shown.stream.clone();
    request.wait_for_agents = Duration::from_secs(20);
    cancel_on_signal(controller.clone());
    let code = execute_and_report(&controller, request, out).await;
    shutdown.cancel();
    controller.closed(CLOSE_GRACE).await;
    code
}

/// The controller's settings from `run`'s and `probe`'s flags; prints the error (a TLS
/// file or token that cannot be read, an exposed address) and returns `None` when they
/// do not hold.
fn fleet_settings(fleet: &FleetArgs) -> Option<crate::ControllerSettings> {
    fleet.settings().map_err(|e| eprintln!("error: {e:#}")).ok()
}
