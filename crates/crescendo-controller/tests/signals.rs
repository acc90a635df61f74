//! SIGTERM on the real controller binary mid-run: it stops the load everywhere,
//! merges the agents' last snapshots, writes the reports, releases the agents and
//! exits by itself with the `interrupted` verdict's code, as Kubernetes, systemd and
//! docker expect of a stop signal.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crescendo_controller::demo;
use tokio_util::sync::CancellationToken;

/// A plan that would run 60 s at 20 iterations a second against `base_url`.
fn plan(base_url: &str) -> String {
    format!(
        r#"name = "sigterm"
[target]
base_url = "{base_url}"
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/api/v2/flows/flow-1"
body = '{{"name": "x"}}'
[load]
stages = [ {{ duration = "60s", target = 20 }} ]
"#
    )
}

/// The real controller's `run` of `plan` on `agents` agents with JSON progress on
/// stdout (`stdout` says where it goes); returns the child, the URL it names on stderr,
/// and a thread that collects the rest of stderr.
fn spawn_run(
    plan: &std::path::Path,
    agents: u32,
    out: &std::path::Path,
    stdout: Stdio,
) -> (std::process::Child, String, std::thread::JoinHandle<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crescendo-controller"))
        .args(["--progress", "json", "run"])
        .arg(plan)
        .args([
            "--agents",
            &agents.to_string(),
            "--listen",
            "127.0.0.1:0",
            "--out",
        ])
        .arg(out)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // stderr names the address it bound (JSON progress owns stdout).
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in stderr.lines().map_while(Result::ok) {
            if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) {
                let _ = addr_tx.send(url.trim_end_matches([';', ',']).to_owned());
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let url = addr_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the controller names its address");
    (child, url, reader)
}

fn kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("kill(1)");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_run_writes_the_reports_and_releases_the_agents() {
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let base_url = demo::start_flowsim(demo::flowsim_config(), &shutdown)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let plan_path = dir.path().join("plan.toml");
    std::fs::write(&plan_path, plan(&base_url)).unwrap();
    let out = dir.path().join("out");
    let (mut child, url, stderr_reader) = spawn_run(&plan_path, 1, &out, Stdio::piped());
    let agent = demo::start_agent(&url, "agent-1", &shutdown);
    // Wait for load to be measured: the progress lines carry the request count.
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = stdout.lines().map_while(Result::ok);
    let seen = lines
        .by_ref()
        .find(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["requests"].as_u64())
                .is_some_and(|n| n > 0)
        })
        .expect("progress with requests before the controller ended");
    kill(child.id(), "TERM");
    let stdout_rest: Vec<String> = lines.collect();
    let status = child.wait().unwrap();
    let stderr = stderr_reader.join().unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap())
            .unwrap_or_else(|e| panic!("summary.json: {e}\n{stderr}"));
    assert_eq!(summary["stopped"], "interrupted (SIGTERM)", "{summary}");
    // A stopped run is never "passed".
    assert_eq!(summary["outcome"], "interrupted", "{summary}");
    assert_eq!(summary["passed"], false, "{summary}");
    assert!(
        summary["duration_s"].as_f64().unwrap() < 60.0,
        "the load stopped early: {summary}"
    );
    let requests = summary["totals"]["requests"].as_u64().unwrap();
    assert!(requests > 0, "{seen}");
    assert!(
        summary["lost_agents"].as_array().unwrap().is_empty(),
        "{summary}"
    );
    assert!(
        stderr.contains("SIGTERM: stopping the run on every agent"),
        "{stderr}"
    );
    assert!(
        status.code().is_some(),
        "exited by itself: {status:?}\n{stderr}"
    );
    // The agent was released: its task ends without anyone cancelling it.
    tokio::time::timeout(Duration::from_secs(30), agent)
        .await
        .expect("the released agent exits")
        .unwrap();
    // Every request flowsim took is in the summary: the last snapshot was merged.
    let stats: serde_json::Value = reqwest::get(format!("{base_url}/__sim/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let seen_by_flowsim =
        stats["accepted"].as_u64().unwrap() + stats["throttled"].as_u64().unwrap();
    assert_eq!(
        requests,
        seen_by_flowsim,
        "{stats}\n{}",
        stdout_rest.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cancelled_from_the_command_line_is_cancelled_not_passed() {
    use crescendo_controller::report::Verdict;
    use crescendo_controller::{Controller, RunRequest};

    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let base_url = demo::start_flowsim(demo::flowsim_config(), &shutdown)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let controller = Controller::start(listener, shutdown.clone()).unwrap();
    demo::start_agent(&controller.url(), "agent-1", &shutdown);
    let text = plan(&base_url);
    let plan = crescendo_plan::parse(&text, "cancel.toml").unwrap();
    let request = RunRequest::new(plan, text, 1).unwrap();
    let run = tokio::spawn({
        let controller = controller.clone();
        async move { controller.run(request).await }
    });
    // Wait until the run is under way, as `status` (the real binary) shows it.
    let url = controller.url();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let out = Command::new(env!("CARGO_BIN_EXE_crescendo-controller"))
            .args(["status", "--controller", &url])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        if text.starts_with("state running") && !text.contains("requests 0\n") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never running: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_crescendo-controller"))
        .args(["cancel", "--controller", &url, "--reason", "wrong target"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let outcome = run.await.unwrap().unwrap();
    let summary = crescendo_controller::report::summarize(&outcome);
    assert_eq!(
        summary.outcome,
        Verdict::Cancelled,
        "{:?}",
        summary.outcome_reasons
    );
    assert_eq!(summary.outcome.exit_code(), 3);
    assert!(!summary.passed);
    assert_eq!(summary.outcome_reasons, ["stopped: wrong target"]);
}

/// flowsim's accepted + throttled.
async fn seen_by(base_url: &str) -> u64 {
    let stats: serde_json::Value = reqwest::get(format!("{base_url}/__sim/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stats["accepted"].as_u64().unwrap() + stats["throttled"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_stop_their_load_when_the_controller_hangs() {
    const TIMEOUT: Duration = Duration::from_secs(3);
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let base_url = demo::start_flowsim(demo::flowsim_config(), &shutdown)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let plan_path = dir.path().join("plan.toml");
    std::fs::write(&plan_path, plan(&base_url)).unwrap();
    let (mut child, url, _) = spawn_run(&plan_path, 2, &dir.path().join("out"), Stdio::null());
    for id in ["agent-1", "agent-2"] {
        demo::start_agent(&url, id, &shutdown);
    }
    // Load is flowing: flowsim has seen 20 requests.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen_by(&base_url).await < 20 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no load reached flowsim"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The controller hangs (as under a partition that drops packets: no TCP error).
    kill(child.id(), "STOP");
    let stopped = tokio::time::Instant::now();
    // Watch flowsim until its count has not moved for two heartbeat timeouts.
    let (mut last, mut last_change) = (seen_by(&base_url).await, stopped);
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = seen_by(&base_url).await;
        if now != last {
            (last, last_change) = (now, tokio::time::Instant::now());
        }
        if last_change.elapsed() >= 2 * TIMEOUT {
            break;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(60),
            "the agents never stopped: {now} requests and counting"
        );
    }
    kill(child.id(), "KILL");
    let _ = child.wait();
    let quiet_after = last_change.saturating_duration_since(stopped);
    println!("last request reached flowsim {quiet_after:?} after the controller hung");
    assert!(
        quiet_after <= TIMEOUT + Duration::from_secs(1),
        "requests went on {quiet_after:?} after the controller hung (timeout {TIMEOUT:?})"
    );
}
