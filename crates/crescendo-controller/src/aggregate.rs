//! Merging snapshots as they arrive: exact totals, per-agent counters, per-second
//! intervals for the time series and the HdrHistogram log. Each (agent, seq) is merged
//! once, however often it is resent.
//!
//! Memory stays flat over a run: the run-wide figures are fixed-size histograms and
//! counters, and the per-second intervals live in a [`timeline::Timeline`] that keeps
//! only a short window of them in full.

#[doc(hidden)]
pub mod bench;
pub(crate) mod timeline;

use std::collections::{BTreeMap, BTreeSet};

use crescendo_metrics::{Counters, MetricsError, SendLag, StepStats};

use crate::messages::{Quota, Snapshot};

/// One second of the run, merged over agents.
#[derive(Debug, Default, Clone)]
pub(crate) struct Interval {
    /// Per step, in plan order.
    pub(crate) steps: BTreeMap<String, StepStats>,
    pub(crate) offered: u64,
}

impl Interval {
    /// All steps added up.
    pub(crate) fn total(&self) -> StepStats {
        sum(self.steps.values())
    }
}

/// Add several step stats into one.
/// Stats of successful requests with these latencies (milliseconds), for tests.
#[cfg(test)]
pub(crate) fn ok_stats(latencies_ms: &[u64]) -> StepStats {
    let mut s = StepStats::default();
    for ms in latencies_ms {
        s.latency.record(ms * 1000).expect("a latency in range");
        s.counters.requests += 1;
        s.counters.ok += 1;
    }
    s
}

pub(crate) fn sum<'a>(stats: impl IntoIterator<Item = &'a StepStats>) -> StepStats {
    let mut total = StepStats::default();
    for s in stats {
        // Same-shaped histograms always add.
        let _ = total.add(s);
    }
    total
}

/// Everything merged so far in one run.
#[derive(Debug, Default)]
pub(crate) struct Aggregate {
    pub(crate) steps: BTreeMap<String, StepStats>,
    /// Measurements that are not scenario steps (OAuth token fetches), kept out of
    /// every total.
    pub(crate) auxiliary: BTreeMap<String, StepStats>,
    pub(crate) agents: BTreeMap<String, Counters>,
    /// Per-second intervals: a window in full, compact rows and spooled lines.
    pub(crate) timeline: timeline::Timeline,
    pub(crate) offered: u64,
    /// Every request's lag behind its intended instant, run-wide.
    pub(crate) send_lag: SendLag,
    seen: BTreeMap<String, SeqSet>,
    /// Messages refused, by reason (see `run::guard`).
    pub(crate) rejected: BTreeMap<&'static str, u64>,
    /// The API's quota as last reported to any agent (by the agents' run clocks).
    pub(crate) last_quota: Option<Quota>,
    /// The longest reset the API reported: about its window length.
    pub(crate) longest_reset_s: Option<f64>,
}

impl Aggregate {
    /// Merge one snapshot of `agent`'s (its histograms were decoded at the edge).
    /// Returns false when it was merged before.
    pub(crate) fn merge(&mut self, agent: &str, snapshot: &Snapshot) -> Result<bool, MetricsError> {
        if self
            .seen
            .get(agent)
            .is_some_and(|seen| seen.contains(snapshot.seq))
        {
            return Ok(false);
        }
        self.seen
            .entry(agent.to_owned())
            .or_default()
            .insert(snapshot.seq);
        if let Some(q) = &snapshot.quota {
            if let Some(reset) = q.reset.map(|r| r.as_secs_f64()) {
                self.longest_reset_s = Some(self.longest_reset_s.map_or(reset, |r| r.max(reset)));
            }
            if self
                .last_quota
                .as_ref()
                .is_none_or(|last| q.at_ms >= last.at_ms)
            {
                self.last_quota = Some(q.clone());
            }
        }
        let second = snapshot.start_ms / 1000;
        // A second already final gets this snapshot's measurements as a late line.
        let mut late = None;
        let interval = match self.timeline.open(second) {
            Some(open) => open,
            None => late.insert(Interval::default()),
        };
        // Saturating: the numbers come from agents, and garbage must not panic.
        interval.offered = interval.offered.saturating_add(snapshot.offered);
        self.offered = self.offered.saturating_add(snapshot.offered);
        self.send_lag.add(&snapshot.send_lag)?;
        let per_agent = self.agents.entry(agent.to_owned()).or_default();
        for step in &snapshot.steps {
            if step.auxiliary {
                self.auxiliary
                    .entry(step.step.clone())
                    .or_default()
                    .add(&step.stats)?;
                continue;
            }
            per_agent.add(&step.stats.counters);
            self.steps
                .entry(step.step.clone())
                .or_default()
                .add(&step.stats)?;
            // Failures are reported per run, not per second: no table per interval.
            interval
                .steps
                .entry(step.step.clone())
                .or_default()
                .add_measurements(&step.stats)?;
        }
        match late {
            Some(part) => self.timeline.late(second, &part),
            None => self.timeline.advance(second),
        }
        Ok(true)
    }

