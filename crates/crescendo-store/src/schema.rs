//! The database schema, as versioned migrations (rusqlite_migration keeps the version in
//! `PRAGMA user_version`). A released migration is never edited: a change is a new one
//! appended to [`MIGRATIONS`].

use rusqlite_migration::{M, Migrations};

/// Every migration, oldest first; the schema version is how many have run.
const MIGRATIONS: &[M<'static>] = &[M::up(SCHEMA_V1).comment("runs, baselines, schedules")];

/// The newest schema version this build knows.
pub(crate) const SCHEMA_VERSION: usize = MIGRATIONS.len();

pub(crate) fn migrations() -> Migrations<'static> {
    Migrations::from_slice(MIGRATIONS)
}

/// Times are fixed-width RFC 3339 text (see `columns`); JSON columns hold JSON text.
const SCHEMA_V1: &str = "
CREATE TABLE runs (
    id              TEXT PRIMARY KEY NOT NULL,
    plan_name       TEXT NOT NULL,
    plan_text       TEXT NOT NULL,
    -- origin: 'submit' | 'schedule' (origin_ref = schedule name) | 'rerun' (origin_ref = run id)
    origin_kind     TEXT NOT NULL CHECK (origin_kind IN ('submit', 'schedule', 'rerun')),
    origin_ref      TEXT,
    agents_wanted   INTEGER NOT NULL CHECK (agents_wanted >= 0),
    selector        TEXT NOT NULL,             -- JSON object of labels
    state           TEXT NOT NULL,
    scheduled_at    TEXT,
    queued_at       TEXT NOT NULL,
    started_at      TEXT,
    ended_at        TEXT,
    missed          TEXT,                      -- 'run-once' | 'skip'
    agents          TEXT NOT NULL DEFAULT '[]', -- JSON array of agent ids
    reason          TEXT,
    summary         TEXT,                      -- JSON: last checkpoint, then the final result
    exit_code       INTEGER,
    checkpointed_at TEXT,
    comparison_outcome TEXT,                   -- 'held' | 'regressed'
    comparison_baseline TEXT,                  -- the baseline run compared against
    comparison_details  TEXT                   -- JSON
) STRICT;
CREATE INDEX runs_by_queued_at ON runs (queued_at);
CREATE INDEX runs_by_plan ON runs (plan_name, queued_at);
CREATE INDEX runs_by_state ON runs (state);

-- One baseline per plan name. RESTRICT: a baseline run cannot be deleted while it is one.
CREATE TABLE baselines (
    plan_name TEXT PRIMARY KEY NOT NULL,
    run_id    TEXT NOT NULL REFERENCES runs (id) ON DELETE RESTRICT,
    set_at    TEXT NOT NULL
) STRICT;
CREATE INDEX baselines_by_run ON baselines (run_id);

CREATE TABLE schedules (
    name         TEXT PRIMARY KEY NOT NULL,
    plan_name    TEXT NOT NULL,
    plan_text    TEXT NOT NULL,
    agents       INTEGER NOT NULL CHECK (agents >= 0),
    selector     TEXT NOT NULL,                -- JSON object of labels
    -- when: 'cron' (cron_expr in the IANA zone cron_tz) | 'at' (at_time)
    when_kind    TEXT NOT NULL CHECK (when_kind IN ('cron', 'at')),
    cron_expr    TEXT,
    cron_tz      TEXT,
    at_time      TEXT,
    missed       TEXT NOT NULL,                -- 'run-once' | 'skip'
    paused       INTEGER NOT NULL CHECK (paused IN (0, 1)),
    created_at   TEXT NOT NULL,
    last_handled TEXT
) STRICT;
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
        assert_eq!(SCHEMA_VERSION, 1);
    }
}
