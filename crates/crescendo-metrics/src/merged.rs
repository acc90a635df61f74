//! The controller side: one step's measurements merged from many snapshots.

use std::collections::BTreeMap;

use crescendo_proto::v1 as pb;
use hdrhistogram::Histogram;

use crate::MetricsError;
use crate::histogram::{decode, new_histogram};
use crate::outcome::Counters;

/// Merged measurements of one step (or of a whole run, when steps are added up).
#[derive(Debug, Clone)]
pub struct StepStats {
    pub latency: Histogram<u64>,
    pub service_time: Histogram<u64>,
    pub counters: Counters,
    pub statuses: BTreeMap<u16, u64>,
}

impl Default for StepStats {
    fn default() -> Self {
        Self {
            latency: new_histogram(),
            service_time: new_histogram(),
            counters: Counters::default(),
            statuses: BTreeMap::new(),
        }
    }
}

impl StepStats {
    /// Decode a step snapshot from an agent. Nothing is merged when any part is bad,
    /// so a rejected snapshot never counts halfway.
    pub fn decode(snapshot: &pb::StepSnapshot) -> Result<Self, MetricsError> {
        let mut statuses = BTreeMap::new();
        for (&status, &count) in &snapshot.statuses {
            let status = u16::try_from(status)
                .map_err(|_| MetricsError::BadHistogram(format!("status {status}")))?;
            statuses.insert(status, count);
        }
        Ok(Self {
            latency: decode(&snapshot.latency)?,
            service_time: decode(&snapshot.service_time)?,
            counters: snapshot
                .counters
                .as_ref()
                .map(Counters::from)
                .unwrap_or_default(),
            statuses,
        })
    }

    /// Add another step's measurements into this one (exact: histograms are added
    /// bucket by bucket, counters summed).
    pub fn add(&mut self, other: &StepStats) -> Result<(), MetricsError> {
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
