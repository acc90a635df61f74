//! A probe of a plan with a `body_file`: the probe plan travels to the agents as its
//! rendered TOML with the body inline, and every agent runs it (the probe used to
//! refuse such plans, re-parsing the text without the plan's directory).

use std::time::Duration;

use crescendo_controller::probe::{ProbeSettings, run_probe};
use crescendo_plan::DirFiles;
use crescendo_testkit::{Fleet, FlowsimConfig};

const PLAN: &str = r#"
name = "probe-body-file"
[target]
base_url = "{{BASE_URL}}"
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/api/v2/flows/{flowId}"
headers = { Content-Type = "application/json" }
body_file = "bodies/update.json"
expect = [200]
[load]
max_in_flight = 20
stages = [ { duration = "10s", target = 20 } ]
[data]
sequence = { var = "flowId", format = "flow-{n}", count = 10 }
[thresholds]
"errors" = "== 0"
"#;

/// Quotes, an apostrophe, a backslash escape and a line break: all must reach flowsim.
const BODY: &str = "{\n  \"name\": \"flow {flowId}\",\n  \"description\": \"it's \\\"quoted\\\" by agent {agent}\"\n}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_of_a_body_file_plan_runs_on_every_agent() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("bodies")).unwrap();
    std::fs::write(dir.path().join("bodies/update.json"), BODY).unwrap();
    let sim = FlowsimConfig {
        auto_create: true,
        limit: 0,
        ..Default::default()
    };
    let fleet = Fleet::start(sim, 2).await.unwrap();
    let path = dir.path().join("plan.toml");
    std::fs::write(&path, fleet.plan(PLAN)).unwrap();
    let plan = crescendo_plan::load(&path).unwrap();
    let settings = ProbeSettings {
        duration: Duration::from_secs(4),
        epsilon: 0.01,
    };
    let probe = run_probe(&fleet.controller, &plan, 2, settings, |r| {
        r.files = Some(DirFiles::for_plan(&path));
        r.wait_for_agents = Duration::from_secs(20);
    })
    .await
    .unwrap();

    let (outcome, summary) = (&probe.outcome, &probe.summary);
    assert!(
        outcome.agent_errors.is_empty(),
        "{:?}",
        outcome.agent_errors
    );
    // The agents (and the report) got the probe plan: body inline, coordinated, no
    // thresholds.
    assert!(
        !outcome.plan_text.contains("body_file"),
        "{}",
        outcome.plan_text
    );
    assert!(outcome.plan_text.contains("policy = \"coordinated\""));
    assert!(!outcome.plan_text.contains("[thresholds]"));
    assert_eq!(summary.agents.len(), 2);
    for agent in &summary.agents {
        assert!(agent.ok > 0, "{agent:?} sent nothing");
    }
    assert_eq!(summary.totals.errors, 0, "{:?}", summary.statuses);

    // flowsim stored the body as the file holds it.
    let flow: serde_json::Value =
        reqwest::get(format!("{}/api/v2/flows/flow-1", fleet.flowsim_url))
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(flow["name"], "flow flow-1");
    let description = flow["description"].as_str().unwrap_or_default();
    assert!(
        description.starts_with("it's \"quoted\" by agent "),
        "{flow}"
    );
}
