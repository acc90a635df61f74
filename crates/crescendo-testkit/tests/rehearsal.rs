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
[thresholds]
"errors" = "== 0"
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
    // The start barrier: the three agents' starts lie well within a second.
    let skew = summary.start_skew_ms.expect("three agents report a start");
    assert!((0.0..1000.0).contains(&skew), "start skew {skew} ms");
    assert_design_schema(&serde_json::to_value(&summary).unwrap());
}

/// The `summary.json` keys DESIGN.md promises, with their JSON types.
fn assert_design_schema(json: &serde_json::Value) {
    use serde_json::Value;
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let expect = |path: &str, want: &str| {
        let v = json
            .pointer(path)
            .unwrap_or_else(|| panic!("summary.json lacks {path}"));
        assert_eq!(kind(v), want, "{path} in {json}");
    };
    expect("/run_id", "string");
    expect("/plan_name", "string");
    expect("/duration_s", "number");
    expect("/agents", "array");
    expect("/agents/0/id", "string");
    expect("/agents/0/requests", "number");
    expect("/lost_agents", "array");
    for key in [
        "requests",
        "ok",
        "throttled",
        "errors",
        "retries",
        "dropped",
    ] {
        expect(&format!("/totals/{key}"), "number");
    }
    for group in ["latency_ms", "service_time_ms"] {
        for key in ["p50", "p90", "p99", "p999", "max", "mean"] {
            expect(&format!("/{group}/{key}"), "number");
        }
    }
    expect("/throughput_rps", "number");
    expect("/goodput_rps", "number");
    expect("/thresholds/0/expr", "string");
    expect("/thresholds/0/ok", "bool");
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
