//! The controller's cost per second of a 1,000-agent run: decoding the agents'
//! snapshots (3 steps, realistic latency spreads) and merging them.
//!
//!   cargo bench -p crescendo-controller --bench merge

use std::hint::black_box;

use crescendo_controller::aggregate::bench::{EncodedSecond, Merger};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const AGENTS: u64 = 1000;
/// Requests per step and second on each agent.
const REQUESTS: u64 = 20;

fn fleet_second() -> Vec<EncodedSecond> {
    (0..AGENTS)
        .map(|i| EncodedSecond::new(&format!("agent-{i}"), REQUESTS, i))
        .collect()
}

fn merge(c: &mut Criterion) {
    let fleet = fleet_second();
    let mut group = c.benchmark_group("one second of 1000 agents");
    group.throughput(Throughput::Elements(AGENTS));
    group.sample_size(20);
    group.bench_function("decode", |b| {
        b.iter(|| {
            for s in &fleet {
                black_box(s.decode());
            }
        })
    });
    let mut decoded: Vec<_> = fleet.iter().map(EncodedSecond::decode).collect();
    let mut merger = Merger::default();
    group.bench_function("merge", |b| {
        b.iter(|| black_box(merger.merge_second(&mut decoded)))
    });
    group.finish();
}

criterion_group!(benches, merge);
criterion_main!(benches);