    /// Whether every snapshot 1..=last of `agent` has been merged.
    pub(crate) fn complete(&self, agent: &str, last: u64) -> bool {
        self.merged_upto(agent) >= last
    }

    /// The last sequence number of `agent`'s up to which every one was merged.
    pub(crate) fn merged_upto(&self, agent: &str) -> u64 {
        self.seen.get(agent).map_or(0, SeqSet::upto)
    }

    /// Count a refused message.
    pub(crate) fn reject(&mut self, reason: &'static str) {
        *self.rejected.entry(reason).or_default() += 1;
    }

    /// All steps added up.
    pub(crate) fn total(&self) -> StepStats {
        sum(self.steps.values())
    }

    /// Successful requests so far (cheap: no histograms are added).
    pub(crate) fn ok(&self) -> u64 {
        self.agents
            .values()
            .fold(0, |sum, c| sum.saturating_add(c.ok))
    }
}

/// The sequence numbers merged for one agent: all up to `upto`, and a bounded set
/// beyond it (out of order, after a reconnect).
#[derive(Debug, Default, Clone)]
pub(crate) struct SeqSet {
    upto: u64,
    beyond: BTreeSet<u64>,
}

impl SeqSet {
    pub(crate) fn contains(&self, seq: u64) -> bool {
        seq <= self.upto || self.beyond.contains(&seq)
    }

    /// Record `seq` as merged (callers keep it within `run::guard::SEQ_WINDOW` of `upto`).
    pub(crate) fn insert(&mut self, seq: u64) {
        if seq <= self.upto {
            return;
        }
        self.beyond.insert(seq);
        while self.beyond.remove(&(self.upto + 1)) {
            self.upto += 1;
        }
    }

    /// The last sequence number up to which every one was merged.
    pub(crate) fn upto(&self) -> u64 {
        self.upto
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_numbers_from_agents_saturate_instead_of_panicking() {
        let counters = Counters {
            requests: u64::MAX,
            ok: u64::MAX,
            ..Counters::default()
        };
        let snapshot = |seq| Snapshot {
            seq,
            offered: u64::MAX,
            steps: vec![crescendo_metrics::StepSnapshot {
                step: "get".into(),
                auxiliary: false,
                stats: StepStats {
                    counters,
                    ..StepStats::default()
                },
            }],
            ..Default::default()
        };
        let mut agg = Aggregate::default();
        for agent in ["a", "b"] {
            assert!(agg.merge(agent, &snapshot(1)).unwrap());
        }
        assert!(!agg.merge("a", &snapshot(1)).unwrap(), "merged once");
        assert_eq!(agg.offered, u64::MAX);
        assert_eq!(agg.timeline.rows()[0].offered, u64::MAX);
        assert_eq!(agg.ok(), u64::MAX);
    }

    #[test]
    fn merged_sequence_numbers_stay_a_prefix_and_a_small_set() {
        let mut seen = SeqSet::default();
        for seq in [2, 3, 1, 5] {
            seen.insert(seq);
        }
        assert_eq!(seen.upto(), 3);
        assert!(seen.contains(5) && !seen.contains(4));
        seen.insert(4);
        assert_eq!((seen.upto(), seen.beyond.len()), (5, 0));
    }
}
