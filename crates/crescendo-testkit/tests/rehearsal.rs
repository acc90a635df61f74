//! End-to-end rehearsals: real flowsim, real controller, real agents, real sockets.

use crescendo_testkit::{Fleet, FlowsimConfig, stat};

const UNDER_LIMIT: &str = r#"
name = "under-limit"
[target]
base_url = "{{BASE_URL}}"
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/api/v2/flows/{flowId}"
headers = { "Content-Type" = "application/json" }
body = '{"name": "flow {flowId}", "description": "update {seq} from {agent}"}'
expect = [200]
[load]
max_in_flight = 300
stages = [ { duration = "5s", target = 60 } ]
[backoff]
policy = "none"
[data]
sequence = { var = "flowId", format = "flow-{n}", count = 90 }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_agents_under_the_limit_count_exactly() {
    let sim = FlowsimConfig {
        auto_create: true,
        limit: 0,
        ..Default::default()
    };
    let fleet = Fleet::start(sim, 3).await.unwrap();
    let (_, summary) = fleet.run(UNDER_LIMIT, 3).await.unwrap();
    let stats = fleet.sim_stats().await.unwrap();

    let per_agent: u64 = summary.agents.iter().map(|a| a.requests).sum();
    assert_eq!(summary.agents.len(), 3);
    assert!(
        summary.agents.iter().all(|a| a.requests > 0),
        "{:?}",
        summary.agents
    );
    assert_eq!(per_agent, summary.totals.requests);
    assert_eq!(summary.totals.ok, stat(&stats, "accepted"));
    assert_eq!(summary.latency_ms.count, summary.totals.ok);
    assert_eq!(summary.service_time_ms.count, summary.totals.ok);
    assert_eq!(
        summary.totals.errors + summary.totals.throttled + summary.totals.dropped,
        0
    );
    // 60/s for 5 s: the achieved rate is within 2 % of the plan.
    let planned = 300.0;
    let achieved = summary.totals.requests as f64;
    assert!(
        (achieved - planned).abs() / planned <= 0.02,
        "{achieved} requests, planned {planned}"
    );
    assert!(
        (summary.throughput_rps - 60.0).abs() / 60.0 <= 0.02,
        "{}",
        summary.throughput_rps
    );
    assert!(summary.lost_agents.is_empty());
}

const OVER_LIMIT: &str = r#"
name = "over-limit"
[target]
base_url = "{{BASE_URL}}"
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/api/v2/flows/{flowId}"
body = '{"name": "x"}'
[load]
stages = [ { duration = "4s", target = 75 } ]
[backoff]
policy = "none"
[data]
sequence = { var = "flowId", format = "flow-{n}", count = 30 }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_none_at_three_times_the_limit_counts_every_429() {
    // 100 per 4 s window; the plan offers 300 in 4 s.
    let sim = FlowsimConfig {
        auto_create: true,
        limit: 100,
        window: std::time::Duration::from_secs(4),
        ..Default::default()
    };
    let fleet = Fleet::start(sim, 3).await.unwrap();
    let (_, summary) = fleet.run(OVER_LIMIT, 3).await.unwrap();
    let stats = fleet.sim_stats().await.unwrap();
    assert!(summary.totals.throttled > 0);
    assert_eq!(summary.totals.throttled, stat(&stats, "throttled"));
    assert_eq!(summary.totals.ok, stat(&stats, "accepted"));
    assert_eq!(summary.totals.retries, 0);
    assert_eq!(
        summary.totals.requests,
        summary.totals.ok + summary.totals.throttled
    );
    assert_eq!(
        summary.statuses.get(&429).copied().unwrap_or(0),
        summary.totals.throttled
    );
}
