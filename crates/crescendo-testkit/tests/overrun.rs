//! No overrun: at a rate the agents cannot keep up with, they stop issuing at the
//! plan's end whatever their backlog, count what was due and never sent as `missed`,
//! and finish by themselves (before, load went on until the drain deadline marked the
//! agent lost).

use crescendo_controller::report::Verdict;
use crescendo_testkit::{Fleet, FlowsimConfig, stat};

const FLOOD: &str = r#"
name = "flood"
[target]
base_url = "{{BASE_URL}}"
timeout = "2s"
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/api/v2/flows/flow-1"
body = '{"name": "x"}'
[load]
max_in_flight = 20
stages = [ { duration = "2s", target = 1000000 } ]
[backoff]
policy = "none"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_that_fall_behind_stop_at_the_plans_end_and_count_what_they_missed() {
    let sim = FlowsimConfig {
        auto_create: true,
        limit: 0,
        ..Default::default()
    };
    let fleet = Fleet::start(sim, 2).await.unwrap();
    let (_, summary) = fleet.run(FLOOD, 2).await.unwrap();
    let stats = fleet.sim_stats().await.unwrap();
    assert!(summary.lost_agents.is_empty(), "{:?}", summary.lost_agents);
    assert_eq!(
        summary.outcome,
        Verdict::Passed,
        "{:?}",
        summary.outcome_reasons
    );
    let t = &summary.totals;
    // A million a second for 2 s: nearly all of it was due and never sent.
    assert!(t.missed > 1_000_000, "missed {}", t.missed);
    assert!(t.requests > 0);
    assert_eq!(
        t.requests,
        stat(&stats, "accepted") + stat(&stats, "throttled")
    );
    // Nothing was sent in a second after the plan's end.
    let late: Vec<_> = summary
        .timeline
        .iter()
        .filter(|i| i.t >= 3 && i.requests > 0)
        .collect();
    assert!(late.is_empty(), "requests after the plan's end: {late:?}");
}
