//! `errors_by_kind` in `summary.json`: the run's distinct failures, the most frequent
//! first, each with its step, outcome, HTTP status, normalised message, count, when it
//! was first seen and one masked sample (see `crescendo_metrics::failures`).
//!
//! Only scenario steps are listed, so the counts add up to `totals.errors` (every
//! failed attempt is recorded with its kind; an agent older than this table sends
//! none). A kind that did not fit a bounded table is counted in its outcome's
//! "other failures".

use std::collections::BTreeMap;

use crescendo_metrics::StepStats;
use serde::{Deserialize, Serialize};

/// One kind of failure of one step over the whole run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorKindSummary {
    pub step: String,
    /// `client_error`, `server_error`, `timeout`, `connect_error` or `check_failed`.
    pub outcome: String,
    /// The HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// "connection refused", "404 Not Found: flow not found: flow-<n>", … or
    /// "other failures".
    pub message: String,
    pub count: u64,
    /// Seconds since the start when an agent first saw it (by that agent's clock;
    /// 0 when unknown or before the start).
    pub first_seen_s: f64,
    /// One response body or transport error, secrets masked, at most 256 bytes.
    pub sample: String,
}

/// Every step's failures, the most frequent first (ties by step, then kind).
pub(crate) fn by_kind(
    steps: &BTreeMap<String, StepStats>,
    started_at_unix_s: f64,
) -> Vec<ErrorKindSummary> {
    let mut all: Vec<ErrorKindSummary> = steps
        .iter()
        .flat_map(|(step, stats)| {
            stats.failures.iter().map(move |(kind, detail)| {
                let first_seen_s = if detail.first_seen_ms == 0 {
                    0.0
                } else {
                    (detail.first_seen_ms as f64 / 1000.0 - started_at_unix_s).max(0.0)
                };
                ErrorKindSummary {
                    step: step.clone(),
                    outcome: kind.outcome.name().to_owned(),
                    status: kind.status,
                    message: kind.message.clone(),
                    count: detail.count,
                    first_seen_s,
                    sample: detail.sample.clone(),
                }
            })
        })
        .collect();
    // Stable: ties keep the step order, and each step's kind order.
    all.sort_by_key(|e| std::cmp::Reverse(e.count));
    all
}

/// `30 × connect_error: connection refused (step update)`.
pub(crate) fn line(e: &ErrorKindSummary) -> String {
    format!(
        "{} × {}: {} (step {})",
        e.count, e.outcome, e.message, e.step
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crescendo_metrics::{FailureDetail, FailureKind, Outcome};

    #[test]
    fn kinds_of_every_step_are_listed_most_frequent_first() {
        let mut update = StepStats::default();
        let mut get = StepStats::default();
        let detail = |count, first_seen_ms| FailureDetail {
            count,
            first_seen_ms,
            sample: "{\"message\":\"flow not found: flow-1\"}".into(),
        };
        update.failures.insert(
            FailureKind::new(Outcome::ConnectError, None, "connection refused"),
            detail(3, 1_000_500),
        );
        get.failures.insert(
            FailureKind::new(Outcome::ClientError, Some(404), "404 Not Found"),
            detail(7, 0),
        );
        let steps = BTreeMap::from([("update".to_owned(), update), ("get".to_owned(), get)]);
        let list = by_kind(&steps, 1_000.0);
        assert_eq!(list.len(), 2);
        assert_eq!(
            (list[0].step.as_str(), list[0].status, list[0].count),
            ("get", Some(404), 7)
        );
        assert_eq!(list[1].first_seen_s, 0.5);
        assert_eq!(
            line(&list[1]),
            "3 × connect_error: connection refused (step update)"
        );
        // Read back from JSON, and from a summary that has none.
        let json = serde_json::to_string(&list).unwrap();
        let back: Vec<ErrorKindSummary> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, list);
    }
}
