//! `run PLAN --local-agents N`: one command runs your own plan, with its agents in the
//! controller's process (and `--base-url` sends it elsewhere); and a target that is down fails a latency threshold ("no
//! successful requests") instead of passing it on zero samples. The real binary.

mod common;
use common::{put_plan, run_local};

/// The plan of these tests: 2 s at 10 it/s with a latency threshold.
fn plan(dir: &std::path::Path, base_url: &str) -> std::path::PathBuf {
    let thresholds = "[thresholds]\n\"latency.p99\" = \"< 800ms\"\n";
    put_plan(
        dir,
        ("local.toml", "local"),
        (base_url, "1s"),
        2,
        thresholds,
    )
}
use tokio_util::sync::CancellationToken;

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
        let json = format!("json={}", tmp.path().join("run.jsonl").display());
        move || run_local(&plan, &out, &["--base-url", &base_url, "--out", &json])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("2 local agent(s)"), "{text}");
    // --out json=FILE: a progress line a second, then the summary, one JSON object each.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(tmp.path().join("run.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 2, "{lines:?}");
    assert!(
        lines[..lines.len() - 1]
            .iter()
            .all(|l| l["type"] == "progress"),
        "{lines:?}"
    );
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "summary", "{last}");
    assert_eq!(last["outcome"], "passed", "{last}");
    assert_eq!(last["totals"]["ok"], summary["totals"]["ok"], "{last}");
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

/// `--local-agents 2 --agents 3`: the controller says who is there and how many are
/// missing while it waits (at once, on every change, and every 5 s), then gives up
/// at `--wait-for-agents` naming them.
#[test]
fn a_run_short_of_agents_names_who_is_there_and_how_many_are_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = plan(tmp.path(), "http://127.0.0.1:9");
    let (code, text, summary) = run_local(
        &plan,
        &tmp.path().join("out"),
        &["--agents", "3", "--wait-for-agents", "6s"],
    );
    assert_ne!(code, 0, "{text}");
    assert!(summary.is_null(), "no run, no summary: {summary}");
    let waiting: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("waiting for agents:"))
        .collect();
    let last = waiting.last().unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        *last, "waiting for agents: 2/3 attached (local-agent-1, local-agent-2); 1 missing",
        "{text}"
    );
    // The reminder: the same state said again within the 6 s wait.
    assert!(
        waiting.iter().filter(|l| **l == *last).count() >= 2,
        "{text}"
    );
}
