//! The governor's timeline for the report: cuts, pauses and recoveries one by one,
//! consecutive quota-pacing adjustments merged while each moves the rate by at most
//! [`MERGE_PACING`] (pacing moves the rate several times a second; one event per
//! adjustment buried the rest, ~18 a second against 2 s windows).

use std::time::Duration;

use super::Governor;
use super::types::{EventKind, GovernorEvent};

/// The timeline keeps at most this many events (cuts and pauses always fit first).
const MAX_EVENTS: usize = 10_000;

/// Consecutive quota-pacing adjustments of a key make one timeline event while each
/// moves the rate by at most this fraction of the rate before it.
const MERGE_PACING: f64 = 0.10;

impl Governor {
    /// Appends an event (a pacing adjustment may fold into the previous one).
    pub(super) fn record(
        &mut self,
        at: Duration,
        kind: EventKind,
        key: &str,
        old: f64,
        new: f64,
        why: &str,
    ) {
        if kind == EventKind::QuotaPace && self.merge_pacing(at, key, new, why) {
            return;
        }
        let essential = matches!(kind, EventKind::Cut | EventKind::Pause | EventKind::Resume);
        if self.events.len() >= MAX_EVENTS && !(essential && self.events.len() < 2 * MAX_EVENTS) {
            return;
        }
        self.events.push(GovernorEvent {
            at,
            kind,
            limit_key: key.to_owned(),
            old_rate: old,
            new_rate: new,
            reason: why.to_owned(),
            adjustments: 1,
        });
    }

    /// Folds a pacing adjustment into the previous event when that is a pacing event of
    /// the same key and the rate moved by at most [`MERGE_PACING`] since its last rate:
    /// pacing moves the rate several times a second, the timeline keeps the trend.
    fn merge_pacing(&mut self, at: Duration, key: &str, new: f64, why: &str) -> bool {
        let Some(last) = self.events.last_mut() else {
            return false;
        };
        let close = (new - last.new_rate).abs() <= MERGE_PACING * last.new_rate.abs();
        if last.kind != EventKind::QuotaPace || last.limit_key != key || !close {
            return false;
        }
        last.adjustments += 1;
        last.new_rate = new;
        let since = at.saturating_sub(last.at).as_secs_f64();
        // `why` ends in ": old → new rps"; the merged event says where it started.
        let latest = why.rsplit_once(": ").map_or(why, |(head, _)| head);
        last.reason = format!(
            "{latest}: {:.2} → {new:.2} rps ({} adjustments over {since:.2} s)",
            last.old_rate, last.adjustments
        );
        true
    }
}
