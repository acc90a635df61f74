//! `run PLAN --local-agents N`: one command runs your own plan, with its agents in the
//! controller's process (and `--base-url` sends it elsewhere); and a target that is down fails a latency threshold ("no
//! successful requests") instead of passing it on zero samples. The real binary.

use std::process::Command;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

fn plan(dir: &std::path::Path, base_url: &str) -> std::path::PathBuf {
    let text = format!(
        r#"name = "local"
[target]
base_url = "{base_url}"
timeout = "1s"
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/api/v2/flows/flow-{{seq}}"
body = '{{"name": "x"}}'
expect = [200]
[load]
model = "open"
start_rate = 10
stages = [ {{ duration = "2s", target = 10 }} ]
[thresholds]
"latency.p99" = "< 800ms"
"#
    );
    let path = dir.join("local.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `run PLAN --local-agents 2 EXTRA…`: exit code, output, summary.json.
fn run_local(
    plan: &std::path::Path,
    out: &std::path::Path,
    extra: &[&str],
) -> (i32, String, Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_crescendo-controller"))
        .args(["--progress", "plain", "run"])
        .arg(plan)
        .args(["--local-agents", "2", "--listen", "127.0.0.1:0", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!text.contains("panicked"), "{text}");
    let summary = std::fs::read_to_string(out.join("summary.json"))
        .map(|s| serde_json::from_str(&s).unwrap())
        .unwrap_or(Value::Null);
    (output.status.code().unwrap_or(-1), text, summary)
}

#[tokio::test(flavor = "multi_thread")]
async fn one_command_runs_a_plan_on_local_agents() {
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let sim = crescendo_flowsim::Config {
        auto_create: true,
        limit: 0,
        ..Default::default()
    };
    let base_url = crescendo_controller::demo::start_flowsim(sim, &shutdown)
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // The plan names a port nobody listens on; --base-url sends the load to flowsim.
    let plan = plan(tmp.path(), "http://127.0.0.1:9");
    let out = tmp.path().join("out");
    let (code, text, summary) = tokio::task::spawn_blocking({
        let plan = plan.clone();
        move || run_local(&plan, &out, &["--base-url", &base_url])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("2 local agent(s)"), "{text}");
    // 10 it/s over the run's ~2 s: the demand, beside what was offered.
    assert!(text.contains("demand: planned"), "{text}");
    let planned = summary["totals"]["planned"].as_u64().unwrap();
    assert!((17..=20).contains(&planned), "{summary}");
    assert_eq!(summary["agents"].as_array().unwrap().len(), 2, "{summary}");
    assert!(summary["totals"]["ok"].as_u64().unwrap() >= 15, "{summary}");
    // A bad --base-url is refused like a bad plan, naming the flag.
    let (code, text, _) = tokio::task::spawn_blocking(move || {
        run_local(&plan, &tmp.path().join("bad"), &["--base-url", "ftp://x"])
    })
    .await
    .unwrap();
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("--base-url") && text.contains("target.base_url"),
        "{text}"
    );
}

#[test]
fn a_target_that_is_down_fails_the_latency_threshold() {
    // A port nobody listens on: every request is a connection error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let tmp = tempfile::tempdir().unwrap();
    let plan = plan(tmp.path(), &base_url);
    let (code, text, summary) = run_local(&plan, &tmp.path().join("out"), &[]);
    assert_eq!(code, 99, "{text}");
    assert!(text.contains("no successful requests"), "{text}");
    assert_eq!(summary["totals"]["ok"], 0, "{summary}");
    assert_eq!(summary["thresholds"][0]["no_samples"], true, "{summary}");
}
