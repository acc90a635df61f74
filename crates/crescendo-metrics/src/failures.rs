//! Distinct failures of one step, so a report can say why requests failed
//! ("connection refused", "404 Not Found: flow not found: flow-<n>"), not only how many.
//!
//! A [`Failures`] table maps a [`FailureKind`] (outcome, HTTP status, normalised
//! message) to a [`FailureDetail`] (count, when first seen, one sample body). Only
//! error outcomes are kept: `Ok` and `Throttled` (429s are expected under load, and
//! counted apart) never enter a table, so a step's table adds up to its
//! `Counters::errors()` when every failure was recorded.
//!
//! The table is bounded, and counts stay exact however it is bounded: a kind that does
//! not fit is folded into the "other failures" kind of its outcome (at most one per
//! outcome, so the count per outcome is always exact).
//! - The agent records at most [`MAX_KINDS`] distinct kinds per step and interval.
//! - Merging ([`Failures::add`]) keeps the [`MAX_MERGED_KINDS`] biggest kinds.
//! - Messages are cut to [`MAX_MESSAGE_CHARS`] characters, samples to
//!   [`MAX_SAMPLE_BYTES`] bytes (masking secrets out of samples is the agent's job).

use std::collections::BTreeMap;

use crate::outcome::Outcome;

/// The message of the kind that holds an outcome's failures that did not fit.
pub const OTHER_FAILURES: &str = "other failures";
/// Distinct kinds an agent records per step and interval (beyond: "other failures").
pub const MAX_KINDS: usize = 16;
/// Distinct kinds a merged table keeps (beyond: "other failures").
pub const MAX_MERGED_KINDS: usize = 32;
/// Longest message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 200;
/// Longest sample, in bytes.
pub const MAX_SAMPLE_BYTES: usize = 256;

/// What went wrong, as a table key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FailureKind {
    /// An error outcome (never `Ok` or `Throttled`).
    pub outcome: Outcome,
    /// The HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// Normalised, at most [`MAX_MESSAGE_CHARS`] characters.
    pub message: String,
}

impl FailureKind {
    /// A kind with its message cut to [`MAX_MESSAGE_CHARS`] characters.
    pub fn new(outcome: Outcome, status: Option<u16>, message: &str) -> Self {
        Self {
            outcome,
            status,
            message: cut_chars(message, MAX_MESSAGE_CHARS).to_owned(),
        }
    }

    /// The kind that holds `outcome`'s failures that did not fit.
    pub fn other(outcome: Outcome) -> Self {
        Self {
            outcome,
            status: None,
            message: OTHER_FAILURES.to_owned(),
        }
    }

    /// Whether this is an outcome's "other failures".
    pub fn is_other(&self) -> bool {
        self.status.is_none() && self.message == OTHER_FAILURES
    }
}

/// How often a kind happened, when first, and what one answer said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailureDetail {
    pub count: u64,
    /// Unix time in milliseconds (0: unknown).
    pub first_seen_ms: u64,
    /// One response body (or transport error text), masked and at most
    /// [`MAX_SAMPLE_BYTES`] bytes; empty for "other failures".
    pub sample: String,
}

impl FailureDetail {
    /// Add another detail of the same kind: counts sum, the earliest sighting and its
    /// sample win (ties broken by the sample, so the order of merging never matters).
    fn add(&mut self, other: &FailureDetail) {
        let fresh = self.count == 0;
        self.count = self.count.saturating_add(other.count);
        // Known times before unknown ones, then the earliest, then the smallest sample.
        let rank = |d: &FailureDetail| (d.first_seen_ms == 0, d.first_seen_ms);
        let earlier = (rank(other), other.sample.as_str()) < (rank(self), self.sample.as_str());
        if fresh || earlier {
            self.first_seen_ms = other.first_seen_ms;
            self.sample.clone_from(&other.sample);
        }
    }
}

/// One step's distinct failures (an interval's, or merged), bounded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failures {
    kinds: BTreeMap<FailureKind, FailureDetail>,
}

