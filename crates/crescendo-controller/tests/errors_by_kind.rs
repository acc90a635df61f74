//! Failures carry their cause: `run PLAN --local-agents 2` (the real binary) against a
//! target that is down, a flowsim that answers 404, and a flowsim too slow for the
//! plan's timeout; `summary.json`'s `errors_by_kind` and the printed summary say what
//! went wrong, and its counts add up to `totals.errors`.

use std::time::Duration;

use serde_json::Value;

mod common;
use common::{put_plan, run_local};
use tokio_util::sync::CancellationToken;

/// Run the plan against `base_url`; the summary, after the checks every case shares:
/// some errors, all of them in `errors_by_kind`, one kind, shown in the output.
async fn run_against(base_url: String, timeout: &'static str) -> (String, Value) {
    let tmp = tempfile::tempdir().unwrap();
    let plan = put_plan(
        tmp.path(),
        ("errors.toml", "errors"),
        (&base_url, timeout),
        2,
        "",
    );
    let out = tmp.path().join("out");
    let (code, text, summary) = tokio::task::spawn_blocking(move || run_local(&plan, &out, &[]))
        .await
        .unwrap();
    assert!(code == 0 || code == 99, "{code}: {text}");
    let errors = summary["totals"]["errors"].as_u64().unwrap();
    assert!(errors >= 10, "{summary}");
    let kinds = summary["errors_by_kind"].as_array().unwrap();
    let counted: u64 = kinds.iter().map(|k| k["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, errors, "{summary}");
    assert_eq!(kinds.len(), 1, "{summary}");
    let top = &kinds[0];
    assert_eq!(top["step"], "update", "{summary}");
    assert_eq!(top["count"].as_u64(), Some(errors), "{summary}");
    let line = format!(
        "errors by kind: {errors} × {}: {} (step update)",
        top["outcome"].as_str().unwrap(),
        top["message"].as_str().unwrap()
    );
    assert!(text.contains(&line), "{line} not in {text}");
    let report = std::fs::read_to_string(tmp.path().join("out/report.html")).unwrap();
    assert!(report.contains("Errors by kind"), "{report}");
    (text, top.clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_that_is_down_says_connection_refused() {
    // A port nobody listens on: every request is a connection error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let (_, top) = run_against(base_url, "1s").await;
    assert_eq!(top["outcome"], "connect_error", "{top}");
    assert_eq!(top["message"], "connection refused", "{top}");
    assert_eq!(top["status"], Value::Null, "{top}");
    let first_seen = top["first_seen_s"].as_f64().unwrap();
    assert!((0.0..5.0).contains(&first_seen), "{top}");
    let sample = top["sample"].as_str().unwrap();
    assert!(sample.to_lowercase().contains("refused"), "{top}");
    assert!(!sample.contains("http://"), "no URL in the sample: {top}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_error_names_its_status_and_message() {
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    // No auto-create: a PUT to a flow nobody created answers 404 with a JSON message.
    let sim = crescendo_flowsim::Config {
        auto_create: false,
        limit: 0,
        ..Default::default()
    };
    let base_url = crescendo_controller::demo::start_flowsim(sim, &shutdown)
        .await
        .unwrap();
    let (_, top) = run_against(base_url, "2s").await;
    assert_eq!(top["outcome"], "client_error", "{top}");
    assert_eq!(top["status"], 404, "{top}");
    // Numbers in the body's message are normalised, so every flow id is one kind.
    assert_eq!(
        top["message"], "404 Not Found: flow not found: flow-<n>",
        "{top}"
    );
    let sample: Value = serde_json::from_str(top["sample"].as_str().unwrap()).unwrap();
    assert!(
        sample["message"]
            .as_str()
            .unwrap()
            .starts_with("flow not found: flow-"),
        "{top}"
    );
    assert_eq!(sample["code"], "not.found", "{top}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_slower_than_the_timeout_says_how_long_was_waited() {
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let sim = crescendo_flowsim::Config {
        auto_create: true,
        limit: 0,
        latency: Duration::from_secs(2),
        ..Default::default()
    };
    let base_url = crescendo_controller::demo::start_flowsim(sim, &shutdown)
        .await
        .unwrap();
    let (_, top) = run_against(base_url, "300ms").await;
    assert_eq!(top["outcome"], "timeout", "{top}");
    assert_eq!(top["message"], "timed out after 300ms", "{top}");
    assert_eq!(top["status"], Value::Null, "{top}");
}
