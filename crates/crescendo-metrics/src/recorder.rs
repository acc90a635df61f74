//! The agent side: record attempts per step, take interval snapshots for the wire.

use std::time::Duration;

use crate::failures::FailureKind;
use crate::histogram::record;
use crate::merged::{StepSnapshot, StepStats};
use crate::outcome::Outcome;
use crate::send_lag::SendLag;

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
    /// From this attempt's intended instant to its hand-over to the HTTP client, when
    /// a request was sent (`None`: nothing was sent, or not a scenario request).
    pub send_lag: Option<Duration>,
}

/// Measurements of one agent for the interval in progress.
///
/// Latency histograms hold successful attempts only, so each step's latency count
/// equals its `ok` counter.
#[derive(Debug)]
pub struct Recorder {
    names: Vec<String>,
    steps: Vec<StepStats>,
    /// How many of `steps` (the first ones) are scenario steps; the rest are
    /// auxiliary (token fetches), reported with `auxiliary = true`.
    scenario_steps: usize,
    offered: u64,
    /// Every sent request's lag behind its intended instant, all steps together.
    send_lag: SendLag,
}

impl Recorder {
    /// A recorder for the scenario's steps, in order.
    pub fn new(step_names: impl IntoIterator<Item = String>) -> Self {
        let names: Vec<String> = step_names.into_iter().collect();
        let steps = names.iter().map(|_| StepStats::default()).collect();
        Self {
            scenario_steps: names.len(),
            names,
            steps,
            offered: 0,
            send_lag: SendLag::default(),
        }
    }

    /// Register a measured step that is not part of the scenario (e.g. `auth.token`
    /// for OAuth token fetches): its snapshots carry `auxiliary = true`, so the
    /// controller reports it on its own and never adds it to the run's totals.
    /// Returns the index to [`record`](Self::record) its attempts under.
    pub fn add_auxiliary(&mut self, name: impl Into<String>) -> usize {
        self.names.push(name.into());
        self.steps.push(StepStats::default());
        self.steps.len() - 1
    }

    /// Count a 401 that made the agent refresh its token and resend `step` once (not
    /// an attempt: the resent request has the outcome).
    pub fn auth_refreshed(&mut self, step: usize) {
        if let Some(step) = self.steps.get_mut(step) {
            step.counters.auth_refreshes += 1;
        }
    }

    /// Count one attempt.
    pub fn record(&mut self, attempt: Attempt) {
        let Some(step) = self.steps.get_mut(attempt.step) else {
            return;
        };
        if let Some(lag) = attempt.send_lag {
            self.send_lag.record(lag);
        }
        step.counters.count(attempt.outcome, attempt.retry);
        if let Some(status) = attempt.status {
            *step.statuses.entry(status).or_default() += 1;
        }
        if attempt.outcome == Outcome::Ok {
            record(&mut step.latency, attempt.latency);
            record(&mut step.service_time, attempt.service_time);
        }
    }

    /// Note why an attempt already [`record`](Self::record)ed failed: `at_ms` is the
    /// Unix time in milliseconds, `sample` (a masked body, cut to 256 bytes here) is
    /// only asked for when the kind is new in this interval. Ignores `Ok` and
    /// `Throttled`; bounded (see [`crate::failures`]).
    pub fn record_failure(
        &mut self,
        step: usize,
        kind: FailureKind,
        at_ms: u64,
        sample: impl FnOnce() -> String,
    ) {
        if let Some(step) = self.steps.get_mut(step) {
            step.failures.record(kind, at_ms, sample);
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

    /// Count iterations that were due before the plan's end but never sent (charged to
    /// the first step, like [`dropped`](Self::dropped)).
    pub fn missed(&mut self, iterations: u64) {
        if let Some(step) = self.steps.first_mut() {
            step.counters.missed = step.counters.missed.saturating_add(iterations);
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
    /// start a fresh interval. Encoding for the wire is the caller's (the agent's
    /// session) business.
    pub fn take(&mut self) -> (Vec<StepSnapshot>, u64) {
        let scenario_steps = self.scenario_steps;
        let steps = self
            .names
            .iter()
            .zip(self.steps.iter_mut())
            .enumerate()
            .map(|(index, (name, step))| StepSnapshot {
                step: name.clone(),
                auxiliary: index >= scenario_steps,
                stats: std::mem::take(step),
            })
            .collect();
        (steps, std::mem::take(&mut self.offered))
    }

    /// Close the interval's send lags (see [`Attempt::send_lag`]) and start afresh;
    /// taken with [`take`](Self::take), under the same lock.
    pub fn take_send_lag(&mut self) -> SendLag {
        std::mem::take(&mut self.send_lag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(step: usize, outcome: Outcome) -> Attempt {
        Attempt {
            step,
            outcome,
            status: Some(200),
            latency: Duration::from_millis(5),
            service_time: Duration::from_millis(4),
            retry: false,
            send_lag: Some(Duration::from_micros(30)),
        }
    }

    #[test]
    fn auxiliary_steps_are_marked_and_counted_apart() {
        let mut recorder = Recorder::new(["update".to_owned()]);
        let token = recorder.add_auxiliary("auth.token");
        assert_eq!(token, 1);
        recorder.record(attempt(0, Outcome::Ok));
        recorder.record(attempt(token, Outcome::Ok));
        recorder.auth_refreshed(0);
        let (steps, _) = recorder.take();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].step, "update");
        assert!(!steps[0].auxiliary);
        let counters = &steps[0].stats.counters;
        assert_eq!((counters.requests, counters.auth_refreshes), (1, 1));
        assert_eq!(steps[1].step, "auth.token");
        assert!(steps[1].auxiliary);
        assert_eq!(steps[1].stats.counters.requests, 1);
        let lag = recorder.take_send_lag().summary();
        assert_eq!((lag.count, lag.p50), (2, 30));
        assert_eq!(recorder.take_send_lag().summary().count, 0);
    }
}
