//! The coordinated policy with virtual users and several steps: closed-model VUs keep
//! to the governor's rate (every step counts against the API's limit), so a fleet that
//! could send far more stays near the limit with few 429s, while the same VUs with
//! policy `none` are mostly throttled.

use std::time::Duration;

use crescendo_testkit::{Fleet, FlowsimConfig, stat};

fn plan(policy: &str) -> String {
    format!(
        r#"
name = "closed-{policy}"
[target]
base_url = "{{{{BASE_URL}}}}"
[[scenario.steps]]
name = "read"
path = "/api/v2/flows/{{flowId}}"
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/api/v2/flows/{{flowId}}"
body = '{{"description": "by {{agent}} vu {{vu}}"}}'
[load]
model = "closed"
think_time = "10ms"
stages = [ {{ duration = "10s", target = 12 }} ]
[backoff]
policy = "{policy}"
max_retries = 2
[data]
sequence = {{ var = "flowId", format = "flow-{{n}}", count = 60 }}
"#
    )
}

fn sim() -> FlowsimConfig {
    // 250 per 5 s: 50 req/s; 12 VUs with 10 ms think time can send hundreds.
    FlowsimConfig {
        flows: 60,
        limit: 250,
        window: Duration::from_secs(5),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinated_virtual_users_keep_to_the_limit_across_steps() {
    let fleet = Fleet::start(sim(), 3).await.unwrap();
    let (_, s) = fleet.run(&plan("coordinated"), 3).await.unwrap();
    let stats = fleet.sim_stats().await.unwrap();
    assert_eq!(s.totals.ok, stat(&stats, "accepted"));
    assert_eq!(s.totals.throttled, stat(&stats, "throttled"));
    let throttled = s.totals.throttled as f64 / s.totals.requests.max(1) as f64;
    eprintln!(
        "closed coordinated: goodput {:.1} req/s of 50, throttled {:.2} % of {} attempts",
        s.goodput_rps,
        throttled * 100.0,
        s.totals.requests
    );
    assert!(throttled < 0.05, "throttled {throttled:.3}: {:?}", s.totals);
    assert!(s.goodput_rps > 35.0, "goodput {}", s.goodput_rps);
    assert!(!s.governor_events.is_empty());
    // Both steps were sent.
    assert!(s.steps["read"].totals.ok > 0 && s.steps["update"].totals.ok > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_virtual_users_without_coordination_are_mostly_throttled() {
    let fleet = Fleet::start(sim(), 3).await.unwrap();
    let (_, s) = fleet.run(&plan("none"), 3).await.unwrap();
    let throttled = s.totals.throttled as f64 / s.totals.requests.max(1) as f64;
    assert!(throttled > 0.5, "throttled {throttled:.3}: {:?}", s.totals);
}
