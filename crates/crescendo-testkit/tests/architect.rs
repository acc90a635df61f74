//! Real scenarios end to end: OAuth client credentials against flowsim's token endpoint,
//! the checkout -> get -> update -> checkin lock workflow, captures and checks, and data
//! partitioned across agents (inline, and a CSV file streamed by the controller).
//!
//! Each agent has its own OAuth client here (`sharing = "per-agent"`), because flowsim
//! locks a flow to the client that checked it out: that is what makes two agents on the
//! same flow collide with 409.

use std::path::Path;
use std::time::Duration;

use crescendo_testkit::{ClientSpec, Fleet, FlowsimConfig};
use serde_json::Value;

const CLIENTS: [(&str, &str); 3] = [
    ("agent-one", "secret-one"),
    ("agent-two", "secret-two"),
    ("agent-three", "secret-three"),
];

/// flowsim with the three clients, `flows` seeded flows, writes only under a lock.
fn sim(flows: u64, token_lifetime: Duration) -> FlowsimConfig {
    let mut sim = FlowsimConfig {
        flows,
        limit: 0,
        require_checkout: true,
        ..Default::default()
    };
    sim.auth.clients = CLIENTS
        .iter()
        .map(|(id, secret)| ClientSpec {
            id: (*id).to_owned(),
            secret: (*secret).to_owned(),
        })
        .collect();
    sim.auth.token_lifetime = token_lifetime;
    sim
}

/// Writes each client's id and secret to files in `dir` and returns the plan's
/// `clients = [...]` list naming them (secrets come from files, never the plan).
fn client_files(dir: &Path) -> String {
    let mut entries = Vec::new();
    for (i, (id, secret)) in CLIENTS.iter().enumerate() {
        std::fs::write(dir.join(format!("id-{i}")), id).unwrap();
        std::fs::write(dir.join(format!("secret-{i}")), format!("{secret}\n")).unwrap();
        // Secret files are read on each agent's own filesystem: absolute paths.
        let (id, secret) = (dir.join(format!("id-{i}")), dir.join(format!("secret-{i}")));
        entries.push(format!(
            r#"{{ client_id_file = "{}", client_secret_file = "{}" }}"#,
            id.display(),
            secret.display()
        ));
    }
    format!("[{}]", entries.join(", "))
}

/// A plan's `name`, `[target]` and `[auth]` with per-agent clients (see [`client_files`]).
fn oauth_head(name: &str, dir: &Path) -> String {
    format!(
        r#"
name = "{name}"
[target]
base_url = "{{{{BASE_URL}}}}"
[auth]
kind = "oauth2-client-credentials"
token_url = "{{{{BASE_URL}}}}/oauth/token"
sharing = "per-agent"
clients = {clients}
"#,
        clients = client_files(dir),
    )
}

/// The lock workflow with per-agent clients; `data` is the plan's `[data]` table body.
fn workflow_plan(dir: &Path, data: &str, duration: &str) -> String {
    format!(
        r#"{head}[[scenario.steps]]
name = "checkout"
method = "POST"
path = "/api/v2/flows/actions/checkout"
query = {{ flow = "{{flowId}}" }}
expect = [200]
[[scenario.steps]]
name = "get"
path = "/api/v2/flows/{{flowId}}"
captures = {{ version = "/version" }}
checks = [{{ pointer = "/id", equals = "{{flowId}}" }}]
expect = [200]
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/api/v2/flows/{{flowId}}"
headers = {{ Content-Type = "application/json" }}
body = '{{"description": "seen version {{version}} by {{agent}}"}}'
expect = [200]
[[scenario.steps]]
name = "checkin"
method = "POST"
path = "/api/v2/flows/actions/checkin"
query = {{ flow = "{{flowId}}" }}
expect = [200, 202]
[load]
model = "closed"
think_time = "20ms"
stages = [ {{ duration = "{duration}", target = 6 }} ]
[backoff]
policy = "none"
[data]
{data}
"#,
        head = oauth_head("architect-test", dir),
    )
}

fn status(summary_statuses: &std::collections::BTreeMap<u16, u64>, code: u16) -> u64 {
    summary_statuses.get(&code).copied().unwrap_or(0)
}

