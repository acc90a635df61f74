//! Runs: queueing, state changes, checkpoints, finishing and reading back.
//!
//! A run changes only while unfinished: every update below is conditional on an
//! unfinished state in the same statement, so two callers cannot both finish a run.

use chrono::{DateTime, Utc};
use rusqlite::types::ToSql;
use rusqlite::{OptionalExtension, Row, params};
use serde_json::Value;

use crate::columns::{
    get_json, get_opt_json, get_opt_time, get_opt_word, get_selector, get_strings, get_time,
    get_word, opt_time_text, selector_json, strings_json, time_text,
};
use crate::error::{StoreError, is_primary_key_clash, sql};
use crate::run::{Comparison, NewRun, Origin, RunFilter, RunRecord};
use crate::run_state::{RunState, UnknownWord};
use crate::store::Store;

/// The unfinished states as an SQL list, for `state IN …`.
pub(crate) const UNFINISHED_SQL: &str = "('queued', 'waiting-for-agents', 'running')";

/// Every run column, plus whether the run is its plan's baseline, from `runs r`.
pub(crate) const SELECT_RUN: &str = "SELECT r.*, \
     EXISTS (SELECT 1 FROM baselines b WHERE b.run_id = r.id) AS is_baseline \
     FROM runs r";

/// How many fresh ids `insert_run` tries before giving up on a (48-bit) collision.
const ID_ATTEMPTS: usize = 4;

