//! Baselines: the one finished run per plan name that later runs are compared with.

use chrono::Utc;
use rusqlite::{OptionalExtension, params};

use crate::columns::{get_word, time_text};
use crate::error::{StoreError, sql};
use crate::run::RunRecord;
use crate::run_state::RunState;
use crate::runs_table::{SELECT_RUN, run_from_row};
use crate::store::Store;

impl Store {
    /// Makes a finished run its plan's baseline, replacing the plan's previous one.
    /// A baseline run is never pruned (see [`Store::prune`]).
    pub fn set_baseline(&self, run_id: &str) -> Result<(), StoreError> {
        let op = "set baseline";
        let tx = self.conn.unchecked_transaction().map_err(sql(op))?;
        let run = tx
            .query_row(
                "SELECT plan_name, state FROM runs WHERE id = ?1",
                [run_id],
                |row| {
                    Ok((
                        row.get::<_, String>("plan_name")?,
                        get_word::<RunState>(row, "state")?,
                    ))
                },
            )
            .optional()
            .map_err(sql(op))?;
        let Some((plan_name, state)) = run else {
            return Err(StoreError::RunNotFound {
                id: run_id.to_owned(),
            });
        };
        if !state.is_finished() {
            return Err(StoreError::NotFinished {
                id: run_id.to_owned(),
                state,
            });
        }
        tx.execute(
            "INSERT INTO baselines (plan_name, run_id, set_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (plan_name) DO UPDATE SET run_id = excluded.run_id, set_at = excluded.set_at",
            params![plan_name, run_id, time_text(Utc::now())],
        )
        .map_err(sql(op))?;
        tx.commit().map_err(sql(op))
    }

    /// The plan's baseline run, if it has one.
    pub fn baseline(&self, plan_name: &str) -> Result<Option<RunRecord>, StoreError> {
        self.conn
            .query_row(
                &format!(
                    "{SELECT_RUN} JOIN baselines base ON base.run_id = r.id \
                     WHERE base.plan_name = ?1"
                ),
                [plan_name],
                run_from_row,
            )
            .optional()
            .map_err(sql("read baseline"))
    }
}
