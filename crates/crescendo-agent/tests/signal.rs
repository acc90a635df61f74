//! The real agent binary under signals: flowsim and a controller in-process
//! (`crescendo_testkit`), agents as child processes on loopback.
//!
//! - SIGTERM mid-run: the agent stops its load, flushes its last snapshot and
//!   `Finished`, and exits 0 by itself; the run completes with that agent's figures,
//!   and the totals still equal flowsim's counts exactly.
//! - A second SIGTERM while the agent drains requests stuck on the wire: it exits at
//!   once, non-zero.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crescendo_testkit::{Fleet, FlowsimConfig, key_name, stat};
use tokio::time::Instant;

/// Agents as child processes, each logging to its own file; killed if still running
/// when dropped (a failed test).
struct Agents {
    children: Vec<(String, Child, PathBuf)>,
}

impl Agents {
    fn spawn(controller: &str, ids: &[&str]) -> Self {
        let children = ids
            .iter()
            .map(|id| {
                let log = std::env::temp_dir()
                    .join(format!("crescendo-signal-{id}-{}.log", std::process::id()));
                let child = Command::new(env!("CARGO_BIN_EXE_crescendo-agent"))
                    .args(["--controller", controller, "--id", id])
                    .args(["--give-up-after", "30s"])
                    .env("RUST_LOG", "info")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(&log).expect("log file"))
                    .spawn()
                    .expect("the agent binary starts");
                (id.to_string(), child, log)
            })
            .collect();
        Self { children }
    }

    fn entry(&mut self, id: &str) -> &mut (String, Child, PathBuf) {
        self.children
            .iter_mut()
            .find(|(i, ..)| i == id)
            .expect("a started agent")
    }

    /// `kill -TERM` the agent's process.
    fn terminate(&mut self, id: &str) {
        let pid = self.entry(id).1.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(status.expect("kill runs").success(), "kill -TERM {pid}");
    }

    /// The agent's exit status, waiting at most `limit`.
    async fn exited(&mut self, id: &str, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.entry(id).1.try_wait().expect("wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The agent's log so far.
    fn log(&mut self, id: &str) -> String {
        std::fs::read_to_string(&self.entry(id).2).unwrap_or_default()
    }
}

impl Drop for Agents {
    fn drop(&mut self) {
        for (_, child, log) in &mut self.children {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
            let _ = std::fs::remove_file(log);
        }
    }
}

/// Wait (bounded) until `fleet`'s controller has `n` agents attached.
async fn attached(fleet: &Fleet, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while fleet.controller.attached_agents().await.unwrap().len() < n {
        assert!(Instant::now() < deadline, "agents did not attach");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait (bounded) until flowsim has accepted `n` requests of the agent `id`.
async fn accepted(fleet: &Fleet, id: &str, n: u64) {
    let key = key_name(Some(&format!("Bearer {id}")));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stats = fleet.sim_stats().await.unwrap();
        if stats["keys"][&key]["accepted"].as_u64().unwrap_or(0) >= n {
            return;
        }
        assert!(Instant::now() < deadline, "{id} sent too little: {stats}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// 60 updates a second for 10 s; each agent's requests carry its id as the token, so
/// flowsim counts them per agent.
const PLAN: &str = r#"
name = "signal"
[target]
base_url = "{{BASE_URL}}"
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/api/v2/flows/{flowId}"
headers = { "Content-Type" = "application/json", "Authorization" = "Bearer {agent}" }
body = '{"name": "flow {flowId}", "description": "update {seq} from {agent}"}'
expect = [200]
[load]
max_in_flight = 300
stages = [ { duration = "10s", target = 60 } ]
[backoff]
policy = "none"
[data]
sequence = { var = "flowId", format = "flow-{n}", count = 90 }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_run_flushes_and_the_run_still_counts_exactly() {
    let sim = FlowsimConfig {
        auto_create: true,
        limit: 0,
        ..Default::default()
    };
    let fleet = Fleet::start(sim, 0).await.unwrap();
    let mut agents = Agents::spawn(&fleet.controller.url(), &["sig-a", "sig-b", "sig-c"]);
    attached(&fleet, 3).await;
    let stopped = "sig-b";
    let terminate = async {
        // Two seconds of its share have reached flowsim: mid-run, snapshots merged.
        accepted(&fleet, stopped, 40).await;
        agents.terminate(stopped);
        agents.exited(stopped, Duration::from_secs(20)).await
    };
    let (run, status) = tokio::join!(fleet.run(PLAN, 3), terminate);
    let log = agents.log(stopped);
    assert_eq!(
        status.map(|s| s.code()),
        Some(Some(0)),
        "exits 0 by itself:\n{log}"
    );
    let (outcome, summary) = run.unwrap();
    let stats = fleet.sim_stats().await.unwrap();

    assert_eq!(outcome.stopped, None, "the run went on without it");
    assert!(
        outcome.agent_errors.is_empty(),
        "{:?}",
        outcome.agent_errors
    );
    assert!(summary.lost_agents.is_empty(), "{:?}", summary.lost_agents);
    // The fleet ran short of the plan for a while: not "passed", and it says why.
    assert_eq!(
        summary.outcome,
        crescendo_testkit::Verdict::Degraded,
        "{:?}",
        summary.outcome_reasons
    );
    assert!(
        summary
            .outcome_reasons
            .iter()
            .any(|r| r.starts_with("agent sig-b stopped its load early")),
        "{:?}",
        summary.outcome_reasons
    );
    // Every request flowsim saw is counted, the stopped agent's last ones included.
    assert_eq!(
        summary.totals.requests,
        stat(&stats, "accepted") + stat(&stats, "throttled"),
        "{stats}\n{log}"
    );
    assert_eq!(summary.totals.ok, stat(&stats, "accepted"));
    assert_eq!(summary.agents.len(), 3);
    for agent in &summary.agents {
        let key = key_name(Some(&format!("Bearer {}", agent.id)));
        let seen = stats["keys"][&key]["accepted"].as_u64().unwrap_or(0)
            + stats["keys"][&key]["throttled"].as_u64().unwrap_or(0);
        assert_eq!(agent.requests, seen, "{} against flowsim", agent.id);
        assert!(!agent.lost, "{}", agent.id);
    }
    let of = |id: &str| summary.agents.iter().find(|a| a.id == id).unwrap().requests;
    // It stopped early: well under the others' 200 each.
    assert!(of(stopped) > 0 && of(stopped) < of("sig-a").min(of("sig-c")) * 3 / 4);
}

/// One agent at 20 requests a second for 30 s, answers within 10 s.
const LONG_PLAN: &str = r#"
name = "signal-twice"
[target]
base_url = "{{BASE_URL}}"
timeout = "10s"
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/api/v2/flows/{flowId}"
headers = { "Authorization" = "Bearer {agent}" }
body = '{"name": "x"}'
[load]
stages = [ { duration = "30s", target = 20 } ]
[data]
sequence = { var = "flowId", format = "flow-{n}", count = 20 }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_exits_at_once_without_waiting_for_the_drain() {
    let sim = FlowsimConfig {
        auto_create: true,
        limit: 0,
        ..Default::default()
    };
    let fleet = Fleet::start(sim, 0).await.unwrap();
    let id = "sig-twice";
    let mut agents = Agents::spawn(&fleet.controller.url(), &[id]);
    attached(&fleet, 1).await;
    let signals = async {
        accepted(&fleet, id, 10).await;
        // Hold every answer: the agent's requests on the wire now take 20 s. Two that
        // flowsim admitted since are held.
        fleet.stall(20_000).await.unwrap();
        let stats = fleet.sim_stats().await.unwrap();
        let key = key_name(Some(&format!("Bearer {id}")));
        let before = stats["keys"][&key]["accepted"].as_u64().unwrap_or(0);
        accepted(&fleet, id, before + 2).await;
        agents.terminate(id);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !agents.log(id).contains("stopping the load") {
            assert!(Instant::now() < deadline, "no shutdown began");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Still draining a second later: it waits for the stalled requests.
        assert_eq!(agents.exited(id, Duration::from_secs(1)).await, None);
        agents.terminate(id);
        agents.exited(id, Duration::from_secs(3)).await
    };
    let status = tokio::select! {
        status = signals => status,
        run = fleet.run(LONG_PLAN, 1) => panic!("the run ended first: {:?}", run.map(|r| r.1)),
    };
    let log = agents.log(id);
    let code = status.map(|s| s.code());
    assert_eq!(
        code,
        Some(Some(130)),
        "a second signal exits at once:\n{log}"
    );
}
