//! Schedules: adding, listing, pausing, removing, and recording what was handled.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rusqlite::types::{ToSql, Type};
use rusqlite::{OptionalExtension, Row, params};

use crate::columns::{get_opt_time, get_selector, get_time, get_word, selector_json, time_text};
use crate::error::{StoreError, is_primary_key_clash, sql};
use crate::run_state::UnknownWord;
use crate::schedule::Schedule;
use crate::store::Store;
use crate::when::When;

impl Store {
    /// Adds a schedule. Its `when` is checked first ([`StoreError::InvalidSchedule`]); a
    /// name already taken is [`StoreError::ScheduleExists`].
    pub fn add_schedule(&self, schedule: &Schedule) -> Result<(), StoreError> {
        schedule
            .when
            .check()
            .map_err(|source| StoreError::InvalidSchedule {
                name: schedule.name.clone(),
                source,
            })?;
        let (kind, expr, tz, at) = match &schedule.when {
            When::Cron { expr, tz } => ("cron", Some(expr.as_str()), Some(tz.name()), None),
            When::At(at) => ("at", None, None, Some(time_text(*at))),
        };
        let inserted = self.conn.execute(
            "INSERT INTO schedules (name, plan_name, plan_text, agents, selector, when_kind, \
             cron_expr, cron_tz, at_time, missed, paused, created_at, last_handled) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                schedule.name,
                schedule.plan_name,
                schedule.plan_text,
                schedule.agents,
                selector_json(&schedule.selector),
                kind,
                expr,
                tz,
                at,
                schedule.missed.as_str(),
                schedule.paused,
                time_text(schedule.created_at),
                schedule.last_handled.map(time_text),
            ],
        );
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_primary_key_clash(&e) => Err(StoreError::ScheduleExists {
                name: schedule.name.clone(),
            }),
            Err(e) => Err(sql("add schedule")(e)),
        }
    }

    /// Every schedule, by name.
    pub fn schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        self.conn
            .prepare("SELECT * FROM schedules ORDER BY name")
            .and_then(|mut stmt| {
                stmt.query_map([], schedule_from_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(sql("list schedules"))
    }

    /// One schedule by name.
    pub fn schedule(&self, name: &str) -> Result<Option<Schedule>, StoreError> {
        self.conn
            .query_row(
                "SELECT * FROM schedules WHERE name = ?1",
                [name],
                schedule_from_row,
            )
            .optional()
            .map_err(sql("read schedule"))
    }

    /// Pauses or resumes a schedule. Resuming marks every time up to now as handled, so
    /// the times that passed while paused are neither run nor reported as missed.
    pub fn set_paused(&self, name: &str, paused: bool) -> Result<(), StoreError> {
        let now = time_text(Utc::now());
        self.update_schedule(
            "pause schedule",
            name,
            // Text order is time order (fixed-width times), so MAX keeps the later one.
            "last_handled = CASE WHEN paused = 1 AND ?2 = 0 \
             THEN MAX(COALESCE(last_handled, ?3), ?3) ELSE last_handled END, paused = ?2",
            &[&paused, &now],
        )
    }

    /// Records the newest scheduled time the service has dealt with.
    pub fn set_last_handled(&self, name: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.update_schedule(
            "set schedule last handled",
            name,
            "last_handled = ?2",
            &[&time_text(at)],
        )
    }

    /// Removes a schedule; the runs it started stay.
    pub fn remove_schedule(&self, name: &str) -> Result<(), StoreError> {
        let removed = self
            .conn
            .execute("DELETE FROM schedules WHERE name = ?1", [name])
            .map_err(sql("remove schedule"))?;
        if removed == 0 {
            return Err(StoreError::ScheduleNotFound {
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    fn update_schedule(
        &self,
        op: &'static str,
        name: &str,
        set: &str,
        params: &[&dyn ToSql],
    ) -> Result<(), StoreError> {
        let mut all: Vec<&dyn ToSql> = vec![&name];
        all.extend_from_slice(params);
        let changed = self
            .conn
            .execute(
                &format!("UPDATE schedules SET {set} WHERE name = ?1"),
                all.as_slice(),
            )
            .map_err(sql(op))?;
        if changed == 0 {
            return Err(StoreError::ScheduleNotFound {
                name: name.to_owned(),
            });
        }
        Ok(())
    }
}

fn schedule_from_row(row: &Row<'_>) -> rusqlite::Result<Schedule> {
    let kind: String = row.get("when_kind")?;
    let when = match kind.as_str() {
        "cron" => When::Cron {
            expr: row.get("cron_expr")?,
            tz: get_word::<Tz>(row, "cron_tz")?,
        },
        "at" => When::At(get_time(row, "at_time")?),
        other => {
            let index = row.as_ref().column_index("when_kind")?;
            let unknown = UnknownWord::new("schedule kind", other, &["cron", "at"]);
            return Err(rusqlite::Error::FromSqlConversionFailure(
                index,
                Type::Text,
                Box::new(unknown),
            ));
        }
    };
    Ok(Schedule {
        name: row.get("name")?,
        plan_name: row.get("plan_name")?,
        plan_text: row.get("plan_text")?,
        agents: row.get("agents")?,
        selector: get_selector(row, "selector")?,
        when,
        missed: get_word(row, "missed")?,
        paused: row.get("paused")?,
        created_at: get_time(row, "created_at")?,
        last_handled: get_opt_time(row, "last_handled")?,
    })
}
