//! The capacity probe against flowsim: it must find the configured limit.

use std::time::Duration;

use crescendo_controller::probe::{ProbeSettings, run_probe};
use crescendo_flowsim::Algorithm;
use crescendo_testkit::{Fleet, FlowsimConfig};

const PLAN: &str = r#"
name = "probe"
[target]
base_url = "{{BASE_URL}}"
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/api/v2/flows/{flowId}"
body = '{"name": "flow {flowId}"}'
[load]
max_in_flight = 500
stages = [ { duration = "10s", target = 150 } ]
[data]
sequence = { var = "flowId", format = "flow-{n}", count = 400 }
"#;

async fn probe(sim: FlowsimConfig, seconds: u64) -> f64 {
    let limit_rps = sim.limit as f64 / sim.window.as_secs_f64();
    let fleet = Fleet::start(sim, 4).await.unwrap();
    let settings = ProbeSettings {
        duration: Duration::from_secs(seconds),
        epsilon: 0.01,
    };
    let probe = run_probe(
        &fleet.controller,
        &fleet.plan(PLAN),
        "probe.toml",
        4,
        settings,
        |r| {
            r.wait_for_agents = Duration::from_secs(20);
        },
    )
    .await
    .unwrap();
    let result = probe.result.expect("a steady stretch under epsilon");
    eprintln!("probe: {result:?} against a limit of {limit_rps} req/s");
    result.sustainable_rps / limit_rps
}

fn sim(algorithm: Algorithm) -> FlowsimConfig {
    // 250 per 5 s: 50 req/s; the plan's ceiling is 150 req/s.
    FlowsimConfig {
        auto_create: true,
        limit: 250,
        window: Duration::from_secs(5),
        algorithm,
        ..Default::default()
    }
}

/// One after the other: each probe has the machine to itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_finds_the_limit_within_5_percent() {
    for algorithm in [
        Algorithm::FixedWindow,
        Algorithm::TokenBucket,
        Algorithm::Gcra,
    ] {
        let ratio = probe(sim(algorithm), 60).await;
        assert!(
            (ratio - 1.0).abs() <= 0.05,
            "{algorithm:?}: found {ratio:.3} of the limit"
        );
    }
}

/// Known gap (issue 3): against a sliding-window counter the governor paces by
/// `remaining / reset` of the current grid window and leaves capacity unused (measured
/// 0.88 of the limit). Run with `--ignored` to see it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "known gap: finds about 0.88 of a sliding window's limit"]
async fn the_probe_finds_a_sliding_windows_limit_within_5_percent() {
    let ratio = probe(sim(Algorithm::SlidingWindow), 60).await;
    assert!((ratio - 1.0).abs() <= 0.05, "found {ratio:.3} of the limit");
}
