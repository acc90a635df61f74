//! The controller as a service, from the outside: the real `crescendo-controller serve`
//! binary with a data directory, three labelled agents and flowsim (in this process,
//! over real sockets), driven by the real CLI (`submit`, `runs`, `schedules`, `agents`).
//!
//! One pool goes through: a bad plan refused with nothing queued; two schedules a few
//! seconds apart, each starting within 1 s of its time; a selector too few agents match
//! (`not-started` with the count); a baseline, then the same plan against a slowed API
//! (`regressed`); `kill -9` of the service mid-run and a restart (the run `interrupted`
//! with its partial totals, schedules intact, the agents back in the pool). The admin
//! token is checked on its own service.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

mod common;
use common::put_plan;
use tokio_util::sync::CancellationToken;

/// A free loopback port (bound, then let go), so a restarted service can reuse it.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The service binary on `port` with `data`; its output goes to `data`.log.
fn serve(data: &Path, port: u16, extra: &[&str]) -> Child {
    let log = std::fs::File::create(data.with_extension("log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_crescendo-controller"))
        .arg("serve")
        .arg("--data")
        .arg(data)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--run-deadline",
            "3s",
        ])
        .args(extra)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// The CLI against the service: exit code, stdout, stderr.
fn cli(port: u16, args: &[&str], token: Option<&str>) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_crescendo-controller"));
    command
        .args(args)
        .args(["--controller", &format!("http://127.0.0.1:{port}")])
        .env_remove("CRESCENDO_ADMIN_TOKEN")
        .stdin(Stdio::null());
    if let Some(token) = token {
        command.env("CRESCENDO_ADMIN_TOKEN", token);
    }
    let out = command.output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

/// `args` with `--output json`, parsed.
fn json(port: u16, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["--output", "json"]);
    let (code, stdout, stderr) = cli(port, &args, None);
    assert_eq!(code, 0, "{args:?}: {stdout}{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
}

fn runs(port: u16) -> Vec<Value> {
    json(port, &["runs", "list", "--limit", "100"])
        .as_array()
        .unwrap()
        .clone()
}

/// Poll `check` every 200 ms until it gives `Some`, for at most `limit`.
async fn until<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

fn start_agents(port: u16, shutdown: &CancellationToken) {
    for (id, zone) in [("a1", "a"), ("a2", "b"), ("a3", "c")] {
        let mut config = crescendo_agent::AgentConfig::new(format!("http://127.0.0.1:{port}"), id);
        config.labels =
            crescendo_plan::labels::parse_labels(&format!("region=eu,zone={zone}")).unwrap();
        let token = shutdown.clone();
        tokio::spawn(async move {
            let _ = crescendo_agent::run(config, token).await;
        });
    }
}