impl Failures {
    /// Count one failed attempt (the agent's hot path: `sample` is only built for a
    /// kind not seen yet in this table). Ignores `Ok` and `Throttled`.
    pub fn record(&mut self, kind: FailureKind, at_ms: u64, sample: impl FnOnce() -> String) {
        if !kind.outcome.is_error() {
            return;
        }
        if let Some(detail) = self.kinds.get_mut(&kind) {
            detail.count = detail.count.saturating_add(1);
            return;
        }
        let one = FailureDetail {
            count: 1,
            first_seen_ms: at_ms,
            sample: String::new(),
        };
        if kind.is_other() || self.detailed() >= MAX_KINDS {
            self.kinds
                .entry(FailureKind::other(kind.outcome))
                .or_default()
                .add(&one);
        } else {
            let sample = sample();
            let sample = cut_bytes(&sample, MAX_SAMPLE_BYTES).to_owned();
            self.kinds.insert(kind, FailureDetail { sample, ..one });
        }
    }

    /// Add one entry as it came (from the wire), merging with the same kind; cuts the
    /// message and sample to their limits and ignores `Ok`, `Throttled` and zero
    /// counts. Unbounded: call [`bound`](Self::bound) after the last one.
    pub fn insert(&mut self, kind: FailureKind, mut detail: FailureDetail) {
        if !kind.outcome.is_error() || detail.count == 0 {
            return;
        }
        let kind = FailureKind::new(kind.outcome, kind.status, &kind.message);
        detail.sample = cut_bytes(&detail.sample, MAX_SAMPLE_BYTES).to_owned();
        if kind.is_other() {
            detail.sample.clear();
        }
        self.kinds.entry(kind).or_default().add(&detail);
    }

    /// Add another table into this one, then keep the [`MAX_MERGED_KINDS`] biggest
    /// kinds (the rest folded into "other failures": counts stay exact).
    pub fn add(&mut self, other: &Failures) {
        for (kind, detail) in &other.kinds {
            self.kinds.entry(kind.clone()).or_default().add(detail);
        }
        self.bound(MAX_MERGED_KINDS);
    }

    /// Keep the `max` biggest kinds besides "other failures" (ties: the smaller kind)
    /// and fold the rest into their outcome's "other failures".
    pub fn bound(&mut self, max: usize) {
        if self.detailed() <= max {
            return;
        }
        let mut detailed: Vec<(FailureKind, u64)> = self
            .kinds
            .iter()
            .filter(|(kind, _)| !kind.is_other())
            .map(|(kind, detail)| (kind.clone(), detail.count))
            .collect();
        detailed.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        for (kind, _) in detailed.into_iter().skip(max) {
            let Some(mut detail) = self.kinds.remove(&kind) else {
                continue;
            };
            detail.sample.clear();
            self.kinds
                .entry(FailureKind::other(kind.outcome))
                .or_default()
                .add(&detail);
        }
    }

    /// Every kind, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&FailureKind, &FailureDetail)> {
        self.kinds.iter()
    }

    /// Every kind, the most frequent first (ties in key order).
    pub fn by_count(&self) -> Vec<(&FailureKind, &FailureDetail)> {
        let mut all: Vec<_> = self.kinds.iter().collect();
        all.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(b.0)));
        all
    }

    pub fn len(&self) -> usize {
        self.kinds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// Failures counted for `outcome` (saturating: the counts may come from the network).
    pub fn count_of(&self, outcome: Outcome) -> u64 {
        self.kinds
            .iter()
            .filter(|(kind, _)| kind.outcome == outcome)
            .fold(0u64, |sum, (_, d)| sum.saturating_add(d.count))
    }

    /// Every failure counted.
    pub fn total(&self) -> u64 {
        self.kinds
            .values()
            .fold(0u64, |sum, d| sum.saturating_add(d.count))
    }

    /// Kinds besides "other failures".
    fn detailed(&self) -> usize {
        self.kinds.keys().filter(|kind| !kind.is_other()).count()
    }
}

/// `s` cut to at most `max` characters.
pub fn cut_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

