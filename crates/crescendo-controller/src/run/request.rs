//! What a run is asked to do ([`RunRequest`]) and what it produced ([`RunOutcome`]).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crescendo_backoff::governor::GovernorEvent;
use crescendo_plan::labels::Labels;
use crescendo_plan::{Plan, Share};
use tokio::time::Instant;

use super::guard::Guard;
use crate::aggregate::Aggregate;
use crate::error::ControllerError;
use crate::live::LiveMetrics;
use crate::messages::{AgentTx, Finished};
use crate::progress::ProgressMode;
use crate::thresholds::Aborted;

/// What to run and how.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub plan: Plan,
    /// The plan's TOML text, sent to agents as is (they validate it again).
    pub plan_text: String,
    /// Each agent's share, split once when the request is made.
    shares: Vec<Share>,
    /// How long to wait for the agents to attach.
    pub wait_for_agents: Duration,
    /// Only agents carrying every one of these labels take part (empty: any agent).
    pub selector: Labels,
    /// The run's id (default: a random one), e.g. the service's record id.
    pub id: Option<String>,
    /// Told once when the run's agents are told to start.
    pub started: Option<tokio::sync::mpsc::UnboundedSender<RunStarted>>,
    /// The start barrier: every agent starts this long after its `Start` arrives.
    pub start_delay: Duration,
    /// An agent away (no stream) this long is lost: its share goes to the others, or
    /// the run goes on short, or stops (the plan's `on_agent_loss`). The controller's
    /// heartbeat timeout by default: by then the agent's own dead-man switch has
    /// stopped its load.
    pub lost_after: Duration,
    /// How to show progress each second.
    pub progress: ProgressMode,
    /// Tell agents they may exit when the run is over.
    pub release_agents: bool,
    /// Where the live results go (`--metrics-listen` serves them).
    pub live: LiveMetrics,
    /// `--out json=FILE`: progress and events as JSON Lines while the run goes.
    pub stream: Option<crate::live::JsonStream>,
    /// Where the plan's `body_file` and data files are read from (the plan's
    /// directory); needed only when the plan names files.
    pub files: Option<crescendo_plan::DirFiles>,
}

/// A run's agents were all ready and told to start.
#[derive(Debug, Clone)]
pub struct RunStarted {
    pub run_id: String,
    /// The agents' ids.
    pub agents: Vec<String>,
    /// When the load starts (the start barrier: now plus the start delay).
    pub at: SystemTime,
}

impl RunRequest {
    /// Run `plan` on `agents` agents. Fails when the plan cannot be split that way
    /// (no agents, fewer data rows or VUs than agents …), before anyone waits.
    pub fn new(plan: Plan, plan_text: String, agents: u32) -> Result<Self, ControllerError> {
        if agents == 0 {
            return Err(ControllerError::NoAgents);
        }
        let shares = crescendo_plan::split(&plan, agents)?;
        Ok(Self {
            plan,
            plan_text,
            shares,
            wait_for_agents: Duration::from_secs(60),
            selector: Labels::new(),
            id: None,
            started: None,
            start_delay: Duration::from_millis(500),
            lost_after: Duration::from_secs(3),
            progress: ProgressMode::None,
            release_agents: false,
            live: LiveMetrics::default(),
            stream: None,
            files: None,
        })
    }

    /// How many agents the run needs.
    pub fn agents(&self) -> usize {
        self.shares.len()
    }

    pub(crate) fn shares(&self) -> &[Share] {
        &self.shares
    }

    /// How long agents have after the load's end to finish: in-flight requests drain
    /// (bounded by the target's timeout) and their last snapshots arrive.
    pub(crate) fn drain(&self) -> Duration {
        self.plan.target.timeout * 2 + self.lost_after + Duration::from_secs(5)
    }
}

/// One agent's part in the run.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) host: String,
    pub(crate) share: Share,
    /// Its stream while attached; `None` while it is away.
    pub(crate) tx: Option<AgentTx>,
    pub(crate) ready: bool,
    pub(crate) finished: Option<Finished>,
    pub(crate) away_since: Option<Instant>,
    pub(crate) lost: bool,
    /// When (since the start barrier) and why it was counted as lost.
    pub(crate) lost_at: Option<(Duration, String)>,
    /// When (since the start barrier) its stream ended for the last time, if it did.
    pub(crate) detached_at: Option<Duration>,
    /// When this agent started its load, on the controller's clock: the arrival of its
    /// first snapshot minus the time that snapshot covers (an upper bound on the start,
    /// so the spread across agents bounds the start skew, whatever their clocks say).
    pub(crate) started_at: Option<Instant>,
    /// What it may report.
    pub(crate) guard: Guard,
    /// Messages of its refused.
    pub(crate) rejections: u64,
}

impl Member {
    /// Count this agent as lost `at` (since the start) for `reason`; its figures up to
    /// its last merged snapshot stay in the result.
    pub(crate) fn mark_lost(&mut self, at: Duration, reason: String) {
        if !self.lost {
            self.lost = true;
            self.lost_at = Some((at, reason));
        }
    }

    pub(crate) fn new(host: String, share: Share, tx: AgentTx, guard: Guard) -> Self {
        Self {
            guard,
            rejections: 0,
            host,
            share,
            tx: Some(tx),
            ready: false,
            finished: None,
            away_since: None,
            lost: false,
            lost_at: None,
            detached_at: None,
            started_at: None,
        }
    }
}

/// Why a run's load ended before the plan's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    /// Someone asked for it (`cancel`, the admin service).
    Cancelled,
    /// A signal (SIGINT, SIGTERM) or the controller shutting down.
    Interrupted,
    /// An `abort_on_fail` threshold failed.
    Aborted,
    /// An agent stopped with an error (a daily quota, data rows exhausted with
    /// `on_exhausted = "stop-run"`, a rejected plan …) and the fleet with it.
    AgentFailed,
    /// An agent was lost and the plan says `on_agent_loss = "abort"`.
    AgentLost,
}

/// Everything a finished run produced, for reports.
#[derive(Debug)]
pub struct RunOutcome {
    pub run_id: String,
    pub plan: Plan,
    pub plan_text: String,
    pub started_at: SystemTime,
    /// From the start barrier to the end of load (the plan's duration unless stopped).
    pub load_duration: Duration,
    pub(crate) members: BTreeMap<String, Member>,
    pub(crate) aggregate: Aggregate,
    /// Why the run ended early, if it did, in words …
    pub stopped: Option<String>,
    /// … and in kind.
    pub stop_cause: Option<StopCause>,
    /// Errors agents reported (plan rejected, daily quota …).
    pub agent_errors: Vec<String>,
    pub throttle_reports: u64,
    /// The governor's decisions (coordinated policy).
    pub governor_events: Vec<GovernorEvent>,
    /// Wall-clock time the fleet governor held the fleet paused (coordinated policy).
    pub fleet_paused: Option<Duration>,
    /// Spread of the agents' load starts (see `Member::started_at`).
    pub start_skew: Option<Duration>,
    /// Set when an `abort_on_fail` threshold stopped the run early.
    pub aborted: Option<Aborted>,
}
