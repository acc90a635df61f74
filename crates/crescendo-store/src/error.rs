//! [`StoreError`]: everything a [`Store`](crate::Store) call can refuse or fail with.

use std::path::PathBuf;

use crate::run_state::RunState;
use crate::when::ScheduleError;

/// A store call's failure: a refused request (unknown id, wrong state, duplicate name) or
/// a failed database or file operation, with the operation named.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// Setting `journal_mode = WAL` answers with the mode in force; WAL needs shared
    /// memory, which a network file system may lack.
    #[error("{} cannot use the WAL journal (it stayed {mode}): use a local directory", path.display())]
    NoWal { path: PathBuf, mode: String },
    #[error(
        "{} has schema version {found}; this crescendo-controller knows up to {known}: upgrade it",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: usize,
    },
    #[error("cannot migrate {} to schema version {to}", path.display())]
    Migrate {
        path: PathBuf,
        to: usize,
        #[source]
        source: rusqlite_migration::Error,
    },
    #[error("{op} failed")]
    Sql {
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{} is in use by another process (another crescendo-controller serve with this --data?)", path.display())]
    InUse { path: PathBuf },
    #[error("no run {id:?}")]
    RunNotFound { id: String },
    #[error("run {id} already finished as {state}")]
    AlreadyFinished { id: String, state: RunState },
    #[error("run {id} is {state}, not finished: only a finished run can be a baseline")]
    NotFinished { id: String, state: RunState },
    #[error("{state} is not a final state: a run finishes as passed, failed, aborted, …")]
    NotAFinalState { state: RunState },
    #[error("{state} is a final state: use finish, which records the end time and reason")]
    FinalStateNeedsFinish { state: RunState },
    #[error("no schedule {name:?}")]
    ScheduleNotFound { name: String },
    #[error("a schedule named {name:?} already exists")]
    ScheduleExists { name: String },
    #[error("schedule {name:?} has an invalid time")]
    InvalidSchedule {
        name: String,
        #[source]
        source: ScheduleError,
    },
}

/// Wraps a rusqlite error with the operation it failed: `.map_err(sql("insert run"))`.
pub(crate) fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sql { op, source }
}

/// True when an insert failed because the primary key is taken.
pub(crate) fn is_primary_key_clash(e: &rusqlite::Error) -> bool {
    e.sqlite_error()
        .is_some_and(|e| e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}
