//! The run loop's hooks for live results: [`RunWatch::merged`] after each merged
//! snapshot (published at most five times a second) and [`RunWatch::tick`] once a
//! second. A tick shows the progress, updates the live metrics' gauges and checks the
//! `abort_on_fail` thresholds; it returns the reason to stop the fleet when one failed.

use crescendo_plan::{Plan, Threshold};
use tokio::time::Instant;

use super::{JsonStream, LiveMetrics};
use crate::aggregate::Aggregate;
use crate::progress::{Observed, Progress, ProgressMode};
use crate::thresholds::{Aborted, check_abort};

/// What the run loop knows at a tick, besides the merged result.
#[derive(Debug)]
pub(crate) struct TickInput<'a> {
    pub(crate) started: Instant,
    pub(crate) aggregate: &'a Aggregate,
    /// Run members still attached, and all of them.
    pub(crate) attached: usize,
    pub(crate) members: usize,
    /// The governor's fleet rate and pause state (coordinated policy).
    pub(crate) governor: Option<(f64, bool)>,
    /// Wall-clock time the fleet governor held the fleet paused so far.
    pub(crate) fleet_paused: Option<std::time::Duration>,
    /// The load is still running (not stopped, not past its end): only then may an
    /// `abort_on_fail` threshold stop it.
    pub(crate) load_running: bool,
}

/// One run's live results.
#[derive(Debug)]
pub(crate) struct RunWatch {
    progress: Progress,
    metrics: LiveMetrics,
    /// The plan's `abort_on_fail` thresholds.
    abortable: Vec<Threshold>,
    aborted: Option<Aborted>,
    /// `--out json=FILE`.
    stream: Option<JsonStream>,
    /// The plan's open-model schedule, for the demand so far; `None` for a closed model.
    open: Option<crescendo_plan::OpenLoad>,
    duration: std::time::Duration,
    /// When the merged numbers were last published, and whether more merged since.
    published: Option<Instant>,
    unpublished: bool,
}

/// How often merged numbers are copied to the live metrics at most: binning every
/// step's histograms on each of a thousand agents' snapshots a second would cost more
/// than the merge itself.
const PUBLISH_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

impl RunWatch {
    /// A run starts: the live metrics switch to it.
    pub(crate) fn new(
        plan: &Plan,
        (mode, stream): (ProgressMode, Option<JsonStream>),
        metrics: LiveMetrics,
        run_id: &str,
        members: usize,
    ) -> Self {
        metrics.start_run(run_id, &plan.name, members);
        Self {
            progress: Progress::new(mode, plan).with_stream(stream.clone()),
            stream,
            metrics,
            abortable: plan
                .thresholds
                .iter()
                .filter(|t| t.abort.is_some())
                .cloned()
                .collect(),
            aborted: None,
            open: match &plan.load {
                crescendo_plan::Load::Open(load) => Some(load.clone()),
                crescendo_plan::Load::Closed(_) => None,
            },
            duration: plan.duration(),
            published: None,
            unpublished: false,
        }
    }

    /// After a snapshot merged: publish the merged numbers (at most every
    /// [`PUBLISH_EVERY`]; the rest at the next tick or [`RunWatch::publish`]).
    pub(crate) fn merged(&mut self, aggregate: &Aggregate) {
        let now = Instant::now();
        if self
            .published
            .is_some_and(|at| now.saturating_duration_since(at) < PUBLISH_EVERY)
        {
            self.unpublished = true;
            return;
        }
        self.published = Some(now);
        self.unpublished = false;
        self.metrics.merged(&aggregate.steps, aggregate.offered);
    }

    /// Publish what merged since the last time, if anything did.
    pub(crate) fn publish(&mut self, aggregate: &Aggregate) {
        if self.unpublished {
            self.published = Some(Instant::now());
            self.unpublished = false;
            self.metrics.merged(&aggregate.steps, aggregate.offered);
        }
    }

    /// Once a second; `Some(reason)` when an `abort_on_fail` threshold failed just now
    /// and the fleet must stop.
    pub(crate) fn tick(&mut self, input: TickInput<'_>) -> Option<String> {
        self.publish(input.aggregate);
        let elapsed = Instant::now().saturating_duration_since(input.started);
        let planned = self.open.as_ref().map(|load| {
            load.iterations_until(elapsed.min(self.duration))
                .round()
                .clamp(0.0, u64::MAX as f64) as u64
        });
        self.metrics.tick(
            input.attached,
            input.governor,
            elapsed.as_secs_f64(),
            (planned, input.fleet_paused.map(|d| d.as_secs_f64())),
        );
        let check = !self.abortable.is_empty() && input.load_running && self.aborted.is_none();
        if !self.progress.enabled() && !check {
            return None;
        }
        let total = input.aggregate.total();
        self.progress.tick(
            input.started,
            &Observed {
                total: &total,
                offered: input.aggregate.offered,
                agents: input.attached,
                agents_total: input.members,
                governor: input.governor,
                fleet_paused: input.fleet_paused,
            },
        );
        if !check {
            return None;
        }
        let aborted = check_abort(&self.abortable, &total, &input.aggregate.steps, elapsed)?;
        tracing::warn!("aborting the run: {}", aborted.reason);
        if let Some(stream) = &self.stream
            && let Ok(value) = serde_json::to_value(&aborted)
        {
            stream.line("aborted", value);
        }
        let reason = format!("aborted: {}", aborted.reason);
        self.aborted = Some(aborted);
        Some(reason)
    }

    /// The abort, if an `abort_on_fail` threshold stopped the run.
    pub(crate) fn aborted(&self) -> Option<Aborted> {
        self.aborted.clone()
    }
}

impl Drop for RunWatch {
    /// However the run ended, the live metrics say it is over.
    fn drop(&mut self) {
        self.metrics.finish();
    }
}
