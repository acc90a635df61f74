//! Live results while a run goes: the shared snapshot that `/metrics` serves, the HTTP
//! endpoint, and the per-run watcher the run loop calls on every merge and tick.
//!
//! The run loop is the only writer: it publishes into [`LiveMetrics`] when snapshots
//! merge (counters and pre-binned histograms, copied from the merged result) and on each
//! one-second tick (agents, governor, state). A scrape only reads and formats what is
//! there; it never merges anything.
//!
//! # Layout
//! - [`LiveMetrics`]: the shared snapshot handle (cheap to clone).
//! - `prometheus`: the text exposition format.
//! - `http`: [`serve_metrics`] and [`start_metrics`], the `/metrics` endpoint (axum).
//! - `watch`: the run loop's hooks: progress, live metrics and `abort_on_fail`.
//! - [`JsonStream`]: `--out json=FILE`, the run as JSON Lines while it goes.

mod http;
mod prometheus;
mod stream;
pub(crate) mod watch;

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use crescendo_metrics::{Counters, StepStats};

pub use http::{serve_metrics, start_metrics};
use prometheus::PromHistogram;
pub use stream::JsonStream;

/// Where the controller is in a run's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunState {
    /// No run yet, or waiting for agents to attach.
    #[default]
    Waiting,
    Running,
    /// The last run is over (its numbers stay until the next run starts).
    Finished,
}

impl RunState {
    /// The `state` label value.
    pub fn name(self) -> &'static str {
        match self {
            RunState::Waiting => "waiting",
            RunState::Running => "running",
            RunState::Finished => "finished",
        }
    }
}

/// One step's live numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct StepLive {
    pub(crate) counters: Counters,
    pub(crate) latency: PromHistogram,
    pub(crate) service_time: PromHistogram,
}

impl StepLive {
    fn of(stats: &StepStats) -> Self {
        Self {
            counters: stats.counters,
            latency: PromHistogram::of(&stats.latency),
            service_time: PromHistogram::of(&stats.service_time),
        }
    }
}

/// What `/metrics` shows.
#[derive(Debug, Clone, Default)]
pub(crate) struct LiveSnapshot {
    pub(crate) state: RunState,
    pub(crate) run_id: String,
    pub(crate) plan_name: String,
    pub(crate) agents_attached: usize,
    /// The coordinated governor's fleet rate; `None` without a governor.
    pub(crate) governor_rate_rps: Option<f64>,
    pub(crate) paused: bool,
    pub(crate) offered: u64,
    /// Iterations the plan asked for so far (open model only).
    pub(crate) planned: Option<u64>,
    /// Wall-clock seconds the fleet governor held the fleet paused (coordinated policy).
    pub(crate) fleet_paused_s: Option<f64>,
    pub(crate) elapsed_s: f64,
    pub(crate) steps: BTreeMap<String, StepLive>,
}

/// The live snapshot shared between the run loop (writer) and `/metrics` (readers).
/// Clones share the same snapshot.
#[derive(Debug, Clone, Default)]
pub struct LiveMetrics {
    inner: Arc<RwLock<LiveSnapshot>>,
}

impl LiveMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// The Prometheus text exposition of the current snapshot.
    pub fn render(&self) -> String {
        prometheus::render(&self.read())
    }

    /// The run state now.
    pub fn state(&self) -> RunState {
        self.read().state
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, LiveSnapshot> {
        // A writer never panics while holding the lock; if one did, the data is still
        // a consistent snapshot of plain numbers.
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self, f: impl FnOnce(&mut LiveSnapshot)) {
        let mut guard = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard);
    }

    /// Waiting for agents; `attached` of them are there.
    pub(crate) fn waiting(&self, attached: usize) {
        self.write(|s| {
            s.state = RunState::Waiting;
            s.agents_attached = attached;
        });
    }

    /// A run starts: the previous run's numbers go.
    pub(crate) fn start_run(&self, run_id: &str, plan_name: &str, agents: usize) {
        self.write(|s| {
            *s = LiveSnapshot {
                state: RunState::Running,
                run_id: run_id.to_owned(),
                plan_name: plan_name.to_owned(),
                agents_attached: agents,
                ..LiveSnapshot::default()
            }
        });
    }

    /// Snapshots merged: copy the merged per-step numbers (binned outside the lock).
    pub(crate) fn merged<'a>(
        &self,
        steps: impl IntoIterator<Item = (&'a String, &'a StepStats)>,
        offered: u64,
    ) {
        let steps: BTreeMap<String, StepLive> = steps
            .into_iter()
            .map(|(name, stats)| (name.clone(), StepLive::of(stats)))
            .collect();
        self.write(|s| {
            s.steps = steps;
            s.offered = offered;
        });
    }

    /// The once-a-second gauges, with the demand so far and the fleet's pause time.
    pub(crate) fn tick(
        &self,
        attached: usize,
        governor: Option<(f64, bool)>,
        elapsed_s: f64,
        (planned, fleet_paused_s): (Option<u64>, Option<f64>),
    ) {
        self.write(|s| {
            s.planned = planned;
            s.fleet_paused_s = fleet_paused_s;
            s.agents_attached = attached;
            s.governor_rate_rps = governor.map(|(rate, _)| rate);
            s.paused = governor.is_some_and(|(_, paused)| paused);
            s.elapsed_s = elapsed_s;
        });
    }

    /// The merged totals so far, for a service's checkpoint: partial figures of a run
    /// in progress (`partial: true`), per step and summed.
    pub(crate) fn checkpoint(&self) -> serde_json::Value {
        let s = self.read();
        let mut totals = Counters::default();
        for step in s.steps.values() {
            totals.add(&step.counters);
        }
        let steps: BTreeMap<&String, &Counters> = s
            .steps
            .iter()
            .map(|(name, step)| (name, &step.counters))
            .collect();
        serde_json::json!({
            "partial": true,
            "run_id": s.run_id,
            "plan_name": s.plan_name,
            "elapsed_s": s.elapsed_s,
            "agents_attached": s.agents_attached,
            "totals": totals,
            "offered": s.offered,
            "planned": s.planned,
            "steps": steps,
        })
    }

    /// The run is over.
    pub(crate) fn finish(&self) {
        self.write(|s| {
            s.state = RunState::Finished;
            s.paused = false;
        });
    }
}
