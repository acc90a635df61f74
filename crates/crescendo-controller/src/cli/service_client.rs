//! The service's commands (`submit`, `runs`, `schedules`, `agents`, `watch`): clients
//! of the admin service, so, with `admin`, the CLI's other place protobuf is spoken.
//! Records arrive as JSON; `--output json` prints them as they are (one JSON document),
//! `table` (the default) as aligned columns.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crescendo_proto::v1 as pb;
use serde_json::Value;

use super::admin::{AdminArgs, refused};
use super::table::{Output, print_runs, print_table, print_trend, text};
use crate::exit_code::{EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK};

/// Which service, and how to print what it says.
#[derive(Debug, clap::Args)]
pub(super) struct ServiceArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// Aligned columns for people, or the records as JSON for programs.
    #[arg(long, global = true, value_enum, default_value = "table")]
    output: Output,
}

/// Where and on what a run goes.
#[derive(Debug, clap::Args)]
pub(super) struct Placement {
    /// How many agents the plan is split over.
    #[arg(long, default_value_t = 1)]
    agents: u32,
    /// Only agents carrying every label, e.g. region=eu-west-1,zone=a.
    #[arg(long, default_value = "")]
    selector: String,
}

#[derive(Debug, clap::Subcommand)]
pub(super) enum RunsCmd {
    /// Runs, newest first.
    #[command(
        after_long_help = "Examples:\n  crescendo-controller runs list --plan flow-update --state failed --limit 5"
    )]
    List {
        /// Only this plan's runs (by its name).
        #[arg(long)]
        plan: Option<String>,
        /// Only runs in this state (queued, waiting-for-agents, running, passed,
        /// failed, aborted, cancelled, not-started, interrupted, degraded, error).
        #[arg(long)]
        state: Option<String>,
        /// At most this many runs, the newest.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// One run, with its summary and plan.
    #[command(after_long_help = "Examples:\n  crescendo-controller runs show RUN_ID")]
    Show {
        /// The run's id (`runs list`).
        id: String,
    },
    /// Stop a queued or running run on every agent.
    #[command(after_long_help = "Examples:\n  crescendo-controller runs cancel RUN_ID")]
    Cancel {
        /// The run's id (`runs list`).
        id: String,
    },
    /// Queue the run's plan again, exactly as it ran.
    #[command(after_long_help = "Examples:\n  crescendo-controller runs rerun RUN_ID")]
    Rerun {
        /// The run's id (`runs list`).
        id: String,
    },
    /// Make the run its plan's baseline: later runs are compared with it.
    #[command(after_long_help = "Examples:\n  crescendo-controller runs baseline RUN_ID")]
    Baseline {
        /// The run's id (`runs list`).
        id: String,
    },
    /// p50, p99, goodput and throttled ratio of a plan's runs, oldest first.
    #[command(
        after_long_help = "Examples:\n  crescendo-controller runs trend flow-update --limit 10"
    )]
    Trend {
        /// The plan's name (its `name = …`).
        plan: String,
        /// At most this many runs, the newest.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(super) enum AgentsCmd {
    /// Every attached agent.
    #[command(after_long_help = "Examples:\n  crescendo-controller agents list --output json")]
    List,
}

