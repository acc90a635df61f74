//! The agent side: record attempts per step, take interval snapshots for the wire.

use std::collections::BTreeMap;
use std::time::Duration;

use crescendo_proto::v1 as pb;
use hdrhistogram::Histogram;

use crate::histogram::{encode, new_histogram, record};
use crate::outcome::{Counters, Outcome};

/// One step's measurements for the current interval.
#[derive(Debug)]
struct StepInterval {
    latency: Histogram<u64>,
    service_time: Histogram<u64>,
    counters: Counters,
    statuses: BTreeMap<u16, u64>,
}

impl StepInterval {
    fn new() -> Self {
        Self {
            latency: new_histogram(),
            service_time: new_histogram(),
            counters: Counters::default(),
            statuses: BTreeMap::new(),
        }
    }
}

/// One attempt, as the load engine reports it.
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    pub step: usize,
    pub outcome: Outcome,
    /// The HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// From the iteration's intended start to this response (coordinated-omission
    /// corrected; includes time spent waiting for retries).
    pub latency: Duration,
    /// From this attempt's actual send to its response.
    pub service_time: Duration,
    /// Whether this attempt retried an earlier one.
    pub retry: bool,
}

/// Measurements of one agent for the interval in progress.
///
/// Latency histograms hold successful attempts only, so each step's latency count
/// equals its `ok` counter.
#[derive(Debug)]
pub struct Recorder {
    names: Vec<String>,
    steps: Vec<StepInterval>,
    offered: u64,
}

impl Recorder {
    /// A recorder for the scenario's steps, in order.
    pub fn new(step_names: impl IntoIterator<Item = String>) -> Self {
        let names: Vec<String> = step_names.into_iter().collect();
        let steps = names.iter().map(|_| StepInterval::new()).collect();
        Self {
            names,
            steps,
            offered: 0,
        }
    }

    /// Count one attempt.
    pub fn record(&mut self, attempt: Attempt) {
        let Some(step) = self.steps.get_mut(attempt.step) else {
            return;
        };
        step.counters.count(attempt.outcome, attempt.retry);
        if let Some(status) = attempt.status {
            *step.statuses.entry(status).or_default() += 1;
        }
        if attempt.outcome == Outcome::Ok {
            record(&mut step.latency, attempt.latency);
            record(&mut step.service_time, attempt.service_time);
        }
    }

    /// Count an iteration that was due to start (the offered load).
    pub fn offered(&mut self) {
        self.offered += 1;
    }

    /// Count an iteration dropped because the in-flight cap was reached (charged to
    /// the first step, where the iteration would have started).
    pub fn dropped(&mut self) {
        if let Some(step) = self.steps.first_mut() {
            step.counters.dropped += 1;
        }
    }

    /// Add time spent paused by backoff.
    pub fn paused(&mut self, pause: Duration) {
        if let Some(step) = self.steps.first_mut() {
            let ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX);
            step.counters.paused_ms = step.counters.paused_ms.saturating_add(ms);
        }
    }

    /// Close the interval: return its per-step snapshots and the offered count, and
    /// start a fresh interval.
    pub fn take(&mut self) -> (Vec<pb::StepSnapshot>, u64) {
        let steps = self
            .names
            .iter()
            .zip(self.steps.iter_mut())
            .map(|(name, step)| {
                let done = std::mem::replace(step, StepInterval::new());
                pb::StepSnapshot {
                    step: name.clone(),
                    latency: encode(&done.latency),
                    service_time: encode(&done.service_time),
                    counters: Some((&done.counters).into()),
                    statuses: done
                        .statuses
                        .into_iter()
                        .map(|(k, v)| (u32::from(k), v))
                        .collect(),
                }
            })
            .collect();
        (steps, std::mem::take(&mut self.offered))
    }
}
