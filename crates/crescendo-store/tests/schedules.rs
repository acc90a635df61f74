//! Schedules: adding, reading back, pausing, removing, and their errors.

mod common;

use common::{schedule, t};
use crescendo_store::{Missed, Schedule, Store, StoreError, When, due};

fn store() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    (tmp, store)
}

#[test]
fn schedules_round_trip_and_list_by_name() {
    let (tmp, store) = store();
    let cron = schedule("nightly", "0 0 2 * * MON-FRI");
    let at = Schedule {
        name: "launch-day".into(),
        when: When::at("2025-07-01T09:00:00+01:00").unwrap(),
        missed: Missed::RunOnce,
        paused: true,
        last_handled: Some(t(5)),
        ..schedule("x", "0 2 * * *")
    };
    store.add_schedule(&cron).unwrap();
    store.add_schedule(&at).unwrap();
    drop(store);

    let store = Store::open(tmp.path()).unwrap();
    assert_eq!(store.schedules().unwrap(), [at.clone(), cron.clone()]);
    assert_eq!(store.schedule("nightly").unwrap(), Some(cron));
    assert_eq!(store.schedule("nope").unwrap(), None);
}

#[test]
fn a_duplicate_name_and_an_invalid_time_are_refused() {
    let (_tmp, store) = store();
    store
        .add_schedule(&schedule("nightly", "0 2 * * *"))
        .unwrap();
    let err = store
        .add_schedule(&schedule("nightly", "0 3 * * *"))
        .unwrap_err();
    assert!(matches!(&err, StoreError::ScheduleExists { name } if name == "nightly"));
    assert_eq!(
        err.to_string(),
        "a schedule named \"nightly\" already exists"
    );

    let hand_built = Schedule {
        when: When::Cron {
            expr: "every day".into(),
            tz: chrono_tz::Tz::UTC,
        },
        ..schedule("bad", "0 2 * * *")
    };
    let err = store.add_schedule(&hand_built).unwrap_err();
    assert!(matches!(err, StoreError::InvalidSchedule { .. }), "{err:?}");
    assert_eq!(store.schedules().unwrap().len(), 1);
}

#[test]
fn unknown_names_are_not_found() {
    let (_tmp, store) = store();
    for err in [
        store.set_paused("ghost", true).unwrap_err(),
        store.set_last_handled("ghost", t(1)).unwrap_err(),
        store.remove_schedule("ghost").unwrap_err(),
    ] {
        assert!(matches!(&err, StoreError::ScheduleNotFound { name } if name == "ghost"));
        assert_eq!(err.to_string(), "no schedule \"ghost\"");
    }
}

#[test]
fn pause_resume_last_handled_and_remove() {
    let (_tmp, store) = store();
    store
        .add_schedule(&schedule("nightly", "0 2 * * *"))
        .unwrap();
    store.set_last_handled("nightly", t(3_600)).unwrap();
    assert_eq!(
        store.schedule("nightly").unwrap().unwrap().last_handled,
        Some(t(3_600))
    );

    store.set_paused("nightly", true).unwrap();
    let paused = store.schedule("nightly").unwrap().unwrap();
    assert!(paused.paused);
    assert_eq!(paused.last_handled, Some(t(3_600)));
    assert!(due(&paused, chrono::Utc::now()).is_empty());

    // Resuming does not catch up on the nights that passed while paused.
    let before = chrono::Utc::now();
    store.set_paused("nightly", false).unwrap();
    let resumed = store.schedule("nightly").unwrap().unwrap();
    assert!(!resumed.paused);
    assert!(resumed.last_handled.unwrap() >= before);
    assert!(due(&resumed, chrono::Utc::now()).missed.is_empty());
    // Resuming a running schedule changes nothing.
    store.set_paused("nightly", false).unwrap();
    assert_eq!(store.schedule("nightly").unwrap().unwrap(), resumed);

    store.remove_schedule("nightly").unwrap();
    assert!(store.schedules().unwrap().is_empty());
    assert!(matches!(
        store.remove_schedule("nightly"),
        Err(StoreError::ScheduleNotFound { .. })
    ));
}
