//! Property tests: encoding round-trips, merging is exact, garbage never panics.

use std::time::Duration;

use crescendo_metrics::recorder::Attempt;
use crescendo_metrics::{Outcome, Recorder, StepStats, decode, encode, new_histogram};
use proptest::prelude::*;

proptest! {
    #[test]
    fn encode_decode_round_trips(values in prop::collection::vec(1u64..3_600_000_000, 0..500)) {
        let mut h = new_histogram();
        for v in &values {
            h.record(*v).unwrap();
        }
        let back = decode(&encode(&h)).unwrap();
        prop_assert_eq!(back.len(), h.len());
        prop_assert_eq!(back.max(), h.max());
        for q in [0.5, 0.9, 0.99, 0.999] {
            prop_assert_eq!(back.value_at_quantile(q), h.value_at_quantile(q));
        }
    }

    #[test]
    fn merge_of_parts_equals_whole(parts in prop::collection::vec(
        prop::collection::vec(1u64..10_000_000, 0..200), 1..6)) {
        let mut whole = new_histogram();
        let mut merged = StepStats::default();
        for part in &parts {
            let mut rec = Recorder::new(["s".to_owned()]);
            let mut h = new_histogram();
            for v in part {
                whole.record(*v).unwrap();
                h.record(*v).unwrap();
                rec.record(Attempt {
                    step: 0,
                    outcome: Outcome::Ok,
                    status: Some(200),
                    latency: Duration::from_micros(*v),
                    service_time: Duration::from_micros(*v),
                    retry: false,
                    send_lag: None,
                });
            }
            let (steps, _) = rec.take();
            let shipped = &steps[0].stats;
            let decoded = StepStats {
                latency: decode(&encode(&shipped.latency)).unwrap(),
                service_time: decode(&encode(&shipped.service_time)).unwrap(),
                ..shipped.clone()
            };
            merged.add(&decoded).unwrap();
        }
        prop_assert_eq!(merged.latency.len(), whole.len());
        prop_assert_eq!(merged.counters.ok, whole.len());
        prop_assert_eq!(merged.counters.requests, whole.len());
        for q in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
            prop_assert_eq!(merged.latency.value_at_quantile(q), whole.value_at_quantile(q));
        }
    }

    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn corrupted_encodings_never_panic(values in prop::collection::vec(1u64..1_000_000, 1..50),
                                        flip in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut h = new_histogram();
        for v in &values {
            h.record(*v).unwrap();
        }
        let mut bytes = encode(&h);
        let i = flip.index(bytes.len());
        bytes[i] = byte;
        let _ = decode(&bytes);
    }
}

#[test]
fn foreign_bounds_are_rejected() {
    let mut other = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 1000, 2).unwrap();
    other.record(5).unwrap();
    let mut bytes = Vec::new();
    hdrhistogram::serialization::Serializer::serialize(
        &mut hdrhistogram::serialization::V2DeflateSerializer::new(),
        &other,
        &mut bytes,
    )
    .unwrap();
    assert!(decode(&bytes).is_err());
}

#[test]
fn counters_add_up_by_outcome() {
    let mut rec = Recorder::new(["a".to_owned(), "b".to_owned()]);
    let outcomes = [
        Outcome::Ok,
        Outcome::Throttled,
        Outcome::ClientError,
        Outcome::ServerError,
        Outcome::Timeout,
        Outcome::ConnectError,
        Outcome::CheckFailed,
    ];
    for (i, o) in outcomes.iter().enumerate() {
        rec.record(Attempt {
            step: i % 2,
            outcome: *o,
            status: None,
            latency: Duration::from_millis(1),
            service_time: Duration::from_millis(1),
            retry: i == 1,
            send_lag: None,
        });
    }
    rec.dropped();
    let (steps, _) = rec.take();
    let mut total = StepStats::default();
    for s in &steps {
        total.add(&s.stats).unwrap();
    }
    let c = total.counters;
    assert_eq!(c.requests, 7);
    assert_eq!(c.check_failed, 1);
    assert_eq!(c.ok + c.throttled + c.errors(), c.requests);
    assert_eq!(c.retries, 1);
    assert_eq!(c.dropped, 1);
    assert_eq!(total.latency.len(), 1);
}
