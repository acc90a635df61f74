//! One step's measurements: an interval's on an agent, or merged from many snapshots
//! on the controller.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::MetricsError;
use crate::failures::Failures;
use crate::histogram::new_histogram;
use crate::outcome::Counters;

/// Measurements of one step: one interval's on an agent, or merged (or of a whole run,
/// when steps are added up). Latency histograms hold successful attempts only, so each
/// latency count equals `counters.ok`.
#[derive(Debug, Clone)]
pub struct StepStats {
    pub latency: Histogram<u64>,
    pub service_time: Histogram<u64>,
    pub counters: Counters,
    pub statuses: BTreeMap<u16, u64>,
    /// Distinct failures (bounded; see [`Failures`]).
    pub failures: Failures,
}

impl Default for StepStats {
    fn default() -> Self {
        Self {
            latency: new_histogram(),
            service_time: new_histogram(),
            counters: Counters::default(),
            statuses: BTreeMap::new(),
            failures: Failures::default(),
        }
    }
}

impl StepStats {
    /// Add another step's measurements into this one (exact: histograms are added
    /// bucket by bucket, counters summed; failure tables merged and bounded, their
    /// counts exact).
    pub fn add(&mut self, other: &StepStats) -> Result<(), MetricsError> {
        self.add_measurements(other)?;
        self.failures.add(&other.failures);
        Ok(())
    }

    /// Like [`add`](Self::add) but without the failure table: for per-second series,
    /// which never report failures and would otherwise hold a table per second.
    pub fn add_measurements(&mut self, other: &StepStats) -> Result<(), MetricsError> {
        self.latency
            .add(&other.latency)
            .map_err(|e| MetricsError::Merge(format!("{e:?}")))?;
        self.service_time
            .add(&other.service_time)
            .map_err(|e| MetricsError::Merge(format!("{e:?}")))?;
        self.counters.add(&other.counters);
        for (&status, &count) in &other.statuses {
            let slot = self.statuses.entry(status).or_default();
            *slot = slot.saturating_add(count);
        }
        Ok(())
    }
}

/// One step's measurements over one interval, as an agent ships them.
#[derive(Debug, Clone, Default)]
pub struct StepSnapshot {
    pub step: String,
    /// Not a scenario step (OAuth token fetches): reported on its own, never added to
    /// the run's totals.
    pub auxiliary: bool,
    pub stats: StepStats,
}