#[derive(Debug, clap::Subcommand)]
pub(super) enum SchedulesCmd {
    /// Run PLAN at the times of --cron (in --tz) or once --at.
    #[command(
        after_long_help = "Examples:\n  crescendo-controller schedules add nightly plans/flow-update.toml --agents 2 --cron \"0 0 2 * * *\" --tz Europe/Paris"
    )]
    Add {
        /// The schedule's name: 1-64 letters, digits, '-', '_', '.'.
        name: String,
        /// The plan file (validated now; its text is kept with the schedule).
        plan: PathBuf,
        #[command(flatten)]
        placement: Placement,
        /// Cron, 5 fields or 6 with seconds first: "0 0 9 * * MON-FRI".
        #[arg(long, conflicts_with = "at", required_unless_present = "at")]
        cron: Option<String>,
        /// The IANA time zone the cron expression is read in.
        #[arg(long, default_value = "UTC", requires = "cron")]
        tz: String,
        /// One time, RFC 3339: 2026-12-24T09:00:00Z.
        #[arg(long)]
        at: Option<String>,
        /// A time missed while the service was down: run once when it is back, or skip
        /// it (recorded as not-started).
        #[arg(long, default_value = "run-once", value_parser = ["run-once", "skip"])]
        missed: String,
    },
    /// Every schedule, with its next time.
    #[command(after_long_help = "Examples:\n  crescendo-controller schedules list")]
    List,
    /// Start nothing until resumed (times that pass meanwhile are not caught up).
    #[command(after_long_help = "Examples:\n  crescendo-controller schedules pause nightly")]
    Pause {
        /// The schedule's name.
        name: String,
    },
    /// Start again from the next time.
    #[command(after_long_help = "Examples:\n  crescendo-controller schedules resume nightly")]
    Resume {
        /// The schedule's name.
        name: String,
    },
    /// Delete the schedule (its runs stay in the history).
    #[command(after_long_help = "Examples:\n  crescendo-controller schedules rm nightly")]
    Rm {
        /// The schedule's name.
        name: String,
    },
    /// Queue the schedule's plan now.
    #[command(after_long_help = "Examples:\n  crescendo-controller schedules run-now nightly")]
    RunNow {
        /// The schedule's name.
        name: String,
    },
}

