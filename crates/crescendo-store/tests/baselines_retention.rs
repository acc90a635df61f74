//! Baselines (one finished run per plan) and pruning, which never takes a baseline.

mod common;

use chrono::TimeDelta;
use common::{new_run, t};
use crescendo_store::{Retention, RunFilter, RunState, Store, StoreError};

fn store() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    (tmp, store)
}

fn finished(store: &Store, plan: &str, ended_at: chrono::DateTime<chrono::Utc>) -> String {
    let id = store.insert_run(&new_run(plan)).unwrap().id;
    store
        .finish(&id, RunState::Passed, None, None, Some(0), ended_at)
        .unwrap();
    id
}

#[test]
fn only_a_finished_run_can_be_a_baseline() {
    let (_tmp, store) = store();
    let id = store.insert_run(&new_run("p")).unwrap().id;
    let err = store.set_baseline(&id).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotFinished {
                state: RunState::Queued,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("only a finished run can be a baseline")
    );
    assert!(matches!(
        store.set_baseline("000000000000").unwrap_err(),
        StoreError::RunNotFound { .. }
    ));
    assert!(store.baseline("p").unwrap().is_none());
}

#[test]
fn one_baseline_per_plan_replaced_by_the_next() {
    let (_tmp, store) = store();
    let first = finished(&store, "p", t(1));
    let second = finished(&store, "p", t(2));
    let other = finished(&store, "q", t(3));
    store.set_baseline(&first).unwrap();
    store.set_baseline(&other).unwrap();
    assert_eq!(store.baseline("p").unwrap().unwrap().id, first);

    store.set_baseline(&second).unwrap();
    assert_eq!(store.baseline("p").unwrap().unwrap().id, second);
    assert!(!store.run(&first).unwrap().unwrap().baseline);
    assert!(store.run(&second).unwrap().unwrap().baseline);
    assert_eq!(store.baseline("q").unwrap().unwrap().id, other);
    // Setting the same one again changes nothing.
    store.set_baseline(&second).unwrap();
    assert_eq!(store.baseline("p").unwrap().unwrap().id, second);
    let baselines = store
        .list_runs(&RunFilter::default())
        .unwrap()
        .into_iter()
        .filter(|r| r.baseline)
        .count();
    assert_eq!(baselines, 2);
}

#[test]
fn prune_keeps_the_newest_runs_the_baseline_and_unfinished_runs() {
    let (_tmp, store) = store();
    let now = t(100 * 86_400);
    let old_baseline = finished(&store, "p", now - TimeDelta::days(90));
    let old = finished(&store, "p", now - TimeDelta::days(60));
    let unfinished = store.insert_run(&new_run("p")).unwrap().id;
    let recent: Vec<String> = (0..4)
        .map(|i| finished(&store, "q", now - TimeDelta::days(3 - i)))
        .collect();
    store.set_baseline(&old_baseline).unwrap();

    // keep_days alone: the 60-day-old run goes, the older baseline stays.
    let by_age = Retention {
        keep_runs: None,
        keep_days: Some(30),
    };
    assert_eq!(store.prune(by_age, now).unwrap(), [&*old]);
    assert!(store.run(&old).unwrap().is_none());

    // keep_runs: the 3 newest finished runs stay; the baseline counts but is never taken.
    let by_count = Retention {
        keep_runs: Some(3),
        keep_days: None,
    };
    assert_eq!(store.prune(by_count, now).unwrap(), [&*recent[0]]);
    assert!(store.run(&old_baseline).unwrap().is_some());
    assert_eq!(store.baseline("p").unwrap().unwrap().id, old_baseline);
    assert_eq!(
        store.run(&unfinished).unwrap().unwrap().state,
        RunState::Queued
    );

    let everything = Retention {
        keep_runs: Some(0),
        keep_days: Some(0),
    };
    let mut gone = store.prune(everything, now).unwrap();
    gone.sort();
    let mut expected = recent[1..].to_vec();
    expected.sort();
    assert_eq!(gone, expected);
    let left: Vec<_> = store
        .list_runs(&RunFilter::default())
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, [unfinished, old_baseline]);
    assert!(store.prune(Retention::default(), now).unwrap().is_empty());
}
