//! `abort_on_fail`: a threshold that fails while the run goes stops the whole fleet
//! early (after its grace), the run is marked aborted in summary.json and junit.xml,
//! and the `run` command exits 99. Real flowsim, controller and agents on loopback.

use std::time::Duration;

use crescendo_controller::{Controller, RunRequest, demo, report};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Reads flows that do not exist (flowsim without auto_create): every answer is a 404.
const FAILING: &str = r#"
name = "abort-on-fail"
[target]
base_url = "{{BASE_URL}}"
[[scenario.steps]]
name = "read"
method = "GET"
path = "/api/v2/flows/missing-{seq}"
[load]
stages = [ { duration = "30s", target = 10 } ]
[thresholds]
"errors" = { expr = "== 0", abort_on_fail = true, grace = "1s" }
"steps.read.latency.p99" = "< 60s"
"#;

/// Updates flows that flowsim creates on the fly: no errors.
const HOLDING: &str = r#"
name = "abort-on-fail-holds"
[target]
base_url = "{{BASE_URL}}"
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/api/v2/flows/flow-{seq}"
body = '{"name": "x"}'
[load]
stages = [ { duration = "2s", target = 10 } ]
[thresholds]
"errors" = { expr = "== 0", abort_on_fail = true }
"steps.update.latency.p99" = { expr = "< 60s", abort_on_fail = true, grace = "1s" }
"#;

/// flowsim (creating flows on first use with `auto_create`, else answering 404 for
/// unknown ones), a controller and `agents` agents.
async fn fleet(agents: u32, auto_create: bool) -> (String, Controller, CancellationToken) {
    let shutdown = CancellationToken::new();
    let sim = crescendo_flowsim::Config {
        auto_create,
        ..Default::default()
    };
    let base_url = demo::start_flowsim(sim, &shutdown).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let controller = Controller::start(listener, shutdown.clone()).unwrap();
    for i in 1..=agents {
        demo::start_agent(&controller.url(), &format!("agent-{i}"), &shutdown);
    }
    (base_url, controller, shutdown)
}

fn request(template: &str, base_url: &str, agents: u32) -> RunRequest {
    let text = template.replace("{{BASE_URL}}", base_url);
    let plan = crescendo_plan::parse(&text, "test plan").unwrap();
    let mut request = RunRequest::new(plan, text, agents).unwrap();
    request.wait_for_agents = Duration::from_secs(20);
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_abort_threshold_stops_the_fleet_after_its_grace() {
    let (base_url, controller, shutdown) = fleet(2, false).await;
    let outcome = controller
        .run(request(FAILING, &base_url, 2))
        .await
        .unwrap();
    let aborted = outcome.aborted.clone().expect("the run was aborted");
    assert!(aborted.at_s >= 1.0, "not before the grace: {aborted:?}");
    assert!(aborted.at_s < 30.0, "before the plan's end: {aborted:?}");
    assert_eq!(aborted.threshold, "errors == 0");
    assert!(
        outcome.load_duration < Duration::from_secs(30),
        "the 30 s load stopped early: {:?}",
        outcome.load_duration
    );

    let dir = std::env::temp_dir().join(format!("crescendo-abort-{}", std::process::id()));
    let summary = report::write_all(&outcome, &dir).unwrap();
    assert!(!summary.passed);
    assert!(summary.totals.errors > 0);
    let errors = &summary.thresholds[0];
    assert!(
        !errors.ok && errors.aborted_run && errors.abort_on_fail,
        "{errors:?}"
    );
    // Every read was a 404: no successful request for its latency threshold to measure.
    let step = &summary.thresholds[1];
    assert_eq!(step.step.as_deref(), Some("read"));
    assert!(!step.ok && step.no_samples && !step.aborted_run, "{step:?}");

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    assert!(
        json["aborted"]["reason"]
            .as_str()
            .unwrap()
            .contains("errors == 0"),
        "{json}"
    );
    assert!(json["aborted"]["at_s"].as_f64().unwrap() >= 1.0);
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(junit.contains("aborted the run (abort_on_fail)"), "{junit}");
    assert!(junit.contains("<property name=\"aborted\""), "{junit}");
    assert!(
        junit.contains("classname=\"abort-on-fail.thresholds.read\""),
        "{junit}"
    );
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("id=\"aborted\""));
    let _ = std::fs::remove_dir_all(&dir);
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holding_abort_thresholds_let_the_run_finish() {
    let (base_url, controller, shutdown) = fleet(1, true).await;
    let outcome = controller
        .run(request(HOLDING, &base_url, 1))
        .await
        .unwrap();
    assert!(outcome.aborted.is_none(), "{:?}", outcome.aborted);
    let summary = report::summarize(&outcome);
    assert!(summary.passed, "{:?}", summary.thresholds);
    assert!(summary.totals.ok > 0);
    assert!(summary.aborted.is_none());
    shutdown.cancel();
}

/// The real binary: `run` with a plan whose abort threshold fails exits 99, early. It
/// binds port 0 itself and the agent joins at the address it prints: no port is picked
/// here, released and hoped to be free still.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_command_exits_99_on_abort() {
    let shutdown = CancellationToken::new();
    let base_url = demo::start_flowsim(crescendo_flowsim::Config::default(), &shutdown)
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("crescendo-abort-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plan = dir.join("plan.toml");
    std::fs::write(&plan, FAILING.replace("{{BASE_URL}}", &base_url)).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_crescendo-controller"))
        .args([
            "run",
            plan.to_str().unwrap(),
            "--agents",
            "1",
            "--progress",
            "plain",
        ])
        .args(["--listen", "127.0.0.1:0", "--wait-for-agents", "20s"])
        .arg("--out")
        .arg(dir.join("out"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        stderr.read_to_string(&mut text).await.map(|_| text)
    });
    let mut text = String::new();
    // Generous deadlines: they only fail the test, never decide what it sees.
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            text.push_str(&line);
            text.push('\n');
            if let Some(rest) = line.strip_prefix("controller listening on ") {
                return rest.split(';').next().map(str::to_owned);
            }
        }
        None
    })
    .await
    .expect("the controller says where it listens");
    let url = url.unwrap_or_else(|| panic!("no `controller listening on` line: {text}"));
    assert!(
        url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"),
        "the bound address: {url}"
    );
    demo::start_agent(&url, "cli-agent", &shutdown);
    let status = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            text.push_str(&line);
            text.push('\n');
        }
        child.wait().await.unwrap()
    })
    .await
    .expect("the run ends early");
    text.push_str(&stderr.await.unwrap().unwrap());
    assert_eq!(status.code(), Some(99), "{text}");
    assert!(text.contains("ABORTED at"), "{text}");
    let summary = report::load_summary(&dir.join("out")).unwrap();
    assert!(summary.aborted.is_some());
    let _ = std::fs::remove_dir_all(&dir);
    shutdown.cancel();
}
