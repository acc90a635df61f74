//! Property tests: failure tables merge to the same counts in any order, and to the
//! same table whenever nothing had to be folded.

use crescendo_metrics::failures::MAX_KINDS;
use crescendo_metrics::{FailureDetail, FailureKind, Failures, Outcome};
use proptest::prelude::*;

/// One agent interval's table: entries (outcome, message, count, first seen).
fn table(entries: &[(usize, u8, u64, u64)]) -> Failures {
    let mut f = Failures::default();
    for &(outcome, message, count, first_seen_ms) in entries {
        let outcome = Outcome::ERRORS[outcome];
        f.insert(
            FailureKind::new(
                outcome,
                Some(400 + u16::from(message)),
                &format!("m{message}"),
            ),
            FailureDetail {
                count,
                first_seen_ms,
                sample: format!("sample {first_seen_ms}"),
            },
        );
    }
    f.bound(MAX_KINDS);
    f
}

fn merge<'a>(tables: impl IntoIterator<Item = &'a Failures>) -> Failures {
    let mut merged = Failures::default();
    for t in tables {
        merged.add(t);
    }
    merged
}

fn entries(messages: u8) -> impl Strategy<Value = Vec<Vec<(usize, u8, u64, u64)>>> {
    prop::collection::vec(
        prop::collection::vec((0usize..5, 0..messages, 1u64..1_000, 0u64..50), 0..30),
        1..8,
    )
}

proptest! {
    #[test]
    fn counts_per_outcome_do_not_depend_on_the_order(
        (parts, order) in entries(60).prop_flat_map(|parts| {
            let n = parts.len();
            (Just(parts), Just((0..n).collect::<Vec<_>>()).prop_shuffle())
        })
    ) {
        let tables: Vec<Failures> = parts.iter().map(|p| table(p)).collect();
        let forward = merge(&tables);
        let shuffled = merge(order.iter().map(|&i| &tables[i]));
        let expected: u64 = parts.iter().flatten().map(|e| e.2).sum();
        prop_assert_eq!(forward.total(), expected);
        prop_assert_eq!(shuffled.total(), expected);
        for outcome in Outcome::ERRORS {
            let want: u64 = parts
                .iter()
                .flatten()
                .filter(|e| Outcome::ERRORS[e.0] == outcome)
                .map(|e| e.2)
                .sum();
            prop_assert_eq!(forward.count_of(outcome), want);
            prop_assert_eq!(shuffled.count_of(outcome), want);
        }
        // Bounded: the merged kinds, plus one "other failures" per outcome at most.
        prop_assert!(forward.len() <= 32 + Outcome::ERRORS.len());
    }

    #[test]
    fn without_folding_the_merged_table_does_not_depend_on_the_order(
        (parts, order) in entries(3).prop_flat_map(|parts| {
            let n = parts.len();
            (Just(parts), Just((0..n).collect::<Vec<_>>()).prop_shuffle())
        })
    ) {
        // 5 outcomes × 3 messages = 15 kinds: nothing is ever folded.
        let tables: Vec<Failures> = parts.iter().map(|p| table(p)).collect();
        let forward = merge(&tables);
        let shuffled = merge(order.iter().map(|&i| &tables[i]));
        prop_assert_eq!(forward, shuffled);
    }
}