/// Requests flowsim has accepted so far.
async fn accepted(base_url: &str) -> u64 {
    let stats: Value = reqwest::get(format!("{base_url}/__sim/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stats["accepted"].as_u64().unwrap()
}

/// Idle agents, once the service answers.
fn idle_agents(port: u16) -> Option<usize> {
    let (code, stdout, _) = cli(port, &["agents", "list", "--output", "json"], None);
    let agents: Value = serde_json::from_str(&stdout).ok().filter(|_| code == 0)?;
    Some(
        agents
            .as_array()?
            .iter()
            .filter(|a| a["state"] == "idle")
            .count(),
    )
}

/// A webhook receiver on loopback: its URL, and the JSON bodies POSTed to it.
async fn webhook_receiver(
    shutdown: &CancellationToken,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = bodies.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
    });
    (url, bodies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_service_schedules_queues_compares_and_survives_kill_9() {
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let sim = crescendo_flowsim::Config {
        auto_create: true,
        limit: 0,
        ..Default::default()
    };
    let base_url = crescendo_controller::demo::start_flowsim(sim.clone(), &shutdown)
        .await
        .unwrap();
    let (hook_url, hooks) = webhook_receiver(&shutdown).await;
    let port = free_port();
    let hook_file = tmp.path().join("notify-url");
    // A token in the webhook's query, as chat webhooks carry: never in a log or record.
    std::fs::write(&hook_file, format!("{hook_url}?token=hook-s3cret\n")).unwrap();
    let notify = ["--notify-url-file", hook_file.to_str().unwrap()];
    let mut service = serve(&data, port, &notify);
    start_agents(port, &shutdown);
    until("3 idle agents", Duration::from_secs(30), || {
        (idle_agents(port) == Some(3)).then_some(())
    })
    .await;

    // A bad plan is refused with its location; nothing is queued.
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "name = \"x\"\n[target]\nbase_url = 5\n").unwrap();
    let (code, _, stderr) = cli(port, &["submit", bad.to_str().unwrap()], None);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("bad.toml:3:") && stderr.contains("base_url"),
        "{stderr}"
    );
    assert!(runs(port).is_empty());

    // Two schedules a few seconds apart: each starts within 1 s of its time.
    let short = put_plan(tmp.path(), ("short.toml", "svc"), (&base_url, "10s"), 2, "");
    let now = Utc::now();
    for (name, secs) in [("first", 3), ("second", 6)] {
        let at = (now + chrono::Duration::seconds(secs)).to_rfc3339();
        let (code, out, err) = cli(
            port,
            &[
                "schedules",
                "add",
                name,
                short.to_str().unwrap(),
                "--agents",
                "1",
                "--at",
                &at,
            ],
            None,
        );
        assert_eq!(code, 0, "{out}{err}");
    }
    let scheduled = until(
        "both scheduled runs finished",
        Duration::from_secs(40),
        || {
            let done: Vec<Value> = runs(port)
                .into_iter()
                .filter(|r| r["origin"]["kind"] == "schedule" && r["state"] == "passed")
                .collect();
            (done.len() == 2).then_some(done)
        },
    )
    .await;
    for r in &scheduled {
        let late = time(&r["started_at"]) - time(&r["scheduled_at"]);
        assert!(
            late >= chrono::Duration::zero() && late < chrono::Duration::seconds(1),
            "started {late} after its time: {r}"
        );
        assert!(
            r["summary"]["totals"]["requests"].as_u64().unwrap() >= 15,
            "{r}"
        );
    }

    // Two runs on disjoint agents go at once.
    for zone in ["zone=a", "zone=b"] {
        let (code, out, err) = cli(
            port,
            &["submit", short.to_str().unwrap(), "--selector", zone],
            None,
        );
        assert_eq!(code, 0, "{out}{err}");
    }
    let pair = until("both zone runs finished", Duration::from_secs(40), || {
        let done: Vec<Value> = runs(port)
            .into_iter()
            .filter(|r| r["origin"]["kind"] == "submit" && r["state"] == "passed")
            .collect();
        (done.len() == 2).then_some(done)
    })
    .await;
    let (a, b) = (&pair[0], &pair[1]);
    assert!(
        time(&a["started_at"]) < time(&b["ended_at"])
            && time(&b["started_at"]) < time(&a["ended_at"]),
        "the runs overlap: {a} {b}"
    );
    assert_ne!(a["agents"], b["agents"]);

    // Too few agents match the selector: not-started, with the count and the reason.
    let (code, out, err) = cli(
        port,
        &[
            "submit",
            short.to_str().unwrap(),
            "--agents",
            "2",
            "--selector",
            "zone=a",
            "--wait",
        ],
        None,
    );
    assert_eq!(code, 1, "{out}{err}");
    let missing = runs(port)
        .into_iter()
        .find(|r| r["state"] == "not-started")
        .unwrap();
    let reason = missing["reason"].as_str().unwrap();
    assert!(
        reason.contains("matching zone=a") && reason.contains("1 of 2"),
        "{reason}"
    );

    // A baseline, then the same plan against an API 20 ms slower: regressed.
    let base = &scheduled[0]["id"];
    let (code, ..) = cli(port, &["runs", "baseline", base.as_str().unwrap()], None);
    assert_eq!(code, 0);
    let slow_url = crescendo_controller::demo::start_flowsim(
        crescendo_flowsim::Config {
            latency: Duration::from_millis(20),
            ..sim
        },
        &shutdown,
    )
    .await
    .unwrap();
    let slow = put_plan(tmp.path(), ("slow.toml", "svc"), (&slow_url, "10s"), 2, "");
    let (code, out, err) = cli(port, &["submit", slow.to_str().unwrap(), "--wait"], None);
    assert_eq!(code, 0, "{out}{err}");
    let slowed = runs(port).into_iter().next().unwrap();
    assert_eq!(slowed["comparison"]["outcome"], "regressed", "{slowed}");
    assert_eq!(&slowed["comparison"]["baseline_run"], base);
    let trend = json(port, &["runs", "trend", "svc"]);
    assert!(trend.as_array().unwrap().len() >= 3, "{trend}");

    // A rerun runs the same plan text again, and a cancel stops it everywhere.
    let rerun = json(port, &["runs", "rerun", slowed["id"].as_str().unwrap()]);
    let rerun = &rerun.as_array().unwrap()[0];
    assert_eq!(rerun["origin"]["kind"], "rerun", "{rerun}");
    assert_eq!(rerun["origin"]["of"], slowed["id"]);
    let id = rerun["id"].as_str().unwrap().to_owned();
    let (code, out, err) = cli(port, &["runs", "cancel", &id], None);
    assert_eq!(code, 0, "{out}{err}");
    let (code, ..) = cli(port, &["watch", &id], None);
    assert_eq!(code, 3, "a cancelled run exits 3");
    let show = json(port, &["runs", "show", &id]);
    assert_eq!(show[0]["state"], "cancelled", "{show}");
    assert_eq!(
        show[0]["plan_text"],
        std::fs::read_to_string(&slow).unwrap()
    );

    // Pause and resume a schedule.
    let paused = json(port, &["schedules", "pause", "second"]);
    assert_eq!(paused["schedules"][0]["paused"], true, "{paused}");
    let resumed = json(port, &["schedules", "resume", "second"]);
    assert_eq!(resumed["schedules"][0]["paused"], false, "{resumed}");

    // One webhook POST per finished run, with its verdict and headline figures.
    let finished: std::collections::BTreeSet<String> = runs(port)
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    let posted = until(
        "a webhook POST per finished run",
        Duration::from_secs(30),
        || {
            let posted = hooks.lock().unwrap().clone();
            (posted.len() >= finished.len()).then_some(posted)
        },
    )
    .await;
    let ids: std::collections::BTreeSet<String> = posted
        .iter()
        .map(|b| b["run"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        (posted.len(), &ids),
        (finished.len(), &finished),
        "{posted:?}"
    );
    let slowed_hook = posted
        .iter()
        .find(|b| b["run"]["id"] == slowed["id"])
        .unwrap();
    assert_eq!(slowed_hook["comparison"]["outcome"], "regressed");
    assert!(
        slowed_hook["headline"]["requests"].as_u64().unwrap() > 0,
        "{slowed_hook}"
    );

    // kill -9 mid-run; the restarted service records it interrupted, with the totals
    // of its last checkpoint; schedules survive; the agents come back to the pool.
    let long = put_plan(
        tmp.path(),
        ("long.toml", "svc-long"),
        (&base_url, "10s"),
        60,
        "",
    );
    let (code, out, err) = cli(
        port,
        &["submit", long.to_str().unwrap(), "--agents", "3"],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    until(
        "a checkpoint with requests",
        Duration::from_secs(30),
        || {
            runs(port).into_iter().find(|r| {
                r["state"] == "running" && r["summary"]["totals"]["requests"].as_u64() > Some(0)
            })
        },
    )
    .await;
    // Two schedules whose time comes while the service is down.
    let down_at = Utc::now() + chrono::Duration::seconds(2);
    for (name, missed) in [("while-down", "run-once"), ("skipped", "skip")] {
        let at = down_at.to_rfc3339();
        let args = [
            "schedules",
            "add",
            name,
            short.to_str().unwrap(),
            "--at",
            &at,
            "--missed",
            missed,
        ];
        let (code, out, err) = cli(port, &args, None);
        assert_eq!(code, 0, "{out}{err}");
    }
    service.kill().unwrap();
    service.wait().unwrap();
    until("their time passed", Duration::from_secs(10), || {
        (Utc::now() > down_at + chrono::Duration::seconds(1)).then_some(())
    })
    .await;
    let mut service = serve(&data, port, &notify);
    // run-once: the missed time runs once, and says so; skip: recorded, not run.
    let (ran, skipped) = until("the missed times recorded", Duration::from_secs(30), || {
        let (code, stdout, _) = cli(port, &["runs", "list", "--output", "json"], None);
        let list: Vec<Value> = serde_json::from_str(&stdout).ok().filter(|_| code == 0)?;
        let of = |name: &str| list.iter().find(|r| r["origin"]["name"] == name).cloned();
        Some((of("while-down")?, of("skipped")?))
    })
    .await;
    assert_eq!(ran["missed"], "run-once", "{ran}");
    assert_eq!(
        ran["scheduled_at"],
        Value::String(down_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)).clone(),
        "{ran}"
    );
    assert_eq!(skipped["missed"], "skip", "{skipped}");
    assert_eq!(skipped["state"], "not-started", "{skipped}");
    assert!(
        skipped["reason"]
            .as_str()
            .unwrap()
            .contains("missed while the service was down")
    );
    until(
        "the webhook hears of the skipped time",
        Duration::from_secs(30),
        || {
            let posted = hooks.lock().unwrap();
            posted
                .iter()
                .any(|b| b["run"]["id"] == skipped["id"] && b["run"]["state"] == "not-started")
                .then_some(())
        },
    )
    .await;
    let interrupted = until(
        "the run recorded interrupted",
        Duration::from_secs(30),
        || {
            let (code, stdout, _) = cli(
                port,
                &["runs", "list", "--plan", "svc-long", "--output", "json"],
                None,
            );
            let list: Vec<Value> = serde_json::from_str(&stdout).ok().filter(|_| code == 0)?;
            list.into_iter().find(|r| r["state"] == "interrupted")
        },
    )
    .await;
    assert!(
        interrupted["summary"]["totals"]["requests"]
            .as_u64()
            .unwrap()
            > 0,
        "{interrupted}"
    );
    assert!(
        interrupted["reason"]
            .as_str()
            .unwrap()
            .contains("service stopped")
    );
    until(
        "the webhook hears of the interrupted run",
        Duration::from_secs(30),
        || {
            let posted = hooks.lock().unwrap();
            posted
                .iter()
                .any(|b| b["run"]["id"] == interrupted["id"] && b["run"]["state"] == "interrupted")
                .then_some(())
        },
    )
    .await;
    let schedules = json(port, &["schedules", "list"]);
    assert_eq!(
        schedules["schedules"].as_array().unwrap().len(),
        4,
        "{schedules}"
    );
    until(
        "the agents back in the pool",
        Duration::from_secs(30),
        || (idle_agents(port) == Some(3)).then_some(()),
    )
    .await;
    // Idle means stopped: the restarted service told them to stop the run it does not
    // know, and they said Finished; no request reaches flowsim any more.
    let accepted_then = accepted(&base_url).await;
    // A few CLI round trips later (at the plan's 30 req/s a leak would show):
    for _ in 0..3 {
        assert_eq!(idle_agents(port), Some(3));
    }
    assert_eq!(
        accepted(&base_url).await,
        accepted_then,
        "the agents sent load while idle"
    );
    let (code, out, err) = cli(
        port,
        &["submit", long.to_str().unwrap(), "--agents", "2"],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");

    // SIGTERM mid-run: the run is recorded interrupted with its full results, and the
    // service exits 0 by itself.
    until(
        "the second long run running",
        Duration::from_secs(30),
        || {
            runs(port)
                .into_iter()
                .find(|r| r["state"] == "running" && r["plan_name"] == "svc-long")
        },
    )
    .await;
    let status = Command::new("kill")
        .args(["-TERM", &service.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = service.wait().unwrap();
    assert_eq!(exit.code(), Some(0), "{exit:?}");
    let mut service = serve(&data, port, &notify);
    let stopped = until("the stopped run's record", Duration::from_secs(30), || {
        let (code, stdout, _) = cli(port, &["runs", "list", "--output", "json"], None);
        let list: Vec<Value> = serde_json::from_str(&stdout).ok().filter(|_| code == 0)?;
        list.into_iter().next()
    })
    .await;
    assert_eq!(stopped["state"], "interrupted", "{stopped}");
    assert_eq!(stopped["exit_code"], 130, "{stopped}");
    let reports = data.join("runs").join(stopped["id"].as_str().unwrap());
    assert!(
        reports.join("summary.json").is_file(),
        "{}",
        reports.display()
    );
    service.kill().unwrap();
    service.wait().unwrap();
    let log = std::fs::read_to_string(data.with_extension("log")).unwrap();
    assert!(!log.contains("hook-s3cret"), "{log}");
    let notified = std::fs::read_to_string(reports.join("notify.json")).unwrap();
    assert!(
        !notified.contains("hook-s3cret") && notified.contains("\"delivered\": true"),
        "{notified}"
    );
}

#[tokio::test]
async fn the_admin_port_of_its_own_asks_for_the_token() {
    let tmp = tempfile::tempdir().unwrap();
    let token_file = tmp.path().join("admin-token");
    std::fs::write(&token_file, "s3cret-admin-token-0123456789\n").unwrap();
    let (port, admin_port) = (free_port(), free_port());
    let admin_listen = format!("127.0.0.1:{admin_port}");
    let mut service = serve(
        &tmp.path().join("data"),
        port,
        &[
            "--admin-token-file",
            token_file.to_str().unwrap(),
            "--admin-listen",
            &admin_listen,
        ],
    );
    let short = put_plan(
        tmp.path(),
        ("p.toml", "p"),
        ("http://127.0.0.1:9", "10s"),
        1,
        "",
    );
    let submit = ["submit", short.to_str().unwrap()];
    let (code, _, stderr) = until("the service answers", Duration::from_secs(30), || {
        let answer = cli(admin_port, &submit, None);
        (!answer.2.contains("cannot reach")).then_some(answer)
    })
    .await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("Unauthenticated"), "{stderr}");
    let (code, _, stderr) = cli(admin_port, &submit, Some("wrong"));
    assert_eq!(code, 1, "{stderr}");
    let (code, stdout, stderr) = cli(admin_port, &submit, Some("s3cret-admin-token-0123456789"));
    assert_eq!(code, 0, "{stdout}{stderr}");
    // The agents' port does not serve operators.
    let (code, _, stderr) = cli(port, &submit, Some("s3cret-admin-token-0123456789"));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("Unimplemented"), "{stderr}");
    service.kill().unwrap();
    service.wait().unwrap();
    let log = std::fs::read_to_string(tmp.path().join("data.log")).unwrap();
    assert!(!log.contains("s3cret"), "{log}");
    assert!(log.contains("refused"), "a refused call is logged: {log}");
}
