//! Crescendo's controller state: run history, schedules and baselines in an embedded
//! SQLite database, and the timing of schedules.
//!
//! This is the persistent part of `crescendo-controller serve --data DIR`. [`Store::open`]
//! opens (or creates) `DIR/crescendo.db`; every call is synchronous and blocks on disk, so
//! the service holds the [`Store`] in a mutex and calls it in `spawn_blocking`. Schedule
//! timing ([`When`], [`due()`]) is pure: it takes the time as an argument and does no I/O.
//!
//! # Edges
//!
//! - It knows no other crescendo crate: a plan is its name and TOML text, a summary or a
//!   comparison is opaque JSON, an agent is an id and a set of labels.
//! - It deletes rows, never files: [`Store::prune`] returns the ids whose
//!   `DIR/runs/<id>/` folders the caller removes.
//! - It does not decide what happens to a run (queueing, starting, judging thresholds);
//!   it records what the controller decided and refuses impossible records (finishing a
//!   finished run, a baseline that has not finished).
//! - A database from a newer build is refused, never downgraded
//!   ([`StoreError::NewerSchema`]).
//!
//! # Layout
//!
//! - Domain: `run` ([`NewRun`], [`RunRecord`], [`Origin`], [`Comparison`],
//!   [`RunFilter`]), `run_state` ([`RunState`], [`Missed`]), `selector` ([`Selector`]),
//!   `schedule` ([`Schedule`]).
//! - Timing: `when` ([`When`], [`ScheduleError`]) and `due` ([`due()`], [`Due`], with how
//!   the service applies [`Missed`]).
//! - Database: `store` ([`Store::open`] and its settings), `schema` (the migrations),
//!   `columns` (how values sit in columns), `runs_table`, `baselines_table`,
//!   `schedules_table`, `retention` ([`Retention`], [`Store::prune`]).
//! - `error`: [`StoreError`].

mod baselines_table;
mod columns;
mod due;
mod error;
mod retention;
mod run;
mod run_state;
mod runs_table;
mod schedule;
mod schedules_table;
mod schema;
mod selector;
mod store;
mod when;

pub use due::{Due, MISSED_CAP, due};
pub use error::StoreError;
pub use retention::Retention;
pub use run::{Comparison, NewRun, Origin, Outcome, RunFilter, RunRecord};
pub use run_state::{Missed, RunState, UnknownWord};
pub use schedule::Schedule;
pub use selector::Selector;
pub use store::{DB_FILE, Store};
pub use when::{ScheduleError, When};
