//! The schedule's own error: from each request's intended instant to the instant it
//! is handed to the HTTP client, one run-wide histogram (`send_lag_us`) per agent
//! interval, merged exactly like the latency histograms.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::MetricsError;
use crate::histogram::{new_histogram, record};

/// Send lags of one interval (an agent's) or of a whole run (merged), in microseconds.
/// Starts empty, so a snapshot from an agent that does not measure it merges as
/// nothing.
#[derive(Debug, Clone)]
pub struct SendLag {
    histogram: Histogram<u64>,
}

impl Default for SendLag {
    fn default() -> Self {
        Self {
            histogram: new_histogram(),
        }
    }
}

impl SendLag {
    /// Wraps a histogram of Crescendo's shape (e.g. one decoded from the wire).
    pub fn from_histogram(histogram: Histogram<u64>) -> Self {
        Self { histogram }
    }

    /// The histogram, values in microseconds.
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.histogram
    }

    /// Count one request sent `lag` after its intended instant.
    pub fn record(&mut self, lag: Duration) {
        record(&mut self.histogram, lag);
    }

    /// Add another interval's lags into these (exact, bucket by bucket).
    pub fn add(&mut self, other: &SendLag) -> Result<(), MetricsError> {
        self.histogram
            .add(&other.histogram)
            .map_err(|e| MetricsError::Merge(format!("{e:?}")))
    }

    /// The percentiles a report shows.
    pub fn summary(&self) -> SendLagSummary {
        SendLagSummary::of(&self.histogram)
    }
}

/// `send_lag_us` as reports show it: count and percentiles in microseconds (all zero
/// when nothing was measured).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SendLagSummary {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl SendLagSummary {
    /// Read the summary of a (merged) histogram of microseconds.
    pub fn of(hist: &Histogram<u64>) -> Self {
        if hist.is_empty() {
            return Self::default();
        }
        Self {
            count: hist.len(),
            p50: hist.value_at_quantile(0.50),
            p90: hist.value_at_quantile(0.90),
            p99: hist.value_at_quantile(0.99),
            p999: hist.value_at_quantile(0.999),
            max: hist.max(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lags_merge_exactly_and_read_in_microseconds() {
        let mut a = SendLag::default();
        let mut b = SendLag::default();
        for us in 1..=90 {
            a.record(Duration::from_micros(us));
        }
        for us in 91..=100 {
            b.record(Duration::from_micros(us));
        }
        a.add(&b).unwrap();
        let s = a.summary();
        assert_eq!((s.count, s.p50, s.p90, s.max), (100, 50, 90, 100));
        assert_eq!(SendLag::default().summary(), SendLagSummary::default());
    }
}
