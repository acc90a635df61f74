//! The embedded rehearsal: flowsim, a controller and N agents on loopback, one short
//! run of PUT flow updates that ramps past flowsim's limit with coordinated backoff:
//! the fleet paces by the quota headers and pauses together on a 429.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// flowsim's limit in the demo: requests per window per token.
pub const DEMO_LIMIT: u64 = 100;
/// flowsim's window in the demo.
pub const DEMO_WINDOW: Duration = Duration::from_secs(10);

/// The demo plan for a target and a total duration: ramps from half the limit's rate
/// to twice it over the first half, then holds.
pub fn plan_text(base_url: &str, duration: Duration) -> String {
    let limit_rps = DEMO_LIMIT as f64 / DEMO_WINDOW.as_secs_f64();
    let half = (duration.as_millis() / 2).max(1);
    format!(
        r#"name = "demo-flow-update"
description = "PUT flow updates ramping past the API's rate limit"

[target]
base_url = "{base_url}"
timeout = "5s"

[[scenario.steps]]
name = "update"
method = "PUT"
path = "/api/v2/flows/{{flowId}}"
headers = {{ "Content-Type" = "application/json" }}
body = '{{"name": "flow {{flowId}}", "description": "rehearsal update {{seq}}"}}'
expect = [200]

[load]
model = "open"
start_rate = {start}
max_in_flight = 200
stages = [ {{ duration = "{half}ms", target = {peak} }}, {{ duration = "{half}ms", target = {peak} }} ]

[backoff]
policy = "coordinated"
max_retries = 3

[data]
partition = "per-agent"
sequence = {{ var = "flowId", format = "flow-{{n}}", count = 300 }}

[thresholds]
"latency.p99" = "< 2000ms"
"errors" = "== 0"
"#,
        start = limit_rps / 2.0,
        peak = limit_rps * 2.0,
    )
}

/// flowsim as the demo configures it.
pub fn flowsim_config() -> crescendo_flowsim::Config {
    crescendo_flowsim::Config {
        auto_create: true,
        limit: DEMO_LIMIT,
        window: DEMO_WINDOW,
        ..Default::default()
    }
}

/// Start flowsim in-process on a free loopback port; returns its base URL.
pub async fn start_flowsim(
    config: crescendo_flowsim::Config,
    shutdown: &CancellationToken,
) -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let token = shutdown.clone();
    tokio::spawn(async move {
        if let Err(e) = crescendo_flowsim::serve(listener, config, token).await {
            tracing::error!("flowsim failed: {e}");
        }
    });
    Ok(format!("http://{addr}"))
}

/// Start one in-process agent attached to `controller_url`; the task ends when the
/// agent is released or `shutdown` is cancelled.
pub fn start_agent(
    controller_url: &str,
    id: &str,
    shutdown: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    start_agent_with(
        crescendo_agent::AgentConfig::new(controller_url, id),
        shutdown,
    )
}

/// [`start_agent`] with a config of its own (an enrolment token, labels).
pub fn start_agent_with(
    config: crescendo_agent::AgentConfig,
    shutdown: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let token = shutdown.clone();
    tokio::spawn(async move {
        if let Err(e) = crescendo_agent::run(config, token).await {
            tracing::error!("agent failed: {e}");
        }
    })
}
