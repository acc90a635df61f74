//! [`Store`]: opening `DIR/crescendo.db`, its settings and its schema version.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::{StoreError, sql};
use crate::schema::{SCHEMA_VERSION, migrations};

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "crescendo.db";

/// How long a call waits for another connection's write lock before failing with
/// `SQLITE_BUSY` (only another process, e.g. the `sqlite3` shell, can hold one).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The controller's database in its data directory. Calls block on disk I/O.
///
/// One `Store` is one SQLite connection: `Send` but not `Sync`, so the service keeps it
/// in a `Mutex` and calls it inside `spawn_blocking`.
#[derive(Debug)]
pub struct Store {
    pub(crate) conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens `dir/crescendo.db`, creating the directory and the database as needed, and
    /// brings its schema to the newest version. A database written by a newer build
    /// (a higher schema version) is refused before anything is changed.
    ///
    /// Settings: exclusive locking (a second process opening the same DIR is refused
    /// with [`StoreError::InUse`] after the busy timeout); WAL journal; `synchronous = FULL`,
    /// since commits are few (a run's state changes and a checkpoint every few seconds)
    /// and each is worth its fsync: a run recorded as finished stays finished after a
    /// power cut, where `NORMAL` in WAL mode may roll the last commits back; foreign keys
    /// on; a busy timeout of 5 s.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        // Busy while opening: another process holds the DIR's exclusive lock.
        let open_error = |source: rusqlite::Error| match source.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                StoreError::InUse { path: path.clone() }
            }
            _ => StoreError::Open {
                path: path.clone(),
                source,
            },
        };
        let mut conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;

        let found: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(open_error)?;
        if found > SCHEMA_VERSION as i64 {
            return Err(StoreError::NewerSchema {
                path,
                found,
                known: SCHEMA_VERSION,
            });
        }

        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(open_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::NoWal { path, mode });
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .and_then(|()| conn.pragma_update(None, "foreign_keys", true))
            .map_err(open_error)?;
        // One service per DIR: the first transaction takes an exclusive lock that this
        // connection keeps until it closes (the process ends, however it ends).
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
            .map_err(open_error)?;
        conn.execute_batch("BEGIN EXCLUSIVE; COMMIT;")
            .map_err(open_error)?;
        migrations()
            .to_latest(&mut conn)
            .map_err(|source| StoreError::Migrate {
                path: path.clone(),
                to: SCHEMA_VERSION,
                source,
            })?;
        Ok(Store { conn, path })
    }

    /// The database file, `DIR/crescendo.db`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database (always the newest this build knows).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(sql("read schema version"))
    }

    /// The journal mode SQLite reports, `"wal"` once open.
    pub fn journal_mode(&self) -> Result<String, StoreError> {
        self.conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .map_err(sql("read journal mode"))
    }
}
