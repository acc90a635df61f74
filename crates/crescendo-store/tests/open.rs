//! Opening a data directory: creation, reopening, settings, and a newer schema refused.

mod common;

use crescendo_store::{DB_FILE, RunState, Store, StoreError};

#[test]
fn open_creates_the_directory_and_reopen_keeps_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data").join("nested");
    let id = {
        let store = Store::open(&dir).unwrap();
        assert_eq!(store.path(), dir.join(DB_FILE));
        let run = store.insert_run(&common::new_run("flow-update")).unwrap();
        store
            .add_schedule(&common::schedule("nightly", "0 2 * * *"))
            .unwrap();
        store
            .finish(
                &run.id,
                RunState::Passed,
                None,
                None,
                Some(0),
                common::t(100),
            )
            .unwrap();
        store.set_baseline(&run.id).unwrap();
        run.id
    };
    assert!(dir.join(DB_FILE).is_file());

    let store = Store::open(&dir).unwrap();
    let run = store.run(&id).unwrap().unwrap();
    assert_eq!(run.state, RunState::Passed);
    assert!(run.baseline);
    assert_eq!(store.baseline("flow-update").unwrap().unwrap().id, id);
    assert_eq!(store.schedules().unwrap().len(), 1);
    assert_eq!(store.schema_version().unwrap(), 1);
}

#[test]
fn wal_journal_and_foreign_keys_are_on() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    assert_eq!(store.journal_mode().unwrap(), "wal");
    drop(store);
    // Seen from a second connection too: WAL is a property of the file.
    let other = rusqlite::Connection::open(tmp.path().join(DB_FILE)).unwrap();
    let mode: String = other
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_database_from_a_newer_build_is_refused_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    drop(Store::open(tmp.path()).unwrap());
    let db = tmp.path().join(DB_FILE);
    rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", 7)
        .unwrap();

    let err = Store::open(tmp.path()).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NewerSchema {
                found: 7,
                known: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{}/crescendo.db has schema version 7; this crescendo-controller knows up to 1: upgrade it",
            tmp.path().display()
        )
    );
    let version: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, 7);
}

#[test]
fn a_data_dir_that_is_a_file_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let err = Store::open(&file).unwrap_err();
    assert!(matches!(err, StoreError::CreateDir { .. }), "{err:?}");
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}

#[test]
fn a_second_process_on_the_same_dir_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let first = Store::open(tmp.path()).unwrap();
    let second = Store::open(tmp.path()).unwrap_err();
    assert!(matches!(second, StoreError::InUse { .. }), "{second:?}");
    assert!(
        second
            .to_string()
            .contains("another crescendo-controller serve")
    );
    // Once the first is gone, the DIR opens again.
    drop(first);
    Store::open(tmp.path()).unwrap();
}
