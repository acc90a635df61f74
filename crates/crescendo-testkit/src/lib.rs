//! The in-process harness every end-to-end test uses: flowsim, a controller and agents
//! started through the same library entry points as the binaries, on `127.0.0.1:0`,
//! talking real gRPC and real HTTP over loopback sockets.
//!
//! Dropping a [`Fleet`] cancels everything it started.

use std::path::Path;
use std::time::Duration;

use crescendo_controller::report::Summary;
use crescendo_controller::{Controller, RunOutcome, RunRequest, demo};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use crescendo_controller::report::Verdict;
pub use crescendo_flowsim::{ClientSpec, Config as FlowsimConfig, HeaderFamilies, key_name};

/// flowsim, a controller and agents, all on loopback.
#[derive(Debug)]
pub struct Fleet {
    /// flowsim's base URL, e.g. `http://127.0.0.1:41234`.
    pub flowsim_url: String,
    pub controller: Controller,
    http: reqwest::Client,
    shutdown: CancellationToken,
}

impl Fleet {
    /// Start flowsim with `sim`, a controller, and `agents` agents; returns once every
    /// agent is attached.
    pub async fn start(sim: FlowsimConfig, agents: u32) -> anyhow::Result<Self> {
        let shutdown = CancellationToken::new();
        let flowsim_url = demo::start_flowsim(sim, &shutdown).await?;
        let controller =
            Controller::start(TcpListener::bind("127.0.0.1:0").await?, shutdown.clone())?;
        let fleet = Self {
            flowsim_url,
            controller,
            http: reqwest::Client::new(),
            shutdown,
        };
        for i in 0..agents {
            fleet.add_agent(&format!("agent-{}", i + 1));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while fleet.controller.attached_agents().await?.len() < agents as usize {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "agents did not attach"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(fleet)
    }

    /// Start one more agent with this id; aborting the returned task drops the agent
    /// on the spot (its connection closes, nothing is flushed), like a host that died.
    pub fn add_agent(&self, id: &str) -> tokio::task::JoinHandle<()> {
        demo::start_agent(&self.controller.url(), id, &self.shutdown)
    }

    /// A plan's TOML with `{{BASE_URL}}` replaced by flowsim's URL.
    pub fn plan(&self, template: &str) -> String {
        template.replace("{{BASE_URL}}", &self.flowsim_url)
    }

    /// Run a plan (TOML text with `{{BASE_URL}}`) on `agents` agents.
    pub async fn run(&self, template: &str, agents: u32) -> anyhow::Result<(RunOutcome, Summary)> {
        self.run_in(None, template, agents).await
    }

    /// Run a plan whose `body_file` and data files are read from `dir` (when given).
    pub async fn run_in(
        &self,
        dir: Option<&Path>,
        template: &str,
        agents: u32,
    ) -> anyhow::Result<(RunOutcome, Summary)> {
        let text = self.plan(template);
        let files = dir.map(crescendo_plan::DirFiles::new);
        let plan = match &files {
            Some(files) => crescendo_plan::parse_with(&text, "test plan", files)?,
            None => crescendo_plan::parse(&text, "test plan")?,
        };
        let mut request = RunRequest::new(plan, text, agents)?;
        request.files = files;
        request.wait_for_agents = Duration::from_secs(20);
        let outcome = self.controller.run(request).await?;
        let summary = crescendo_controller::report::summarize(&outcome);
        Ok((outcome, summary))
    }

    /// flowsim's `/__sim/stats`.
    pub async fn sim_stats(&self) -> anyhow::Result<serde_json::Value> {
        let url = format!("{}/__sim/stats", self.flowsim_url);
        Ok(self
            .http
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// Polls flowsim's `/__sim/stats` until `seen` holds and returns those stats. Errs,
    /// naming `what`, only when that takes longer than a generous deadline (30 s): tests
    /// wait for what flowsim has seen, never for a fixed time.
    pub async fn wait_for_sim(
        &self,
        what: &str,
        seen: impl Fn(&serde_json::Value) -> bool,
    ) -> anyhow::Result<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let stats = self.sim_stats().await?;
            if seen(&stats) {
                return Ok(stats);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "waited 30 s for {what}; flowsim's stats: {stats}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Revoke every token flowsim has issued: the next call with one answers 401.
    pub async fn revoke_tokens(&self) -> anyhow::Result<()> {
        let url = format!("{}/__sim/revoke-tokens", self.flowsim_url);
        self.http.post(url).send().await?.error_for_status()?;
        Ok(())
    }

    /// flowsim's copy of one flow, read with an OAuth client's fresh token.
    pub async fn flow(&self, id: &str, client: (&str, &str)) -> anyhow::Result<serde_json::Value> {
        let token: serde_json::Value = self
            .http
            .post(format!("{}/oauth/token", self.flowsim_url))
            .basic_auth(client.0, Some(client.1))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let token = token["access_token"].as_str().unwrap_or_default();
        let url = format!("{}/api/v2/flows/{id}", self.flowsim_url);
        Ok(self
            .http
            .get(url)
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// Hold every flowsim response for `ms` milliseconds from now.
    pub async fn stall(&self, ms: u64) -> anyhow::Result<()> {
        let url = format!("{}/__sim/stall", self.flowsim_url);
        self.http
            .post(url)
            .json(&serde_json::json!({ "ms": ms }))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A count from flowsim's stats JSON.
pub fn stat(stats: &serde_json::Value, key: &str) -> u64 {
    stats[key]
        .as_u64()
        .unwrap_or_else(|| panic!("flowsim stats without {key}: {stats}"))
}