impl Store {
    /// Queues a run (state `queued`, `queued_at` = now) under a new random id.
    pub fn insert_run(&self, run: &NewRun) -> Result<RunRecord, StoreError> {
        let (origin_kind, origin_ref) = match &run.origin {
            Origin::Submit => ("submit", None),
            Origin::Schedule { name } => ("schedule", Some(name.as_str())),
            Origin::Rerun { of } => ("rerun", Some(of.as_str())),
        };
        let queued_at = time_text(Utc::now());
        let mut attempt = 0;
        let id = loop {
            let id = new_run_id();
            let inserted = self.conn.execute(
                "INSERT INTO runs (id, plan_name, plan_text, origin_kind, origin_ref, \
                 agents_wanted, selector, state, scheduled_at, queued_at, missed) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    id,
                    run.plan_name,
                    run.plan_text,
                    origin_kind,
                    origin_ref,
                    run.agents,
                    selector_json(&run.selector),
                    RunState::Queued.as_str(),
                    opt_time_text(run.scheduled_at),
                    queued_at,
                    run.missed.map(|m| m.as_str()),
                ],
            );
            match inserted {
                Ok(_) => break id,
                Err(e) if is_primary_key_clash(&e) && attempt + 1 < ID_ATTEMPTS => attempt += 1,
                Err(e) => return Err(sql("insert run")(e)),
            }
        };
        self.run(&id)?.ok_or(StoreError::RunNotFound { id })
    }

    /// Moves an unfinished run to another unfinished state (`queued`,
    /// `waiting-for-agents`, `running`); a final state goes through [`Store::finish`].
    pub fn set_state(&self, id: &str, state: RunState) -> Result<(), StoreError> {
        if state.is_finished() {
            return Err(StoreError::FinalStateNeedsFinish { state });
        }
        self.update_unfinished("set run state", id, "state = ?2", &[&state.as_str()])
    }

    /// Records that the run started on these agents (in share order): state `running`.
    pub fn mark_started(
        &self,
        id: &str,
        agents: &[String],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.update_unfinished(
            "mark run started",
            id,
            "state = 'running', started_at = ?2, agents = ?3",
            &[&time_text(at), &strings_json(agents)],
        )
    }

    /// Replaces a running run's summary with the merged partial result so far; the last
    /// one survives a crash (see [`Store::interrupt_unfinished`]).
    pub fn checkpoint(
        &self,
        id: &str,
        summary: &Value,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.update_unfinished(
            "checkpoint run",
            id,
            "summary = ?2, checkpointed_at = ?3",
            &[&summary.to_string(), &time_text(at)],
        )
    }

    /// Finishes an unfinished run in a final `state`. `summary: None` keeps the last
    /// checkpoint as the run's summary. A run that already finished is refused
    /// ([`StoreError::AlreadyFinished`]), so its verdict is never overwritten.
    pub fn finish(
        &self,
        id: &str,
        state: RunState,
        reason: Option<&str>,
        summary: Option<&Value>,
        exit_code: Option<i32>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if !state.is_finished() {
            return Err(StoreError::NotAFinalState { state });
        }
        self.update_unfinished(
            "finish run",
            id,
            "state = ?2, reason = ?3, summary = COALESCE(?4, summary), exit_code = ?5, \
             ended_at = ?6",
            &[
                &state.as_str(),
                &reason,
                &summary.map(Value::to_string),
                &exit_code,
                &time_text(at),
            ],
        )
    }

    /// Records how the run compared with its plan's baseline (replacing an earlier one).
    pub fn set_comparison(&self, id: &str, comparison: &Comparison) -> Result<(), StoreError> {
        let changed = self
            .conn
            .execute(
                "UPDATE runs SET comparison_outcome = ?2, comparison_baseline = ?3, \
                 comparison_details = ?4 WHERE id = ?1",
                params![
                    id,
                    comparison.outcome.as_str(),
                    comparison.baseline_run,
                    comparison.details.to_string()
                ],
            )
            .map_err(sql("set run comparison"))?;
        if changed == 0 {
            return Err(StoreError::RunNotFound { id: id.to_owned() });
        }
        Ok(())
    }

    /// On service start: every queued, waiting or running run becomes `interrupted` with
    /// this reason and end time, keeping its last checkpoint as its summary. Returns
    /// their ids, oldest first.
    pub fn interrupt_unfinished(
        &self,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let op = "interrupt unfinished runs";
        let tx = self.conn.unchecked_transaction().map_err(sql(op))?;
        let ids = tx
            .prepare(&format!(
                "SELECT id FROM runs WHERE state IN {UNFINISHED_SQL} ORDER BY queued_at, rowid"
            ))
            .and_then(|mut stmt| {
                stmt.query_map([], |row| row.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(sql(op))?;
        tx.execute(
            &format!(
                "UPDATE runs SET state = ?1, reason = ?2, ended_at = ?3 \
                 WHERE state IN {UNFINISHED_SQL}"
            ),
            params![RunState::Interrupted.as_str(), reason, time_text(at)],
        )
        .map_err(sql(op))?;
        tx.commit().map_err(sql(op))?;
        Ok(ids)
    }

    /// One run by id.
    pub fn run(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.conn
            .query_row(&format!("{SELECT_RUN} WHERE r.id = ?1"), [id], run_from_row)
            .optional()
            .map_err(sql("read run"))
    }

    /// Runs matching the filter, newest first (by queue time).
    pub fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        self.query_runs(
            "list runs",
            &format!(
                "{SELECT_RUN} WHERE (?1 IS NULL OR r.plan_name = ?1) \
                 AND (?2 IS NULL OR r.state = ?2) \
                 ORDER BY r.queued_at DESC, r.rowid DESC LIMIT ?3"
            ),
            &[
                &filter.plan_name,
                &filter.state.map(RunState::as_str),
                &sql_limit(filter.limit),
            ],
        )
    }

    /// The newest `limit` runs of a plan, oldest first: the order a trend is drawn in.
    pub fn runs_of_plan(
        &self,
        plan_name: &str,
        limit: usize,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let mut runs = self.query_runs(
            "list runs of plan",
            &format!(
                "{SELECT_RUN} WHERE r.plan_name = ?1 \
                 ORDER BY r.queued_at DESC, r.rowid DESC LIMIT ?2"
            ),
            &[&plan_name, &sql_limit(limit)],
        )?;
        runs.reverse();
        Ok(runs)
    }

    pub(crate) fn query_runs(
        &self,
        op: &'static str,
        query: &str,
        params: &[&dyn ToSql],
    ) -> Result<Vec<RunRecord>, StoreError> {
        self.conn
            .prepare(query)
            .and_then(|mut stmt| {
                stmt.query_map(params, run_from_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(sql(op))
    }

    /// `UPDATE runs SET {set} WHERE id = ?1` if the run is unfinished; `params` are
    /// `?2…`. Tells a missing run from a finished one when nothing changed.
    fn update_unfinished(
        &self,
        op: &'static str,
        id: &str,
        set: &str,
        params: &[&dyn ToSql],
    ) -> Result<(), StoreError> {
        let mut all: Vec<&dyn ToSql> = vec![&id];
        all.extend_from_slice(params);
        let changed = self
            .conn
            .execute(
                &format!("UPDATE runs SET {set} WHERE id = ?1 AND state IN {UNFINISHED_SQL}"),
                all.as_slice(),
            )
            .map_err(sql(op))?;
        if changed > 0 {
            return Ok(());
        }
        match self.run_state(id)? {
            None => Err(StoreError::RunNotFound { id: id.to_owned() }),
            Some(state) => Err(StoreError::AlreadyFinished {
                id: id.to_owned(),
                state,
            }),
        }
    }

    /// A run's state, or `None` for an unknown id.
    pub(crate) fn run_state(&self, id: &str) -> Result<Option<RunState>, StoreError> {
        self.conn
            .query_row("SELECT state FROM runs WHERE id = ?1", [id], |row| {
                get_word(row, "state")
            })
            .optional()
            .map_err(sql("read run state"))
    }
}

/// A [`RunRecord`] from a row of [`SELECT_RUN`].
pub(crate) fn run_from_row(row: &Row<'_>) -> rusqlite::Result<RunRecord> {
    let origin_kind: String = row.get("origin_kind")?;
    let origin_ref = || -> rusqlite::Result<String> { row.get("origin_ref") };
    let origin = match origin_kind.as_str() {
        "submit" => Origin::Submit,
        "schedule" => Origin::Schedule {
            name: origin_ref()?,
        },
        "rerun" => Origin::Rerun { of: origin_ref()? },
        other => {
            let index = row.as_ref().column_index("origin_kind")?;
            let unknown = UnknownWord::new("run origin", other, &["submit", "schedule", "rerun"]);
            return Err(rusqlite::Error::FromSqlConversionFailure(
                index,
                rusqlite::types::Type::Text,
                Box::new(unknown),
            ));
        }
    };
    let comparison = match get_opt_word(row, "comparison_outcome")? {
        None => None,
        Some(outcome) => Some(Comparison {
            outcome,
            baseline_run: row.get("comparison_baseline")?,
            details: get_json(row, "comparison_details")?,
        }),
    };
    Ok(RunRecord {
        id: row.get("id")?,
        plan_name: row.get("plan_name")?,
        plan_text: row.get("plan_text")?,
        origin,
        agents_wanted: row.get("agents_wanted")?,
        selector: get_selector(row, "selector")?,
        state: get_word(row, "state")?,
        scheduled_at: get_opt_time(row, "scheduled_at")?,
        queued_at: get_time(row, "queued_at")?,
        started_at: get_opt_time(row, "started_at")?,
        ended_at: get_opt_time(row, "ended_at")?,
        missed: get_opt_word(row, "missed")?,
        agents: get_strings(row, "agents")?,
        reason: row.get("reason")?,
        summary: get_opt_json(row, "summary")?,
        exit_code: row.get("exit_code")?,
        checkpointed_at: get_opt_time(row, "checkpointed_at")?,
        comparison,
        baseline: row.get("is_baseline")?,
    })
}

/// A new run id: 12 lowercase hex digits (48 random bits).
fn new_run_id() -> String {
    format!("{:012x}", rand::random::<u64>() >> 16)
}

/// SQLite's LIMIT is an i64; a larger limit means no limit.
pub(crate) fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfinished_sql_lists_exactly_the_unfinished_states() {
        let words: Vec<String> = RunState::ALL
            .into_iter()
            .filter(|s| !s.is_finished())
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        assert_eq!(UNFINISHED_SQL, format!("({})", words.join(", ")));
    }

    #[test]
    fn run_ids_are_twelve_lowercase_hex_digits() {
        for _ in 0..100 {
            let id = new_run_id();
            assert_eq!(id.len(), 12);
            assert!(
                id.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')),
                "{id}"
            );
        }
    }
}