fn sim_status(stats: &Value, code: &str) -> u64 {
    stats["statuses"][code].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_agent_data_never_collides_and_captures_feed_the_next_step() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::start(sim(30, Duration::from_secs(3600)), 3)
        .await
        .unwrap();
    let data = r#"partition = "per-agent"
sequence = { var = "flowId", format = "flow-{n}", count = 30 }"#;
    let plan = workflow_plan(dir.path(), data, "3s");
    let (_, summary) = fleet.run_in(Some(dir.path()), &plan, 3).await.unwrap();
    let stats = fleet.sim_stats().await.unwrap();

    assert!(summary.totals.requests > 40, "{:?}", summary.totals);
    assert_eq!(summary.totals.errors, 0, "{:?}", summary.statuses);
    assert_eq!(status(&summary.statuses, 409), 0);
    assert_eq!(sim_status(&stats, "409"), 0, "{stats}");
    assert_eq!(sim_status(&stats, "401"), 0, "{stats}");
    for step in ["checkout", "get", "update", "checkin"] {
        let s = &summary.steps[step];
        assert!(s.totals.ok > 0, "{step}: {:?}", s.totals);
    }
    // Every iteration that checked out also checked in, but those the plan's end cut
    // short: no request goes out after the end, so each of the 6 VUs may have left one
    // iteration between its checkout and its checkin.
    let (out, back) = (
        summary.steps["checkout"].totals.ok,
        summary.steps["checkin"].totals.ok,
    );
    assert!(
        back <= out && out - back <= 6,
        "checked out {out}, in {back}"
    );
    // Token fetches are measured on their own and kept out of the scenario's totals.
    let tokens = &summary.auxiliary["auth.token"];
    assert_eq!(
        tokens.totals.ok, 3,
        "one token per agent: {:?}",
        tokens.totals
    );
    assert_eq!(
        summary.totals.requests,
        summary
            .steps
            .values()
            .map(|s| s.totals.requests)
            .sum::<u64>()
    );
    // The update body carried the version the get step captured.
    let flow = fleet.flow("flow-1", CLIENTS[0]).await.unwrap();
    let description = flow["description"].as_str().unwrap_or_default();
    assert!(description.starts_with("seen version "), "flow-1: {flow}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_data_collides_and_409s_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::start(sim(4, Duration::from_secs(3600)), 3)
        .await
        .unwrap();
    let data = r#"partition = "shared"
sequence = { var = "flowId", format = "flow-{n}", count = 4 }"#;
    let plan = workflow_plan(dir.path(), data, "3s");
    let (_, summary) = fleet.run_in(Some(dir.path()), &plan, 3).await.unwrap();
    let stats = fleet.sim_stats().await.unwrap();

    let conflicts = status(&summary.statuses, 409);
    assert!(conflicts > 0, "{:?}", summary.statuses);
    assert_eq!(conflicts, sim_status(&stats, "409"), "{stats}");
    assert!(summary.totals.client_errors >= conflicts);
    assert!(summary.thresholds.iter().all(|t| t.ok));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_tokens_are_refreshed_before_they_expire() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::start(sim(30, Duration::from_secs(2)), 3)
        .await
        .unwrap();
    let data = r#"sequence = { var = "flowId", format = "flow-{n}", count = 30 }"#;
    let plan = workflow_plan(dir.path(), data, "5s");
    let (_, summary) = fleet.run_in(Some(dir.path()), &plan, 3).await.unwrap();
    let stats = fleet.sim_stats().await.unwrap();

    assert_eq!(summary.totals.errors, 0, "{:?}", summary.statuses);
    let tokens = &summary.auxiliary["auth.token"];
    // 2 s tokens over a 5 s run: every agent fetched more than once.
    assert!(tokens.totals.ok >= 6, "{:?}", tokens.totals);
    let issued = stats["endpoints"]["POST /oauth/token"]["200"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(issued, tokens.totals.ok, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_from_a_revoked_token_is_retried_once_and_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::start(sim(30, Duration::from_secs(3600)), 3)
        .await
        .unwrap();
    let data = r#"sequence = { var = "flowId", format = "flow-{n}", count = 30 }"#;
    let plan = workflow_plan(dir.path(), data, "4s");
    // Revoke once the run is under way (flowsim has answered requests made with the
    // agents' tokens), then see the revocation land: a request answered 401.
    let revoke = async {
        fleet
            .wait_for_sim("the run's first requests", |s| sim_status(s, "200") >= 50)
            .await
            .unwrap();
        fleet.revoke_tokens().await.unwrap();
        fleet
            .wait_for_sim("a 401 for a revoked token", |s| sim_status(s, "401") > 0)
            .await
            .unwrap();
    };
    let (run, ()) = tokio::join!(fleet.run_in(Some(dir.path()), &plan, 3), revoke);
    let (_, summary) = run.unwrap();
    let stats = fleet.sim_stats().await.unwrap();

    let unauthorized = sim_status(&stats, "401");
    assert!(unauthorized > 0, "the revocation hit no request: {stats}");
    assert_eq!(summary.totals.auth_refreshes, unauthorized);
    assert_eq!(summary.totals.errors, 0, "{:?}", summary.statuses);
    assert_eq!(status(&summary.statuses, 401), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_credential_variable_fails_before_any_load() {
    let fleet = Fleet::start(sim(30, Duration::from_secs(3600)), 2)
        .await
        .unwrap();
    let plan = r#"
name = "missing-secret"
[target]
base_url = "{{BASE_URL}}"
[auth]
kind = "oauth2-client-credentials"
token_url = "{{BASE_URL}}/oauth/token"
client_id_env = "CRESCENDO_TEST_CLIENT_ID_NEVER_SET_3F1A"
client_secret_env = "CRESCENDO_TEST_CLIENT_SECRET_NEVER_SET_3F1A"
[[scenario.steps]]
name = "get"
path = "/api/v2/flows/flow-1"
[load]
stages = [ { duration = "2s", target = 10 } ]
"#;
    let error = fleet.run(plan, 2).await.unwrap_err().to_string();
    assert!(
        error.contains("CRESCENDO_TEST_CLIENT_ID_NEVER_SET_3F1A"),
        "{error}"
    );
    let stats = fleet.sim_stats().await.unwrap();
    let calls: u64 = stats["statuses"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    assert_eq!(calls, 0, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_check_is_an_error_and_ends_the_iteration() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::start(sim(30, Duration::from_secs(3600)), 1)
        .await
        .unwrap();
    let plan = format!(
        r#"{head}[[scenario.steps]]
name = "get"
path = "/api/v2/flows/flow-1"
checks = [{{ pointer = "/id", equals = "flow-2" }}]
[[scenario.steps]]
name = "never"
path = "/api/v2/flows/flow-3"
[load]
stages = [ {{ duration = "1s", target = 10 }} ]
[backoff]
policy = "none"
"#,
        head = oauth_head("failing-check", dir.path())
    );
    let (_, summary) = fleet.run_in(Some(dir.path()), &plan, 1).await.unwrap();
    let get = &summary.steps["get"].totals;
    assert!(get.requests > 0);
    assert_eq!(get.check_failed, get.requests, "{get:?}");
    assert_eq!(summary.totals.errors, get.requests);
    assert_eq!(
        summary.steps.get("never").map_or(0, |s| s.totals.requests),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_rows_from_a_csv_file_are_each_used_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("flowId,label\n");
    for i in 1..=24 {
        csv.push_str(&format!("flow-{i},row {i}\n"));
    }
    std::fs::write(dir.path().join("flows.csv"), csv).unwrap();
    let fleet = Fleet::start(
        FlowsimConfig {
            flows: 24,
            limit: 0,
            ..Default::default()
        },
        3,
    )
    .await
    .unwrap();
    let plan = r#"
name = "unique-rows"
[target]
base_url = "{{BASE_URL}}"
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/api/v2/flows/{flowId}"
headers = { Content-Type = "application/json" }
body = '{"description": "{label}"}'
expect = [200]
[load]
stages = [ { duration = "3s", target = 40 } ]
[backoff]
policy = "none"
[data]
file = "flows.csv"
partition = "unique"
"#;
    let (_, summary) = fleet.run_in(Some(dir.path()), plan, 3).await.unwrap();
    assert_eq!(summary.totals.requests, 24, "{:?}", summary.totals);
    assert_eq!(summary.totals.ok, 24);
    for agent in &summary.agents {
        assert_eq!(agent.requests, 8, "{agent:?}");
    }
    let stats = fleet.sim_stats().await.unwrap();
    assert_eq!(crescendo_testkit::stat(&stats, "accepted"), 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_agent_file_with_fewer_rows_than_agents_fails_before_any_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flows.csv"), "flowId\nflow-1\nflow-2\n").unwrap();
    let fleet = Fleet::start(
        FlowsimConfig {
            flows: 2,
            limit: 0,
            ..Default::default()
        },
        3,
    )
    .await
    .unwrap();
    let plan = r#"
name = "too-few-rows"
[target]
base_url = "{{BASE_URL}}"
[[scenario.steps]]
name = "get"
path = "/api/v2/flows/{flowId}"
[load]
stages = [ { duration = "1s", target = 10 } ]
[data]
file = "flows.csv"
"#;
    let error = fleet
        .run_in(Some(dir.path()), plan, 3)
        .await
        .unwrap_err()
        .to_string();
    // The third agent would have run with no flowId at all.
    assert!(error.contains("flows.csv"), "{error}");
    assert!(
        error.contains("expected at least one row per agent") && error.contains("got 2 rows"),
        "{error}"
    );
    let stats = fleet.sim_stats().await.unwrap();
    assert_eq!(crescendo_testkit::stat(&stats, "accepted"), 0, "{stats}");
}
