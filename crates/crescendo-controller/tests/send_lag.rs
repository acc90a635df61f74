//! `send_lag_us`: every request's lag from its intended instant to its hand-over to the
//! HTTP client, recorded by the agents, shipped in their snapshots, merged once per
//! snapshot by the controller and shown in summary.json, on the console and in
//! report.html. The real binary (`run --local-agents 2`) against flowsim on loopback.

mod common;
use common::{put_plan, run_local};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread")]
async fn every_sent_request_has_its_send_lag_in_the_reports() {
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
    // Two steps per iteration: the second is intended when the first has answered.
    let second_step = r#"
[[scenario.steps]]
name = "read"
method = "GET"
path = "/api/v2/flows/flow-{seq}"
expect = [200]
"#;
    let plan = put_plan(
        tmp.path(),
        ("lag.toml", "lag"),
        (&base_url, "5s"),
        2,
        second_step,
    );
    let out = tmp.path().join("out");
    let (code, text, summary) = tokio::task::spawn_blocking({
        let out = out.clone();
        move || run_local(&plan, &out, &[])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{text}");
    let requests = summary["totals"]["requests"].as_u64().unwrap();
    assert!(requests >= 20, "{summary}");
    let lag = &summary["send_lag_us"];
    // One lag per request sent, however the agents' snapshots were cut.
    assert_eq!(lag["count"].as_u64(), Some(requests), "{lag}");
    let at = |key: &str| lag[key].as_u64().unwrap_or_else(|| panic!("{key}: {lag}"));
    let (p50, p90, p99, p999, max) = (at("p50"), at("p90"), at("p99"), at("p999"), at("max"));
    assert!(
        1 <= p50 && p50 <= p90 && p90 <= p99 && p99 <= p999 && p999 <= max,
        "{lag}"
    );
    // No request left later than the run lasted.
    let run_us = summary["duration_s"].as_f64().unwrap() * 1e6;
    assert!((max as f64) < run_us, "{lag} over {run_us} µs");
    assert!(text.contains("send lag µs"), "{text}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("Send lag (µs"), "no send lag in report.html");
}