/// `s` cut to at most `max` bytes, on a character boundary.
pub fn cut_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> FailureKind {
        FailureKind::new(Outcome::ConnectError, None, "connection refused")
    }

    #[test]
    fn a_kind_counts_once_per_attempt_and_keeps_its_first_sample() {
        let mut f = Failures::default();
        f.record(refused(), 10, || "first".into());
        f.record(refused(), 5, || panic!("no sample for a kind already seen"));
        f.record(
            FailureKind::new(Outcome::Throttled, Some(429), "429"),
            1,
            String::new,
        );
        assert_eq!(f.len(), 1);
        let (kind, detail) = f.iter().next().unwrap();
        assert_eq!(kind, &refused());
        assert_eq!((detail.count, detail.first_seen_ms), (2, 10));
        assert_eq!(detail.sample, "first");
    }

    #[test]
    fn the_seventeenth_kind_is_folded_into_other_failures_of_its_outcome() {
        let mut f = Failures::default();
        for i in 0..20 {
            let kind = FailureKind::new(Outcome::ClientError, Some(404), &format!("m{i}"));
            f.record(kind, 100 + i, || "x".repeat(1000));
        }
        f.record(
            FailureKind::new(Outcome::Timeout, None, "timed out after 1s"),
            7,
            String::new,
        );
        assert_eq!(f.len(), MAX_KINDS + 2);
        assert_eq!(f.count_of(Outcome::ClientError), 20);
        assert_eq!(f.count_of(Outcome::Timeout), 1);
        let other = &f.kinds[&FailureKind::other(Outcome::ClientError)];
        assert_eq!((other.count, other.first_seen_ms), (4, 116));
        assert!(other.sample.is_empty());
        assert!(f.iter().all(|(_, d)| d.sample.len() <= MAX_SAMPLE_BYTES));
        // The table was full: the timeout is counted under its own outcome's "other".
        assert_eq!(f.kinds[&FailureKind::other(Outcome::Timeout)].count, 1);
    }

    #[test]
    fn merging_keeps_the_biggest_kinds_and_exact_counts() {
        let mut a = Failures::default();
        for i in 0..40u64 {
            let kind = FailureKind::new(Outcome::ServerError, Some(500), &format!("m{i:02}"));
            a.insert(
                kind,
                FailureDetail {
                    count: i + 1,
                    first_seen_ms: 1,
                    sample: "s".into(),
                },
            );
        }
        let mut merged = Failures::default();
        merged.add(&a);
        assert_eq!(merged.len(), MAX_MERGED_KINDS + 1);
        assert_eq!(merged.total(), (1..=40).sum::<u64>());
        let top = merged.by_count();
        assert_eq!(top[0].0.message, "m39");
        // The 8 smallest (1..=8) were folded.
        let other = &merged.kinds[&FailureKind::other(Outcome::ServerError)];
        assert_eq!(other.count, (1..=8).sum::<u64>());
    }

    #[test]
    fn long_messages_and_samples_are_cut_on_character_boundaries() {
        let kind = FailureKind::new(Outcome::ClientError, Some(400), &"é".repeat(300));
        assert_eq!(kind.message.chars().count(), MAX_MESSAGE_CHARS);
        assert_eq!(cut_bytes("aé", 2), "a");
        let mut f = Failures::default();
        f.insert(
            kind,
            FailureDetail {
                count: 1,
                first_seen_ms: 0,
                sample: "é".repeat(300),
            },
        );
        let (_, d) = f.iter().next().unwrap();
        assert!(d.sample.len() <= MAX_SAMPLE_BYTES && d.sample.len() >= MAX_SAMPLE_BYTES - 1);
    }

    #[test]
    fn the_earliest_sample_wins_whatever_the_order() {
        let at = |ms, sample: &str| FailureDetail {
            count: 1,
            first_seen_ms: ms,
            sample: sample.into(),
        };
        let mut x = at(5, "late");
        x.add(&at(3, "early"));
        x.add(&at(0, "unknown"));
        assert_eq!(
            (x.count, x.first_seen_ms, x.sample.as_str()),
            (3, 3, "early")
        );
        let mut y = at(0, "unknown");
        y.add(&at(3, "early"));
        y.add(&at(5, "late"));
        assert_eq!(x, y);
    }
}
