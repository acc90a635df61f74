//! A lost agent's share goes to the survivors (`on_agent_loss = "redistribute"`), so the
//! fleet's rate is back to the plan's within the heartbeat timeout; with "continue" the
//! fleet runs short. Either way the run is `degraded` with the agent listed.

use crescendo_controller::report::{Summary, Verdict};
use crescendo_testkit::{Fleet, FlowsimConfig, stat};

/// 30 iterations a second for 10 s over 3 agents, each with its own key.
fn plan(on_agent_loss: &str) -> String {
    format!(
        r#"
name = "agent-loss"
[target]
base_url = "{{{{BASE_URL}}}}"
timeout = "2s"
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/api/v2/flows/flow-1"
body = '{{"name": "x"}}'
[load]
max_in_flight = 60
stages = [ {{ duration = "10s", target = 30 }} ]
[backoff]
policy = "none"
[fleet]
on_agent_loss = "{on_agent_loss}"
"#
    )
}

/// Requests per second over seconds `from..to` of the run.
fn rate(summary: &Summary, from: u64, to: u64) -> f64 {
    let n: u64 = summary
        .timeline
        .iter()
        .filter(|i| (from..to).contains(&i.t))
        .map(|i| i.requests)
        .sum();
    n as f64 / (to - from) as f64
}

/// Run the plan on agents a, b, c; drop c once flowsim has seen 60 requests.
async fn lose_one(on_agent_loss: &str) -> (Summary, u64) {
    let sim = FlowsimConfig {
        auto_create: true,
        limit: 0,
        ..Default::default()
    };
    let fleet = Fleet::start(sim, 0).await.unwrap();
    fleet.add_agent("a");
    fleet.add_agent("b");
    let doomed = fleet.add_agent("c");
    let text = plan(on_agent_loss);
    let run = tokio::spawn({
        let controller = fleet.controller.clone();
        let text = fleet.plan(&text);
        async move {
            let plan = crescendo_plan::parse(&text, "agent-loss.toml").unwrap();
            let mut request = crescendo_controller::RunRequest::new(plan, text, 3).unwrap();
            request.wait_for_agents = std::time::Duration::from_secs(20);
            controller.run(request).await.unwrap()
        }
    });
    fleet
        .wait_for_sim("60 requests", |s| stat(s, "accepted") >= 60)
        .await
        .unwrap();
    doomed.abort();
    let outcome = run.await.unwrap();
    let summary = crescendo_controller::report::summarize(&outcome);
    let stats = fleet.sim_stats().await.unwrap();
    (
        summary,
        stat(&stats, "accepted") + stat(&stats, "throttled"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_survivors_take_a_lost_agents_share() {
    let (summary, seen) = lose_one("redistribute").await;
    assert_eq!(
        summary.outcome,
        Verdict::Degraded,
        "{:?}",
        summary.outcome_reasons
    );
    let lost: Vec<&str> = summary.lost_agents.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(lost, ["c"]);
    let lost_at = summary.lost_agents[0].at_s;
    // From a second after the loss to the end, the fleet is back to the plan's 30/s.
    let from = lost_at.ceil() as u64 + 1;
    let after = rate(&summary, from, 10);
    assert!(
        after >= 0.9 * 30.0,
        "{after:.1} req/s from t={from} s after losing c at {lost_at:.1} s: {:?}",
        summary.timeline
    );
    // Everything counted reached flowsim; what c sent in its last unacknowledged
    // second may be missing (at most its 10/s share, and a little slack).
    assert!(summary.totals.requests <= seen);
    assert!(
        seen - summary.totals.requests <= 15,
        "{seen} vs {}",
        summary.totals.requests
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_continue_the_fleet_runs_short_and_says_so() {
    let (summary, _) = lose_one("continue").await;
    assert_eq!(summary.outcome, Verdict::Degraded);
    let from = summary.lost_agents[0].at_s.ceil() as u64 + 1;
    let after = rate(&summary, from, 10);
    assert!(
        after <= 0.8 * 30.0,
        "{after:.1} req/s: nobody should take c's share"
    );
}
