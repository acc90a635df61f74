//! For the merge benchmark (`benches/merge.rs`) and the 1,000-agent bench: one second
//! of realistic snapshots from many agents (3 steps, a spread of latencies, the wire's
//! HdrHistogram encodings), decoded and merged as the run actor does.

use std::time::Duration;

use crescendo_metrics::histogram::{decode, encode, record};
use crescendo_metrics::{StepSnapshot, StepStats};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::Aggregate;
use crate::messages::Snapshot;

/// The steps of the benchmark's scenario.
pub const STEPS: [&str; 3] = ["login", "browse", "buy"];

/// One agent's second as it travels: per step its counters and encoded histograms.
#[derive(Debug, Clone)]
pub struct EncodedSecond {
    agent: String,
    offered: u64,
    steps: Vec<(String, crescendo_metrics::Counters, Vec<u8>, Vec<u8>)>,
}

impl EncodedSecond {
    /// `requests` per step with latencies spread like a real API's (log-normal-ish,
    /// 2 ms to a few hundred ms); seeded by `seed`.
    pub fn new(agent: &str, requests: u64, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let steps = STEPS
            .iter()
            .map(|step| {
                let mut stats = StepStats::default();
                for _ in 0..requests {
                    let spread: f64 = (0..4).map(|_| rng.random_range(-1.0..1.0)).sum();
                    let us = (20_000.0 * (spread * 0.8).exp()) as u64;
                    record(&mut stats.latency, Duration::from_micros(us + 2_000));
                    record(&mut stats.service_time, Duration::from_micros(us + 1_000));
                }
                stats.counters.requests = requests;
                stats.counters.ok = requests;
                (
                    (*step).to_owned(),
                    stats.counters,
                    encode(&stats.latency),
                    encode(&stats.service_time),
                )
            })
            .collect();
        Self {
            agent: agent.to_owned(),
            offered: requests,
            steps,
        }
    }

    /// Per step: its name, counters and the encoded latency and service time.
    pub fn steps(
        &self,
    ) -> impl Iterator<Item = (&str, &crescendo_metrics::Counters, &[u8], &[u8])> {
        self.steps
            .iter()
            .map(|(s, c, l, t)| (s.as_str(), c, l.as_slice(), t.as_slice()))
    }

    /// Bytes of histogram encodings per step (what dominates a snapshot on the wire).
    pub fn histogram_bytes_per_step(&self) -> usize {
        let bytes: usize = self.steps.iter().map(|s| s.2.len() + s.3.len()).sum();
        bytes / self.steps.len().max(1)
    }

    /// Decode as the gRPC edge does.
    pub fn decode(&self) -> DecodedSecond {
        let steps = self
            .steps
            .iter()
            .map(|(step, counters, latency, service_time)| StepSnapshot {
                step: step.clone(),
                auxiliary: false,
                stats: StepStats {
                    latency: decode(latency).expect("an encoding of ours"),
                    service_time: decode(service_time).expect("an encoding of ours"),
                    counters: *counters,
                    ..StepStats::default()
                },
            })
            .collect();
        DecodedSecond {
            agent: self.agent.clone(),
            snapshot: Snapshot {
                offered: self.offered,
                steps,
                ..Snapshot::default()
            },
        }
    }
}

/// One agent's decoded second, ready to merge.
#[derive(Debug)]
pub struct DecodedSecond {
    agent: String,
    snapshot: Snapshot,
}

/// A run's merged result, merging second after second.
#[derive(Debug, Default)]
pub struct Merger {
    aggregate: Aggregate,
    seq: u64,
}

impl Merger {
    /// Merge every agent's snapshot of the next second; returns how many merged.
    pub fn merge_second(&mut self, second: &mut [DecodedSecond]) -> usize {
        self.seq += 1;
        let mut merged = 0;
        for s in second {
            s.snapshot.seq = self.seq;
            s.snapshot.start_ms = (self.seq - 1) * 1000;
            s.snapshot.end_ms = self.seq * 1000;
            if matches!(self.aggregate.merge(&s.agent, &s.snapshot), Ok(true)) {
                merged += 1;
            }
        }
        merged
    }
}