fn read_plan(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// A call's error: a refused plan or argument exits 2, anything else 1.
fn code_of(call: &str, status: tonic::Status) -> anyhow::Result<u8> {
    if status.code() == tonic::Code::InvalidArgument {
        eprintln!("error: {call}: {}", status.message());
        return Ok(EXIT_BAD_INPUT);
    }
    Err(refused(call, status))
}

fn parse(json: &str) -> Value {
    serde_json::from_str(json).unwrap_or(Value::Null)
}

pub(super) async fn submit(
    args: &ServiceArgs,
    plan: &Path,
    placement: &Placement,
    wait: bool,
) -> anyhow::Result<u8> {
    let mut client = args.admin.client().await?;
    let request = pb::SubmitRequest {
        plan_text: read_plan(plan)?,
        plan_origin: plan.display().to_string(),
        agents: placement.agents,
        selector: placement.selector.clone(),
    };
    let run = match client.submit(args.admin.request(request)?).await {
        Ok(r) => parse(&r.into_inner().run_json),
        Err(s) => return code_of("submit", s),
    };
    let id = run["id"].as_str().unwrap_or_default().to_owned();
    if !wait {
        print_runs(args.output, &[run]);
        return Ok(EXIT_OK);
    }
    if args.output == Output::Table {
        println!("run {id} queued; waiting for it to finish");
    }
    follow(args, &id).await
}

/// How long `--wait` and `watch` wait for a service that does not answer.
const FOLLOW_PATIENCE: Duration = Duration::from_secs(120);

/// Poll a run once a second until it finishes; print its state changes and partial
/// totals; exit with the run's exit code.
pub(super) async fn follow(args: &ServiceArgs, id: &str) -> anyhow::Result<u8> {
    let mut client = args.admin.client().await?;
    let mut shown = String::new();
    // A service that restarts (or a network blip) is waited for, this long.
    let mut unavailable_since: Option<std::time::Instant> = None;
    loop {
        let request = pb::RunActionRequest {
            id: id.to_owned(),
            action: "show".into(),
        };
        let run = match client.run_action(args.admin.request(request)?).await {
            Ok(r) => {
                unavailable_since = None;
                parse(&r.into_inner().run_json)
            }
            Err(s) if s.code() == tonic::Code::Unavailable => {
                let since = *unavailable_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() > FOLLOW_PATIENCE {
                    return code_of("runs show", s);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(s) => return code_of("runs show", s),
        };
        let state = run["state"].as_str().unwrap_or_default().to_owned();
        let totals = &run["summary"]["totals"];
        let elapsed = run["summary"]["elapsed_s"]
            .as_f64()
            .or_else(|| run["summary"]["duration_s"].as_f64())
            .map_or(String::new(), |s| format!("  t={s:.0}s"));
        let line = format!(
            "{state}{elapsed}  requests {}  ok {}  throttled {}  errors {}",
            totals["requests"].as_u64().unwrap_or(0),
            totals["ok"].as_u64().unwrap_or(0),
            totals["throttled"].as_u64().unwrap_or(0),
            totals["errors"].as_u64().unwrap_or_else(|| {
                [
                    "client_errors",
                    "server_errors",
                    "timeouts",
                    "connect_errors",
                ]
                .iter()
                .filter_map(|k| totals[*k].as_u64())
                .sum()
            }),
        );
        if line != shown && args.output == Output::Table {
            println!("{line}");
            shown = line;
        }
        if let Some(code) = exit_code(&run) {
            match args.output {
                Output::Json => println!("{run}"),
                Output::Table => {
                    if let Some(reason) = run["reason"].as_str() {
                        println!("reason: {reason}");
                    }
                    if let Some(c) = run["comparison"]["outcome"].as_str() {
                        println!(
                            "against baseline {}: {c}",
                            run["comparison"]["baseline_run"]
                        );
                    }
                }
            }
            return Ok(code);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A finished run's exit code (`run`'s convention); `None` while it goes.
fn exit_code(run: &Value) -> Option<u8> {
    let state = run["state"].as_str()?;
    if let Some(code) = run["exit_code"].as_u64() {
        return Some(u8::try_from(code).unwrap_or(EXIT_FAILURE));
    }
    match state {
        "queued" | "waiting-for-agents" | "running" => None,
        "cancelled" => Some(EXIT_CANCELLED),
        "interrupted" => Some(EXIT_INTERRUPTED),
        _ => Some(EXIT_FAILURE),
    }
}

pub(super) async fn runs(args: &ServiceArgs, cmd: RunsCmd) -> anyhow::Result<u8> {
    let mut client = args.admin.client().await?;
    let action = |id: &str, action: &str| pb::RunActionRequest {
        id: id.to_owned(),
        action: action.to_owned(),
    };
    let runs: Vec<Value> = match &cmd {
        RunsCmd::List { plan, state, limit } => {
            let request = pb::ListRunsRequest {
                plan_name: plan.clone().unwrap_or_default(),
                state: state.clone().unwrap_or_default(),
                limit: *limit,
            };
            match client.list_runs(args.admin.request(request)?).await {
                Ok(r) => r.into_inner().run_json.iter().map(|j| parse(j)).collect(),
                Err(s) => return code_of("runs list", s),
            }
        }
        RunsCmd::Trend { plan, limit } => {
            let request = pb::TrendRequest {
                plan_name: plan.clone(),
                limit: *limit,
            };
            let runs: Vec<Value> = match client.trend(args.admin.request(request)?).await {
                Ok(r) => r.into_inner().run_json.iter().map(|j| parse(j)).collect(),
                Err(s) => return code_of("runs trend", s),
            };
            print_trend(args.output, &runs);
            return Ok(EXIT_OK);
        }
        RunsCmd::Show { id }
        | RunsCmd::Cancel { id }
        | RunsCmd::Rerun { id }
        | RunsCmd::Baseline { id } => {
            let word = match &cmd {
                RunsCmd::Show { .. } => "show",
                RunsCmd::Cancel { .. } => "cancel",
                RunsCmd::Rerun { .. } => "rerun",
                _ => "baseline",
            };
            match client
                .run_action(args.admin.request(action(id, word))?)
                .await
            {
                Ok(r) => vec![parse(&r.into_inner().run_json)],
                Err(s) => return code_of(&format!("runs {word}"), s),
            }
        }
    };
    if let (RunsCmd::Show { .. }, Output::Table) = (&cmd, args.output) {
        println!("{}", serde_json::to_string_pretty(&runs[0])?);
        return Ok(EXIT_OK);
    }
    print_runs(args.output, &runs);
    Ok(EXIT_OK)
}

pub(super) async fn schedules(args: &ServiceArgs, cmd: SchedulesCmd) -> anyhow::Result<u8> {
    let mut client = args.admin.client().await?;
    let mut request = pb::ScheduleActionRequest::default();
    match cmd {
        SchedulesCmd::Add {
            name,
            plan,
            placement,
            cron,
            tz,
            at,
            missed,
        } => {
            request.action = "add".into();
            request.name = name;
            request.plan_text = read_plan(&plan)?;
            request.plan_origin = plan.display().to_string();
            request.agents = placement.agents;
            request.selector = placement.selector;
            request.cron = cron.unwrap_or_default();
            request.tz = tz;
            request.at = at.unwrap_or_default();
            request.missed = missed;
        }
        SchedulesCmd::List => request.action = "list".into(),
        SchedulesCmd::Pause { name } => (request.action, request.name) = ("pause".into(), name),
        SchedulesCmd::Resume { name } => (request.action, request.name) = ("resume".into(), name),
        SchedulesCmd::Rm { name } => (request.action, request.name) = ("rm".into(), name),
        SchedulesCmd::RunNow { name } => (request.action, request.name) = ("run-now".into(), name),
    }
    let call = format!("schedules {}", request.action);
    let reply = match client.schedule_action(args.admin.request(request)?).await {
        Ok(r) => r.into_inner(),
        Err(s) => return code_of(&call, s),
    };
    let schedules: Vec<Value> = reply.schedule_json.iter().map(|j| parse(j)).collect();
    if args.output == Output::Json {
        let run = (!reply.run_json.is_empty()).then(|| parse(&reply.run_json));
        println!(
            "{}",
            serde_json::json!({"schedules": schedules, "run": run})
        );
        return Ok(EXIT_OK);
    }
    let rows: Vec<Vec<String>> = schedules
        .iter()
        .map(|s| {
            let when = match s["when"]["cron"].as_str() {
                Some(cron) => format!("{cron} ({})", text(&s["when"]["tz"])),
                None => format!("at {}", text(&s["when"]["at"])),
            };
            let state = if s["paused"].as_bool() == Some(true) {
                "paused"
            } else {
                "active"
            };
            vec![
                text(&s["name"]),
                text(&s["plan_name"]),
                when,
                text(&s["missed"]),
                state.to_owned(),
                text(&s["next"]),
            ]
        })
        .collect();
    print_table(&["NAME", "PLAN", "WHEN", "MISSED", "STATE", "NEXT"], &rows);
    if !reply.run_json.is_empty() {
        print_runs(Output::Table, &[parse(&reply.run_json)]);
    }
    Ok(EXIT_OK)
}

/// `agents list`: the attached agents, their labels and what they are doing.
pub(super) async fn agents(args: &ServiceArgs) -> anyhow::Result<u8> {
    let mut client = args.admin.client().await?;
    let status = client
        .status(args.admin.request(pb::StatusRequest {})?)
        .await
        .map_err(|s| refused("agents list", s))?
        .into_inner();
    let rows: Vec<Value> = status
        .agents
        .iter()
        .map(|a| {
            let mut labels: Vec<String> =
                a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            serde_json::json!({
                "id": a.id,
                "host": a.host,
                "labels": labels.join(","),
                "version": a.version,
                "state": if a.run_id.is_empty() { "idle" } else { "running" },
                "run_id": a.run_id,
                "last_heard_s_ago": a.silent_s,
            })
        })
        .collect();
    if args.output == Output::Json {
        println!("{}", Value::Array(rows));
        return Ok(EXIT_OK);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|a| {
            vec![
                text(&a["id"]),
                text(&a["host"]),
                text(&a["labels"]),
                text(&a["version"]),
                text(&a["state"]),
                text(&a["run_id"]),
                format!("{:.1}s ago", a["last_heard_s_ago"].as_f64().unwrap_or(0.0)),
            ]
        })
        .collect();
    print_table(
        &[
            "ID",
            "HOST",
            "LABELS",
            "VERSION",
            "STATE",
            "RUN",
            "LAST HEARD",
        ],
        &table,
    );
    Ok(EXIT_OK)
}
