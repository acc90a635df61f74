//! The plan's hard ceilings end to end: flowsim, a controller and two agents, with a
//! plan that offers far more than it allows. flowsim's own count is the proof.

use crescendo_controller::report::Verdict;
use crescendo_testkit::{Fleet, FlowsimConfig, stat};

const BUDGET: &str = r#"
name = "budget"
[target]
base_url = "{{BASE_URL}}"
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/api/v2/flows/flow-1"
body = '{"name": "x"}'
[load]
max_total_requests = 200
stages = [ { duration = "20s", target = 100 } ]
[backoff]
policy = "retry-after"
max_retries = 3
retry_budget = 1.0
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_never_sends_more_than_max_total_requests() {
    // 60 a second for the fleet: throttles and their retries use up the budget too.
    let sim = FlowsimConfig {
        auto_create: true,
        limit: 0,
        org_limit: 60,
        window: std::time::Duration::from_secs(1),
        ..Default::default()
    };
    let fleet = Fleet::start(sim, 2).await.unwrap();
    // 2 000 iterations offered in 20 s; 200 requests allowed. Those throttled in the
    // first second are retried a second later, before the budget is spent.
    let (_, summary) = fleet.run(BUDGET, 2).await.unwrap();
    let stats = fleet.sim_stats().await.unwrap();
    let received = stat(&stats, "accepted") + stat(&stats, "throttled");
    assert!(received <= 200, "flowsim received {received}");
    assert_eq!(summary.totals.requests, received);
    // Each agent spent exactly its part, retries included, and then stopped its load.
    assert_eq!(received, 200);
    let per_agent: Vec<u64> = summary.agents.iter().map(|a| a.requests).collect();
    assert_eq!(per_agent, [100, 100]);
    assert!(
        summary.totals.throttled > 0 && summary.totals.retries > 0,
        "{:?} {stats}",
        summary.totals
    );
    assert!(summary.duration_s < 10.0, "ran {} s", summary.duration_s);
    // Reaching the ceiling is no failure.
    assert!(summary.lost_agents.is_empty(), "{:?}", summary.lost_agents);
    assert_eq!(
        summary.outcome,
        Verdict::Passed,
        "{:?}",
        summary.outcome_reasons
    );
}

const RATE: &str = r#"
name = "rate"
[target]
base_url = "{{BASE_URL}}"
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/api/v2/flows/flow-1"
body = '{"name": "x"}'
[load]
max_rps = 50
stages = [ { duration = "3s", target = 500 } ]
[backoff]
policy = "none"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_never_sends_faster_than_max_rps() {
    let sim = FlowsimConfig {
        auto_create: true,
        limit: 0,
        ..Default::default()
    };
    let fleet = Fleet::start(sim, 2).await.unwrap();
    let (_, summary) = fleet.run(RATE, 2).await.unwrap();
    let stats = fleet.sim_stats().await.unwrap();
    let received = stat(&stats, "accepted") + stat(&stats, "throttled");
    assert_eq!(summary.totals.requests, received);
    // 25 a second on each agent for 3 s (each sends its first at once).
    assert!(received <= 152, "flowsim received {received}");
    assert!(
        received >= 120,
        "flowsim received {received}: the ceiling's rate"
    );
    for second in &summary.timeline {
        assert!(second.requests <= 52, "{second:?}");
    }
}
